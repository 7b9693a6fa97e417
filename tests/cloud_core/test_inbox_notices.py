"""Inbox notices are at least once: a core killed after its commit and before it published the
notices sends them when it comes back (same ids), also when the broker was down meanwhile."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta

import pytest

from cloud_core import ledger
from cloud_core.store import open_store
from mallnet.wire import decode, encode
from mallnet.wire.payloads import CreditNotice, OfferNotice
from mallnet.wire.topics import INBOX, PRESENCE
from tests.cloud_core.core_process import start_core, write_config
from tests.cloud_core.helpers import (
    START,
    Walker,
    add_campaign,
    key_of,
    make_config,
    receipted_ids,
    receipts_collector,
    register,
    wallet,
)
from tests.conftest import MALL, Collector, wait_until


def pending_notices(config) -> list[tuple[str, str]]:
    store = open_store(config.database)
    try:
        with store.read() as conn:
            rows = conn.execute("SELECT id, topic FROM pending_notices ORDER BY seq").fetchall()
    finally:
        store.close()
    return [(str(r[0]), str(r[1])) for r in rows]


@pytest.mark.parametrize("broker_down", [False, True], ids=["restart", "broker-restart"])
def test_notices_of_a_batch_committed_before_a_crash_arrive_after_the_restart(
    tmp_path, broker, core_config, connect, core_client, *, broker_down
):
    config_path = write_config(tmp_path, broker)
    config = core_config  # the subprocess's database file, for the helpers
    ann = register(config, 1, "+44 7911 123001")
    bob = register(config, 2, "+44 7911 123002")
    add_campaign(config)
    inbox = Collector()
    core_client(
        "inbox-watch",
        subscriptions=[(INBOX.filter(MALL), 1)],
        on_message=inbox,
        persistent_session=True,  # keeps what arrives while the broker restarts
    )
    # persistent, as a node's session is: after a broker restart the core (also persistent)
    # may reconnect and receipt the redelivered batch before this client has reconnected
    receipts, node = receipts_collector(connect, "store-1", persistent=True)
    log = tmp_path / "core.log"
    walker = Walker("store-1")
    now = time.time()
    # no cooldown: Ann's two visits and Bob's one credit 3 times; the offer goes to each once
    first = walker.batch(
        [
            walker.event(key_of(1), now - 30),
            walker.event(key_of(2), now - 20),
            walker.event(key_of(1), now - 10),
        ]
    )

    core = start_core(config_path, log, crash_after=1)
    try:

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
    kept = pending_notices(config)
    assert len(kept) == 5  # 3 credits, 2 offers: committed with the credits, not yet sent
    assert inbox.messages == []

    if broker_down:
        broker.stop()  # graceful: the sessions (and the core's unacked batch) are kept
    core = start_core(config_path, log)
    try:
        if broker_down:
            broker.start()
        wait_until(
            lambda: first.events[0].id in receipted_ids(receipts),
            timeout=30,
            what="the redelivered batch to be receipted",
        )
        got = inbox.wait_for(len(kept), timeout=30)
        wait_until(lambda: pending_notices(config) == [], timeout=30, what="notices acked")
    finally:
        core.send_signal(signal.SIGTERM)
        assert core.wait(20) == 0, log.read_text()

    notices: list[tuple[str, CreditNotice | OfferNotice]] = []
    for message in got:
        notice = decode(message.topic, message.payload).message
        assert isinstance(notice, CreditNotice | OfferNotice)
        notices.append((message.topic, notice))
    # every kept notice arrived, with the id it was kept under, in the order it was kept
    first_seen = list(dict.fromkeys((n.id, topic) for topic, n in notices))
    assert first_seen == kept
    assert {type(n) for _, n in notices} == {CreditNotice, OfferNotice}
    credits = sorted((t.split("/")[4], n.points) for t, n in notices if isinstance(n, CreditNotice))
    assert credits == sorted([(ann, 10), (ann, 10), (bob, 10)])
    assert wallet(config, ann) == {"bean-bar": 20}  # the redelivery credited nothing again
    assert wallet(config, bob) == {"bean-bar": 10}


def test_a_notice_made_while_the_broker_is_down_is_kept_until_the_broker_has_it(
    tmp_path, broker, core_settings, run_core, core_client, *, clock
):
    config = make_config(
        tmp_path, core_settings, ingest={"batch_wait_ms": 1, "expiry_interval_s": 0.05}
    )
    ann = register(config, 1, "+44 7911 123001")
    store = open_store(config.database)
    try:
        with store.transaction() as conn:
            at = datetime.fromtimestamp(START, UTC)
            ledger.grant(
                conn,
                customer=ann,
                pocket="bean-bar",
                points=10,
                reason="visit",
                idem_key="seed",
                now=at,
                expires_at=at + timedelta(seconds=60),
            )
    finally:
        store.close()
    inbox = Collector()
    core_client(
        "inbox-watch",
        subscriptions=[(INBOX.filter(MALL), 1)],
        on_message=inbox,
        persistent_session=True,
    )
    app = run_core(config)
    assert app.consumer is not None
    publisher = app.consumer.publisher
    broker.stop()
    wait_until(lambda: not publisher.connected, what="the core to notice the broker is gone")
    clock.set(START + 120)  # the expiry job zeroes the lot and makes a notice, broker down
    wait_until(lambda: len(pending_notices(config)) == 1, what="the expiry notice kept")
    ((notice_id, topic),) = pending_notices(config)
    broker.start()
    (message,) = inbox.wait_for(1, timeout=30)
    notice = decode(message.topic, message.payload).message
    assert isinstance(notice, CreditNotice)
    assert (message.topic, notice.id, notice.points, notice.reason) == (
        topic,
        notice_id,
        -10,
        "expiry",
    )
    wait_until(lambda: pending_notices(config) == [], timeout=20, what="the broker's ack")
