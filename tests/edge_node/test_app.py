"""The node in-process against a real broker and a committing core stub."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge_node.app import EdgeApp
from edge_node.config import load_node_config
from mallnet.broker import DevBroker
from mallnet.mqtt import MqttClient
from mallnet.wire import decode
from mallnet.wire.payloads import DeviceStatus, HealthReport
from mallnet.wire.topics import HEALTH, STATUS
from tests.conftest import Collector, settings_for, wait_until
from tests.edge_node.core_stub import CoreStub
from tests.edge_node.helpers import browse_trace, node_config


def test_replayed_trace_reaches_the_core_in_order_and_the_outbox_drains(
    broker: DevBroker, tmp_path: Path
) -> None:
    trace = tmp_path / "trace.jsonl"
    browse_trace(trace, shoppers=4)
    password = broker.add_user("store-a")
    core_settings = settings_for(broker, "core")
    core = CoreStub(tmp_path / "core.sqlite", core_settings, broker.mall)
    core.start()
    watcher = Collector()
    watch = MqttClient(
        core_settings,
        "watcher",
        subscriptions=[(STATUS.filter(broker.mall), 1), (HEALTH.filter(broker.mall), 0)],
        on_message=watcher,
    )
    watch.start()
    assert watch.wait_connected(10)
    config = load_node_config(node_config(tmp_path, broker, "store-a", password, trace))
    app = EdgeApp(config)
    try:
        assert asyncio.run(app.run()) == 0
        wait_until(lambda: any(b'"offline"' in m.payload for m in watcher.messages), what="offline")
    finally:
        core.stop()
        watch.stop()
    rows = core.rows("store-a")
    core.close()
    seqs = [seq for _id, _node, seq, _leaf in rows]
    assert seqs == list(range(1, len(seqs) + 1))
    leaves = [leaf for *_rest, leaf in rows]
    presence = [r for r in rows if r[3] == "presence"]
    assert len(presence) >= 8 and "footfall" in leaves
    assert core.duplicates == 0
    statuses = [
        decode(m.topic, m.payload).message for m in watcher.messages if m.topic.endswith("status")
    ]
    assert [s.state for s in statuses if isinstance(s, DeviceStatus)][-2:] == [
        "online",
        "offline",
    ]
    health = [
        decode(m.topic, m.payload).message for m in watcher.messages if m.topic.endswith("health")
    ]
    assert health and all(isinstance(h, HealthReport) for h in health)
