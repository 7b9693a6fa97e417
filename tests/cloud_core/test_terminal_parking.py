"""A partner's till purchase validates the shopper's car park (issue 12, coalition schemes:
"a partner purchase or a cinema ticket grants free parking"), through the free-parking codes
the partners already use: real core, uvicorn and HTTP."""

from __future__ import annotations

from cloud_core import customers
from cloud_core.store import open_store
from tests.cloud_core.parking_helpers import PARKING, Gate
from tests.cloud_core.terminal_helpers import serve_terminal, tk
from tests.cloud_core.test_parking_api import park

RULE = {"business": "pizzeria", "minutes": 120, "min_amount_cents": 1000}


def _free_minutes(app, customer: str) -> list[int]:
    store = open_store(app.config.database)
    try:
        with store.read() as conn:
            rows = conn.execute(
                "SELECT free_minutes FROM parking_sessions WHERE customer_id = ?", (customer,)
            ).fetchall()
    finally:
        store.close()
    return [int(r["free_minutes"]) for r in rows]


def buy(client, customer: str, receipt: str, cents: int, *, till: str = "pizza", key=None):
    r = client.post(
        "/terminal/purchases",
        json={"customer": customer, "receipt": receipt, "amount_cents": cents},
        headers=tk(till, key),
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_a_partner_purchase_gives_the_driver_free_minutes_once(tmp_path) -> None:
    with serve_terminal(tmp_path, parking={**PARKING, "purchase_validations": [RULE]}) as (
        client,
        app,
    ):
        store = open_store(app.config.database)
        try:
            with store.transaction() as conn:
                ann, _ = customers.register_customer(conn, "+44 7911 123801", default_region="GB")
                customers.attach_vehicle(conn, ann, "KA1234TX", "UA", None)
                bob, _ = customers.register_customer(conn, "+44 7911 123802", default_region="GB")
        finally:
            store.close()
        park(app, Gate().event("KA1234TX"))  # Ann's car enters: an open session
        assert _free_minutes(app, ann) == [0]

        assert buy(client, ann, "R-1", 500)["free_parking_minutes"] == 0  # below the minimum
        first = buy(client, ann, "R-2", 1500, key="k-purchase-r2")
        assert first["free_parking_minutes"] == 120
        assert _free_minutes(app, ann) == [120]
        # the same write again answers the same, and adds nothing
        assert buy(client, ann, "R-2", 1500, key="k-purchase-r2") == first
        assert _free_minutes(app, ann) == [120]
        # another purchase is another validation
        assert buy(client, ann, "R-3", 2000)["free_parking_minutes"] == 120
        assert _free_minutes(app, ann) == [240]
        # no rule for Bean Bar; no car inside for Bob
        assert buy(client, ann, "B-1", 5000, till="bean")["free_parking_minutes"] == 0
        assert buy(client, bob, "R-4", 5000)["free_parking_minutes"] == 0
        assert _free_minutes(app, ann) == [240] and _free_minutes(app, bob) == []
