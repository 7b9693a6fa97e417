"""`mallnet core …` commands: config validation, demo config, and the demo's whole path
(core run as its own process, customers registered over the API, a walk to the inbox)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from cloud_core.config import CoreConfig, load_core_config
from mallnet.broker import free_port
from mallnet.cli import main
from mallnet.wire import decode, encode
from mallnet.wire.payloads import CreditNotice
from mallnet.wire.topics import INBOX, PRESENCE
from tests.cloud_core.helpers import CORE_PASSWORD, Walker, receipted_ids, receipts_collector
from tests.conftest import MALL, Collector, wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "cloud_core" / "config.example.yaml"


def test_validate_config_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "core.yaml"
    bad.write_text(
        "mall: demo\ndatabase: core.sqlite\nmqtt:\n  port: 1883\nvisits:\n  points: -5\n"
    )
    assert main(["core", "run", "--config", str(bad), "--validate-config"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:6: visits.points: Input should be greater than or equal to 0" in err
    bad.write_text(
        "mall: demo\ndatabase: core.sqlite\nmqtt:\n  port: 1883\n"
        "stores:\n  - id: a\n    name: A\n    business: b\n    nodes: [n1]\n"
        "  - id: c\n    name: C\n    business: b\n    nodes: [n1]\n"
    )
    assert main(["core", "run", "--config", str(bad), "--validate-config"]) == 2
    assert "node 'n1' is in stores 'a' and 'c'" in capsys.readouterr().err


def test_validate_config_points_at_a_username_that_is_not_the_workers_client_id(tmp_path, capsys):
    """Each worker connects as the core identity named by its client id (issue 8.2): a config
    whose broker user differs would be refused by the broker; start-up says so first."""
    bad = tmp_path / "core.yaml"
    bad.write_text(
        "mall: demo\ndatabase: core.sqlite\nmqtt:\n  port: 1883\n  username: core\n"
        "ingest:\n  client_id: core-2\n"
    )
    assert main(["core", "run", "--config", str(bad), "--validate-config"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:5: mqtt.username: 'core' differs from ingest.client_id 'core-2'" in err
    bad.write_text("mall: demo\ndatabase: core.sqlite\nmqtt:\n  username: core-2\n")
    assert main(["core", "run", "--config", str(bad), "--validate-config"]) == 2
    assert f"{bad}:4: mqtt.username: 'core-2' differs from ingest.client_id 'core-1'" in (
        capsys.readouterr().err
    )
    # left out, the user is the client id; each connection its own bound identity
    bad.write_text("mall: demo\ndatabase: core.sqlite\nmqtt: {port: 1883}\n")
    config = load_core_config(bad)
    assert [config.connection(s) for s in ("", "-out", "-api")] == [
        (config.mqtt.model_copy(update={"username": cid}), cid)
        for cid in ("core-1", "core-1-out", "core-1-api")
    ]
    with pytest.raises(ValueError, match=r"mqtt\.username"):
        CoreConfig.model_validate(
            {"mall": "m", "database": "d", "mqtt": {"username": "x"}, "ingest": {"client_id": "y"}}
        )


def test_the_example_config_is_valid(tmp_path, monkeypatch):
    monkeypatch.setenv(
        "MALLNET_CORE_API_KEYS", "keys: [{name: o, role: admin, key: k-0123456789abcdef}]"
    )
    config = load_core_config(EXAMPLE)
    assert config.stores and config.rules_for(config.stores[0]).points > 0
    assert main(["core", "run", "--config", str(EXAMPLE), "--validate-config"]) == 0


def test_demo_config_then_core_run_credits_a_customer_registered_over_the_api(
    tmp_path, broker, core_settings, connect, core_client
):
    secret = tmp_path / "core.password"
    secret.write_text(CORE_PASSWORD)
    port = free_port()
    workdir = tmp_path / "demo"
    assert (
        main(
            [
                "core",
                "demo-config",
                "--workdir",
                str(workdir),
                "--mall",
                MALL,
                "--mqtt-port",
                str(broker.port),
                "--mqtt-password-file",
                str(secret),
                "--api-port",
                str(port),
                "--store",
                "bean-bar-l1:bean-bar:store-1:Bean Bar",
            ]
        )
        == 0
    )
    assert (workdir / "api-keys.yaml").stat().st_mode & 0o077 == 0
    admin = (workdir / "admin.key").read_text().strip()
    config = yaml.safe_load((workdir / "core.yaml").read_text())
    assert CORE_PASSWORD not in (workdir / "core.yaml").read_text()
    assert config["api"]["port"] == port

    inbox = Collector()
    core_client("inbox-watch", subscriptions=[(INBOX.filter(MALL), 1)], on_message=inbox)
    log = (tmp_path / "core.log").open("wb")
    core = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mallnet.cli",
            "core",
            "run",
            "--config",
            str(workdir / "core.yaml"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": admin}, timeout=5
        ) as api:

            def up() -> bool:
                assert core.poll() is None, (tmp_path / "core.log").read_text()
                try:
                    return api.get("/health").status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(up, timeout=30, what="the core's API")
            customer = api.post("/customers", json={"phone": "+44 7911 123001"}).json()["id"]
            key = api.post(f"/customers/{customer}/beacon-keys", json={}).json()["key"]

            receipts, node = receipts_collector(connect, "store-1")
            walker = Walker("store-1")
            event = walker.event(bytes.fromhex(key), time.time(), "dwell", 60.0)

            def credited() -> bool:
                if not inbox.messages:
                    node.publish(PRESENCE.topic(MALL, "store-1"), encode(walker.batch([event])))
                    return False
                return True

            wait_until(credited, timeout=30, what="the credit notice")
            notice = decode(inbox.messages[0].topic, inbox.messages[0].payload).message
            assert isinstance(notice, CreditNotice) and notice.text == "+10 points at Bean Bar"
            assert inbox.messages[0].topic == INBOX.topic(MALL, customer)
            wait_until(lambda: event.id in receipted_ids(receipts), what="the receipt")
            wallet = api.get(f"/customers/{customer}/wallet").json()
            assert wallet["pockets"] == [
                {"pocket": "bean-bar", "balance": 10, "available": 10, "next_expiry": None}
            ]
    finally:
        core.send_signal(signal.SIGTERM)
        code = core.wait(20)
        log.close()
    assert code == 0, (tmp_path / "core.log").read_text()
