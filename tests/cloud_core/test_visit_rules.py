"""Visit rules at the ingest seam (``Applier``) under hypothesis-generated event sequences:
cooldowns, daily caps, the game, expiry and pocket isolation hold in any arrival order, and a
customer's presences (tags rotating every 600 s) join into the same stays whatever the order."""

from __future__ import annotations

import itertools
import tempfile
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cloud_core import customers as customer_store
from cloud_core import ledger, offers
from cloud_core.ingest import Applier
from cloud_core.store import DatabaseTarget, open_store
from mallnet.mqtt import Inbound
from mallnet.wire import encode
from mallnet.wire.topics import PRESENCE
from tests.cloud_core.helpers import START, Clock, Walker, key_of, make_config
from tests.conftest import MALL

NODES = ("store-1", "store-1b", "store-2", "store-3")
BUSINESS_OF_STORE = {"bean-bar-l1": "bean-bar", "shoe-hub": "shoe-hub", "book-nook": "book-nook"}
HORIZON_MIN = 36 * 60
CAP_PERIOD_S = 4 * 3600  # the campaign: at most 2 offers per customer in any 4 hours

event_spec = st.tuples(
    st.integers(1, 2),  # customer
    st.sampled_from(NODES),
    # minutes after START (10:00 UTC): clustered hours, so cooldowns and caps are exercised,
    # spread over two calendar days
    st.builds(
        lambda h, m: h * 60 + m, st.sampled_from([0, 1, 2, 6, 13, 14, 15, 30]), st.integers(0, 59)
    ),
    st.sampled_from([0.0, 30.0, 50.0, 60.0, 240.0]),  # inside_s
)
STORE_OF_NODE = {
    "store-1": "bean-bar-l1",
    "store-1b": "bean-bar-l1",
    "store-2": "shoe-hub",
    "store-3": "book-nook",
}
JOIN_GAP_S = 120.0
MIN_DWELL_S = 60.0


BOTH_BACKENDS = True  # runs on SQLite and on PostgreSQL (conftest.py)


def _setup(tmp: Path, database: DatabaseTarget):
    config = make_config(
        tmp,
        database=database,
        visits={"points": 10, "min_dwell_s": 60, "cooldown_s": 3600, "daily_cap": 25},
        game={"stores": 3, "points": 50},
        stores=[
            {
                "id": "bean-bar-l1",
                "name": "Bean Bar",
                "business": "bean-bar",
                "nodes": ["store-1", "store-1b"],
                "visits": {"expiry": "end_of_day", "cooldown_s": 1200, "daily_cap": 40},
            },
            {
                "id": "shoe-hub",
                "name": "Shoe Hub",
                "business": "shoe-hub",
                "nodes": ["store-2"],
                "visits": {"points": 20},
            },
            {"id": "book-nook", "name": "Book Nook", "business": "book-nook", "nodes": ["store-3"]},
        ],
    )
    store = open_store(config.database)
    customers = {}
    with store.transaction() as conn:
        for n in (1, 2, 3):
            cid, _ = customer_store.register_customer(
                conn, f"+44 7911 12300{n}", default_region="GB"
            )
            customer_store.attach_beacon_key(conn, cid, key_of(n).hex())
            customers[n] = cid
        offers.create_campaign(
            conn,
            offers.Campaign(
                id="cocoa",
                business="bean-bar",
                title="Cocoa",
                text="x",
                image_url=None,
                starts_at=datetime.fromtimestamp(START - 86400, UTC),
                ends_at=datetime.fromtimestamp(START + 7 * 86400, UTC),
                stores=(),
                zones=(),
                segment="all",
                cap_count=2,
                cap_period_s=CAP_PERIOD_S,
            ),
            {s.id: s for s in config.stores},
            datetime.fromtimestamp(START, UTC),
        )
    return config, store, customers


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(specs=st.lists(event_spec, min_size=1, max_size=30), batch=st.integers(1, 5))
# a shopper back every 30 minutes: the campaign's cap, cooldown and daily cap all bite
@example(specs=[(1, "store-1", m, 240.0) for m in (0, 30, 60, 90, 120)], batch=2)
# a stay across a tag rotation (10:10), seen by both Bean Bar nodes, arriving late piece first:
# 50 s + 50 s, each short alone
@example(specs=[(1, "store-1b", 11, 50.0), (1, "store-1", 9, 50.0)], batch=1)
def test_cooldowns_caps_game_expiry_and_pockets_hold(new_database, specs, batch):
    with tempfile.TemporaryDirectory() as tmp:
        config, store, customers = _setup(Path(tmp), new_database())
        try:
            _check(config, store, customers, specs, batch)
        finally:
            store.close()


def _messages(specs) -> list[Inbound]:
    walkers = {node: Walker(node) for node in NODES}
    out = []
    for who, node, minute, inside in specs:
        walker = walkers[node]
        event = walker.event(key_of(who), START + minute * 60, "dwell", inside)
        out.append(Inbound(PRESENCE.topic(MALL, node), encode(walker.batch([event])), 1, False, 0))
    return out


def _stays(specs) -> dict[tuple[int, str], list[tuple[float, float]]]:
    """The model: each customer's time per store, pieces within the join gap merged."""
    pieces = defaultdict(list)
    for who, node, minute, inside in specs:
        end = START + minute * 60
        pieces[(who, STORE_OF_NODE[node])].append((end - inside, end))
    stays: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for pair, intervals in pieces.items():
        merged: list[list[float]] = []
        for lo, hi in sorted(intervals):
            if merged and lo <= merged[-1][1] + JOIN_GAP_S:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        stays[pair] = [(lo, hi) for lo, hi in merged]
    return stays


