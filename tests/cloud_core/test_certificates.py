"""Paper bonus certificates through the real API: a seller issues one, a shopper's scan
credits it once, the business sees per seller what was issued and scanned, and coalition
certificates are settled like the cashback that funds them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cloud_core.api_helpers import h, register
from tests.cloud_core.terminal_helpers import (
    SPENDING,
    available,
    later,
    ledger_problems,
    serve_terminal,
    tk,
)


@pytest.fixture
def till(tmp_path):
    with serve_terminal(tmp_path) as served:
        yield served


def issue(client, points: int, till: str = "pizza") -> dict[str, Any]:
    r = client.post("/terminal/certificates", json={"points": points}, headers=tk(till))
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_a_certificate_is_scanned_once_and_tracked_per_seller(till):
    client, app = till
    ann, cert = register(client), issue(client, 500)
    assert cert["seller"] == "maria" and cert["pocket"] == "pizzeria" and not cert["scanned"]
    issue(client, 200, till="pizza2")
    # the shopper reads the printed code (any case, with or without hyphens) at a kiosk
    typed = cert["code"].replace("-", "").lower()
    r = client.post(f"/customers/{ann}/certificates", json={"code": typed}, headers=h("kiosk"))
    assert r.status_code == 200, r.text
    assert r.json()["scanned"] is True
    assert available(client, ann) == {"pizzeria": 500}
    again = client.post(
        f"/customers/{ann}/certificates", json={"code": cert["code"]}, headers=h("kiosk")
    )
    assert again.status_code == 409 and "already been scanned" in again.json()["detail"]
    r = client.post(
        f"/customers/{ann}/certificates",
        json={"code": "BC-0000-0000-0000-0000"},
        headers=h("kiosk"),
    )
    assert r.status_code == 404
    tally = client.get("/certificates/sellers", headers=h("shoe")).json()  # the pizzeria's key
    assert tally == [
        {
            "seller": "ivan",
            "store": "pizzeria-l2",
            "issued": 1,
            "issued_points": 200,
            "scanned": 0,
            "scanned_points": 0,
        },
        {
            "seller": "maria",
            "store": "pizzeria-l2",
            "issued": 1,
            "issued_points": 500,
            "scanned": 1,
            "scanned_points": 500,
        },
    ]
    r = client.get("/certificates/sellers", params={"business": "pizzeria"}, headers=h("bean"))
    assert r.status_code == 403
    assert ledger_problems(app) == []


def test_an_unscanned_certificate_expires_and_a_coalition_one_is_settled_by_its_funder(till):
    client, app = till
    ann = register(client)
    old = issue(client, 100)
    later(app, 91 * 86_400)
    r = client.post(
        f"/customers/{ann}/certificates", json={"code": old["code"]}, headers=h("kiosk")
    )
    assert r.status_code == 409 and "expired" in r.json()["detail"]
    # Bean Bar's certificates are coalition points it funds (its cashback goes there)
    cert = issue(client, 300, till="bean")
    assert cert["pocket"] == "mall"
    client.post(f"/customers/{ann}/certificates", json={"code": cert["code"]}, headers=h("kiosk"))
    held = client.post(
        "/terminal/holds",
        json={"customer": ann, "receipt": "P-1", "order_cents": 2000, "coalition_points": 300},
        headers=tk("pizza"),
    ).json()
    client.post(f"/terminal/holds/{held['id']}/commit", headers=tk("pizza"))
    period = "2027-02"
    rep = client.get(f"/settlements/{period}", headers=h("admin")).json()
    assert [
        (x["payer"], x["payee"], x["amount_cents"], x["commission_cents"]) for x in rep["lines"]
    ] == [("bean-bar", "pizzeria", 300, 60)]


def test_a_gift_certificate_is_money_valid_at_its_shops_and_settled_with_the_shop(till):
    client, app = till
    ann = register(client)
    sold = client.post(
        "/gift-certificates",
        json={"amount_cents": 5000, "businesses": ["pizzeria"], "valid_days": 365},
        headers=h("admin"),
    )
    assert sold.status_code == 201, sold.text
    code = sold.json()["code"]
    assert (
        client.post("/gift-certificates", json={"amount_cents": 1}, headers=h("kiosk")).status_code
        == 403
    )
    r = client.post(f"/customers/{ann}/gift-certificates", json={"code": code}, headers=h("kiosk"))
    assert r.status_code == 200 and r.json()["activated"] is True
    again = client.post(
        f"/customers/{ann}/gift-certificates", json={"code": code}, headers=h("kiosk")
    )
    assert again.status_code == 409
    assert available(client, ann) == {"gift": 5000}
    # not valid at the shoe shop
    order = {"customer": ann, "receipt": "S-1", "order_cents": 4000, "gift_cents": 100}
    r = client.post("/terminal/holds", json=order, headers=tk("shoe"))
    assert r.status_code == 409 and r.json()["type"] == "urn:mallnet:problem:insufficient-points"
    # at the pizzeria it pays the whole order: money, no 15 % cap
    q = client.post(
        "/terminal/quote",
        json={"customer": ann, "receipt": "P-1", "order_cents": 4000},
        headers=tk("pizza"),
    ).json()
    assert {"pocket": "gift", "available": 5000, "usable": 4000} in q["pockets"]
    assert q["to_pay_cents"] == 0
    held = client.post(
        "/terminal/holds", json=order | {"receipt": "P-1", "gift_cents": 4000}, headers=tk("pizza")
    ).json()
    assert held["gift_cents"] == 4000
    client.post(f"/terminal/holds/{held['id']}/commit", headers=tk("pizza"))
    rep = client.get("/settlements/2026-11", headers=h("admin")).json()
    assert [(x["payer"], x["payee"], x["amount_cents"]) for x in rep["lines"]] == [
        ("mall", "pizzeria", 4000)
    ]
    client.post("/terminal/refunds", json={"receipt": "P-1"}, headers=tk("pizza"))
    assert available(client, ann) == {"gift": 5000}
    assert client.get("/settlements/2026-11", headers=h("admin")).json()["total_cents"] == 0
    assert ledger_problems(app) == []


def test_a_goods_account_sells_and_takes_items_never_below_zero(tmp_path):
    goods = {"goods": [{"id": "bean-bar-coffee", "business": "bean-bar", "name": "coffee"}]}
    spending = {**SPENDING, **goods}
    with serve_terminal(tmp_path, spending=spending) as (client, app):
        ann = register(client)
        card = {"customer": ann, "goods": "bean-bar-coffee", "count": 5}
        r = client.post("/terminal/goods", json=card, headers=tk("bean", "goods-card-1"))
        assert r.status_code == 201 and r.json()["left"] == 5
        again = client.post("/terminal/goods", json=card, headers=tk("bean", "goods-card-1"))
        assert again.json() == r.json()  # the same sale, once
        one = card | {"count": 1}
        for n in range(5):
            r = client.post("/terminal/goods/use", json=one, headers=tk("bean"))
            assert r.status_code == 200 and r.json()["left"] == 4 - n
        r = client.post("/terminal/goods/use", json=one, headers=tk("bean"))
        assert r.status_code == 409
        assert r.json()["type"] == "urn:mallnet:problem:insufficient-points"
        # another business's till cannot sell or take them
        assert client.post("/terminal/goods/use", json=one, headers=tk("pizza")).status_code == 404
        assert available(client, ann) == {"bean-bar-coffee": 0}
        assert ledger_problems(app) == []
