"""Runs the real core (``--only ingest``) with a crash point the tests inject.

``python tests/cloud_core/crash_launcher.py --config core.yaml --crash-after N`` starts
the same ``CoreApp`` as ``mallnet core run --only ingest``, but wires an ``after_commit``
hook into it that calls ``os._exit(9)`` right after the N-th committed batch, before that
batch is acked and before its receipts and inbox notices go out: a crash at the worst
moment, for the exactly-once and inbox tests. ``--kill-in-batch N`` instead sends the
process SIGKILL inside the N-th batch's transaction, after its writes and before its
commit (the outbox write is the last step of every batch). Production code has no such
switch.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from cloud_core.app import CoreApp
from cloud_core.cli import serve
from cloud_core.config import load_core_config
from cloud_core.ingest.notices import NoticeOutbox, PendingNotice
from cloud_core.rules.common import Notice
from cloud_core.store import Conn
from mallnet.logs import configure_logging

log = logging.getLogger("crash_launcher")


def crash_after(n: int) -> Callable[[int], None]:
    def after_commit(committed: int) -> None:
        if committed >= n:
            log.critical("test crash point: exiting after commit %d, before ack", committed)
            logging.shutdown()
            os._exit(9)

    return after_commit


def kill_in_batch(n: int) -> None:
    """SIGKILL this process inside the n-th batch's transaction (before its commit)."""
    keep = NoticeOutbox.keep
    batches = itertools.count(1)

    def keep_then_die(
        self: NoticeOutbox, conn: Conn, notices: Sequence[Notice], now_iso: str
    ) -> list[PendingNotice]:
        kept = keep(self, conn, notices, now_iso)
        if next(batches) >= n:
            log.critical("test crash point: SIGKILL inside batch %d, before commit", n)
            logging.shutdown()
            os.kill(os.getpid(), signal.SIGKILL)
        return kept

    NoticeOutbox.keep = keep_then_die  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--crash-after", type=int)
    parser.add_argument("--kill-in-batch", type=int)
    args = parser.parse_args()
    configure_logging("INFO")
    config = load_core_config(args.config)
    if args.kill_in_batch is not None:
        kill_in_batch(args.kill_in_batch)
    after = None if args.crash_after is None else crash_after(args.crash_after)
    return serve(CoreApp(config, only="ingest", after_commit=after))


if __name__ == "__main__":
    sys.exit(main())
