"""A stand-in for systemd's side of ``$NOTIFY_SOCKET``: a datagram socket the test binds and
reads, exactly what a ``Type=notify`` service writes to under systemd."""

from __future__ import annotations

import socket
import time
from pathlib import Path

WATCHDOG_USEC = 1_000_000  # WatchdogSec=1: a healthy service pings every 0.5 s


class NotifySocket:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[dict[str, str]] = []

    def env(self, usec: int = WATCHDOG_USEC) -> dict[str, str]:
        return {"NOTIFY_SOCKET": str(self.path), "WATCHDOG_USEC": str(usec)}

    def receive(self, timeout: float) -> dict[str, str] | None:
        """The next datagram as ``{KEY: value}``, or None if none came within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return None
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        self.messages.append(fields)
        return fields

    def wait_for(self, key: str, value: str | None = None, timeout: float = 30.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            got = self.receive(left)
            if got is not None and key in got and value in (None, got[key]):
                return got
        raise AssertionError(f"no {key}={value or '*'} within {timeout}s: {self.messages[-5:]}")

    def pings(self, count: int, timeout: float = 30.0) -> None:
        for _ in range(count):
            self.wait_for("WATCHDOG", "1", timeout)

    def silence(self, quiet_s: float, within_s: float = 30.0) -> list[dict[str, str]]:
        """Wait until no WATCHDOG=1 arrives for ``quiet_s`` (systemd's WatchdogSec would have
        fired); returns what arrived before. Fails if the pings never stop."""
        deadline = time.monotonic() + within_s
        before: list[dict[str, str]] = []
        last_ping = time.monotonic()
        while time.monotonic() < deadline:
            got = self.receive(max(0.01, quiet_s - (time.monotonic() - last_ping)))
            if got is None:
                if time.monotonic() - last_ping >= quiet_s:
                    return before
                continue
            before.append(got)
            if got.get("WATCHDOG") == "1":
                last_ping = time.monotonic()
        raise AssertionError(f"the pings did not stop within {within_s}s: {before[-5:]}")

    def close(self) -> None:
        self.sock.close()
