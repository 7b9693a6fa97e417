"""Run a Mosquitto from ``mqtt_broker/`` config, and manage device credentials.

Used by the tests, the demo and ``mallnet broker``. Production brokers are set
up by ansible from ``mqtt_broker/mosquitto.prod.conf``; credentials there are
added with the same ``add_credential``.
"""

from __future__ import annotations

import getpass
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from mallnet.errors import MallnetError
from mallnet.resources import BROKER_PACKAGE, data_dir

log = logging.getLogger(__name__)

BROKER_DIR = data_dir(BROKER_PACKAGE)  # mqtt_broker/, shipped in the wheel


class BrokerError(MallnetError):
    """Mosquitto could not be found, configured or started."""


def _tool(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and Path(candidate).exists():
            return candidate
    raise BrokerError(f"{name} not found: install the 'mosquitto' package")


def add_credential(password_file: Path, user: str, password: str | None = None) -> str:
    """Add or replace a user in a Mosquitto password file; returns the password.

    A strong random password is made when none is given.
    """
    password = password or secrets.token_urlsafe(24)
    password_file.parent.mkdir(parents=True, exist_ok=True)
    args = [_tool("mosquitto_passwd"), "-b"]
    if not password_file.exists():
        args.append("-c")
    result = subprocess.run(  # noqa: S603 - fixed tool, list arguments
        [*args, str(password_file), user, password], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BrokerError(f"mosquitto_passwd failed for {user}: {result.stderr.strip()}")
    password_file.chmod(0o600)
    return password


def render_acl(mall: str, core_user: str) -> str:
    template = (BROKER_DIR / "acl.template").read_text()
    return template.replace("@MALL@", mall).replace("@CORE_USER@", core_user)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path
    cert_file: Path
    key_file: Path


class DevBroker:
    """A real Mosquitto on loopback, from ``mqtt_broker/mosquitto.dev.conf``.

    The data directory survives ``stop``/``kill`` so a restarted broker
    recovers its persisted sessions and queued messages.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        mall: str = "demo",
        core_user: str = "core",
        port: int | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.mall = mall
        self.core_user = core_user
        self.port = port or free_port()
        self.tls = tls
        self.password_file = data_dir / "passwd"
        self.acl_file = data_dir / "acl"
        self.conf_file = data_dir / "mosquitto.conf"
        self.log_file = data_dir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._passwords: dict[str, str] = {}
        data_dir.mkdir(parents=True, exist_ok=True)
        self.acl_file.write_text(render_acl(mall, core_user))

    def add_user(self, user: str, password: str | None = None) -> str:
        """Add or replace a credential; a running broker reloads it (SIGHUP).

        Replacing a password makes Mosquitto disconnect clients logged in as that user.
        """
        password = add_credential(self.password_file, user, password)
        self._passwords[user] = password
        if self.running:
            self.reload()
        return password

    def credential(self, user: str) -> str:
        """The password of a user this instance added, adding the user on first use."""
        known = self._passwords.get(user)
        return known if known is not None else self.add_user(user)

    def _render(self) -> str:
        tls = ""
        if self.tls is not None:
            tls = (
                f"cafile {self.tls.ca_file}\ncertfile {self.tls.cert_file}\n"
                f"keyfile {self.tls.key_file}\ntls_version tlsv1.2"
            )
        replacements = {
            "@PASSWORD_FILE@": str(self.password_file),
            "@ACL_FILE@": str(self.acl_file),
            "@PORT@": str(self.port),
            "@BIND@": "127.0.0.1",
            "@TLS@": tls,
            "@DATA_DIR@": str(self.data_dir),
            "@USER@": getpass.getuser(),
        }
        text = (BROKER_DIR / "mosquitto.dev.conf").read_text()
        for key, value in replacements.items():
            text = text.replace(key, value)
        return text

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        if not self.password_file.exists():
            add_credential(self.password_file, self.core_user)
        self.conf_file.write_text(self._render())
        self._proc = subprocess.Popen(  # noqa: S603 - fixed tool, list arguments
            [_tool("mosquitto"), "-c", str(self.conf_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_accepting(timeout)
        log.info("mosquitto pid %s listening on 127.0.0.1:%s", self._proc.pid, self.port)

    def _wait_accepting(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.005
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc and self._proc.stderr else ""
                raise BrokerError(f"mosquitto exited at start: {err.strip()} {self._log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(delay)  # polling a condition with backoff, not a fixed wait
                delay = min(delay * 2, 0.1)
        raise BrokerError(f"mosquitto did not accept connections within {timeout}s")

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text()[-2000:]
        except OSError:
            return ""

    def reload(self) -> None:
        if self._proc is not None and self.running:
            self._proc.send_signal(signal.SIGHUP)

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM): Mosquitto saves its persistence file."""
        self._end(signal.SIGTERM, timeout)

    def kill(self, timeout: float = 10.0) -> None:
        """``kill -9``: whatever was not yet autosaved is lost, as in a crash."""
        self._end(signal.SIGKILL, timeout)

    def _end(self, sig: int, timeout: float) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            os.kill(proc.pid, sig)
            proc.wait(timeout)
        if proc.stderr is not None:
            proc.stderr.close()
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> DevBroker:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
