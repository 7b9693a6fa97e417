"""Receipt QR scans through the real core, uvicorn and HTTP: a fiscal receipt becomes a
purchase with the store's cashback once — whoever scans it again — the store is found from
the receipt's register, anything else is refused with the reason and writes nothing, and
the weekly receipt game pays its prize once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from cloud_core.app import CoreApp
from cloud_core.store import open_store
from tests.cloud_core.api_helpers import h
from tests.cloud_core.helpers import START, STORES
from tests.cloud_core.shopper_helpers import bearer, catch_codes, sign_in
from tests.cloud_core.terminal_helpers import PIZZERIA, serve_terminal

PIZZERIA_DRIVE = "9282000100072197"  # a Russian fiscal drive number (FNS QR `fn`)
BEAN_BAR_BOX = "KASSE-7"  # an Austrian cash register (RKSV Kassen-ID)
T0 = datetime.fromtimestamp(START)  # the mall's time is UTC in these tests


def fns(number: int, rub: str, when: datetime, kind: int = 1) -> str:
    return f"t={when:%Y%m%dT%H%M%S}&s={rub}&fn={PIZZERIA_DRIVE}&i={number}&fp=2918241905&n={kind}"


def rksv(number: str, when: datetime, normal: str = "12,40") -> str:
    return (
        f"_R1-AT1_{BEAN_BAR_BOX}_{number}_{when:%Y-%m-%dT%H:%M:%S}_{normal}_3,60_0,00_0,00_0,00_"
        "dGVzdA==_4f2a91_c2lnLXByZXY_c2lnbmF0dXJl"
    )


def _stores() -> list[dict[str, Any]]:
    stores = [dict(s) for s in STORES]
    stores[0]["fiscal_registers"] = [BEAN_BAR_BOX]  # bean-bar-l1
    return [*stores, {**PIZZERIA, "fiscal_registers": [PIZZERIA_DRIVE]}]


@pytest.fixture
def mall(tmp_path) -> Iterator[tuple[httpx.Client, CoreApp]]:
    with serve_terminal(
        tmp_path,
        stores=_stores(),
        receipts={"max_age_days": 7, "game": {"partners": 2, "prize_points": 100}},
    ) as served:
        yield served


def register(client: httpx.Client, phone: str = "07911 123456") -> str:
    r = client.post("/customers", json={"phone": phone}, headers=h("kiosk"))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def scan(client: httpx.Client, customer: str, qr: str) -> httpx.Response:
    return client.post(f"/customers/{customer}/receipts", json={"qr": qr}, headers=h("kiosk"))


def pockets(client: httpx.Client, customer: str) -> dict[str, int]:
    wallet = client.get(f"/customers/{customer}/wallet", headers=h("admin")).json()
    return {p["pocket"]: p["balance"] for p in wallet["pockets"]}


def test_a_receipt_credits_its_stores_cashback_once_whoever_scans_it_again(mall) -> None:
    client, _app = mall
    ann, bob = register(client), register(client, "07911 123457")
    qr = fns(64318, "40.00", T0 - timedelta(hours=2))
    r = scan(client, ann, qr)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["store"] == "pizzeria-l2" and body["format"] == "ru-fns"
    assert body["receipt"] == f"ru-fns:{PIZZERIA_DRIVE}:64318"
    assert (body["amount_cents"], body["cashback_points"]) == (4000, 400)
    assert pockets(client, ann) == {"pizzeria": 400}  # the pizzeria's 10 % into its pocket
    for who in (ann, bob):
        again = scan(client, who, qr)
        assert again.status_code == 409 and "already been scanned" in again.json()["detail"]
    assert pockets(client, ann) == {"pizzeria": 400} and pockets(client, bob) == {}


@pytest.mark.parametrize(
    ("qr", "status", "why"),
    [
        ("hello", 422, "formats"),
        (fns(1, "40.00", T0, kind=2), 422, "return"),
        (fns(2, "40.00", T0 - timedelta(days=8)), 422, "older than 7 days"),
        (fns(3, "40.00", T0 + timedelta(days=1)), 422, "future"),
        (fns(4, "40.00", T0).replace(PIZZERIA_DRIVE, "9282000100000999"), 404, "no store"),
        (fns(5, "-1", T0), 422, "positive"),
    ],
)
def test_anything_else_is_refused_with_the_reason_and_writes_nothing(mall, qr, status, why):
    client, app = mall
    ann = register(client)
    r = scan(client, ann, qr)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert why in r.json()["detail"]
    assert pockets(client, ann) == {}
    store = open_store(app.config.database)
    try:
        with store.read() as conn:
            assert conn.execute("SELECT COUNT(*) FROM purchases").fetchone()[0] == 0
    finally:
        store.close()


def test_receipts_from_two_partners_in_a_week_pay_the_game_prize_once(mall) -> None:
    client, _app = mall
    ann = register(client)
    first = scan(client, ann, fns(10, "20.00", T0 - timedelta(hours=1)))
    assert first.json()["prize_points"] == 0
    # Bean Bar's cashback goes to the coalition pocket it funds (the seeds' "Magnet")
    second = scan(client, ann, rksv("Bon-0815", T0 - timedelta(minutes=30)))
    assert second.status_code == 201, second.text
    assert (second.json()["store"], second.json()["amount_cents"]) == ("bean-bar-l1", 1600)
    assert second.json()["prize_points"] == 100
    third = scan(client, ann, rksv("Bon-0816", T0 - timedelta(minutes=20), normal="5,00"))
    assert third.json()["prize_points"] == 0  # once a week
    assert pockets(client, ann) == {"pizzeria": 200, "mall": 160 + 100 + 86}
    inbox_texts = [
        e["text"]
        for e in client.get(f"/customers/{ann}/history", headers=h("admin")).json()
        if e["reason"] == "game"
    ]
    assert inbox_texts == ["+100 points: receipts from 2 partners this week"]


def test_a_signed_in_shopper_scans_from_their_own_wallet(tmp_path) -> None:
    with (
        catch_codes() as codes,
        serve_terminal(tmp_path, stores=_stores(), wallet={"channel": {"type": "log"}}) as (
            client,
            _app,
        ),
    ):
        ann = register(client, "+44 7911 123456")
        token = sign_in(client, codes, "+44 7911 123456")
        r = client.post("/me/receipts", json={"qr": fns(77, "15.00", T0)}, headers=bearer(token))
        assert r.status_code == 201, r.text
        assert r.json()["cashback_points"] == 150
        assert pockets(client, ann) == {"pizzeria": 150}
        assert client.post("/me/receipts", json={"qr": fns(78, "1.00", T0)}).status_code == 401
