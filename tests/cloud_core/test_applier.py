"""The ingest logic at its seam (``Applier``): outcomes that need no broker."""

from __future__ import annotations

import pytest

from cloud_core import customers
from cloud_core.ingest import Applier
from cloud_core.store import open_store
from mallnet.mqtt import Inbound
from mallnet.wire import decode, encode
from mallnet.wire.payloads import PresenceBatch
from mallnet.wire.topics import FOOTFALL, HEALTH
from tests.cloud_core.helpers import (
    BASE,
    START,
    BrokenResolver,
    Clock,
    Walker,
    footfall,
    health,
    key_of,
    make_config,
    message,
)
from tests.conftest import MALL

BOTH_BACKENDS = True  # every test here runs on SQLite and on PostgreSQL (conftest.py)


@pytest.fixture
def setup(tmp_path, database):
    config = make_config(tmp_path, database=database)
    store = open_store(config.database)
    with store.transaction() as conn:
        customer, _ = customers.register_customer(conn, "+44 7911 123001", default_region="GB")
        customers.attach_beacon_key(conn, customer, key_of(1).hex())
    yield config, store, customer
    store.close()


def points(store, customer: str) -> int:
    (total,) = store.conn.execute(
        "SELECT COALESCE(SUM(delta), 0) FROM journal WHERE customer_id = ?", (customer,)
    ).fetchone()
    return int(total)


def test_stale_and_unknown_events_credit_nothing(setup):
    config, store, customer = setup
    clock = Clock(START + 3 * 86400)  # events from 3 days ago: older than max_event_age_s
    applier = Applier(config, store, clock)
    walker = Walker("store-1")
    applier.apply([message(walker, walker.event(key_of(1), START), walker.event(key_of(9), START))])
    assert applier.counters["stale"] == 2 and points(store, customer) == 0
    clock.set(START + 10)
    applier.apply([message(walker, walker.event(key_of(9), START))])  # nobody's key
    assert applier.counters["unknown_tag"] == 1 and points(store, customer) == 0


def test_a_key_attached_while_running_is_picked_up(setup, tmp_path):
    config, store, _ = setup
    clock = Clock(START + 10)
    applier = Applier(config, store, clock)
    walker = Walker("store-1")
    applier.apply([message(walker, walker.event(key_of(2), START))])
    assert applier.counters["unknown_tag"] == 1
    with store.transaction() as conn:
        bob, _ = customers.register_customer(conn, "+44 7911 123002", default_region="GB")
        customers.attach_beacon_key(conn, bob, key_of(2).hex())
    applier.apply([message(walker, walker.event(key_of(2), START + 5))])
    assert points(store, bob) == 10
    assert applier.resolver.full_loads == 1  # the new key was added, nothing reloaded
    with store.transaction() as conn:
        customers.erase_customer(conn, bob)
    clock.set(START + 4000)
    applier.apply([message(walker, walker.event(key_of(2), START + 4000))])
    assert applier.resolver.full_loads == 2  # a removal reloads everything
    assert applier.counters["unknown_tag"] == 2 and points(store, bob) == 0


def test_a_message_that_trips_a_bug_is_dead_lettered_and_the_rest_applied(setup):
    config, store, customer = setup
    clock = Clock(START + 10)
    a, b = Walker("store-1"), Walker("store-2")
    poison = a.event(key_of(7), START)
    applier = Applier(config, store, clock, BrokenResolver(store, clock, poison.tag))
    batch = [message(a, poison), message(b, b.event(key_of(1), START))]
    with pytest.raises(RuntimeError):
        applier.apply(batch)  # the whole batch rolls back …
    assert points(store, customer) == 0
    out = applier.apply_isolating(batch)  # … then the good message goes through alone
    assert points(store, customer) == 10
    assert out.receipts == {"store-1": [poison.id], "store-2": [_ids(batch[1])]}
    rows = store.conn.execute("SELECT topic, kind, reason FROM dead_letters").fetchall()
    assert [(r["kind"], r["reason"]) for r in rows] == [("error", "RuntimeError: resolver bug")]


def _ids(inbound: Inbound) -> str:
    batch = decode(inbound.topic, inbound.payload).message
    assert isinstance(batch, PresenceBatch)
    return batch.events[0].id


def test_old_processed_ids_are_forgotten_and_their_redelivery_still_credits_nothing(setup):
    config, store, customer = setup
    clock = Clock(START + 10)
    applier = Applier(config, store, clock)
    walker = Walker("store-1")
    visit = message(walker, walker.event(key_of(1), START))
    applier.apply([visit])
    assert points(store, customer) == 10
    clock.set(START + 2 * config.ingest.max_event_age_s + 60)
    applier.jobs.expire()
    assert store.conn.execute("SELECT COUNT(*) FROM processed_events").fetchone()[0] == 0
    applier.apply([visit])  # a very late redelivery: unknown id now, but stale
    assert points(store, customer) == 10 and applier.counters["stale"] == 1


def test_footfall_and_health_ids_are_forgotten_too_and_a_late_redelivery_counts_nothing(setup):
    config, store, _ = setup
    clock = Clock(BASE + 600)
    applier = Applier(config, store, clock)
    walker = Walker("store-1")
    late = [
        Inbound(FOOTFALL.topic(MALL, "store-1"), encode(footfall(walker, 0, 3)), 1, False, 0),
        Inbound(HEALTH.topic(MALL, "store-1"), encode(health(walker, 2)), 1, False, 0),
    ]
    applier.apply(late)

    def kept() -> list[tuple[object, ...]]:
        rows = store.conn.execute("SELECT unique_tags, adverts, windows FROM footfall")
        return [tuple(r) for r in rows] + [
            tuple(r) for r in store.conn.execute("SELECT last_health, last_seen FROM nodes")
        ]

    before = kept()
    assert before[0] == (3, 120, 1) and applier.counters["health"] == 1
    clock.set(BASE + 600 + 2 * config.ingest.max_event_age_s + 60)
    applier.jobs.expire()
    assert store.conn.execute("SELECT COUNT(*) FROM processed_events").fetchone()[0] == 0
    applier.apply(late)  # unknown ids now, but too old to count again
    assert kept() == before
    assert (applier.counters["stale_footfall"], applier.counters["stale_health"]) == (1, 1)
    outcomes = dict(store.conn.execute("SELECT topic, outcome FROM processed_events").fetchall())
    assert outcomes == {"footfall": "stale", "health": "stale"}
