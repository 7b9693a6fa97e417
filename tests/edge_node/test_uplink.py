"""The uplink every edge node shares: retained status, heartbeats with a node's own fields,
topics a node adds routed to it, and the same wiring in the store and the gate node."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from edge_node.ble.app import EdgeApp
from edge_node.ble.config import load_node_config
from edge_node.camera.app import GateApp
from edge_node.camera.config import load_gate_config
from edge_node.config import HealthSettings, NodeIdentity, OutboxSettings
from edge_node.health import Snapshot
from edge_node.uplink import Uplink
from mallnet.broker import DevBroker
from mallnet.mqtt import Inbound
from mallnet.wire import decode, encode
from mallnet.wire.payloads import DeviceStatus, HealthReport, NodeConfig
from mallnet.wire.topics import HEALTH, NODE_CONFIG, STATUS
from tests.conftest import Collector, settings_for, wait_until
from tests.edge_node.helpers import gate_config, node_config

NODE = "store-uplink"


def _snapshot() -> Snapshot:
    return Snapshot(
        now=time.time(),
        adverts=10,
        events=2,
        outbox_depth=0,
        outbox_oldest_age_s=0.0,
        outbox_dropped=0,
        scanner_restarts=1,
        adapter_resets=0,
    )


def test_an_uplink_announces_itself_beats_and_routes_its_own_topics(broker, connect, tmp_path):
    seen = Collector()
    core = connect(
        "core",
        subscriptions=[(STATUS.filter(broker.mall), 1), (HEALTH.filter(broker.mall), 1)],
        on_message=seen,
    )
    pushed: list[Inbound] = []
    uplink = Uplink(
        NodeIdentity(id=NODE, mall=broker.mall),
        settings_for(broker, NODE),
        OutboxSettings(path=tmp_path / "outbox.sqlite"),
        HealthSettings(interval_s=3600),
        snapshot=_snapshot,
        health_extra=lambda: {"camera_ok": False},
        handlers={NODE_CONFIG.topic(broker.mall, NODE): pushed.append},
    )
    uplink.start()
    try:
        assert uplink.client.wait_subscribed(10)

        def decoded() -> list[object]:
            return [decode(m.topic, m.payload).message for m in list(seen.messages)]

        wait_until(
            lambda: any(isinstance(m, DeviceStatus) and m.state == "online" for m in decoded()),
            what="the online birth",
        )
        assert uplink.turn(time.monotonic(), None) is None  # no drain deadline: go on
        wait_until(lambda: any(isinstance(m, HealthReport) for m in decoded()), what="a beat")
        report = next(m for m in decoded() if isinstance(m, HealthReport))
        assert (report.node, report.camera_ok, report.scanner_restarts) == (NODE, False, 1)
        config = NodeConfig(revision=3)
        core.publish(NODE_CONFIG.topic(broker.mall, NODE), encode(config), qos=1)
        wait_until(lambda: bool(pushed), what="the node config at its handler")
        assert decode(pushed[0].topic, pushed[0].payload).message == config
        assert uplink.turn(time.monotonic(), time.monotonic() + 60) == 0  # empty outbox: drained
    finally:
        uplink.stop()
    wait_until(
        lambda: any(isinstance(m, DeviceStatus) and m.state == "offline" for m in decoded()),
        what="the offline farewell",
    )


def test_the_store_and_the_gate_node_share_one_uplink(broker: DevBroker, tmp_path: Path):
    store = load_node_config(node_config(tmp_path, broker, NODE, "unused", tmp_path / "t.jsonl"))
    gate_dir = tmp_path / "gate"
    gate_dir.mkdir()
    gate = load_gate_config(gate_config(gate_dir, broker, "unused", gate_dir))
    store_app = EdgeApp(store, wall=lambda: datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    gate_app = GateApp(gate, reader=object(), sources=[object()])  # type: ignore[arg-type, list-item]
    try:
        for app in (store_app, gate_app):
            assert isinstance(app.uplink, Uplink)
            assert (app.outbox, app.publisher, app.client) == (
                app.uplink.outbox,
                app.uplink.publisher,
                app.uplink.client,
            )
    finally:
        store_app.outbox.close()
        gate_app.outbox.close()
