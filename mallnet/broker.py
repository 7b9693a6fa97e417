"""Run a Mosquitto from ``mqtt_broker/`` config (tests, the demo, ``mallnet broker run``).

Identities and ACLs live in the dynamic-security plugin's file (``mallnet.dynsec``);
a ``DevBroker`` creates its file with the core and an admin identity, and changes it
live while it runs. Production brokers are set up from ``mqtt_broker/mosquitto.prod.conf``
and their identities added with ``mallnet broker add-device``.
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

from mallnet.bridge import render_bridge
from mallnet.config import MqttSettings, TlsSettings
from mallnet.dynsec import (
    ADMIN_USER,
    DynsecControl,
    Role,
    add_admin,
    add_device,
    new_dynsec_config,
    remove_device,
    save_dynsec,
    set_identity,
)
from mallnet.errors import MallnetError
from mallnet.resources import BROKER_PACKAGE, data_dir

log = logging.getLogger(__name__)

BROKER_DIR = data_dir(BROKER_PACKAGE)  # mqtt_broker/, shipped in the wheel
DYNSEC_PLUGIN = "mosquitto_dynamic_security.so"


class BrokerError(MallnetError):
    """Mosquitto could not be found, configured or started, or refused a change."""


def _tool(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and Path(candidate).exists():
            return candidate
    raise BrokerError(f"{name} not found: install the 'mosquitto' package")


def dynsec_plugin() -> Path:
    """The plugin shipped by Debian's mosquitto package (multiarch library folder)."""
    multiarch = sorted(Path("/usr/lib").glob(f"*/{DYNSEC_PLUGIN}"))
    for candidate in [*multiarch, Path("/usr/lib") / DYNSEC_PLUGIN]:
        if candidate.exists():
            return candidate
    raise BrokerError(f"{DYNSEC_PLUGIN} not found: install the 'mosquitto' package")


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


def dev_role(user: str) -> Role:
    """Development and tests name identities by kind (``core…``, ``gate-…``, ``kiosk-…``,
    ``monitor…``, ``bridge-…``, anything else a store node); production always names the
    role explicitly."""
    if user == "core" or user.startswith("core-"):
        return Role.CORE
    if user.startswith("bridge-"):
        return Role.BRIDGE
    if user.startswith("monitor"):
        return Role.MONITOR
    if user.startswith("gate"):
        return Role.GATE
    if user.startswith("kiosk"):
        return Role.KIOSK
    return Role.STORE


class DevBroker:
    """A real Mosquitto on loopback, from ``mqtt_broker/mosquitto.dev.conf``.

    The data directory survives ``stop``/``kill`` so a restarted broker
    recovers its persisted sessions, queued messages and identities. With ``bridge``
    (the platform broker's address and this mall's bridge identity there) it is a mall
    broker bridged to the platform (``mallnet.bridge``; plain TCP on loopback is allowed).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        mall: str = "demo",
        core_user: str = "core",
        port: int | None = None,
        tls: TlsFiles | None = None,
        bridge: MqttSettings | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.bridge = bridge
        self.mall = mall
        self.core_user = core_user
        self.port = port or free_port()
        self.tls = tls
        self.dynsec_file = data_dir / "dynamic-security.json"
        self.conf_file = data_dir / "mosquitto.conf"
        self.log_file = data_dir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._passwords: dict[str, str] = {}
        data_dir.mkdir(parents=True, exist_ok=True)
        admin_secret = data_dir / "admin.secret"
        if admin_secret.exists():
            self._admin_password = admin_secret.read_text(encoding="utf-8").strip()
        else:
            self._admin_password = secrets.token_urlsafe(24)
            fd = os.open(admin_secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(self._admin_password)
        if not self.dynsec_file.exists():
            doc = new_dynsec_config()
            add_admin(doc, self._admin_password)
            set_identity(doc, mall, core_user, Role.CORE, secrets.token_urlsafe(24))
            save_dynsec(self.dynsec_file, doc)
        self.control = DynsecControl(self._admin_settings())

    def _admin_settings(self) -> MqttSettings:
        tls = TlsSettings(ca_file=self.tls.ca_file) if self.tls is not None else None
        host = "localhost" if self.tls is not None else "127.0.0.1"
        return MqttSettings(
            host=host, port=self.port, username=ADMIN_USER, password=self._admin_password, tls=tls
        )

    def add_user(
        self,
        user: str,
        password: str | None = None,
        role: Role | None = None,
        *,
        mall: str | None = None,
    ) -> str:
        """Add or replace an identity (role from its name unless given) of this broker's mall
        or of ``mall`` (a platform broker serves several); a running broker applies it at
        once. Replacing an identity disconnects clients logged in as it."""
        role = role or dev_role(user)
        mall = mall or self.mall
        if password is not None and self._passwords.get(user) == password:
            return password  # unchanged: clients logged in as this user stay connected
        password = password or secrets.token_urlsafe(24)
        if self.running:
            self.control.set_identity(mall, user, role, password)
        else:
            add_device(self.dynsec_file, mall, user, role, password)
        self._passwords[user] = password
        return password

    def remove_user(self, user: str) -> None:
        """Revoke an identity; a running broker disconnects its clients at once."""
        if self.running:
            self.control.remove_identity(user)
        else:
            remove_device(self.dynsec_file, user)
        self._passwords.pop(user, None)

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
            "@DYNSEC_PLUGIN@": str(dynsec_plugin()),
            "@DYNSEC_FILE@": str(self.dynsec_file),
            "@PORT@": str(self.port),
            "@BIND@": "127.0.0.1",
            "@TLS@": tls,
            "@DATA_DIR@": str(self.data_dir),
            "@USER@": getpass.getuser(),
        }
        text = (BROKER_DIR / "mosquitto.dev.conf").read_text()
        for key, value in replacements.items():
            text = text.replace(key, value)
        if self.bridge is not None:
            text += "\n" + render_bridge(self.mall, self.bridge, allow_plain=True)
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
        # 0600: with a bridge the file holds the bridge's password on the platform
        fd = os.open(self.conf_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(self._render())
        self._proc = subprocess.Popen(  # noqa: S603 - fixed tool, list arguments
            [_tool("mosquitto"), "-c", str(self.conf_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_accepting(timeout)
        log.info("mosquitto pid %s listening on 127.0.0.1:%s", self._proc.pid, self.port)

    def wait(self) -> int:
        """Block until the broker process ends; its exit code."""
        return self._proc.wait() if self._proc is not None else 0

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
