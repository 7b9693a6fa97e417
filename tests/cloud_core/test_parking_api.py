"""Parking over the HTTP API (real uvicorn, httpx): coupons, sessions, occupancy, erasure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from cloud_core import customers
from cloud_core.app import CoreApp
from cloud_core.parking_codes import make_validation_code
from cloud_core.rules.parking import ParkingRules
from cloud_core.store import open_store
from tests.cloud_core.helpers import serve_api
from tests.cloud_core.parking_helpers import PARKING, T0, Gate

KEYS = {
    "admin": "k-admin-0123456789abcdef",
    "kiosk": "k-kiosk-0123456789abcdef",
    "cinema": "k-cinema-0123456789abcdef",
    "food": "k-food-court-0123456789abcdef",
}


@pytest.fixture
def api(tmp_path) -> Iterator[tuple[httpx.Client, CoreApp]]:
    with serve_api(
        tmp_path,
        [
            {"name": "office", "role": "admin", "key": KEYS["admin"]},
            {"name": "atrium", "role": "kiosk", "key": KEYS["kiosk"]},
            {
                "name": "cinema",
                "role": "tenant",
                "business": "cinema",
                "key": KEYS["cinema"],
            },
            {"name": "food", "role": "tenant", "business": "food-court", "key": KEYS["food"]},
        ],
        parking=PARKING,
    ) as served:
        yield served


def h(who: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[who]}


def park(app: CoreApp, *events) -> ParkingRules:
    assert app.config.parking is not None
    rules = ParkingRules(app.config.parking, ZoneInfo("UTC"), app.config.mall)
    store = open_store(app.config.database)
    try:
        for event in events:
            with store.transaction() as conn:
                rules.apply(conn, node="gate-north", event=event)
    finally:
        store.close()
    return rules


def test_coupons_sessions_occupancy_and_erasure(api):
    client, app = api
    store = open_store(app.config.database)
    try:
        with store.transaction() as conn:
            customer, _ = customers.register_customer(conn, "+44 7911 123801", default_region="GB")
            customers.attach_vehicle(conn, customer, "KA1234TX", "UA", T0)
    finally:
        store.close()
    gate = Gate()
    rules = park(app, gate.event("KA1234TX"), gate.event("XX5555XX", at=T0 + timedelta(minutes=1)))
    key = rules.settings.validation_key()
    made = client.post(
        "/parking/codes",
        headers=h("cinema"),
        json={"business": "cinema", "minutes": 180, "serials": ["A0001"]},
    )
    assert made.status_code == 200
    (code,) = made.json()["codes"]
    assert code == make_validation_code(key, "cinema", "A0001", 180)
    assert (
        client.post(
            "/parking/codes",
            headers=h("cinema"),
            json={"business": "bowling", "minutes": 60, "serials": ["X"]},
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/parking/codes",
            headers=h("admin"),
            json={"business": "cinema", "minutes": 60, "serials": ["no/slash"]},
        ).status_code
        == 422
    )

    ok = client.post(
        "/parking/validations", json={"code": code, "customer": customer}, headers=h("cinema")
    )
    assert ok.status_code == 200 and ok.json() == {"outcome": "validated", "minutes": 180}
    again = client.post(
        "/parking/validations", json={"code": code, "customer": customer}, headers=h("kiosk")
    )
    assert again.json()["outcome"] == "used"
    by_plate = client.post(
        "/parking/validations",
        json={"code": make_validation_code(key, "cinema", "A0002", 60), "plate": "XX 5555 XX"},
        headers=h("cinema"),
    )
    assert by_plate.json() == {"outcome": "validated", "minutes": 60}
    other = make_validation_code(key, "bowling", "B1", 60)
    refused = client.post(
        "/parking/validations", json={"code": other, "customer": customer}, headers=h("cinema")
    )
    assert refused.status_code == 403  # a tenant redeems only its own codes
    both = client.post(
        "/parking/validations",
        json={"code": code, "customer": customer, "plate": "KA1234TX"},
        headers=h("admin"),
    )
    assert both.status_code == 422

    sessions = client.get(f"/parking/customers/{customer}/sessions", headers=h("kiosk"))
    assert sessions.status_code == 200
    (session,) = sessions.json()
    assert (session["car_park"], session["status"], session["free_minutes"]) == ("p1", "open", 180)
    assert (
        client.get(f"/parking/customers/{customer}/sessions", headers=h("cinema")).status_code
        == 403
    )

    occupancy = client.get("/parking/car-parks/p1/occupancy", headers=h("admin"))
    assert [p["occupied"] for p in occupancy.json()] == [1, 2]
    assert client.get("/parking/car-parks/nope/occupancy", headers=h("admin")).status_code == 404

    erased = client.delete(f"/customers/{customer}", headers=h("admin"))
    assert erased.status_code == 200 and erased.json()["removed"]["parking_sessions"] == 1
    store = open_store(app.config.database)
    try:
        left = store.conn.execute(
            "SELECT COUNT(*) FROM parking_sessions WHERE customer_id = ?", (customer,)
        ).fetchone()[0]
    finally:
        store.close()
    assert left == 0


def test_a_tenant_with_a_hyphen_redeems_its_own_codes(api):
    client, app = api
    store = open_store(app.config.database)
    try:
        with store.transaction() as conn:
            customer, _ = customers.register_customer(conn, "+44 7911 123802", default_region="GB")
            customers.attach_vehicle(conn, customer, "KA5678TX", "UA", T0)
    finally:
        store.close()
    park(app, Gate().event("KA5678TX"))
    made = client.post(
        "/parking/codes",
        headers=h("food"),
        json={"business": "food-court", "minutes": 60, "serials": ["F0001", "F0002"]},
    )
    assert made.status_code == 200
    first, second = made.json()["codes"]
    assert first.startswith("P60-food-court-F0001-")
    ok = client.post(
        "/parking/validations", json={"code": first, "customer": customer}, headers=h("food")
    )
    assert ok.status_code == 200 and ok.json() == {"outcome": "validated", "minutes": 60}
    # another tenant still may not redeem it, and a malformed code is invalid, not a 403
    other = client.post(
        "/parking/validations", json={"code": second, "customer": customer}, headers=h("cinema")
    )
    assert other.status_code == 403
    junk = client.post(
        "/parking/validations",
        json={"code": "P60-food-court-F0001", "customer": customer},
        headers=h("food"),
    )
    assert junk.status_code == 200 and junk.json()["outcome"] == "invalid"


def test_the_admin_creates_the_malls_own_campaigns_for_car_parks_and_zones(api):
    client, _ = api
    window = {"starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-31T00:00:00Z"}
    mall_wide = {"id": "park-and-shop", "business": "mall", "title": "t", "text": "x", **window}
    r = client.post("/campaigns", json={**mall_wide, "zones": ["parking"]}, headers=h("admin"))
    assert r.status_code == 201, r.text
    assert (r.json()["business"], r.json()["zones"]) == ("mall", ["parking"])
    named = {**mall_wide, "id": "north-park", "stores": ["p1", "bean-bar-l1"]}
    r = client.post("/campaigns", json=named, headers=h("admin"))
    assert r.status_code == 201, r.text
    assert client.post("/campaigns", json=mall_wide, headers=h("food")).status_code == 403
