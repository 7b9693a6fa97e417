"""``credit``: the one way rules grant points — a grant and its notice, or neither."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cloud_core import customers, ledger
from cloud_core.rules.credit import DailyLimit, credit
from cloud_core.store import open_store
from mallnet.wire.payloads import CreditNotice

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


BOTH_BACKENDS = True  # every test here runs on SQLite and on PostgreSQL (conftest.py)


@pytest.fixture
def store(database):
    store = open_store(database)
    yield store
    store.close()


def test_a_credit_grants_and_makes_its_notice_once_per_key(store):
    with store.transaction() as conn:
        ann, _ = customers.register_customer(conn, "+44 7911 123001", default_region="GB")
        first = credit(
            conn,
            customer=ann,
            pocket="bean-bar",
            points=10,
            reason="visit",
            idem_key="visit:e1",
            now=NOW,
            text="+10 points at Bean Bar",
        )
        again = credit(
            conn,
            customer=ann,
            pocket="bean-bar",
            points=10,
            reason="visit",
            idem_key="visit:e1",
            now=NOW,
            text="+10 points at Bean Bar",
        )
        balances = {b.pocket: b.balance for b in ledger.balances(conn, ann, NOW)}
    assert first.granted and first.notice is not None
    assert first.notice.customer == ann
    message = first.notice.message
    assert isinstance(message, CreditNotice)
    assert (message.points, message.pocket, message.text) == (
        10,
        "bean-bar",
        "+10 points at Bean Bar",
    )
    assert not again.granted and again.notice is None
    assert again.result.outcome == "duplicate"
    assert balances == {"bean-bar": 10}


def test_a_daily_limit_stops_the_grant_and_its_notice(store):
    limit = DailyLimit("parking-entry", "2026-11-23", max_per_day=1)
    with store.transaction() as conn:
        ann, _ = customers.register_customer(conn, "+44 7911 123001", default_region="GB")
        results = [
            credit(
                conn,
                customer=ann,
                pocket=ledger.COALITION,
                points=5,
                reason="parking",
                idem_key=f"parking:e{n}",
                now=NOW,
                text="+5 points: welcome",
                limit=limit,
            )
            for n in (1, 2)
        ]
    assert [r.result.outcome for r in results] == ["granted", "limit"]
    assert [r.notice is not None for r in results] == [True, False]
