"""Nodes on a mall's broker, the core on the platform's, a real Mosquitto bridge between.

Two real Mosquitto processes from our config (the test's broker is the platform; the mall
broker bridges to it, ``mallnet.bridge``), real store nodes (``EdgeApp`` on replayed traces)
on the mall broker and the real core on the platform: the contract, receipts, pushed node
configs and inbox notices work unchanged across the bridge, and either broker killed
(-9) mid-stream loses nothing and counts nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from cloud_core.store import open_store
from edge_node.ble.app import EdgeApp
from edge_node.ble.config import load_node_config
from edge_node.outbox import Outbox
from mallnet.bridge import bridge_id
from mallnet.broker import DevBroker
from mallnet.config import MqttSettings
from mallnet.mqtt import MqttClient, PublishTicket
from mallnet.wire import decode
from mallnet.wire.payloads import CreditNotice, FootfallBatch, OfferNotice, PresenceBatch
from mallnet.wire.topics import INBOX
from tests.cloud_core.helpers import STORES, add_campaign, make_config, register, wallet
from tests.conftest import MALL, Collector, settings_for, wait_until
from tests.edge_node.helpers import T0, AppThread, browse_trace, node_config

log = logging.getLogger(__name__)

NODES = ("store-1", "store-2")  # Bean Bar and Shoe Hub in the core's config
SHOPPERS = 12


@pytest.fixture
def mall_broker(tmp_path: Path, broker: DevBroker) -> Iterator[DevBroker]:
    """The mall's own broker, bridged to the platform (the test's ``broker``)."""
    user = bridge_id(MALL)
    remote = MqttSettings(port=broker.port, username=user, password=broker.add_user(user))
    mall = DevBroker(tmp_path / "mall-broker", mall=MALL, bridge=remote)
    mall.start()
    try:
        yield mall
    finally:
        mall.kill()


class Recording:
    """The node's transport seam: records every event id it publishes."""

    def __init__(self, app: EdgeApp) -> None:
        self.inner = app.client
        self.events: set[str] = set()

    @property
    def connected(self) -> bool:
        return self.inner.connected

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> PublishTicket:
        message = decode(topic, payload).message
        if isinstance(message, PresenceBatch | FootfallBatch):
            self.events.update(e.id for e in message.events)
        return self.inner.publish(topic, payload, qos, retain)


def _node(
    tmp_path: Path, mall: DevBroker, node: str, seed: int, *, speed: float, receipt_s: float
) -> tuple[EdgeApp, Recording]:
    trace = tmp_path / f"{node}.jsonl"
    browse_trace(trace, shoppers=SHOPPERS, stagger=15, seed=seed)
    password = mall.add_user(node)
    path = node_config(
        tmp_path, mall, node, password, trace, speed=speed, receipt_timeout_s=receipt_s
    )
    data = yaml.safe_load(path.read_text())
    data["source"]["drain_timeout_s"] = 3600  # the test's own timeout decides
    path.write_text(yaml.safe_dump(data))
    app = EdgeApp(load_node_config(path))
    recording = Recording(app)
    app.publisher.transport = recording
    return app, recording


def _rows(config, sql: str) -> list[tuple[object, ...]]:
    store = open_store(config.database)
    try:
        with store.read() as conn:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
    finally:
        store.close()


def _processed(config) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    sql = "SELECT event_id, node FROM processed_events WHERE topic NOT LIKE '%health'"
    for event_id, node in _rows(config, sql):
        out.setdefault(str(node), []).append(str(event_id))
    return out


def _drained(tmp_path: Path, node: str) -> int:
    box = Outbox(tmp_path / f"{node}.outbox.sqlite")
    try:
        return box.depth
    finally:
        box.close()


def _inbox_watch(broker: DevBroker, user: str) -> tuple[Collector, MqttClient]:
    collector = Collector()
    client = MqttClient(
        settings_for(broker, user),
        user,
        subscriptions=[(INBOX.filter(MALL), 1)],
        on_message=collector,
    )
    client.start()
    assert client.wait_subscribed(10)
    return collector, client


def _notice_ids(collector: Collector) -> list[str]:
    ids = []
    for message in list(collector.messages):
        notice = decode(message.topic, message.payload).message
        assert isinstance(notice, CreditNotice | OfferNotice)
        ids.append(f"{message.topic}:{notice.id}")
    return ids


