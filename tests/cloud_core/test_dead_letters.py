"""Dead letters stay bounded (size, rows, age), retained event messages are ignored, and a
full database stops nothing silently and acks nothing it did not commit."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime

import httpx
import pytest

from cloud_core import customers
from cloud_core.config import ApiSettings, CoreConfig
from cloud_core.ingest import Applier
from cloud_core.store import open_store
from mallnet.broker import free_port
from mallnet.mqtt import Inbound
from mallnet.wire import encode
from mallnet.wire.payloads import DeviceStatus
from mallnet.wire.topics import FOOTFALL, PRESENCE, STATUS
from tests.cloud_core.helpers import (
    START,
    BrokenResolver,
    Clock,
    Walker,
    key_of,
    make_config,
    message,
    receipted_ids,
    receipts_collector,
    register,
    wallet,
)
from tests.conftest import MALL, wait_until

ADMIN_KEY = "k-admin-0123456789abcdef"


def junk(node: str, payload: bytes, *, retain: bool = False, leaf=PRESENCE) -> Inbound:
    return Inbound(leaf.topic(MALL, node), payload, 1, retain, 0)


def counts_by_node(store) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for node, what, n in store.conn.execute("SELECT node, what, n FROM dead_letter_counts"):
        out.setdefault(node, {})[what] = n
    return out


@pytest.fixture
def bounded(tmp_path):
    config = make_config(
        tmp_path,
        ingest={
            "batch_wait_ms": 1,
            "dead_letters": {"payload_max_bytes": 64, "max_rows": 5, "max_age_s": 3600},
        },
    )
    store = open_store(config.database)
    yield config, store
    store.close()


def test_a_large_junk_payload_is_kept_truncated_with_its_size_and_hash(bounded):
    config, store = bounded
    applier = Applier(config, store, Clock(START))
    big = b"\xff" * 1_000_000
    applier.apply([junk("store-1", big)])
    row = store.conn.execute("SELECT * FROM dead_letters").fetchone()
    assert len(row["payload"]) == 64 and row["size"] == 1_000_000
    assert row["sha256"] == hashlib.sha256(big).hexdigest() and row["node"] == "store-1"
    assert counts_by_node(store)["store-1"] == {
        "kept": 1,
        "truncated": 1,
        "truncated_bytes": 1_000_000 - 64,
    }
    assert applier.counters["dead_letters.truncated"] == 1


def test_a_message_that_trips_a_bug_is_kept_whole_for_a_replay(bounded):
    config, store = bounded  # payload_max_bytes: 64
    clock = Clock(START + 10)
    walker = Walker("store-1")
    events = [walker.event(key_of(7), START + i) for i in range(3)]
    applier = Applier(config, store, clock, BrokenResolver(store, clock, events[0].tag))
    poisoned = message(walker, *events)
    applier.apply_isolating([poisoned])
    row = store.conn.execute("SELECT kind, payload, size FROM dead_letters").fetchone()
    assert row["kind"] == "error" and len(poisoned.payload) > 64
    assert bytes(row["payload"]) == poisoned.payload and row["size"] == len(poisoned.payload)


def test_only_the_newest_dead_letters_are_kept_and_evictions_are_counted_per_node(bounded):
    config, store = bounded
    applier = Applier(config, store, Clock(START))
    applier.apply([junk("store-1", b"a%d" % i) for i in range(4)])
    applier.apply([junk("store-2", b"b%d" % i) for i in range(4)])
    kept = [bytes(r[0]) for r in store.conn.execute("SELECT payload FROM dead_letters ORDER BY id")]
    assert kept == [b"a3", b"b0", b"b1", b"b2", b"b3"]  # max_rows 5: the oldest went
    by_node = counts_by_node(store)
    assert by_node["store-1"] == {"kept": 4, "evicted": 3}
    assert by_node["store-2"] == {"kept": 4}
    assert applier.counters["dead_letters.evicted"] == 3


def test_dead_letters_older_than_max_age_go_with_the_expiry_job(bounded):
    config, store = bounded
    clock = Clock(START)
    applier = Applier(config, store, clock)
    applier.apply([junk("store-1", b"old")])
    clock.advance(1800)
    applier.apply([junk("store-2", b"new")])
    clock.advance(2000)  # the first is 3800 s old (max_age_s 3600), the second 2000 s
    applier.jobs.expire()
    assert [bytes(r[0]) for r in store.conn.execute("SELECT payload FROM dead_letters")] == [b"new"]
    assert counts_by_node(store)["store-1"] == {"kept": 1, "expired": 1}
    assert applier.counters["dead_letters.expired"] == 1


def test_retained_event_messages_are_ignored_and_counted_status_junk_is_kept_once(bounded):
    config, store = bounded
    with store.transaction() as conn:
        customer, _ = customers.register_customer(conn, "+44 7911 123001", default_region="GB")
        customers.attach_beacon_key(conn, customer, key_of(1).hex())
    applier = Applier(config, store, Clock(START + 10))
    walker = Walker("store-1")
    valid = encode(walker.batch([walker.event(key_of(1), START)]))
    out = applier.apply(
        [
            junk("store-1", b"\x00junk", retain=True),
            junk("store-1", valid, retain=True),  # even a valid batch: no credit, no receipt
            junk("store-2", b"{}", retain=True, leaf=FOOTFALL),
        ]
    )
    assert out.receipts == {} and applier.counters["retained_ignored"] == 3
    assert store.conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0] == 0
    assert store.conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0] == 0
    assert counts_by_node(store) == {
        "store-1": {"retained_ignored": 2},
        "store-2": {"retained_ignored": 1},
    }
    # junk retained on the status topic (retained by design) is kept once, not at every
    # reconnect that delivers it again
    for _ in range(3):
        applier.apply([junk("store-3", b"bad status", retain=True, leaf=STATUS)])
    assert store.conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0] == 1
    assert counts_by_node(store)["store-3"] == {"kept": 1, "repeat": 2}


def test_retained_junk_on_an_event_topic_is_never_dead_lettered_through_the_broker(
    core_config, run_core, connect
):
    node = connect("store-1")
    node.publish(PRESENCE.topic(MALL, "store-1"), b"x" * 100_000, retain=True).wait(10)
    status = DeviceStatus(state="online", device="store-1", since=datetime.now(UTC), software="t")
    node.publish(STATUS.topic(MALL, "store-1"), encode(status), retain=True).wait(10)
    app = run_core(core_config)
    assert app.consumer is not None
    wait_until(lambda: app.consumer.stats().get("retained_ignored", 0) == 1, what="ignored")
    # a live junk message after the retained one: the consumer's only dead letter
    node.publish(PRESENCE.topic(MALL, "store-1"), b"live junk").wait(10)
    wait_until(lambda: app.consumer.stats().get("dead_letters", 0) == 1, what="1 dead letter")
    store = open_store(core_config.database)
    try:
        rows = store.conn.execute("SELECT payload FROM dead_letters").fetchall()
    finally:
        store.close()
    assert [bytes(r[0]) for r in rows] == [b"live junk"]


def api_config(core_config: CoreConfig, tmp_path) -> CoreConfig:
    keys = tmp_path / "api-keys.yaml"
    keys.write_text(f"keys: [{{name: office, role: admin, key: {ADMIN_KEY}}}]\n")
    return core_config.model_copy(update={"api": ApiSettings(port=free_port(), keys_file=keys)})


def test_a_full_database_acks_nothing_says_so_and_the_message_is_credited_once_later(
    core_config, run_core, connect, tmp_path, caplog
):
    ann = register(core_config, 1, "+44 7911 123001")
    config = api_config(core_config, tmp_path)
    app = run_core(config, only=None)
    consumer = app.consumer
    assert consumer is not None
    receipts, node = receipts_collector(connect, "store-1")
    # make the real database file "full": this connection may not grow it by one page
    conn = consumer.applier.store.conn
    with consumer.applier.store.transaction():
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {int(pages)}")
    acked = consumer.acked
    walker = Walker("store-1")
    events = walker.walk(key_of(1), START) + [
        walker.event(key_of(200 + i), START + i)
        for i in range(150)  # unknown tags: pages
    ]
    node.publish(PRESENCE.topic(MALL, "store-1"), encode(walker.batch(events))).wait(10)
    caplog.set_level(logging.ERROR, logger="cloud_core.ingest")
    wait_until(lambda: consumer.db_full >= 2, what="the full database refused the batch twice")
    assert consumer.acked == acked and consumer.stats()["db_full"] >= 2
    assert any("SQLITE_FULL" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    ready = httpx.get(f"http://127.0.0.1:{config.api.port}/ready", timeout=10)
    assert ready.status_code == 503 and "SQLITE_FULL" in ready.json()["detail"]
    assert ready.headers["content-type"] == "application/problem+json"
    app.stop()  # still full: the message was never acked, so the broker keeps it
    assert consumer.acked == acked and receipts.messages == []
    assert wallet(core_config, ann) == {}

    # space freed (a new process's connection has no such limit): redelivered, credited once
    again = run_core(core_config)
    assert again.consumer is not None
    wait_until(lambda: len(receipted_ids(receipts)) >= len(events), what="receipts")
    assert wallet(core_config, ann) == {"bean-bar": 10}
    assert again.consumer.stats().get("credited", 0) == 1
