"""Converge the playbooks against a real Debian host (systemd-nspawn in a network namespace,
reached over SSH) and check what they left behind: services active under systemd, a second
run that changes nothing, and a rolling update that loses and doubles no event."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import sqlite3
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from mallnet.config import MqttSettings, load_config
from mallnet.mqtt import Inbound, MqttClient
from tests.conftest import wait_until
from tests.deploy.testhost import Host, booted_host

pytestmark = [pytest.mark.testhost, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
MALL = "testmall"
NODE = "store-a-1"
PREFIX = "f7a3e1c2"


class Deployment:
    def __init__(self, host: Host, workdir: Path) -> None:
        self.host = host
        self.workdir = workdir
        self.secrets = workdir / "secrets"
        self.inventory = workdir / "inventory.yml"
        self.runs = 0
        self.failed = False

    def write_inventory(self, trace: Path) -> None:
        host_vars = {
            "ansible_host": self.host.address,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.host.key),
            "ansible_ssh_common_args": (
                "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
            ),
            "mallnet_store": "store-a",
        }
        inventory = {
            "all": {
                "vars": {
                    "mallnet_mall": MALL,
                    "mallnet_broker_host": "localhost",
                    "mallnet_secrets_dir": str(self.secrets),
                    "mallnet_build_dir": str(self.workdir / "build"),
                    "common_apt_update_cache": False,
                    "common_ssh_permit_root_login": "prohibit-password",
                    "common_ntp_servers": ["127.0.0.1"],
                    "cloud_core_stores": [
                        {"id": "store-a", "name": "Store A", "business": "shop-a", "zone": "l1"}
                    ],
                    "edge_node_replay_trace": str(trace),
                    # Identities the certificate test connects as (never the node's own id: a
                    # second client with it would take over the node's session).
                    "broker_extra_identities": [
                        {"id": "store-probe", "role": "store"},
                        {"id": "store-revoked", "role": "store"},
                        {"id": "monitor-test", "role": "monitor"},
                    ],
                    "edge_node_overrides": {"ibeacon": {"program_prefix": PREFIX}},
                    "edge_node_source": {
                        "type": "replay",
                        "path": "/etc/mallnet/trace.jsonl",
                        "speed": 1.0,
                        "at_end": "idle",
                    },
                },
                "children": {
                    group: {"hosts": {NODE: host_vars}}
                    for group in ("brokers", "cores", "edge_nodes")
                },
            }
        }
        self.inventory.write_text(yaml.safe_dump(inventory), encoding="utf-8")

    def play(self, playbook: str, *extra: str) -> dict[str, dict[str, int]]:
        """Run a playbook; returns the recap per host (fails the test on a failed run)."""
        env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
        self.runs += 1
        log = self.workdir / f"{self.runs:02d}-{playbook}.log"
        with log.open("w", encoding="utf-8") as out:  # written as it runs: watch it with tail -f
            done = subprocess.run(
                [
                    str(REPO / ".venv/bin/ansible-playbook"),
                    "-i",
                    str(self.inventory),
                    playbook,
                    *extra,
                ],
                cwd=ANSIBLE,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=900,
                check=False,
            )
        output = log.read_text(encoding="utf-8")
        self.failed |= done.returncode != 0
        assert done.returncode == 0, f"{playbook} failed ({log}):\n{output[-6000:]}"
        recap = {}
        for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.MULTILINE):
            recap[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
        return recap


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    # Our own folder: pytest's basetemp rotation (other sessions on the machine) must not
    # remove it mid-run. Kept when a test failed (playbook logs, console), removed otherwise.
    workdir = Path(tempfile.mkdtemp(prefix="mallnet-deploy-"))
    trace = workdir / "trace.jsonl"
    subprocess.run(
        [
            str(REPO / ".venv/bin/mallnet"),
            "edge",
            "simulate",
            "--out",
            str(trace),
            "--prefix",
            PREFIX,
            "--passers",
            "240",
            "--browse",
            "40",
            "--stagger",
            "5",
            "--seed",
            "7",
        ],
        check=True,
        capture_output=True,
    )
    with booted_host(workdir / "host") as host:
        deploy = Deployment(host, workdir)
        deploy.write_inventory(trace)
        yield deploy
    if not deploy.failed:
        shutil.rmtree(workdir, ignore_errors=True)


def _active(host: Host, unit: str) -> str:
    return host.ssh(f"systemctl is-active {unit}", check=False).stdout.strip()


def test_site_converges_and_services_run_under_systemd(deployment: Deployment) -> None:
    deployment.play("site.yml")
    for unit in ("mosquitto", "mallnet-core", "mallnet-edge", "ssh", "nftables"):
        assert _active(deployment.host, unit) == "active", unit
    current = deployment.host.ssh("readlink /opt/mallnet/current").stdout.strip()
    assert current.startswith("/opt/mallnet/releases/0.1.0-")
    # The secrets reached the node and nowhere else in the log; the firewall holds.
    assert "policy drop" in deployment.host.ssh("nft list chain inet mallnet input").stdout


def _mqtt_accepts(address: str, ca: Path, cert: Path, key: Path, client_id: str) -> bool:
    """Connect over TLS with a client certificate and send an MQTT CONNECT: True when the
    broker answers CONNACK 0; False when it refuses the certificate (handshake or the first
    read fails) or the login."""
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    ident = client_id.encode()
    variable = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(ident).to_bytes(2, "big") + ident
    try:
        with (
            socket.create_connection((address, 8883), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=address) as tls,
        ):
            tls.sendall(bytes([0x10, len(variable)]) + variable)
            return tls.recv(4) == b"\x20\x02\x00\x00"
    except (ssl.SSLError, ConnectionError, TimeoutError):
        return False


def test_the_broker_takes_device_certificates_and_refuses_wrong_ca_expired_revoked(
    deployment: Deployment,
) -> None:
    host, secrets, work = deployment.host, deployment.secrets, deployment.workdir
    ca, certs = secrets / "ca" / "ca.crt", secrets / "certs"
    # The node's service logged in with its own certificate: its retained status is online.
    status = subprocess.run(
        [
            str(REPO / ".venv/bin/mallnet"),
            "broker",
            "status",
            NODE,
            "--mall",
            MALL,
            "--settings",
            str(secrets / "monitor.yaml"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(status.stdout)["state"] == "online"

    def accepts(folder: Path, device: str) -> bool:
        return _mqtt_accepts(
            host.address, ca, folder / f"{device}.crt", folder / f"{device}.key", device
        )

    assert accepts(certs, "store-probe")
    assert accepts(certs, "store-revoked")
    pki = [str(REPO / ".venv/bin/mallnet"), "pki"]
    subprocess.run([*pki, "init-ca", "--ca-dir", str(work / "rogue-ca")], check=True)
    subprocess.run(
        [
            *pki,
            "issue",
            "store-probe",
            "--role",
            "store",
            "--out",
            str(work / "rogue"),
            "--ca-dir",
            str(work / "rogue-ca"),
        ],
        check=True,
    )
    assert not accepts(work / "rogue", "store-probe"), "a certificate of another CA"
    subprocess.run(
        [
            *pki,
            "issue",
            "store-probe",
            "--role",
            "store",
            "--out",
            str(work / "expired"),
            "--not-before",
            "2020-01-01T00:00:00+00:00",
            "--not-after",
            "2021-01-01T00:00:00+00:00",
            "--ca-dir",
            str(secrets / "ca"),
        ],
        check=True,
    )
    assert not accepts(work / "expired", "store-probe"), "an expired certificate"
    # Revoke on the controller, converge: the broker gets the new CRL and refuses it.
    subprocess.run([*pki, "revoke", "store-revoked", "--ca-dir", str(secrets / "ca")], check=True)
    deployment.play("site.yml")
    assert not accepts(certs, "store-revoked"), "a revoked certificate"
    assert accepts(certs, "store-probe")


def test_a_second_run_changes_nothing(deployment: Deployment) -> None:
    recap = deployment.play("site.yml")
    assert recap, "no play recap"
    assert {host: counts["changed"] for host, counts in recap.items()} == dict.fromkeys(recap, 0)


def _monitor(deployment: Deployment) -> tuple[MqttClient, dict[int, set[str]]]:
    """A monitor at the broker counting the node's events by seq (from this machine, over TLS)."""
    # Its own monitor identity: the playbook's status checks connect as monitor-deploy, and
    # one client id is one session (a second connection would take this one over).
    path = deployment.secrets / "monitor.yaml"
    deploy = load_config(path, MqttSettings).relative_to(path.parent)
    assert deploy.tls is not None
    certs = deployment.secrets / "certs"
    settings = deploy.model_copy(
        update={
            "username": "monitor-test",
            "tls": deploy.tls.model_copy(
                update={
                    "cert_file": certs / "monitor-test.crt",
                    "key_file": certs / "monitor-test.key",
                }
            ),
        }
    )
    seen: dict[int, set[str]] = {}
    lock = threading.Lock()

    def on_message(message: Inbound) -> None:
        batch = json.loads(message.payload)
        with lock:
            for event in batch["events"]:
                seen.setdefault(event["seq"], set()).add(event["id"])

    topics = [(f"mall/v1/{MALL}/nodes/{NODE}/{leaf}", 1) for leaf in ("presence", "footfall")]
    client = MqttClient(settings, "monitor-test", subscriptions=topics, on_message=on_message)
    client.start()
    assert client.wait_subscribed(30)
    return client, seen


