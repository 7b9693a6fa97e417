"""Exactly once through the real broker: a core killed between commit and ack, and two
core workers on one shared subscription, never double-credit and never lose a visit."""

from __future__ import annotations

import signal
import time

from cloud_core.store import open_store
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
