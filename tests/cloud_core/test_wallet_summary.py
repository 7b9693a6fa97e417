"""``GET /customers/{id}/wallet/summary`` over real uvicorn: the kiosk's wallet details."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from cloud_core import ledger
from cloud_core.app import CoreApp
from cloud_core.store import open_store
from tests.cloud_core.api_helpers import KEYS, h
from tests.cloud_core.helpers import START, serve_api


@pytest.fixture
def api(tmp_path) -> Iterator[tuple[httpx.Client, CoreApp]]:
    with serve_api(
        tmp_path,
        [
            {"name": "office", "role": "admin", "key": KEYS["admin"]},
            {"name": "atrium", "role": "kiosk", "key": KEYS["kiosk"]},
            {"name": "bean", "role": "tenant", "business": "bean-bar", "key": KEYS["bean"]},
            {"name": "store-1", "role": "node", "node": "store-1", "key": KEYS["node"]},
        ],
    ) as served:
        yield served


def seed(app: CoreApp, customer: str) -> None:
    """Seven credits a day apart (the newest yesterday), some expiring soon, one spend."""
    now = datetime.fromtimestamp(START, UTC)
    store = open_store(app.config.database)
    try:
        with store.transaction() as conn:
            for i in range(7):
                pocket = "mall" if i % 2 else "bean-bar"
                ledger.grant(
                    conn,
                    customer=customer,
                    pocket=pocket,
                    points=10 + i,
                    reason="visit",
                    idem_key=f"seed:{i}",
                    now=now - timedelta(days=7 - i),
                    # i = 0, 1, 2 expire within the week (in 2, 3, 4 days); later ones do not
                    expires_at=now + timedelta(days=2 + i if i < 3 else 30),
                    text=f"credit {i}",
                )
            ledger.spend(
                conn,
                customer=customer,
                pocket="mall",
                points=1,
                idem_key="seed:spend",
                now=now,
                text="coffee",
            )
    finally:
        store.close()


def test_a_kiosk_sees_recent_credits_and_points_expiring_this_week(api):
    client, app = api
    created = client.post("/customers", json={"phone": "07911 123456"}, headers=h("admin"))
    customer = created.json()["id"]
    seed(app, customer)
    now = datetime.fromtimestamp(START, UTC)
    r = client.get(f"/customers/{customer}/wallet/summary", headers=h("kiosk"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["customer"] == customer and body["expiring_days"] == 7
    # the last five credits, newest first; the spend is not a credit
    assert [(c["text"], c["points"], c["pocket"]) for c in body["recent"]] == [
        ("credit 6", 16, "bean-bar"),
        ("credit 5", 15, "mall"),
        ("credit 4", 14, "bean-bar"),
        ("credit 3", 13, "mall"),
        ("credit 2", 12, "bean-bar"),
    ]
    assert set(body["recent"][0]) == {"ts", "pocket", "points", "text"}
    assert datetime.fromisoformat(body["recent"][0]["ts"]) == now - timedelta(days=1)
    # per pocket: points expiring within 7 days and the earliest date
    assert body["expiring"] == [
        {
            "pocket": "bean-bar",
            "points": 10 + 12,
            "earliest": body["expiring"][0]["earliest"],
        },
        {"pocket": "mall", "points": 11 - 1, "earliest": body["expiring"][1]["earliest"]},
    ]
    assert datetime.fromisoformat(body["expiring"][0]["earliest"]) == now + timedelta(days=2)
    assert datetime.fromisoformat(body["expiring"][1]["earliest"]) == now + timedelta(days=3)
    # the admin sees it too; tenants and nodes do not
    assert client.get(f"/customers/{customer}/wallet/summary", headers=h("admin")).json() == body
    for role in ("bean", "node"):
        assert (
            client.get(f"/customers/{customer}/wallet/summary", headers=h(role)).status_code == 403
        )
    missing = client.get("/customers/nobody-here/wallet/summary", headers=h("kiosk"))
    assert missing.status_code == 404


def test_an_empty_wallet_has_an_empty_summary(api):
    client, _ = api
    created = client.post("/customers", json={"phone": "07911 123457"}, headers=h("kiosk"))
    customer = created.json()["id"]
    r = client.get(f"/customers/{customer}/wallet/summary", headers=h("kiosk"))
    assert r.json() == {"customer": customer, "recent": [], "expiring": [], "expiring_days": 7}
