"""Failures are loud: a missing broker is logged (host, port, reason), ``/ready`` answers
503 with the reason until the broker is back, and the core's retained status says
``online`` and, through its Last Will, ``offline`` when it is killed."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import httpx
import yaml

from cloud_core.app import CoreApp
from mallnet.broker import free_port
from mallnet.mqtt import FailureLog, MqttClient
from mallnet.wire import decode
from mallnet.wire.payloads import DeviceStatus
from mallnet.wire.topics import CORE_STATUS
from tests.cloud_core.core_process import start_core, write_config
from tests.cloud_core.helpers import Clock, make_config
from tests.conftest import MALL, Collector, wait_until
from tests.edge_node.helpers import browse_trace, node_config

ADMIN = {"name": "office", "role": "admin", "key": "k-admin-0123456789abcdef"}


def _api_config(tmp_path: Path, core_settings, **overrides):
    keys = tmp_path / "api-keys.yaml"
    keys.write_text(yaml.safe_dump({"keys": [ADMIN]}))
    port = free_port()
    config = make_config(
        tmp_path, core_settings, api={"port": port, "keys_file": str(keys)}, **overrides
    )
    return config, f"http://127.0.0.1:{port}"


def _ready(url: str) -> httpx.Response:
    return httpx.get(f"{url}/ready", timeout=10)


def test_ready_is_503_with_the_reason_until_the_broker_is_up(
    tmp_path, broker, core_settings, caplog
):
    config, url = _api_config(tmp_path, core_settings)
    broker.stop()
    app = CoreApp(config, clock=Clock())  # ingest and API in one process
    caplog.set_level(logging.INFO)
    app.start()
    try:
        answer = _ready(url)
        assert answer.status_code == 503
        body = answer.json()  # a problem (RFC 9457) with the reasons
        assert answer.headers["content-type"] == "application/problem+json"
        assert body["status"] == 503 and body["title"] == "Service Unavailable"
        assert any(
            r.startswith("ingest not connected to the broker:") and "Connection" in r
            for r in body["reasons"]
        ), body
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200  # alive, not ready
        # the failed attempts were logged, with where and why
        where = f"{core_settings.host}:{core_settings.port}"
        wait_until(
            lambda: any(
                where in r.getMessage() and "ConnectionRefusedError" in r.getMessage()
                for r in caplog.records
                if r.levelno == logging.WARNING and r.name == "mallnet.mqtt"
            ),
            what="a logged failed connection",
        )
        broker.start()
        wait_until(lambda: _ready(url).status_code == 200, 30, "/ready to answer 200")
        assert _ready(url).json() == {"status": "ready", "mall": MALL, "reasons": []}
    finally:
        app.stop()


def test_an_api_apart_from_ingest_is_ready_while_a_worker_says_online(
    tmp_path, broker, core_settings
):
    config, url = _api_config(tmp_path, core_settings)
    api = CoreApp(config, only="api", clock=Clock())
    api.start()
    try:
        answer = _ready(url)
        assert answer.status_code == 503
        wait_until(
            lambda: any("no ingest worker online" in r for r in _ready(url).json()["reasons"]),
            what="the API to see no worker's status",
        )
        ingest = CoreApp(config, only="ingest", clock=Clock())
        ingest.start()
        try:
            wait_until(lambda: _ready(url).status_code == 200, 30, "/ready 200 (worker online)")
        finally:
            ingest.stop()  # a clean stop publishes the retained `offline`
        wait_until(lambda: _ready(url).status_code == 503, 30, "/ready 503 (worker offline)")
        assert "core-1=offline" in " ".join(_ready(url).json()["reasons"])
    finally:
        api.stop()


def test_the_core_status_is_retained_online_and_its_last_will_says_offline(
    tmp_path, broker, core_settings, core_client
):
    config_path = write_config(tmp_path, broker)
    worker = yaml.safe_load(config_path.read_text())["ingest"]["client_id"]
    log = tmp_path / "core.log"
    core = start_core(config_path, log)
    try:
        statuses = Collector()

        def state() -> str | None:
            if not statuses.messages:
                return None
            message = statuses.messages[-1]
            status = decode(message.topic, message.payload).message
            assert isinstance(status, DeviceStatus) and status.device == worker
            return status.state

        watch: MqttClient = core_client(
            "status-watch",
            subscriptions=[(CORE_STATUS.topic(MALL, worker), 1)],
            on_message=statuses,
        )
        wait_until(lambda: state() == "online", 30, "the core's retained `online`")
        os.kill(core.pid, signal.SIGKILL)
        core.wait(10)
        wait_until(lambda: state() == "offline", 30, "the core's Last Will `offline`")
        watch.stop()
        # retained: a client arriving later learns it at once
        late = Collector()
        core_client(
            "late-watch", subscriptions=[(CORE_STATUS.topic(MALL, worker), 1)], on_message=late
        )
        (message,) = late.wait_for(1)
        assert message.retain and b'"offline"' in message.payload
    finally:
        if core.poll() is None:
            core.kill()
            core.wait(10)


def test_a_node_and_the_core_log_failed_connections_with_host_port_and_reason(tmp_path, broker):
    node = "store-1"
    trace = tmp_path / "trace.jsonl"
    browse_trace(trace, shoppers=2)
    node_path = node_config(tmp_path, broker, node, broker.add_user(node), trace, at_end="idle")
    core_path = write_config(tmp_path, broker)
    broker.stop()
    where = f"127.0.0.1:{broker.port}"
    node_log, core_log = tmp_path / "node.log", tmp_path / "core.log"
    core = start_core(core_path, core_log)
    with node_log.open("wb") as out:
        edge = subprocess.Popen(  # the node as systemd runs it
            [sys.executable, "-m", "mallnet.cli", "edge", "run", "--config", str(node_path)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def logged_failure(path: Path) -> bool:
        return any(
            "WARNING" in line
            and f"cannot connect to broker {where}" in line
            and "ConnectionRefusedError" in line
            for line in path.read_text().splitlines()
        )

    try:
        for path in (node_log, core_log):
            wait_until(partial(logged_failure, path), 30, f"a failed connection in {path.name}")
        broker.start()
        for path in (node_log, core_log):
            wait_until(
                partial(lambda p: "failed attempts" in p.read_text(), path),
                30,
                f"the recovery in {path.name}",
            )
        text = node_log.read_text()
        # rate-limited: far fewer lines than attempts (at most the first, then one per 30 s)
        assert text.count(f"cannot connect to broker {where}") == 1, text
    finally:
        for proc in (core, edge):
            proc.send_signal(signal.SIGTERM)
        for proc in (core, edge):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def test_failed_connections_are_logged_first_then_at_most_once_per_interval(caplog):
    caplog.set_level(logging.INFO, logger="mallnet.mqtt")
    failures = FailureLog("broker mqtt.example:8883 as store-1", interval_s=30)
    refused = "ConnectionRefusedError: [Errno 111] Connection refused"
    assert failures.failed(refused, 100.0)
    assert not any(failures.failed(refused, 100.0 + t) for t in range(1, 30))
    assert failures.failed(refused, 130.0)  # 30 s later: one line, counted
    assert failures.failed("broker refused the connection: Not authorized (135)", 130.5)
    failures.recovered(131.0)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "cannot connect to broker mqtt.example:8883 as store-1: ConnectionRefusedError: "
        "[Errno 111] Connection refused; retrying with backoff",
        "still cannot connect to broker mqtt.example:8883 as store-1: ConnectionRefusedError: "
        "[Errno 111] Connection refused (30 failed attempts in 30s)",
        # a new reason is logged at once
        "still cannot connect to broker mqtt.example:8883 as store-1: broker refused the "
        "connection: Not authorized (135) (1 failed attempts in 0s)",
        "connected to broker mqtt.example:8883 as store-1 after 32 failed attempts in 31.0s",
    ]
    assert [r.levelname for r in caplog.records] == ["WARNING", "WARNING", "WARNING", "INFO"]
