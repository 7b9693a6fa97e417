"""Coupon series through the real core, uvicorn and HTTP: caps that hold under concurrent
issues, a coupon valid on one given day, coupons bought with points (both or neither),
signed QR payloads redeemed once at the owner's till, forged or altered payloads and other
businesses' tills refused, coalition coupons issued by a purchase elsewhere."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.cloud_core.api_helpers import h
from tests.cloud_core.shopper_helpers import bearer, catch_codes, sign_in
from tests.cloud_core.terminal_helpers import (
    available,
    grant,
    later,
    serve_terminal,
    tk,
)

BOTH_BACKENDS = True  # the tests that take `database` run on SQLite and on PostgreSQL
COUPON_SECRET = "coupon-test-secret-0123456789abcdef"


def phone_register(client: httpx.Client, n: int) -> str:
    r = client.post("/customers", json={"phone": f"07911 12{n:04d}"}, headers=h("kiosk"))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
def served(tmp_path, database):
    coupons = {
        "secret": COUPON_SECRET,
        "coalition": [{"business": "bean-bar", "series": "pizza-thanks", "min_amount_cents": 500}],
    }
    with serve_terminal(tmp_path, database=database, coupons=coupons) as s:
        yield s


def today(app: Any) -> datetime:
    return datetime.fromtimestamp(app.clock(), UTC)


def series(client: httpx.Client, app: Any, **extra: Any) -> dict[str, Any]:
    start = today(app) - timedelta(days=1)
    body: dict[str, Any] = {
        "id": "pizza-free-drink",
        "owner": "pizzeria",
        "title": "A free drink",
        "discount": "one soft drink free with a pizza",
        "emission_start": start.isoformat(),
        "emission_end": (start + timedelta(days=30)).isoformat(),
        "total_cap": 100,
        "per_customer_cap": 1,
        "code_mode": "unique",
        **extra,
    }
    r = client.post("/coupons/series", json=body, headers=h("admin"))
    assert r.status_code == 201, r.text
    return dict(r.json())


def issue(client: httpx.Client, series_id: str, customer: str | None, key: str) -> httpx.Response:
    return client.post(
        f"/coupons/series/{series_id}/coupons",
        json={"customer": customer, "idempotency_key": key},
        headers=h("admin"),
    )


def redeem(client: httpx.Client, till: str = "pizza", key: str | None = None, **body: Any):
    return client.post("/terminal/coupons/redeem", json=body, headers=tk(till, key))


def kind(r: httpx.Response) -> str:
    assert r.headers["content-type"] == "application/problem+json", r.text
    return str(r.json()["type"])


def test_total_and_per_shopper_caps_hold_under_concurrent_issues(served):
    client, app = served
    series(client, app, total_cap=5, per_customer_cap=2)
    shoppers = [phone_register(client, n) for n in range(4)]
    results: list[tuple[str, int, str]] = []
    lock = threading.Lock()
    go = threading.Barrier(16)

    def claim(customer: str, n: int) -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=30) as own:
            go.wait()
            while True:
                r = issue(own, "pizza-free-drink", customer, f"grant-{customer}-{n}")
                if r.status_code != 503:
                    break
        with lock:
            results.append((customer, r.status_code, r.text))

    threads = [threading.Thread(target=claim, args=(c, n)) for c in shoppers for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    issued = [c for c, code, _ in results if code == 201]
    assert len(issued) == 5
    assert max(Counter(issued).values()) <= 2
    refused = [text for _, code, text in results if code != 201]
    assert len(refused) == 11
    assert all("coupons-exhausted" in text for text in refused), refused
    got = client.get("/coupons/series/pizza-free-drink", headers=h("admin")).json()
    assert got["issued"] == 5
    codes = [
        c["code"]
        for s in shoppers
        for c in client.get(f"/customers/{s}/coupons", headers=h("admin")).json()
    ]
    assert len(codes) == 5 and len(set(codes)) == 5  # unique codes


def test_a_coupon_valid_on_one_day_is_refused_before_and_after_it(served):
    client, app = served
    tz = ZoneInfo(app.config.timezone)
    tomorrow = (today(app).astimezone(tz) + timedelta(days=1)).date()
    series(client, app, valid_day=tomorrow.isoformat())
    ann = phone_register(client, 1)
    coupon = issue(client, "pizza-free-drink", ann, "g-1").json()
    assert coupon["valid_day"] == tomorrow.isoformat()

    early = redeem(client, qr=coupon["qr"])
    assert early.status_code == 409 and kind(early) == "urn:mallnet:problem:coupon-not-valid"
    later(app, 86_400)
    used = redeem(client, key="redeem-ann-1", qr=coupon["qr"])
    assert used.status_code == 200, used.text
    assert used.json()["used_store"] == "pizzeria-l2"
    # the same key again: the original answer; another key: used already
    assert redeem(client, key="redeem-ann-1", qr=coupon["qr"]).json() == used.json()
    twice = redeem(client, qr=coupon["qr"])
    assert twice.status_code == 409 and kind(twice) == "urn:mallnet:problem:coupon-used"
    later(app, 86_400)
    second = issue(client, "pizza-free-drink", phone_register(client, 2), "g-2").json()
    late = redeem(client, qr=second["qr"])
    assert late.status_code == 409 and kind(late) == "urn:mallnet:problem:coupon-not-valid"


def test_a_coupon_bought_with_points_takes_both_or_neither(served):
    client, app = served
    series(client, app, price_points=100, per_customer_cap=5)
    ann = phone_register(client, 1)
    grant(app, ann, "mall", 150)
    body = {"customer": ann, "idempotency_key": "kiosk-buy-1"}
    r = client.post("/coupons/series/pizza-free-drink/purchases", json=body, headers=h("kiosk"))
    assert r.status_code == 201, r.text
    assert r.json()["source"] == "points" and r.json()["points"] == 100
    again = client.post("/coupons/series/pizza-free-drink/purchases", json=body, headers=h("kiosk"))
    assert again.status_code == 200 and again.json()["id"] == r.json()["id"]
    assert available(client, ann)["mall"] == 50
    poor = client.post(
        "/coupons/series/pizza-free-drink/purchases",
        json={"customer": ann, "idempotency_key": "kiosk-buy-2"},
        headers=h("kiosk"),
    )
    assert poor.status_code == 409 and kind(poor) == "urn:mallnet:problem:insufficient-points"
    assert available(client, ann)["mall"] == 50
    got = client.get("/coupons/series/pizza-free-drink", headers=h("admin")).json()
    assert got["issued"] == 1  # the refused purchase took no unit of the cap
    assert len(client.get(f"/customers/{ann}/coupons", headers=h("admin")).json()) == 1


def test_forged_or_altered_qr_payloads_and_other_tills_are_refused(served):
    client, app = served
    series(client, app)
    ann, bob = phone_register(client, 1), phone_register(client, 2)
    qr = issue(client, "pizza-free-drink", ann, "g-ann").json()["qr"]
    prefix, coupon_id, holder, signature = qr.split(".")
    assert holder == ann
    forged = [
        f"{prefix}.{coupon_id}.{bob}.{signature}",  # handed to another shopper
        f"{prefix}.{coupon_id}.-.{signature}",  # made a bearer coupon
        f"{prefix}.{coupon_id}.{holder}.{'0' * 32}",  # a made-up signature
        f"{prefix}.{coupon_id}.{holder}.{signature[:-1]}{'a' if signature[-1] != 'a' else 'b'}",
        "C1.nonsense",
    ]
    for payload in forged:
        r = redeem(client, qr=payload)
        assert r.status_code == 422 and kind(r) == "urn:mallnet:problem:coupon-qr", payload
    # the right payload, presented as another shopper's: refused
    r = redeem(client, qr=qr, customer=bob)
    assert r.status_code == 422 and kind(r) == "urn:mallnet:problem:coupon-qr"
    # another business's till
    r = redeem(client, till="bean", qr=qr)
    assert r.status_code == 403 and kind(r) == "urn:mallnet:problem:coupon-other-business"
    ok = redeem(client, qr=qr, customer=ann)
    assert ok.status_code == 200, ok.text
    assert redeem(client, till="pizza2", qr=qr).status_code == 409


def test_a_bearer_coupon_and_a_shared_code(served):
    client, app = served
    series(client, app, id="mall-gift", owner="mall", code_mode="shared", shared_code="XMAS26")
    bearer = issue(client, "mall-gift", None, "bearer-1").json()
    assert bearer["customer"] is None and bearer["qr"].split(".")[2] == "-"
    assert redeem(client, till="bean", qr=bearer["qr"]).status_code == 200  # the mall's: any till
    ann = phone_register(client, 1)
    issue(client, "mall-gift", ann, "g-ann")
    needs = redeem(client, code="XMAS26")
    assert needs.status_code == 422
    assert redeem(client, code="XMAS26", customer=ann).status_code == 200
    assert redeem(client, code="XMAS26", customer=ann).status_code == 409


def test_a_purchase_at_one_business_issues_another_business_coupon(served):
    client, app = served
    series(client, app, id="pizza-thanks", per_customer_cap=3)
    ann = phone_register(client, 1)

    def buy(receipt: str, cents: int) -> None:
        r = client.post(
            "/terminal/purchases",
            json={"customer": ann, "receipt": receipt, "amount_cents": cents},
            headers=tk("bean", f"purchase-{receipt}"),
        )
        assert r.status_code in (200, 201), r.text

    buy("B-1", 1200)
    buy("B-1", 1200)  # the same purchase again (same key): one coupon
    buy("B-2", 300)  # below the rule's minimum
    wallet = client.get(f"/customers/{ann}/coupons", headers=h("admin")).json()
    assert [(c["series"], c["owner"], c["source"]) for c in wallet] == [
        ("pizza-thanks", "pizzeria", "coalition")
    ]
    # the coalition coupon is redeemed at the owner's till
    assert redeem(client, qr=wallet[0]["qr"]).status_code == 200


def test_the_shopper_sees_their_coupons_in_their_own_wallet(served):
    client, app = served
    series(client, app)
    ann = phone_register(client, 7)
    coupon = issue(client, "pizza-free-drink", ann, "g-ann").json()
    with catch_codes() as codes:
        token = sign_in(client, codes, "07911 120007")
    mine = client.get("/me/coupons", headers=bearer(token))
    assert mine.status_code == 200, mine.text
    assert [(c["id"], c["qr"]) for c in mine.json()] == [(coupon["id"], coupon["qr"])]
    assert client.get("/me/coupons").status_code == 401


def test_the_partner_marks_a_coupon_of_its_own_series_used(served):
    client: httpx.Client
    client, app = served
    series(client, app)
    ann = phone_register(client, 1)
    coupon = issue(client, "pizza-free-drink", ann, "g-ann").json()

    def use(who: str, key: str) -> httpx.Response:
        return client.post(
            "/coupons/series/pizza-free-drink/uses",
            json={"code": coupon["code"]},
            headers={**h(who), "Idempotency-Key": key},
        )

    assert use("bean", "use-bean-1").status_code == 404  # another tenant's series
    first = use("shoe", "use-pizza-1")  # the pizzeria's tenant key (terminal_helpers)
    assert first.status_code == 200, first.text
    assert first.json()["used_at"] is not None
    assert use("shoe", "use-pizza-1").json() == first.json()
    again = use("shoe", "use-pizza-2")
    assert again.status_code == 409 and kind(again) == "urn:mallnet:problem:coupon-used"
