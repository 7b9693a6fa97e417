"""Loading a node's config at a command's start, the same way for `edge run` and `edge gate`.

Problems go to stderr one `file:line: field: problem` line each (exit 2);
`--validate-config` reports the config as valid, warning (not failing) about a
broker password file that is not there yet (ansible may provision it later).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from mallnet.config import MqttSettings
from mallnet.errors import ConfigError

C = TypeVar("C")


def load_or_report(load: Callable[[str], C], path: str) -> C | None:
    """The loaded config, or None after writing every problem to stderr."""
    try:
        return load(path)
    except ConfigError as exc:
        for problem in exc.problems or [str(exc)]:
            sys.stderr.write(problem + "\n")
        return None


def report_valid(path: str, mqtt: MqttSettings, summary: str) -> int:
    """What `--validate-config` prints for a valid config; always exit 0."""
    try:
        mqtt.resolve_password()
    except ConfigError as exc:  # may be provisioned later (ansible); say so, don't fail
        sys.stderr.write(f"{path}: warning: mqtt.password_file: {exc}\n")
    sys.stdout.write(f"{path}: ok ({summary})\n")
    return 0
