"""The demo's child processes (each ``mallnet …`` command logging to its own file) and its
HTTP client for the core's API — the demo talks to the parts only through these."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mallnet.errors import MallnetError

log = logging.getLogger(__name__)


class DemoError(MallnetError):
    """A part of the demo did not start or did not behave."""


class Processes:
    """Child processes of the demo, each logging to its own file."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._files: list[Any] = []

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(  # noqa: S603 - our own command
            [sys.executable, "-m", "mallnet.cli", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise DemoError(
                f"`mallnet {' '.join(args[:2])}` failed: {result.stderr.strip()[-800:]}"
            )
        return result

    def start(
        self, name: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        out = (self.log_dir / f"{name}.log").open("wb")
        self._files.append(out)
        proc = subprocess.Popen(  # noqa: S603 - our own command
            [sys.executable, "-m", "mallnet.cli", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.procs[name] = proc
        return proc

    def tail(self, name: str, chars: int = 1500) -> str:
        try:
            return (self.log_dir / f"{name}.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, names: list[str]) -> None:
        """SIGTERM the named processes (each stops as it does under systemd), then reap them."""
        for name in names:
            if self.procs[name].poll() is None:
                self.procs[name].send_signal(signal.SIGTERM)
        for name in names:
            proc = self.procs[name]
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop on SIGTERM; killing it", name)
                proc.kill()
                proc.wait(5)

    def stop_all(self) -> None:
        self.stop(list(self.procs))
        for handle in self._files:
            handle.close()


class Api:
    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.key = key

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Any:
        return self.answer(method, path, body, idempotency_key=idempotency_key)[1]

    def answer(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        refused: tuple[int, ...] = (),
    ) -> tuple[int, Any]:
        """Status and JSON body; a status in ``refused`` is an answer, any other error raises."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"X-API-Key": self.key, "Content-Type": "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        request = urllib.request.Request(  # noqa: S310 - loopback http only
            self.base + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            text = exc.read()
            if exc.code in refused:
                return exc.code, json.loads(text or b"null")
            raise DemoError(f"API {method} {path}: {exc.code} {text[:300]!r}") from None

    def wait_healthy(self, timeout: float, alive: Callable[[], bool]) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while time.monotonic() < deadline:
            if not alive():
                raise DemoError("the core exited during start-up")
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=2):  # noqa: S310
                    return
            except OSError:
                time.sleep(delay)  # polling the API until it answers
                delay = min(delay * 2, 0.5)
        raise DemoError(f"the core's API did not answer within {timeout}s")


def write_secret(path: Path, value: str) -> Path:
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(value + "\n", encoding="utf-8")
    return path
