"""Exactly once through the real broker: a core killed between commit and ack, and two
core workers on one shared subscription, never double-credit and never lose a visit."""

from __future__ import annotations

import signal
import time

from cloud_core import customers
from cloud_core.store import PgTarget, open_store
from cloud_core.store.target import schema_for_mall
from mallnet.wire import encode
from mallnet.wire.topics import PRESENCE
from tests.cloud_core.core_process import start_core, write_config
from tests.cloud_core.helpers import (
    START,
    Walker,
    key_of,
    make_config,
    receipted_ids,
    receipts_collector,
    register,
    wallet,
)
from tests.conftest import MALL, wait_until


def test_a_core_killed_between_commit_and_ack_neither_double_credits_nor_loses_a_visit(
    tmp_path, broker, core_settings, connect
):
    config_path = write_config(tmp_path, broker)
    config = make_config(tmp_path, core_settings)  # same database file, for the helpers
    ann = register(config, 1, "+44 7911 123001")
    bob = register(config, 2, "+44 7911 123002")
    receipts, node = receipts_collector(connect, "store-1")
    log = tmp_path / "core.log"
    walker = Walker("store-1")
    now = time.time()

    core = start_core(config_path, log, crash_after=1)
    try:
        first = walker.batch([walker.event(key_of(1), now)])

        # The core needs a moment to subscribe; the node's message waits in the broker only
        # once the core's session exists, so publish until the core has taken it.
        def crashed() -> bool:
            if core.poll() is not None:
                return True
            node.publish(PRESENCE.topic(MALL, "store-1"), encode(first)).wait(10)
            return False

        wait_until(crashed, timeout=30, what="the core to crash after its first commit")
        assert core.returncode == 9, log.read_text()
    finally:
        if core.poll() is None:
            core.kill()
            core.wait()
    assert receipts.messages == []  # committed, never acked nor receipted
    assert wallet(config, ann) == {"bean-bar": 10}

    # while the core is down a second visit arrives and waits in its session
    second = walker.batch([walker.event(key_of(2), now + 1)])
    node.publish(PRESENCE.topic(MALL, "store-1"), encode(second)).wait(10)

    core = start_core(config_path, log)
    try:
        wanted = {first.events[0].id, second.events[0].id}
        wait_until(
            lambda: wanted <= set(receipted_ids(receipts)),
            timeout=30,
            what="receipts for the redelivered and the queued visit",
        )
    finally:
        core.send_signal(signal.SIGTERM)
        assert core.wait(20) == 0, log.read_text()
    assert wallet(config, ann) == {"bean-bar": 10}  # credited once, though delivered again
    assert wallet(config, bob) == {"bean-bar": 10}  # not lost
    store = open_store(config.database)
    try:
        (visits,) = store.conn.execute("SELECT COUNT(*) FROM visits").fetchone()
        (dead,) = store.conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()
        outcomes = dict(
            store.conn.execute("SELECT outcome, COUNT(*) FROM processed_events GROUP BY outcome")
        )
    finally:
        store.close()
    assert visits == 2 and dead == 0
    assert outcomes == {"credited": 2}


def test_two_workers_on_one_shared_subscription_credit_each_visit_once(
    tmp_path, core_settings, run_core, connect, clock
):
    base = make_config(tmp_path, core_settings)
    clock.set(START + 3600)  # after the walks (the core refuses events dated ahead of it)
    customers = [register(base, n, f"+44 7911 1230{n:02d}") for n in range(1, 9)]
    workers = [
        run_core(
            base.model_copy(
                update={"ingest": base.ingest.model_copy(update={"client_id": cid, "batch_max": 4})}
            )
        )
        for cid in ("core-a", "core-b")
    ]
    nodes = {n: receipts_collector(connect, n) for n in ("store-1", "store-2", "store-3")}
    sent: dict[str, set[str]] = {n: set() for n in nodes}
    for n, node in enumerate(nodes):
        walker = Walker(node)
        _, client = nodes[node]
        for c in range(1, 9):
            # each customer: enter, then a qualifying dwell, then the exit (in cooldown)
            events = walker.walk(key_of(c), START + n * 900 + c)
            sent[node].update(e.id for e in events)
            payload = encode(walker.batch(events))
            for _ in range(2):  # every batch twice: the copies may go to different workers
                client.publish(PRESENCE.topic(MALL, node), payload).wait(10)

    def all_receipted() -> bool:
        return all(set(receipted_ids(c)) == sent[n] for n, (c, _) in nodes.items())

    wait_until(all_receipted, what="receipts for every node's events")

    # every event's id is receipted once its first copy is applied; the second copies may
    # still be on their way to the other worker: wait for them, then count exactly
    def duplicates() -> int:
        return sum(w.consumer.stats().get("duplicates", 0) for w in workers)

    wait_until(lambda: duplicates() >= 3 * 8 * 3, what="every second copy applied as a duplicate")
    # after the second copies too: none of them credited again
    for customer in customers:
        assert wallet(base, customer) == {
            "bean-bar": 10,
            "shoe-hub": 10,
            "book-nook": 10,
            "mall": 50,
        }
    stats = [w.consumer.stats() for w in workers]
    # both took a share of the presence messages
    assert all(s.get("events", 0) + s.get("duplicates", 0) > 0 for s in stats), stats
    assert sum(s.get("credited", 0) for s in stats) == 3 * 8
    assert sum(s.get("duplicates", 0) for s in stats) == 3 * 8 * 3


