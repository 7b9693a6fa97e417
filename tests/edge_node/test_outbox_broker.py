"""The outbox through a real Mosquitto and a committing stub core, under failures.

Every scenario ends with the same proof: the core stub's store holds each event
exactly once by id (a UNIQUE key, as the core's ledger has), the node's ``seq``
values are exactly 1..N with N the node's persisted last seq (nothing lost, and
seq survived restarts), and their first arrivals are in seq order.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from edge_node.ble.app import EdgeApp
from edge_node.ble.config import load_node_config
from edge_node.outbox import Outbox
from mallnet.broker import DevBroker
from mallnet.mqtt import MqttClient, PublishTicket
from mallnet.wire.topics import STATUS
from tests.conftest import Collector, settings_for, wait_until
from tests.edge_node.core_stub import CoreStub
from tests.edge_node.helpers import AppThread, browse_trace, node_config

NODE = "store-a"


def assert_all_once_in_order(core: CoreStub, last_seq: int) -> None:
    rows = core.rows(NODE)
    ids = [r[0] for r in rows]
    seqs = [r[2] for r in rows]
    assert len(ids) == len(set(ids))
    assert seqs == list(range(1, last_seq + 1)), f"missing or out of order: {seqs}"


def _last_seq(outbox_path: Path) -> tuple[int, int]:
    """(last seq, waiting events) read from the node's outbox file."""
    box = Outbox(outbox_path)
    try:
        return box.last_seq, box.depth
    finally:
        box.close()


def test_broker_stopped_for_a_while_then_restarted(broker: DevBroker, tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    browse_trace(trace, shoppers=8, stagger=25)
    password = broker.add_user(NODE)
    core = CoreStub(tmp_path / "core.sqlite", settings_for(broker, "core"), broker.mall)
    core.start()
    config = load_node_config(node_config(tmp_path, broker, NODE, password, trace, speed=80))
    node = AppThread(EdgeApp(config)).start()
    try:
        wait_until(lambda: core.count() >= 3, 30, "first events at the core")
        broker.stop()
        made_before = _made(config.outbox.path)
        wait_until(lambda: _made(config.outbox.path) >= made_before + 5, 30, "events while down")
        broker.start()
        assert node.join() == 0
    finally:
        core.stop()
    last_seq, waiting = _last_seq(config.outbox.path)
    assert waiting == 0 and last_seq >= made_before + 5
    assert node.app.client.counters.connects >= 2  # it did lose the broker and come back
    assert_all_once_in_order(core, last_seq)
    core.close()


def _made(path: Path) -> int:
    """The node's last seq, read through a connection of our own (the node's is its loop's)."""
    conn = sqlite3.connect(str(path))
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
        return 0 if row is None else int(row[0]) - 1
    except sqlite3.OperationalError:  # not created yet
        return 0
    finally:
        conn.close()


def _spawn(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # the node as a real process, as systemd runs it
        [sys.executable, "-m", "mallnet.cli", "edge", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _outbox_rows(path: Path) -> int:
    if not path.exists():
        return 0
    conn = sqlite3.connect(str(path))
    try:
        (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
        return int(count)
    except sqlite3.OperationalError:  # not created yet
        return 0
    finally:
        conn.close()


def test_node_killed_mid_stream_then_restarted(broker: DevBroker, tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    browse_trace(trace, shoppers=8, stagger=25)
    password = broker.add_user(NODE)
    core_settings = settings_for(broker, "core")
    core = CoreStub(tmp_path / "core.sqlite", core_settings, broker.mall)
    core.start()
    path = node_config(tmp_path, broker, NODE, password, trace, speed=60)
    outbox_path = tmp_path / f"{NODE}.outbox.sqlite"
    statuses = Collector()
    status_watch = MqttClient(
        settings_for(broker, "monitor-status-watch"),  # a read-only observer of its own
        "monitor-status-watch",
        subscriptions=[(STATUS.topic(broker.mall, NODE), 1)],
        on_message=statuses,
    )
    status_watch.start()
    assert status_watch.wait_subscribed(10)
    proc = _spawn(path)
    try:
        wait_until(lambda: core.count() >= 3, 60, "first events at the core")
        core.stop()  # the core goes away: the node's backlog grows unreceipted
        wait_until(lambda: _outbox_rows(outbox_path) >= 3, 60, "a backlog in the outbox")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        assert proc.stderr is not None
        proc.stderr.close()
    # the broker published the node's Last Will: retained `offline`
    wait_until(
        lambda: bool(statuses.messages) and b'"offline"' in statuses.messages[-1].payload,
        10,
        "the Last Will",
    )
    status_watch.stop()
    waiting_at_kill = _outbox_rows(outbox_path)
    assert waiting_at_kill >= 3
    core = CoreStub(tmp_path / "core.sqlite", core_settings, broker.mall)
    core.start()
    proc = _spawn(path)  # replays the trace again: new events, seq continues
    try:
        _out, err = proc.communicate(timeout=120)
    finally:
        core.stop()
    assert proc.returncode == 0, err.decode()[-3000:]
    last_seq, waiting = _last_seq(outbox_path)
    assert waiting == 0
    assert_all_once_in_order(core, last_seq)
    core.close()


class AckWatch:
    """The node's transport seam, recording the broker's PUBACK tickets."""

    def __init__(self, inner: EdgeApp) -> None:
        self.inner = inner.client
        self.tickets: list[PublishTicket] = []

    @property
    def connected(self) -> bool:
        return self.inner.connected

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> PublishTicket:
        ticket = self.inner.publish(topic, payload, qos, retain)
        self.tickets.append(ticket)
        return ticket


def test_broker_killed_right_after_acknowledging(broker: DevBroker, tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    browse_trace(trace, shoppers=3)
    password = broker.add_user(NODE)
    core_settings = settings_for(broker, "core")
    core = CoreStub(tmp_path / "core.sqlite", core_settings, broker.mall)
    core.start()
    core.stop()  # its persistent session stays: the broker queues events for it
    config = load_node_config(node_config(tmp_path, broker, NODE, password, trace, speed=0))
    app = EdgeApp(config)
    watch = AckWatch(app)
    app.publisher.transport = watch
    node = AppThread(app).start()
    wait_until(lambda: any(t.done for t in watch.tickets), 30, "a PUBACK")
    broker.kill()  # kill -9: what it acknowledged since its last autosave is gone
    acked = sum(1 for t in watch.tickets if t.done)
    assert acked >= 1
    broker.start()
    core = CoreStub(tmp_path / "core.sqlite", core_settings, broker.mall)
    core.start()
    try:
        assert node.join() == 0
    finally:
        core.stop()
    last_seq, waiting = _last_seq(config.outbox.path)
    assert waiting == 0 and last_seq >= 6
    assert_all_once_in_order(core, last_seq)
    core.close()
