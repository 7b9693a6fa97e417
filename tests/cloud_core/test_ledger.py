"""The ledger against a simple model, under hypothesis-generated sequences of operations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud_core import ledger
from cloud_core.errors import InsufficientPoints, InvalidInput
from cloud_core.store import open_store

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
CUSTOMERS = ("c1", "c2")
POCKETS = ("mall", "bean-bar", "shoe-hub")


BOTH_BACKENDS = True  # every test here runs on SQLite and on PostgreSQL (conftest.py)


@pytest.fixture
def store(database):
    s = open_store(database)
    yield s
    s.close()


def test_spend_draws_earliest_expiring_lots_first(store):
    with store.transaction() as conn:
        ledger.grant(
            conn, customer="c1", pocket="bean-bar", points=10, reason="visit", idem_key="g1", now=T0
        )  # never expires
        ledger.grant(
            conn,
            customer="c1",
            pocket="bean-bar",
            points=5,
            reason="visit",
            idem_key="g2",
            now=T0,
            expires_at=T0 + timedelta(hours=2),
        )
        ledger.grant(
            conn,
            customer="c1",
            pocket="bean-bar",
            points=5,
            reason="visit",
            idem_key="g3",
            now=T0,
            expires_at=T0 + timedelta(hours=1),
        )
        result = ledger.spend(
            conn, customer="c1", pocket="bean-bar", points=7, idem_key="s1", now=T0
        )
    assert [c.delta for c in result.changes] == [-5, -2]  # the 1 h lot, then the 2 h lot
    with store.read() as conn:
        lots = conn.execute("SELECT granted, remaining FROM lots ORDER BY id").fetchall()
        assert [tuple(r) for r in lots] == [(10, 10), (5, 3), (5, 0)]
        assert ledger.check_invariants(conn) == []


def test_points_of_one_pocket_cannot_be_spent_in_another(store):
    with store.transaction() as conn:
        ledger.grant(
            conn, customer="c1", pocket="bean-bar", points=10, reason="visit", idem_key="g1", now=T0
        )
    with pytest.raises(InsufficientPoints), store.transaction() as conn:
        ledger.spend(conn, customer="c1", pocket="shoe-hub", points=1, idem_key="s1", now=T0)
    with store.read() as conn:
        assert [(b.pocket, b.available) for b in ledger.balances(conn, "c1", T0)] == [
            ("bean-bar", 10)
        ]


def test_expired_points_cannot_be_spent_and_the_job_journals_them(store):
    with store.transaction() as conn:
        ledger.grant(
            conn,
            customer="c1",
            pocket="bean-bar",
            points=10,
            reason="visit",
            idem_key="g1",
            now=T0,
            expires_at=T0 + timedelta(hours=1),
        )
    later = T0 + timedelta(hours=1)
    with pytest.raises(InsufficientPoints), store.transaction() as conn:
        ledger.spend(conn, customer="c1", pocket="bean-bar", points=1, idem_key="s1", now=later)
    with store.transaction() as conn:
        changes = ledger.expire_due(conn, later)
        again = ledger.expire_due(conn, later)
    assert [(c.delta, c.reason) for c in changes] == [(-10, "expiry")] and again == []
    with store.read() as conn:
        [entry, grant] = ledger.history(conn, "c1")
        assert (entry["kind"], entry["delta"], grant["delta"]) == ("expire", -10, 10)
        assert ledger.check_invariants(conn) == []


def test_idempotency_keys_and_daily_limits(store):
    kwargs = {
        "customer": "c1",
        "pocket": "mall",
        "points": 20,
        "reason": "parking",
        "now": T0,
        "rule": "parking-entry",
        "day": "2026-11-23",
        "max_per_day": 1,
    }
    with store.transaction() as conn:
        first = ledger.grant_limited(conn, idem_key="park:e1", **kwargs)  # type: ignore[arg-type]
        dup = ledger.grant_limited(conn, idem_key="park:e1", **kwargs)  # type: ignore[arg-type]
        second = ledger.grant_limited(conn, idem_key="park:e2", **kwargs)  # type: ignore[arg-type]
        next_day = ledger.grant_limited(
            conn,
            idem_key="park:e3",
            **{**kwargs, "day": "2026-11-24"},  # type: ignore[arg-type]
        )
    assert [r.outcome for r in (first, dup, second, next_day)] == [
        "granted",
        "duplicate",
        "limit",
        "granted",
    ]
    with store.read() as conn:
        assert sum(b.balance for b in ledger.balances(conn, "c1", T0)) == 40


def test_bad_amounts_and_keys_are_refused(store):
    with store.transaction() as conn:
        with pytest.raises(InvalidInput):
            ledger.grant(
                conn, customer="c1", pocket="mall", points=0, reason="visit", idem_key="g", now=T0
            )
        with pytest.raises(InvalidInput):
            ledger.grant(
                conn, customer="c1", pocket="mall", points=5, reason="visit", idem_key="", now=T0
            )
        with pytest.raises(InvalidInput):
            ledger.spend(conn, customer="c1", pocket="mall", points=-1, idem_key="s", now=T0)
    with store.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0] == 0


# --- the model --------------------------------------------------------------------------


@dataclass
class Lot:
    customer: str
    pocket: str
    remaining: int
    expires: datetime | None
    order: int


grant_op = st.tuples(
    st.just("grant"),
    st.sampled_from(CUSTOMERS),
    st.sampled_from(POCKETS),
    st.integers(1, 50),
    st.one_of(st.none(), st.integers(1, 180)),  # expiry in minutes from now
    st.integers(0, 15),  # key: small range, so duplicates happen
)
spend_op = st.tuples(
    st.just("spend"),
    st.sampled_from(CUSTOMERS),
    st.sampled_from(POCKETS),
    st.integers(1, 80),
    st.none(),
    st.integers(0, 15),
)
tick_op = st.tuples(st.just("tick"), st.none(), st.none(), st.integers(1, 90), st.none(), st.none())
expire_op = st.tuples(st.just("expire"), st.none(), st.none(), st.none(), st.none(), st.none())
operations = st.lists(st.one_of(grant_op, spend_op, tick_op, expire_op), min_size=1, max_size=40)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(ops=operations)
def test_ledger_matches_the_model_and_keeps_its_invariants(new_database, ops):
    store = open_store(new_database())
    try:
        _run_model(store, ops)
    finally:
        store.close()


def _run_model(store, ops):  # noqa: PLR0912 - one branch per operation, kept together
    now = T0
    lots: list[Lot] = []
    used_keys: set[str] = set()
    for op, customer, pocket, amount, expiry, key in ops:
        if op == "tick":
            now += timedelta(minutes=amount)
            continue
        if op == "expire":
            with store.transaction() as conn:
                ledger.expire_due(conn, now)
            for lot in lots:
                if lot.expires is not None and lot.expires <= now:
                    lot.remaining = 0
            continue
        idem = f"{op}:{key}"
        with store.transaction() as conn:
            if op == "grant":
                expires = now + timedelta(minutes=expiry) if expiry is not None else None
                result = ledger.grant(
                    conn,
                    customer=customer,
                    pocket=pocket,
                    points=amount,
                    reason="visit",
                    idem_key=idem,
                    now=now,
                    expires_at=expires,
                )
                if idem in used_keys:
                    assert result.outcome == "duplicate"
                else:
                    assert result.outcome == "granted"
                    used_keys.add(idem)
                    lots.append(Lot(customer, pocket, amount, expires, len(lots)))
            else:
                spendable = sorted(
                    (
                        lot
                        for lot in lots
                        if lot.customer == customer
                        and lot.pocket == pocket
                        and lot.remaining > 0
                        and (lot.expires is None or lot.expires > now)
                    ),
                    key=lambda lot: (lot.expires is None, lot.expires or now, lot.order),
                )
                if idem in used_keys:
                    assert (
                        ledger.spend(
                            conn,
                            customer=customer,
                            pocket=pocket,
                            points=amount,
                            idem_key=idem,
                            now=now,
                        ).outcome
                        == "duplicate"
                    )
                elif sum(lot.remaining for lot in spendable) < amount:
                    with pytest.raises(InsufficientPoints):
                        ledger.spend(
                            conn,
                            customer=customer,
                            pocket=pocket,
                            points=amount,
                            idem_key=idem,
                            now=now,
                        )
                else:
                    ledger.spend(
                        conn,
                        customer=customer,
                        pocket=pocket,
                        points=amount,
                        idem_key=idem,
                        now=now,
                    )
                    used_keys.add(idem)
                    left = amount
                    for lot in spendable:
                        take = min(left, lot.remaining)
                        lot.remaining -= take
                        left -= take
        with store.read() as conn:
            assert ledger.check_invariants(conn) == []
            for c in CUSTOMERS:
                got = {b.pocket: b.balance for b in ledger.balances(conn, c, now)}
                want: dict[str, int] = {}
                for lot in lots:
                    if lot.customer == c:
                        want[lot.pocket] = want.get(lot.pocket, 0) + lot.remaining
                assert got == want
                assert all(v >= 0 for v in got.values())
