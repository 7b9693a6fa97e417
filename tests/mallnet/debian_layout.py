"""``mosquitto.prod.conf`` in the ``conf.d`` of Debian's stock ``mosquitto.conf``, every path moved
into a temp dir, started as a real Mosquitto: the production config as installed."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mallnet.broker import dynsec_plugin
from mallnet.pki import CertificateAuthority, CertRole
from tests.conftest import wait_until

STOCK_CONF = Path("/etc/mosquitto/mosquitto.conf")  # from Debian's mosquitto package
PROD_PLUGIN = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"


@dataclass(frozen=True)
class Layout:
    conf: Path  # the main mosquitto.conf
    conf_d: Path  # where mallnet.conf (and a mall's mallnet-bridge.conf) go
    data: Path  # /var/lib/mosquitto: persistence and the identities file
    certs: Path  # ca.crt, server.crt/key issued by the mall's CA (mallnet.pki)
    port: int
    ca: CertificateAuthority  # issues the devices' client certificates; its CRL is the broker's

    @property
    def dynsec_file(self) -> Path:
        return self.data / "mallnet-dynsec.json"


def debian_layout(tmp_path: Path, port: int) -> Layout:
    """Debian's stock config with ``mosquitto.prod.conf`` as ``conf.d/mallnet.conf`` listening on
    loopback ``port`` (TLS with client certificates of the mall's CA, its CRL); nothing started
    yet."""
    assert STOCK_CONF.exists(), "Debian's mosquitto package installs /etc/mosquitto/mosquitto.conf"
    certs = tmp_path / "certs"
    certs.mkdir(parents=True)
    ca = CertificateAuthority(tmp_path / "ca")
    ca.init("test mall CA")
    [server] = ca.issue("localhost", CertRole.BROKER, out=certs, san=("127.0.0.1",))
    assert server.key is not None
    server.cert.rename(certs / "server.crt")
    server.key.rename(certs / "server.key")
    shutil.copyfile(ca.ca_cert, certs / "ca.crt")
    etc, data, run, logs = (tmp_path / d for d in ("etc", "var-lib", "run", "log"))
    for folder in (etc / "conf.d", data, run, logs):
        folder.mkdir(parents=True)
    main = STOCK_CONF.read_text()
    for old, new in {
        "/etc/mosquitto/conf.d": str(etc / "conf.d"),
        "/var/lib/mosquitto/": f"{data}/",
        "/run/mosquitto/": f"{run}/",
        "/var/log/mosquitto/": f"{logs}/",
    }.items():
        assert old in main
        main = main.replace(old, new)
    (etc / "mosquitto.conf").write_text(main)
    prod = Path("mqtt_broker/mosquitto.prod.conf").read_text()
    moves = {
        "/var/lib/mosquitto/": f"{data}/",
        "/etc/mosquitto/certs/crl.pem": str(ca.crl),  # the CA's own, rewritten by revoke
        "/etc/mosquitto/certs/": f"{certs}/",
        "listener 8883": f"listener {port} 127.0.0.1",
    }
    if not Path(PROD_PLUGIN).exists():  # another architecture's multiarch folder
        moves[PROD_PLUGIN] = str(dynsec_plugin())
    for old, new in moves.items():
        assert old in prod
        prod = prod.replace(old, new)
    (etc / "conf.d" / "mallnet.conf").write_text(prod)
    # tests run as this user, not as `mosquitto`, and see reloads in the log (the only
    # additions to the two files)
    test_only = f"user {getpass.getuser()}\nlog_type information\n"
    (etc / "conf.d" / "zz-test-only.conf").write_text(test_only)
    return Layout(etc / "mosquitto.conf", etc / "conf.d", data, certs, port, ca)


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def start(conf: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.PIPE)
    wait_until(lambda: accepts(port) or proc.poll() is not None, 10, "the broker")
    if proc.poll() is not None:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise AssertionError(f"the production config did not start: {err}")
    return proc


def end(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(10)
    if proc.stderr is not None:
        proc.stderr.close()
