"""systemd's service notification protocol: READY=1, WATCHDOG=1, STATUS=, STOPPING=1.

A ``Type=notify`` unit with ``WatchdogSec=`` gives its service ``$NOTIFY_SOCKET`` (a datagram
Unix socket, ``@…`` for the abstract namespace) and ``$WATCHDOG_USEC``; the service says when it
is ready and then proves, at least every ``WatchdogSec``, that it still works — or systemd kills
and restarts it (``Restart=on-failure``). This is what ``sd_notify(3)`` does, without libsystemd.

Each composition root (store node, gate, kiosk, core) owns one ``Watchdog`` and calls
``Watchdog.tick`` from its own main loop, so a loop that hangs sends nothing; the checks it is
given (a BLE scan or a camera that stopped making progress, a dead ingest thread) withhold the
ping while they report a problem. Outside systemd (no ``$NOTIFY_SOCKET``) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence

log = logging.getLogger(__name__)

#: A health check: None when fine, else what is wrong (shown in ``systemctl status``).
Check = Callable[[], str | None]


class Notifier:
    """Sends notification datagrams to the service manager's socket."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """The socket and watchdog period systemd passes to a ``Type=notify`` service
        (``$NOTIFY_SOCKET``, ``$WATCHDOG_USEC`` for this very process per ``$WATCHDOG_PID``)."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        usec: int | None = None
        pid = env.get("WATCHDOG_PID")
        if env.get("WATCHDOG_USEC", "").isdigit() and (pid is None or pid == str(os.getpid())):
            usec = int(env["WATCHDOG_USEC"]) or None
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to ping: half the watchdog period, as sd_watchdog_enabled(3) advises."""
        return self.watchdog_usec / 2e6 if self.watchdog_usec else None

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=value`` lines in one datagram; False (logged once) when it cannot."""
        if self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(fields).encode(), target)
        except OSError as exc:
            log.warning("cannot notify the service manager at %s: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class Watchdog:
    """Pings the service manager from the caller's loop while every check passes.

    ``tick(now)`` is cheap and meant to be called on every turn of a main loop; it sends
    ``WATCHDOG=1`` at most every ``interval_s`` (half of ``WatchdogSec``), and only when no
    check reports a problem. A problem is logged once and shown as ``STATUS=``; the service
    manager restarts the service when the pings stay away for ``WatchdogSec``.
    """

    def __init__(
        self,
        notifier: Notifier,
        checks: Sequence[Check] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.notifier = notifier
        self.checks = list(checks)
        self.clock = clock
        self.interval_s = notifier.watchdog_interval_s
        self.pings = 0
        self.withheld = 0
        self._next = 0.0
        self._problem: str | None = None

    @classmethod
    def from_environment(cls, checks: Sequence[Check] = ()) -> Watchdog:
        return cls(Notifier.from_environment(), checks)

    def problems(self) -> list[str]:
        found = []
        for check in self.checks:
            problem = check()
            if problem is not None:
                found.append(problem)
        return found

    def ready(self, status: str) -> None:
        """The service is up: READY=1 (and the first ping, so the period starts now)."""
        self.notifier.ready(status)
        self._next = 0.0
        self.tick()

    def tick(self, now: float | None = None) -> bool:
        """Ping if one is due and every check passes; True if a ping was sent."""
        if self.interval_s is None:
            return False
        now = self.clock() if now is None else now
        if now < self._next:
            return False
        self._next = now + self.interval_s
        problems = self.problems()
        if problems:
            self.withheld += 1
            text = "; ".join(problems)
            if text != self._problem:
                log.error("unhealthy, withholding the watchdog ping: %s", text)
                self.notifier.status(f"unhealthy: {text}")
            self._problem = text
            return False
        if self._problem is not None:
            log.info("healthy again; watchdog pings resume")
            self.notifier.status("running")
            self._problem = None
        self.pings += 1
        return self.notifier.watchdog()

    def stopping(self) -> None:
        self.notifier.stopping()
        self.notifier.close()


def stalled(name: str, last_progress: Callable[[], float], limit_s: float) -> Check:
    """A check that fails when ``last_progress()`` (monotonic seconds) is older than ``limit_s``."""

    def check() -> str | None:
        age = time.monotonic() - last_progress()
        return f"{name} made no progress for {age:.0f} s" if age > limit_s else None

    return check
