"""Ingest through the real broker: walks credit exactly the expected points, once."""

from __future__ import annotations

from datetime import UTC, datetime

from cloud_core import ledger
from cloud_core.config import KioskConfig, NodeTuning
from cloud_core.store import open_store
from mallnet.wire import decode, encode
from mallnet.wire.payloads import CreditNotice, OfferNotice
from mallnet.wire.topics import INBOX, PRESENCE
from tests.cloud_core.helpers import (
    START,
    Walker,
    add_campaign,
    key_of,
    receipted_ids,
    receipts_collector,
    register,
    wallet,
)
from tests.conftest import MALL, Collector, wait_until

BOTH_BACKENDS = True  # every test here runs on SQLite and on PostgreSQL (conftest.py)


def test_replayed_walks_credit_the_expected_points_with_notices_and_offers(
    core_config, run_core, connect, core_client, clock
):
    ann = register(core_config, 1, "+44 7911 123001")
    bob = register(core_config, 2, "07911 123002")
    add_campaign(core_config)
    inbox = Collector()
    core_client("inbox-watch", subscriptions=[(INBOX.filter(MALL), 1)], on_message=inbox)
    app = run_core(core_config)
    clock.set(START + 1500)  # after the walks: the core refuses events dated ahead of it

    sent: list[str] = []
    nodes = {}
    for node in ("store-1", "store-2", "store-3"):
        nodes[node] = receipts_collector(connect, node)
    # Ann visits Bean Bar; Bob visits all three stores (the game's goal) 10 minutes apart.
    plan = [("store-1", 1, 0), ("store-1", 2, 0), ("store-2", 2, 600), ("store-3", 2, 1200)]
    for node, who, offset in plan:
        walker = Walker(node)
        events = walker.walk(key_of(who), START + offset)
        sent.extend(e.id for e in events)
        _, client = nodes[node]
        client.publish(PRESENCE.topic(MALL, node), encode(walker.batch(events))).wait(10)

    wait_until(
        lambda: sorted(i for c, _ in nodes.values() for i in receipted_ids(c)) == sorted(sent),
        what="receipts naming every event",
    )
    assert wallet(core_config, ann) == {"bean-bar": 10}
    assert wallet(core_config, bob) == {"bean-bar": 10, "shoe-hub": 10, "book-nook": 10, "mall": 50}
    # notices: Ann 1 credit + 1 offer; Bob 3 credits + game bonus + 1 offer
    messages = inbox.wait_for(7)
    by_customer: dict[str, list[object]] = {}
    for message in messages:
        assert message.topic.startswith(f"mall/v1/{MALL}/customers/")
        notice = decode(message.topic, message.payload).message
        by_customer.setdefault(message.topic.split("/")[4], []).append(notice)
    ann_notices = by_customer[ann]
    assert {type(n) for n in ann_notices} == {CreditNotice, OfferNotice}
    credit = next(n for n in ann_notices if isinstance(n, CreditNotice))
    assert (credit.points, credit.pocket, credit.text) == (10, "bean-bar", "+10 points at Bean Bar")
    bob_credits = sorted(
        (n.pocket, n.points, n.reason) for n in by_customer[bob] if isinstance(n, CreditNotice)
    )
    assert bob_credits == [
        ("bean-bar", 10, "visit"),
        ("book-nook", 10, "visit"),
        ("mall", 50, "game"),
        ("shoe-hub", 10, "visit"),
    ]
    offers_got = [n for n in by_customer[bob] if isinstance(n, OfferNotice)]
    assert [o.offer.campaign for o in offers_got] == ["winter-coffee"]
    stats = app.consumer.stats()
    assert stats["credited"] == 4 and stats["short"] == 4 and stats["cooldown"] == 4