def test_a_broker_restart_loses_no_visit_and_credits_none_twice(
    tmp_path, broker, core_settings, run_core, connect
):
    config = make_config(
        tmp_path,
        core_settings,
        visits={"points": 10, "min_dwell_s": 60, "cooldown_s": 0, "daily_cap": 100},
    )
    customers = [register(config, n, f"+44 7911 1230{n:02d}") for n in (1, 2)]
    app = run_core(config)
    receipts, node = receipts_collector(connect, "store-1")
    walker = Walker("store-1")
    before = walker.batch([walker.event(key_of(1), START + 10)])
    node.publish(PRESENCE.topic(MALL, "store-1"), encode(before)).wait(10)
    receipts.wait_for(1)
    broker.stop()  # graceful: sessions and subscriptions are saved
    broker.start()
    assert node.wait_connected(20) and app.consumer is not None
    wait_until(lambda: app.consumer.client.connected, timeout=20, what="the core to reconnect")
    after = walker.batch([walker.event(key_of(2), START + 20)])

    def receipted() -> bool:
        if after.events[0].id in receipted_ids(receipts):
            return True
        # a node resends until its receipt comes (as the edge outbox does)
        node.publish(PRESENCE.topic(MALL, "store-1"), encode(after))
        return False

    wait_until(receipted, timeout=20, what="the visit after the restart")
    assert wallet(config, customers[0]) == {"bean-bar": 10}
    assert wallet(config, customers[1]) == {"bean-bar": 10}


def test_two_workers_on_postgresql_one_killed_mid_batch_credit_every_visit_once(
    tmp_path, broker, connect, pg_cluster
):
    """Two core processes share one PostgreSQL database and one shared subscription; one is
    SIGKILLed inside a batch's transaction. The node resends what is not receipted (as the
    edge outbox does): every visit is credited exactly once, and the journal equals the
    wallets."""
    url = pg_cluster.new_database()
    target = PgTarget(url, schema_for_mall(MALL))
    config = make_config(tmp_path, database=target)  # the same database, for the helpers
    shoppers = range(1, 41)
    store = open_store(target)
    try:
        with store.transaction() as conn:
            ids = {}
            for n in shoppers:
                ids[n], _ = customers.register_customer(
                    conn, f"+44 7911 123{n:03d}", default_region="GB"
                )
                customers.attach_beacon_key(conn, ids[n], key_of(n).hex())
    finally:
        store.close()
    configs = {
        cid: write_config(
            tmp_path, broker, client_id=cid, database=url, daily_cap=1000, batch_max=4
        )
        for cid in ("core-a", "core-b")
    }
    receipts, node = receipts_collector(connect, "store-1")
    walker = Walker("store-1")
    now = time.time()
    payloads = {}
    for n in shoppers:
        event = walker.event(key_of(n), now + n / 1000)
        payloads[event.id] = encode(walker.batch([event]))
    victim_log = tmp_path / "core-a.log"
    victim = start_core(configs["core-a"], victim_log, kill_in_batch=2)
    survivor = start_core(configs["core-b"], tmp_path / "core-b.log")
    sent_at: dict[str, float] = {}

    def all_receipted() -> bool:
        got = set(receipted_ids(receipts))
        at = time.monotonic()
        for event_id, payload in payloads.items():
            if event_id not in got and at - sent_at.get(event_id, -10.0) > 1.0:
                sent_at[event_id] = at  # resend what is not receipted, once a second
                node.publish(PRESENCE.topic(MALL, "store-1"), payload)
        return got >= set(payloads)

    try:
        wait_until(all_receipted, timeout=90, what="receipts for every visit")
        wait_until(lambda: victim.poll() is not None, timeout=30, what="the killed worker")
    finally:
        for core in (victim, survivor):
            if core.poll() is None:
                core.send_signal(signal.SIGTERM)
        assert survivor.wait(20) == 0, (tmp_path / "core-b.log").read_text()
        victim.wait(20)
    assert victim.returncode == -signal.SIGKILL, victim_log.read_text()
    assert "SIGKILL inside batch 2" in victim_log.read_text()
    for n in shoppers:
        assert wallet(config, ids[n]) == {"bean-bar": 10}  # checks the ledger's invariants too
    store = open_store(target)
    try:
        with store.read() as conn:
            journal = dict(
                conn.execute("SELECT customer_id, SUM(delta) FROM journal GROUP BY customer_id")
            )
            lots = dict(
                conn.execute("SELECT customer_id, SUM(remaining) FROM lots GROUP BY customer_id")
            )
            (visits,) = conn.execute("SELECT COUNT(*) FROM visits").fetchone()
            outcomes = dict(
                conn.execute("SELECT outcome, COUNT(*) FROM processed_events GROUP BY outcome")
            )
    finally:
        store.close()
    assert journal == lots == {ids[n]: 10 for n in shoppers}  # the journal equals the wallets
    assert visits == len(shoppers) and outcomes == {"credited": len(shoppers)}
