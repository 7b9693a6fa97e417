"""The node in-process against a real broker and a committing core stub."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge_node.ble.app import EdgeApp
from edge_node.ble.config import load_node_config
from edge_node.outbox import Outbox
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
        settings_for(broker, "monitor-watcher"),  # read-only observer, its own identity
        "monitor-watcher",
        subscriptions=[(STATUS.filter(broker.mall), 1), (HEALTH.filter(broker.mall), 0)],
        on_message=watcher,
    )
    watch.start()
    assert watch.wait_subscribed(10)
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
    counted = app.counters()
    assert counted["events"] == len(rows) and counted["invalid_events"] == 0
    assert counted["program_frames"] == counted["adverts"] > 0
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


def test_core_tuning_heartbeat_and_clean_stop(broker: DevBroker, tmp_path: Path) -> None:
    import threading
    from datetime import UTC, datetime

    import yaml

    from mallnet.wire import encode
    from mallnet.wire.payloads import NodeConfig, PresenceTuning
    from mallnet.wire.topics import NODE_CONFIG

    trace = tmp_path / "trace.jsonl"
    browse_trace(trace, shoppers=1)
    password = broker.add_user("store-a")
    core_settings = settings_for(broker, "core")
    thermal = tmp_path / "temp"
    thermal.write_text("51000\n")
    path = node_config(tmp_path, broker, "store-a", password, trace, at_end="idle")
    data = yaml.safe_load(path.read_text())
    data["health"]["thermal_zone"] = str(thermal)
    path.write_text(yaml.safe_dump(data))

    watcher = Collector()
    core = MqttClient(
        core_settings, "core", subscriptions=[(HEALTH.filter(broker.mall), 0)], on_message=watcher
    )
    core.start()
    assert core.wait_subscribed(10)
    topic = NODE_CONFIG.topic(broker.mall, "store-a")
    tuning = NodeConfig(revision=3, presence=PresenceTuning(radius_m=2.0, rx_adjust_db=-2))
    core.publish(topic, encode(tuning), retain=True).wait(10)  # retained: read on connect

    app = EdgeApp(load_node_config(path))
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(asyncio.run(app.run())), daemon=True)
    thread.start()
    try:
        wait_until(lambda: app.config_revision == 3, what="tuning applied")
        assert (app.engine.settings.radius_m, app.engine.settings.rx_adjust_db) == (2.0, -2)
        core.publish(topic, encode(NodeConfig(revision=2, presence=None))).wait(10)  # older
        core.publish(topic, b'{"v": 1, "revision": "x"}').wait(10)  # malformed
        core.publish(topic, b"\xff not json").wait(10)  # not even JSON
        # valid on the wire, but below the node's own 1 s floor for dwell reports
        unusable = NodeConfig(revision=5, presence=PresenceTuning(dwell_report_s=0.5))
        core.publish(topic, encode(unusable)).wait(10)
        core.publish(topic, encode(NodeConfig(revision=4, presence=PresenceTuning()))).wait(10)
        wait_until(lambda: app.config_revision == 4, what="newer tuning applied")
        assert app.engine.settings.radius_m == 4.0  # an empty tuning restores the file config
        assert app.engine.settings.dwell_report_s == app.config.presence.dwell_report_s  # 5 refused
        counted = app.counters()
        assert (counted["rejected_configs"], counted["config_revision"]) == (3, 4)

        def reports() -> list[HealthReport]:
            out = []
            for m in watcher.messages:
                message = decode(m.topic, m.payload).message
                assert isinstance(message, HealthReport)
                out.append(message)
            return out

        wait_until(lambda: any(r.adverts_per_s > 0 for r in reports()), what="a busy heartbeat")
        report = reports()[-1]
        assert report.cpu_temp_c == 51.0 and report.load_1m is not None
        assert report.node == "store-a" and report.outbox_dropped == 0
        assert report.ts <= datetime.now(UTC)
        seqs = [r.seq for r in reports()]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    finally:
        app.request_stop()
        thread.join(30)
        core.stop()
    assert codes == [0]


def test_sigterm_stops_the_node_process_cleanly(broker: DevBroker, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    trace = tmp_path / "trace.jsonl"
    browse_trace(trace, shoppers=1)
    password = broker.add_user("store-a")
    path = node_config(tmp_path, broker, "store-a", password, trace, at_end="idle")
    statuses = Collector()
    watch = MqttClient(
        settings_for(broker, "monitor-status-watch"),
        "monitor-status-watch",
        subscriptions=[(STATUS.topic(broker.mall, "store-a"), 1)],
        on_message=statuses,
    )
    watch.start()
    assert watch.wait_subscribed(10)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mallnet.cli", "edge", "run", "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: any(b'"online"' in m.payload for m in statuses.messages), 30, "online")
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()[-2000:]
        wait_until(lambda: b'"offline"' in statuses.messages[-1].payload, 10, "offline")
        late = Collector()  # a client arriving later reads the retained status
        watch.stop()
        watch = MqttClient(
            settings_for(broker, "monitor-status-late"),
            "monitor-status-late",
            subscriptions=[(STATUS.topic(broker.mall, "store-a"), 1)],
            on_message=late,
        )
        watch.start()
        (retained,) = late.wait_for(1)
        assert retained.retain and b'"offline"' in retained.payload
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
        watch.stop()


def test_a_full_outbox_drops_oldest_first_and_the_heartbeat_reports_it(
    broker: DevBroker, tmp_path: Path
) -> None:
    import threading

    trace = tmp_path / "trace.jsonl"
    browse_trace(trace, shoppers=6)
    password = broker.add_user("store-a")
    path = node_config(tmp_path, broker, "store-a", password, trace, at_end="idle", max_events=10)
    watcher = Collector()
    watch = MqttClient(
        settings_for(broker, "monitor-watcher"),
        "monitor-watcher",
        subscriptions=[(HEALTH.filter(broker.mall), 0)],
        on_message=watcher,
    )
    watch.start()
    assert watch.wait_subscribed(10)
    app = EdgeApp(load_node_config(path))  # no core: nothing is ever receipted
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(asyncio.run(app.run())), daemon=True)
    thread.start()

    def dropped() -> int:
        reports = [decode(m.topic, m.payload).message for m in watcher.messages]
        return max((r.outbox_dropped for r in reports if isinstance(r, HealthReport)), default=0)

    try:
        wait_until(lambda: dropped() > 0, 30, "a heartbeat reporting drops")
    finally:
        app.request_stop()
        thread.join(30)
        watch.stop()
    assert codes == [0]
    box = Outbox(tmp_path / "store-a.outbox.sqlite")
    try:
        seqs = [row[0] for row in box.db.execute("SELECT seq FROM events ORDER BY seq")]
        assert box.depth == 10 and box.dropped == box.last_seq - 10 > 0
        assert seqs == list(range(box.dropped + 1, box.last_seq + 1))  # the oldest went first
    finally:
        box.close()
