"""Runs the real core (``--only ingest``) with a crash point the tests inject.

``python tests/cloud_core/crash_launcher.py --config core.yaml --crash-after N`` starts
the same ``CoreApp`` as ``mallnet core run --only ingest``, but wires an ``after_commit``
hook into it that calls ``os._exit(9)`` right after the N-th committed batch, before that
batch is acked and before its receipts and inbox notices go out: a crash at the worst
moment, for the exactly-once and inbox tests. Production code has no such switch.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from cloud_core.app import CoreApp
from cloud_core.cli import serve
from cloud_core.config import load_core_config
from mallnet.logs import configure_logging

log = logging.getLogger("crash_launcher")


def crash_after(n: int) -> Callable[[int], None]:
    def after_commit(committed: int) -> None:
        if committed >= n:
            log.critical("test crash point: exiting after commit %d, before ack", committed)
            logging.shutdown()
            os._exit(9)

    return after_commit


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--crash-after", type=int, required=True)
    args = parser.parse_args()
    configure_logging("INFO")
    config = load_core_config(args.config)
    return serve(CoreApp(config, only="ingest", after_commit=crash_after(args.crash_after)))


if __name__ == "__main__":
    sys.exit(main())