def test_the_same_event_twice_is_credited_once_and_receipted_each_time(
    core_config, run_core, connect
):
    ann = register(core_config, 1, "+44 7911 123001")
    app = run_core(core_config)
    receipts, node = receipts_collector(connect, "store-1")
    walker = Walker("store-1")
    event = walker.event(key_of(1), START + 60, "dwell", 90.0)
    batch = walker.batch([event, event])  # twice in one batch …
    node.publish(PRESENCE.topic(MALL, "store-1"), encode(batch)).wait(10)
    receipts.wait_for(1)
    node.publish(PRESENCE.topic(MALL, "store-1"), encode(batch)).wait(10)  # … and again
    receipts.wait_for(2)
    assert receipted_ids(receipts) == [event.id] * 2
    assert wallet(core_config, ann) == {"bean-bar": 10}
    stats = app.consumer.stats()
    assert stats["credited"] == 1 and stats["duplicates"] == 3


def test_cooldown_holds_across_the_nodes_of_one_store(core_config, run_core, connect):
    ann = register(core_config, 1, "+44 7911 123001")
    run_core(core_config)
    receipts_a, node_a = receipts_collector(connect, "store-1")
    receipts_b, node_b = receipts_collector(connect, "store-1b")
    a, b = Walker("store-1"), Walker("store-1b")
    node_a.publish(
        PRESENCE.topic(MALL, "store-1"), encode(a.batch([a.event(key_of(1), START + 100)]))
    ).wait(10)
    receipts_a.wait_for(1)
    node_b.publish(
        PRESENCE.topic(MALL, "store-1b"), encode(b.batch([b.event(key_of(1), START + 400)]))
    ).wait(10)
    receipts_b.wait_for(1)
    assert wallet(core_config, ann) == {"bean-bar": 10}