def test_nodes_behind_a_bridge_get_receipts_configs_and_notices_unchanged(
    tmp_path, broker, mall_broker, core_settings, *, run_core, clock
):
    stores = [dict(s) for s in STORES]
    stores[0]["node_tuning"] = {"radius_m": 6.0}  # pushed, retained, to store-1
    config = make_config(tmp_path, core_settings, stores=stores)
    customers = [register(config, n, f"+44 7911 1230{n:02d}") for n in range(1, SHOPPERS + 1)]
    at = datetime.fromtimestamp(T0, UTC)
    add_campaign(config, starts_at=at - timedelta(days=1), ends_at=at + timedelta(days=7))
    clock.set(T0 + 600)  # the traces' time
    on_mall, mall_client = _inbox_watch(mall_broker, "monitor-mall")
    on_platform, platform_client = _inbox_watch(broker, "monitor-platform")
    run_core(config)
    # receipts are the nodes' only way to empty their outboxes: no timeout resend here
    app, recording = _node(tmp_path, mall_broker, "store-1", 0, speed=0, receipt_s=3600)
    thread = AppThread(app).start()
    try:
        wait_until(lambda: thread.code is not None, 60, "the node drained by receipts")
    finally:
        app.request_stop()
        code = thread.join()
    try:
        assert code == 0 and _drained(tmp_path, "store-1") == 0
        assert app.publisher.stats.receipted == len(recording.events) > 0
        assert app.publisher.stats.republish_rounds == 0  # every receipt came back
        assert sorted(_processed(config)["store-1"]) == sorted(recording.events)
        assert app.config_revision >= 0  # the core's retained node config, via the bridge
        pending = "SELECT COUNT(*) FROM pending_notices"
        wait_until(lambda: _rows(config, pending) == [(0,)], 30, "the notices sent and acked")
        sent = _notice_ids(on_platform)
        wait_until(lambda: len(on_mall.messages) >= len(sent), 30, "the notices bridged")
        assert sorted(_notice_ids(on_mall)) == sorted(sent)  # the same notices, same ids
        notices = [decode(m.topic, m.payload).message for m in on_mall.messages]
        credits = [n for n in notices if isinstance(n, CreditNotice)]
        offers = [n for n in notices if isinstance(n, OfferNotice)]
        assert credits and offers
        balances = sum(sum(wallet(config, c).values()) for c in customers)
        assert balances == sum(n.points for n in credits)
    finally:
        mall_client.stop()
        platform_client.stop()


@pytest.mark.parametrize("victim", ["platform", "mall"])
def test_a_broker_killed_mid_stream_loses_nothing_and_counts_nothing_twice(
    tmp_path, broker, mall_broker, core_settings, *, run_core, clock, victim
):
    """The platform's broker, or the mall's, dies (kill -9) while the nodes stream: what it had
    taken but not saved is gone, so the nodes send it again (after their reconnect, or for want
    of a receipt); the bridge's persistent session on both sides and the core's exactly-once
    claims do the rest. No cooldown and no daily cap: only the exactly-once machinery stands
    between a redelivery and a second credit."""
    visits = {"points": 10, "min_dwell_s": 60, "cooldown_s": 0, "daily_cap": 100_000}
    config = make_config(tmp_path, core_settings, visits=visits)
    customers = [register(config, n, f"+44 7911 1230{n:02d}") for n in range(1, SHOPPERS + 1)]
    clock.set(T0 + 600)  # the traces' time
    run_core(config)
    nodes = [
        _node(tmp_path, mall_broker, node, seed, speed=40, receipt_s=2)
        for seed, node in enumerate(NODES)
    ]
    threads = [AppThread(app).start() for app, _ in nodes]
    try:
        wait_until(
            lambda: all(app.publisher.stats.receipted >= 1 for app, _ in nodes),
            30,
            "each node's first receipt through the bridge",
        )
        assert all(t.code is None for t in threads), "the stream ended before the kill"
        dying = broker if victim == "platform" else mall_broker
        dying.kill()  # kill -9, mid-stream
        dying.start()
        wait_until(
            lambda: all(t.code is not None for t in threads),
            150,
            "every node drained (receipted by the core) and finished",
        )
    finally:
        for app, _ in nodes:
            app.request_stop()
        codes = [t.join() for t in threads]
    log.warning(
        "republish rounds per node after the %s broker's kill -9: %s",
        victim,
        [app.publisher.stats.republish_rounds for app, _ in nodes],
    )
    assert codes == [0, 0]
    processed = _processed(config)
    for (_app, recording), node in zip(nodes, NODES, strict=True):
        assert _drained(tmp_path, node) == 0
        # each event the node made is applied exactly once (processed_events is keyed by id)
        assert sorted(processed[node]) == sorted(recording.events)
    twice = "SELECT idem_key FROM journal GROUP BY idem_key HAVING COUNT(*) > 1"
    assert _rows(config, twice) == []  # no grant made twice
    [(count, points)] = _rows(config, "SELECT COUNT(*), SUM(delta) FROM journal")
    balances = sum(sum(wallet(config, c).values()) for c in customers)  # invariants hold too
    assert count != 0 and balances == points