def _next_release_source(workdir: Path) -> Path:
    """This checkout as release 0.1.1 (what a developer's next commit would be)."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    source = workdir / "next-release"
    for name in filter(None, files):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    for name, old, new in (
        ("pyproject.toml", 'version = "0.1.0"', 'version = "0.1.1"'),
        ("mallnet/__init__.py", '__version__ = "0.1.0"', '__version__ = "0.1.1"'),
    ):
        text = (source / name).read_text(encoding="utf-8")
        assert old in text
        (source / name).write_text(text.replace(old, new), encoding="utf-8")
    return source


def _core_db(host: Host) -> sqlite3.Connection:
    """The core's database, read-only, straight from the host's root file system."""
    path = host.root / "var/lib/mallnet-core/core.sqlite"
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


NODE_EVENTS = "FROM processed_events WHERE node = ? AND topic IN ('presence', 'footfall')"


def _core_events(host: Host) -> tuple[int, int]:
    with contextlib.closing(_core_db(host)) as db:
        total, distinct = db.execute(
            f"SELECT count(*), count(DISTINCT event_id) {NODE_EVENTS}", (NODE,)
        ).fetchone()
    return int(total), int(distinct)


def _core_ids(host: Host) -> set[str]:
    with contextlib.closing(_core_db(host)) as db:
        return {row[0] for row in db.execute(f"SELECT event_id {NODE_EVENTS}", (NODE,))}


def _outbox(host: Host) -> dict[str, int]:
    out = host.ssh("/opt/mallnet/current/bin/mallnet edge outbox --config /etc/mallnet/node.yaml")
    report: dict[str, int] = json.loads(out.stdout)
    return report


def test_rolling_update_and_rollback_keep_every_event_once(deployment: Deployment) -> None:
    host = deployment.host
    client, seen = _monitor(deployment)
    try:
        source = _next_release_source(deployment.workdir)
        deployment.play("rolling_update.yml", "-e", f"mallnet_build_source_dir={source}")
        current = host.ssh("readlink /opt/mallnet/current").stdout.strip()
        previous = host.ssh("readlink /opt/mallnet/previous").stdout.strip()
        assert current.startswith("/opt/mallnet/releases/0.1.1-"), current
        assert previous.startswith("/opt/mallnet/releases/0.1.0-"), previous
        assert _active(host, "mallnet-edge") == "active"
        # Events kept flowing: the node made some after the update, and the core has every
        # event the node ever made, each once (the outbox is drained: the playbook waited).
        made = _outbox(host)
        assert made["dropped"] == 0
        # What the broker carried from before the update until now: no gap in the node's
        # sequence, one id per seq, and every one of those events at the core (once: the
        # core's table is keyed by event id) — the replay goes on meanwhile.
        seqs = sorted(seen)
        assert seqs and seqs == list(range(seqs[0], seqs[-1] + 1))
        assert all(len(ids) == 1 for ids in seen.values()), "one id per seq"
        carried = {next(iter(seen[seq])) for seq in seqs if seq <= made["last_seq"]}
        wait_until(lambda: carried <= _core_ids(host), timeout=60, what="every event at the core")
        total, distinct = _core_events(host)
        assert total == distinct <= _outbox(host)["last_seq"]

        deployment.play("rollback.yml")
        assert host.ssh("readlink /opt/mallnet/current").stdout.strip() == previous
        assert _active(host, "mallnet-edge") == "active"
        back = _outbox(host)
        assert back["last_seq"] >= made["last_seq"] and back["dropped"] == 0
        seqs = sorted(seen)
        assert seqs == list(range(seqs[0], seqs[-1] + 1))
        assert all(len(ids) == 1 for ids in seen.values()), "one id per seq"
        carried = {next(iter(seen[seq])) for seq in seqs if seq <= back["last_seq"]}
        wait_until(lambda: carried <= _core_ids(host), timeout=60, what="every event at the core")
    finally:
        client.stop()
