"""Mutual settlements through the real API: who owes whom when coalition points funded by
one partner (or the mall) are spent at another, with the mall's commission; the report's
sums equal the journal to the cent; a closed period is frozen."""

from __future__ import annotations

import csv
import io

import pytest

from cloud_core.store import open_store
from tests.cloud_core.api_helpers import h, register
from tests.cloud_core.terminal_helpers import grant, later, serve_terminal, tk


@pytest.fixture
def till(tmp_path):
    with serve_terminal(tmp_path) as served:
        yield served


def redeem(client, customer, receipt, order, points, *, till="pizza"):
    r = client.post(
        "/terminal/holds",
        json={
            "customer": customer,
            "receipt": receipt,
            "order_cents": order,
            "coalition_points": points,
        },
        headers=tk(till),
    )
    assert r.status_code == 201, r.text
    r = client.post(f"/terminal/holds/{r.json()['id']}/commit", headers=tk(till))
    assert r.status_code == 200, r.text


def journal_owed(app) -> dict[tuple[str, str], int]:
    """From the ledger itself: coalition points redeemed (net of refunds) per funder and the
    business they were spent at — what the settlement report must add up to."""
    store = open_store(app.config.database)
    try:
        rows = store.conn.execute(
            "SELECT p.funder, h.business, SUM(CASE WHEN h.status = 'committed'"
            " THEN p.points ELSE 0 END) AS owed FROM hold_parts p JOIN holds h ON h.id = p.hold_id"
            " WHERE p.pocket = 'mall' AND p.funder != h.business GROUP BY p.funder, h.business"
        ).fetchall()
    finally:
        store.close()
    return {(r["funder"], r["business"]): int(r["owed"]) for r in rows if r["owed"]}


def test_who_owes_whom_with_commission_and_sums_equal_the_journal(till):
    client, app = till
    ann = register(client)
    grant(app, ann, "mall", 515)  # the mall's parking bonus (and some)
    # Bean Bar's coalition cashback (10 % of 30 €), funded by Bean Bar ("Magnet")
    r = client.post(
        "/terminal/purchases",
        json={"customer": ann, "receipt": "B-1", "amount_cents": 3000},
        headers=tk("bean"),
    )
    assert r.json()["cashback_points"] == 300 and r.json()["cashback_pocket"] == "mall"
    # The parking points expire never; the cashback in a year: so the cashback goes first.
    redeem(client, ann, "P-1", 4000, 450)  # 300 Bean Bar's + 150 the mall's
    redeem(client, ann, "P-2", 1000, 150)  # the mall's
    redeem(client, ann, "B-2", 2000, 200, till="bean")  # the mall's, spent at Bean Bar
    # a refunded redemption leaves nothing owed
    redeem(client, ann, "P-3", 100, 15)
    assert (
        client.post("/terminal/refunds", json={"receipt": "P-3"}, headers=tk("pizza")).status_code
        == 200
    )
    rep = client.get("/settlements/2026-11", headers=h("admin")).json()
    lines = {(x["payer"], x["payee"]): x for x in rep["lines"]}
    assert {k: v["amount_cents"] for k, v in lines.items()} == {
        ("bean-bar", "pizzeria"): 300,
        ("mall", "bean-bar"): 200,
        ("mall", "pizzeria"): 300,
    }
    assert lines[("bean-bar", "pizzeria")]["commission_cents"] == 60  # 20 % to the mall
    assert lines[("mall", "pizzeria")]["commission_cents"] == 0
    assert {k: v for k, v in journal_owed(app).items()} == {
        k: v["amount_cents"] for k, v in lines.items()
    }
    assert rep["total_cents"] == 800 and rep["commission_cents"] == 60
    partners = {p["partner"]: p for p in rep["partners"]}
    assert partners["pizzeria"]["net_cents"] == 600
    assert partners["bean-bar"]["net_cents"] == 200 - 300 - 60
    assert partners["mall"]["net_cents"] == 60 - 500
    assert sum(p["net_cents"] for p in rep["partners"]) == 0
    # the CSV says the same, to the cent
    text = client.get("/settlements/2026-11/csv", headers=h("admin"))
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    assert {(r["payer"], r["payee"]): int(r["amount_cents"]) for r in rows[:-1]} == {
        k: v["amount_cents"] for k, v in lines.items()
    }
    assert rows[-1]["payer"] == "TOTAL" and int(rows[-1]["amount_cents"]) == 800
    # a tenant sees its own lines only
    mine = client.get("/settlements/2026-11", headers=h("bean")).json()
    assert {(x["payer"], x["payee"]) for x in mine["lines"]} == {
        ("bean-bar", "pizzeria"),
        ("mall", "bean-bar"),
    }
    assert [p["partner"] for p in mine["partners"]] == ["bean-bar"]
    assert client.get("/settlements/2026-11", headers=h("kiosk")).status_code == 403


def test_closing_a_period_freezes_it(till):
    client, app = till
    ann = register(client)
    grant(app, ann, "mall", 1000)
    redeem(client, ann, "P-1", 4000, 600)
    r = client.post("/settlements/2026-11/close", headers=h("admin"))
    assert r.status_code == 409 and "not over" in r.json()["detail"]
    later(app, 40 * 86_400)  # into January
    closed = client.post("/settlements/2026-11/close", headers=h("admin"))
    assert closed.status_code == 200 and closed.json()["closed"] is True
    assert client.post("/settlements/2026-11/close", headers=h("admin")).status_code == 409
    # a refund after the close is settled in the open period; the closed one does not move
    assert (
        client.post("/terminal/refunds", json={"receipt": "P-1"}, headers=tk("pizza")).status_code
        == 200
    )
    frozen = client.get("/settlements/2026-11", headers=h("admin")).json()
    assert frozen == closed.json() and frozen["total_cents"] == 600
    now = client.get("/settlements/2027-01", headers=h("admin")).json()
    assert now["closed"] is False and now["total_cents"] == -600
    assert client.post("/settlements/2026-11/close", headers=h("bean")).status_code == 403
    assert client.get("/settlements/2026-13", headers=h("admin")).status_code == 422
