"""A visit across a beacon id rotation: the node cannot link the old and the new id, so the
stay arrives as two presences, each shorter than `min_dwell_s`; the core joins them into one
visit, credited once, in whatever order and from whichever of the store's nodes they come."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cloud_core.ingest import Applier
from cloud_core.store import open_store
from edge_node.ble.config import PresenceSettings
from edge_node.ble.presence import PresenceChange, PresenceEngine
from mallnet import identity
from mallnet.ids import UuidV7Factory
from mallnet.mqtt import Inbound
from mallnet.wire import encode
from mallnet.wire.payloads import PresenceBatch, PresenceEvent
from mallnet.wire.topics import PRESENCE
from tests.cloud_core.helpers import (
    START,
    Clock,
    key_of,
    make_config,
    receipted_ids,
    receipts_collector,
    register,
    wallet,
)
from tests.conftest import MALL, wait_until

BOUNDARY = START + identity.WINDOW_S  # a rotation: the tag's id changes here
MIN_DWELL_S = 60.0  # the test configs' (tests/cloud_core/helpers.py)


def walk_across_rotation(key: bytes) -> list[PresenceChange]:
    """What a node's presence engine (default tuning: 45 s enter dwell, 40 s exit timeout)
    decides for a shopper standing next to it from 60 s before a rotation to 60 s after."""
    engine = PresenceEngine(PresenceSettings())
    for second in range(-60, 200):
        t = BOUNDARY + second
        if second < 60:
            engine.observe(t, identity.tag_id(key, identity.window_of(t)), -59, -59.0)
        engine.tick(t)
    return [d for d in engine.take() if isinstance(d, PresenceChange)]


def contract_events(changes: list[PresenceChange]) -> list[PresenceEvent]:
    ids = UuidV7Factory()
    return [
        PresenceEvent(
            id=ids(),
            seq=n,
            ts=datetime.fromtimestamp(c.t, UTC),
            kind=c.kind,  # type: ignore[arg-type]
            tag=c.tag,
            rssi=c.rssi,
            distance_m=c.distance_m,
            inside_s=c.inside_s,
        )
        for n, c in enumerate(changes, start=1)
    ]


def test_the_walk_is_two_short_presences_under_two_ids():
    changes = walk_across_rotation(key_of(1))
    assert [c.kind for c in changes] == ["enter", "exit", "enter", "exit"]
    assert len({c.tag for c in changes}) == 2
    assert all(c.inside_s < MIN_DWELL_S for c in changes)  # neither counts alone


def test_a_visit_across_a_rotation_is_credited_once_through_the_broker(
    core_config, run_core, connect, clock
):
    clock.set(BOUNDARY + 300)
    ann = register(core_config, 1, "+44 7911 123001")
    app = run_core(core_config)
    receipts, node = receipts_collector(connect, "store-1")
    events = contract_events(walk_across_rotation(key_of(1)))
    for event in events:  # as the node's outbox sends them, one batch each
        batch = PresenceBatch(node="store-1", events=(event,))
        node.publish(PRESENCE.topic(MALL, "store-1"), encode(batch)).wait(10)
    wait_until(lambda: set(receipted_ids(receipts)) == {e.id for e in events}, what="every receipt")
    assert wallet(core_config, ann) == {"bean-bar": 10}
    stats = app.consumer.stats() if app.consumer else {}
    assert (stats.get("credited"), stats.get("short")) == (1, 3)


@pytest.mark.parametrize("order", ["in-order", "new-id-first", "reversed"])
@pytest.mark.parametrize("nodes", [("store-1", "store-1"), ("store-1", "store-1b")])
def test_the_pieces_join_in_any_order_from_any_of_the_stores_nodes(tmp_path, order, nodes):
    config = make_config(tmp_path)
    ann = register(config, 1, "+44 7911 123001")
    changes = walk_across_rotation(key_of(1))
    old_tag = changes[0].tag
    messages = []
    for event in contract_events(changes):
        node = nodes[0] if event.tag == old_tag else nodes[1]
        payload = encode(PresenceBatch(node=node, events=(event,)))
        messages.append(Inbound(PRESENCE.topic(MALL, node), payload, 1, False, 0))
    if order == "new-id-first":
        messages = messages[2:] + messages[:2]
    elif order == "reversed":
        messages.reverse()
    store = open_store(config.database)
    try:
        applier = Applier(config, store, Clock(BOUNDARY + 300))
        for message in messages:
            applier.apply([message])
        applier.apply(messages)  # redelivered: nothing more
        (visits,) = store.conn.execute("SELECT COUNT(*) FROM visits").fetchone()
    finally:
        store.close()
    assert visits == 1
    assert applier.counters["credited"] == 1 and applier.counters["duplicates"] == 4
    assert wallet(config, ann) == {"bean-bar": 10}