def test_an_id_replayed_from_an_earlier_window_credits_nothing(
    core_config, run_core, connect, clock
):
    ann = register(core_config, 1, "+44 7911 123001")
    app = run_core(core_config)
    receipts, node = receipts_collector(connect, "store-1")
    walker = Walker("store-1")
    shop = START + 30
    recorded = walker.event(key_of(1), shop)
    node.publish(PRESENCE.topic(MALL, "store-1"), encode(walker.batch([recorded]))).wait(10)
    receipts.wait_for(1)
    assert wallet(core_config, ann) == {"bean-bar": 10}

    # 2 hours later (past the cooldown) a rogue radio replays the recorded id in the store
    later = clock.advance(7200)
    replay = walker.event(key_of(1), later, tag_time=shop)
    assert replay.tag == recorded.tag
    # … while an id from the next window, 100 s early (within the skew), is accepted
    boundary = (int(later // 600) + 1) * 600
    early = walker.event(key_of(1), boundary - 100, tag_time=boundary + 1)
    node.publish(PRESENCE.topic(MALL, "store-1"), encode(walker.batch([replay]))).wait(10)
    receipts.wait_for(2)
    assert wallet(core_config, ann) == {"bean-bar": 10}
    assert app.consumer.stats()["replayed"] == 1
    clock.set(boundary - 100)
    node.publish(PRESENCE.topic(MALL, "store-1"), encode(walker.batch([early]))).wait(10)
    receipts.wait_for(3)
    assert wallet(core_config, ann) == {"bean-bar": 20}


def test_malformed_and_unauthorised_payloads_land_in_dead_letters(core_config, run_core, connect):
    ann = register(core_config, 1, "+44 7911 123001")
    app = run_core(core_config)
    receipts, node = receipts_collector(connect, "store-1")
    stranger = connect("store-9")  # a broker user the core's config does not know
    topic = PRESENCE.topic(MALL, "store-1")
    node.publish(topic, b"not json").wait(10)
    node.publish(topic, b'{"v": 1, "node": "store-1", "events": []}').wait(10)
    walker = Walker("store-9")
    foreign = walker.batch([walker.event(key_of(1), START + 10)])
    stranger.publish(PRESENCE.topic(MALL, "store-9"), encode(foreign)).wait(10)
    mine = Walker("store-1")
    node.publish(topic, encode(mine.batch([mine.event(key_of(1), START + 20)]))).wait(10)
    receipts.wait_for(1)  # the consumer carried on
    wait_until(lambda: app.consumer.stats().get("dead_letters", 0) == 3, what="3 dead letters")
    store = open_store(core_config.database)
    try:
        rows = store.conn.execute("SELECT topic, kind, reason FROM dead_letters ORDER BY id")
        got = [(r["topic"].split("/")[4], r["kind"]) for r in rows]
    finally:
        store.close()
    assert got == [("store-1", "json"), ("store-1", "schema"), ("store-9", "unauthorised")]
    assert wallet(core_config, ann) == {"bean-bar": 10}


def test_kiosks_get_the_active_offers_as_a_retained_list(core_config, run_core, connect, clock):
    from mallnet.wire.payloads import KioskOffers
    from mallnet.wire.topics import KIOSK_OFFERS

    config = core_config.model_copy(
        update={
            "kiosks": (KioskConfig(id="kiosk-atrium"),),
            "ingest": core_config.ingest.model_copy(update={"kiosk_offers_interval_s": 0.05}),
        }
    )
    add_campaign(config)
    run_core(config)
    lists = Collector()
    kiosk = connect(
        "kiosk-atrium",
        subscriptions=[(KIOSK_OFFERS.topic(MALL, "kiosk-atrium"), 1)],
        on_message=lists,
    )
    [first] = lists.wait_for(1)
    kiosk.stop()  # the kiosk restarts (its identity is bound to its one client id) …
    later = Collector()  # … and gets the retained list at once
    connect(
        "kiosk-atrium",
        subscriptions=[(KIOSK_OFFERS.topic(MALL, "kiosk-atrium"), 1)],
        on_message=later,
    )
    assert later.wait_for(1)[0].retain
    offers = decode(first.topic, first.payload).message
    assert isinstance(offers, KioskOffers)
    assert [o.campaign for o in offers.offers] == ["winter-coffee"]
    add_campaign(config, id="shoes-sale", business="shoe-hub", title="Shoes -30 %")
    later.wait_for(2)
    latest = decode(later.messages[-1].topic, later.messages[-1].payload).message
    assert isinstance(latest, KioskOffers)
    assert sorted(o.campaign for o in latest.offers) == ["shoes-sale", "winter-coffee"]


def test_expiring_store_points_expire_with_a_journal_row_and_a_notice(
    core_config, run_core, connect, core_client, clock
):
    ann = register(core_config, 1, "+44 7911 123001")
    stores = [
        {**s.model_dump(), "visits": {"expiry": "after", "expires_after_s": 3600}}
        if s.id == "bean-bar-l1"
        else s.model_dump()
        for s in core_config.stores
    ]
    config = core_config.model_copy(
        update={
            "stores": tuple(type(core_config.stores[0]).model_validate(s) for s in stores),
            "ingest": core_config.ingest.model_copy(update={"expiry_interval_s": 0.05}),
        }
    )
    inbox = Collector()
    core_client("inbox-watch", subscriptions=[(INBOX.filter(MALL), 1)], on_message=inbox)
    run_core(config)
    receipts, node = receipts_collector(connect, "store-1")
    walker = Walker("store-1")
    node.publish(
        PRESENCE.topic(MALL, "store-1"), encode(walker.batch([walker.event(key_of(1), START)]))
    ).wait(10)
    receipts.wait_for(1)
    assert wallet(config, ann) == {"bean-bar": 10}
    clock.advance(3600)  # the expiry job (every 50 ms of wall time) now finds the lot due
    messages = inbox.wait_for(2)
    expiry = decode(messages[-1].topic, messages[-1].payload).message
    assert isinstance(expiry, CreditNotice)
    assert (expiry.points, expiry.reason, expiry.pocket) == (-10, "expiry", "bean-bar")
    assert wallet(config, ann) == {"bean-bar": 0}
    store = open_store(config.database)
    try:
        kinds = [r[0] for r in store.conn.execute("SELECT kind FROM journal ORDER BY id")]
    finally:
        store.close()
    assert kinds == ["grant", "expire"]


def test_a_campaign_with_bonus_points_pays_them_within_its_frequency_cap(
    core_config, run_core, connect, clock
):
    ann = register(core_config, 1, "+44 7911 123001")
    add_campaign(core_config, bonus_points=5, cap_count=1)
    app = run_core(core_config)
    receipts, node = receipts_collector(connect, "store-1")
    walker = Walker("store-1")
    for n, at in enumerate((START, START + 7200), start=1):  # two visits, beyond the cooldown
        clock.set(at)
        batch = walker.batch([walker.event(key_of(1), at)])
        node.publish(PRESENCE.topic(MALL, "store-1"), encode(batch)).wait(10)
        receipts.wait_for(n)
    assert wallet(core_config, ann) == {"bean-bar": 10 + 5 + 10}  # the bonus once: cap 1
    assert app.consumer.stats()["credited"] == 2


def test_nodes_get_their_stores_tuning_with_a_rising_revision(core_config, run_core, connect):
    from mallnet.wire.payloads import NodeConfig
    from mallnet.wire.topics import NODE_CONFIG

    def tuned(radius: float, client_id: str):
        stores = tuple(
            s.model_copy(update={"node_tuning": NodeTuning(radius_m=radius, dwell_report_s=60)})
            if s.id == "bean-bar-l1"
            else s
            for s in core_config.stores
        )
        ingest = core_config.ingest.model_copy(update={"client_id": client_id})
        return core_config.model_copy(update={"stores": stores, "ingest": ingest})

    configs = Collector()
    connect("store-1", subscriptions=[(NODE_CONFIG.topic(MALL, "store-1"), 1)], on_message=configs)
    run_core(tuned(4.0, "core-a"))
    first = decode(configs.wait_for(1)[0].topic, configs.messages[0].payload).message
    assert isinstance(first, NodeConfig) and first.presence is not None
    assert (first.revision, first.presence.radius_m, first.presence.dwell_report_s) == (1, 4.0, 60)
    run_core(tuned(4.0, "core-b"))  # same tuning: same revision
    configs.wait_for(2)
    run_core(tuned(6.5, "core-c"))  # changed: the revision goes up
    wait_until(lambda: len(configs.messages) >= 3, what="three node configs")
    revisions = []
    for message in configs.messages:
        config = decode(message.topic, message.payload).message
        assert isinstance(config, NodeConfig) and config.presence is not None
        revisions.append((config.revision, config.presence.radius_m))
    assert revisions == [(1, 4.0), (1, 4.0), (2, 6.5)]


def test_an_event_dated_ahead_of_the_core_clock_is_receipted_and_credits_nothing(
    core_config, run_core, connect, clock
):
    ann = register(core_config, 1, "+44 7911 123001")
    app = run_core(core_config)
    receipts, node = receipts_collector(connect, "store-1")
    walker = Walker("store-1")
    # dated a day ahead and carrying the beacon id of that future window (a forged or
    # pre-computed id, or a node whose clock is a day off)
    forged = walker.event(key_of(1), clock() + 86_400)
    node.publish(PRESENCE.topic(MALL, "store-1"), encode(walker.batch([forged]))).wait(10)
    receipts.wait_for(1)
    assert receipted_ids(receipts) == [forged.id]  # the node may prune it
    assert wallet(core_config, ann) == {}
    assert app.consumer.stats()["future"] == 1
    # a node clock a little ahead (within ingest.max_clock_skew_s, 300 s) still credits
    ahead = walker.event(key_of(1), clock() + 120)
    node.publish(PRESENCE.topic(MALL, "store-1"), encode(walker.batch([ahead]))).wait(10)
    receipts.wait_for(2)
    assert wallet(core_config, ann) == {"bean-bar": 10}
    store = open_store(core_config.database)
    try:
        outcomes = dict(store.conn.execute("SELECT event_id, outcome FROM processed_events"))
        (journal_days,) = store.conn.execute(
            "SELECT COUNT(*) FROM journal WHERE ts > ?",
            (ledger.iso(datetime.fromtimestamp(clock() + 3600, UTC)),),
        ).fetchone()
    finally:
        store.close()
    assert outcomes == {forged.id: "future", ahead.id: "credited"}
    assert journal_days == 0  # no journal row dated tomorrow