def _check_stays(conn, customers, specs, visits, cooldown) -> None:
    """The stored stays are the model's (so independent of the arrival order); every stay
    long enough has a visit within the cooldown, and every visit lies in a long enough stay."""
    who_of = {cid: n for n, cid in customers.items()}
    stored: defaultdict[tuple[int, str], list[tuple[float, float]]] = defaultdict(list)
    for row in conn.execute(
        "SELECT customer_id, store, start_epoch, end_epoch FROM presence_segments"
        " ORDER BY start_epoch"
    ):
        stored[(who_of[row[0]], row[1])].append((row[2], row[3]))
    stays = _stays(specs)
    assert dict(stored) == stays
    for (who, store_id), pieces in stays.items():
        mine = [
            v["ts_epoch"]
            for v in visits
            if v["customer_id"] == customers[who] and v["store"] == store_id
        ]
        for lo, hi in pieces:
            if hi - lo >= MIN_DWELL_S:  # not lost: credited, capped, or in another's cooldown
                near = cooldown[store_id]
                assert any(lo - near <= t <= hi + near for t in mine), (who, store_id, lo, hi)
        for t in mine:
            assert any(lo <= t <= hi and hi - lo >= MIN_DWELL_S for lo, hi in pieces)


def _check_offers(conn, visits) -> None:
    """Never more than the campaign's cap in any window of its period, only on Bean Bar
    visits, and one delivery per delivering event."""
    deliveries = defaultdict(list)
    bean_bar_events = {v["event_id"] for v in visits if v["store"] == "bean-bar-l1"}
    for row in conn.execute("SELECT customer_id, ts_epoch, event_id FROM deliveries"):
        deliveries[row[0]].append(row[1])
        assert row[2] in bean_bar_events
    for times in deliveries.values():
        times.sort()
        for i, start in enumerate(times):
            assert sum(1 for t in times[i:] if t < start + CAP_PERIOD_S) <= 2


def _check(config, store, customers, specs, batch):
    clock = Clock(START + HORIZON_MIN * 60)
    applier = Applier(config, store, clock)
    messages = _messages(specs)
    for start in range(0, len(messages), batch):
        applier.apply(messages[start : start + batch])
    long_enough = sum(1 for _, _, _, inside in specs if inside >= MIN_DWELL_S)
    counts = applier.counters
    judged = counts["credited"] + counts["capped"] + counts["cooldown"]
    assert judged + counts["short"] == len(specs)
    assert judged >= long_enough  # joined pieces may qualify where each alone is short

    conn = store.conn
    visits = conn.execute("SELECT * FROM visits ORDER BY ts_epoch").fetchall()
    by_pair = defaultdict(list)
    per_day: defaultdict[tuple[str, str, str], int] = defaultdict(int)
    stores_per_day = defaultdict(set)
    for v in visits:
        by_pair[(v["customer_id"], v["store"])].append(v["ts_epoch"])
        per_day[(v["customer_id"], v["business"], v["day"])] += v["points"]
        stores_per_day[(v["customer_id"], v["day"])].add(v["store"])
        assert BUSINESS_OF_STORE[v["store"]] == v["business"]
    cooldown = {"bean-bar-l1": 1200, "shoe-hub": 3600, "book-nook": 3600}
    daily_cap = {"bean-bar": 40, "shoe-hub": 25, "book-nook": 25}
    for (_, store_id), times in by_pair.items():  # cooldown, whichever node and arrival order
        assert all(b - a >= cooldown[store_id] for a, b in itertools.pairwise(times))
    for (_, business, _), earned in per_day.items():  # daily cap per business
        assert earned <= daily_cap[business]
    _check_stays(conn, customers, specs, visits, cooldown)

    # pocket isolation: each business pocket holds exactly its stores' visit points
    for customer in customers.values():
        granted = defaultdict(int)
        for row in conn.execute(
            "SELECT pocket, reason, SUM(delta) FROM journal WHERE customer_id = ? AND kind ="
            " 'grant' GROUP BY pocket, reason",
            (customer,),
        ):
            granted[(row[0], row[1])] = row[2]
        for business in BUSINESS_OF_STORE.values():
            want = sum(p for (c, b, _), p in per_day.items() if c == customer and b == business)
            assert granted.get((business, "visit"), 0) == want
        days_won = sum(1 for (c, _), s in stores_per_day.items() if c == customer and len(s) >= 3)
        assert granted.get(("mall", "game"), 0) == 50 * days_won  # once per day at most
        assert set(pocket for pocket, _ in granted) <= {*BUSINESS_OF_STORE.values(), "mall"}
    assert ledger.check_invariants(conn) == []

    _check_offers(conn, visits)

    # the same events again (a replayed outbox) change nothing
    before = conn.execute("SELECT COUNT(*), COALESCE(SUM(delta), 0) FROM journal").fetchone()
    applier.apply(messages)
    assert tuple(
        conn.execute("SELECT COUNT(*), COALESCE(SUM(delta), 0) FROM journal").fetchone()
    ) == tuple(before)

    # expiry: every Bean Bar point ("spend them here today") is gone after the last day
    clock.set(START + (HORIZON_MIN + 2 * 24 * 60) * 60)
    applier.jobs.expire()
    after = datetime.fromtimestamp(clock(), UTC)
    for customer in customers.values():
        pockets = {b.pocket: b for b in ledger.balances(conn, customer, after)}
        if "bean-bar" in pockets:
            assert pockets["bean-bar"].balance == 0
        for business in ("shoe-hub", "book-nook"):
            want = sum(p for (c, b, _), p in per_day.items() if c == customer and b == business)
            assert (pockets[business].balance if business in pockets else 0) == want
    assert ledger.check_invariants(conn) == []
