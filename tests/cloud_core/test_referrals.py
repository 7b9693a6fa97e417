"""Referrals (rules/referral.py) through the real core: codes and joins over the API on
uvicorn, the first qualifying visit by a beacon through the broker and ingest (or by a store
QR scan through the API). The referrer is paid once per new shopper, on that shopper's first
visit — not on registration, never twice, not for self-referral, not for an existing shopper."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cloud_core.app import CoreApp
from mallnet.wire import decode
from mallnet.wire.payloads import CreditNotice
from tests.cloud_core.api_helpers import h
from tests.cloud_core.helpers import START, api_client, api_config, key_of, wallet
from tests.cloud_core.test_store_qr import API_KEYS, SECRET, beacon_visit, inbox, scan

BOTH_BACKENDS = True  # tests using the ``database`` fixture run on SQLite and PostgreSQL
REFERRER_POINTS = 100


@pytest.fixture
def core(tmp_path, core_settings, run_core, database) -> Iterator[tuple[CoreApp, httpx.Client]]:
    config = api_config(
        tmp_path,
        API_KEYS,
        core_settings,
        database=database,
        referrals={"referrer_points": REFERRER_POINTS, "referee_points": 20, "new_within_s": 3600},
        store_qr={"secret": SECRET},
    )
    app = run_core(config, only=None)
    with api_client(config) as client:
        yield app, client


def shopper(client: httpx.Client, n: int) -> str:
    """Registered at a kiosk (on the core's clock), with a beacon key for the app."""
    r = client.post("/customers", json={"phone": f"+4479111230{n:02d}"}, headers=h("kiosk"))
    assert r.status_code == 201, r.text
    customer = str(r.json()["id"])
    r = client.post(
        f"/customers/{customer}/beacon-keys", json={"key": key_of(n).hex()}, headers=h("admin")
    )
    assert r.status_code == 201, r.text
    return customer


def code_of(client: httpx.Client, customer: str) -> str:
    r = client.post(f"/customers/{customer}/referral-code", headers=h("kiosk"))
    assert r.status_code == 200, r.text
    return str(r.json()["code"])


def join(client: httpx.Client, customer: str, code: str) -> httpx.Response:
    return client.post("/referrals", json={"customer": customer, "code": code}, headers=h("kiosk"))


def test_a_referral_pays_the_referrer_once_on_the_new_shoppers_first_visit(
    core, core_client, connect, clock
):
    app, client = core
    ann = shopper(client, 1)
    code = code_of(client, ann)
    assert code_of(client, ann) == code  # the same code ever after
    notices = inbox(core_client, ann)

    bob = shopper(client, 2)
    r = join(client, bob, code.lower())  # as typed
    assert r.status_code == 201, r.text
    assert r.json() == {"customer": bob, "status": "pending"}
    assert wallet(app.config, ann) == {}  # registration alone pays nothing

    node = connect("store-2")
    beacon_visit(app, node, "store-2", key_of(2), START - 600)  # bob's first visit
    assert wallet(app.config, ann) == {"mall": REFERRER_POINTS}
    assert wallet(app.config, bob) == {"shoe-hub": 10, "mall": 20}
    first = notices.wait_for(1)[0]
    notice = decode(first.topic, first.payload).message
    assert isinstance(notice, CreditNotice)
    assert (notice.points, notice.reason, notice.pocket) == (REFERRER_POINTS, "referral", "mall")

    # bob's next visits (beacon after the cooldown, a store QR scan) pay the referrer nothing
    clock.advance(7200)
    beacon_visit(app, node, "store-2", key_of(2), START + 7000)
    qr = client.get("/stores/book-nook/qr", headers=h("admin")).json()["code"]
    assert scan(client, bob, qr).json()["outcome"] == "credited"
    assert wallet(app.config, ann) == {"mall": REFERRER_POINTS}
    assert client.post(f"/customers/{ann}/referral-code", headers=h("kiosk")).json() == {
        "customer": ann,
        "code": code,
        "joined": 1,
        "rewarded": 1,
    }
    # and bob cannot join again to pay anyone twice
    assert join(client, bob, code).status_code == 409


def test_a_store_qr_scan_is_a_qualifying_first_visit_too(core):
    app, client = core
    ann, cat = shopper(client, 1), shopper(client, 3)
    assert join(client, cat, code_of(client, ann)).status_code == 201
    qr = client.get("/stores/shoe-hub/qr", headers=h("admin")).json()["code"]
    assert scan(client, cat, qr).json()["outcome"] == "credited"
    assert wallet(app.config, ann) == {"mall": REFERRER_POINTS}


def test_self_referral_existing_shoppers_and_unknown_codes_are_refused(core, connect, clock):
    app, client = core
    ann = shopper(client, 1)
    code = code_of(client, ann)

    own = join(client, ann, code)
    assert own.status_code == 409 and "own referral code" in own.json()["detail"]

    dan = shopper(client, 4)  # an existing shopper: already visited
    beacon_visit(app, connect("store-2"), "store-2", key_of(4), START - 600)
    r = join(client, dan, code)
    assert r.status_code == 409 and "only a new shopper" in r.json()["detail"]

    eve = shopper(client, 5)  # registered too long ago
    clock.advance(3601)
    r = join(client, eve, code)
    assert r.status_code == 409 and "only a new shopper" in r.json()["detail"]

    fay = shopper(client, 6)
    assert join(client, fay, "ZZZZZZZZ").status_code == 404
    assert join(client, "c-nobody", code).status_code == 404
    assert wallet(app.config, ann) == {}
    assert client.post(f"/customers/{ann}/referral-code", headers=h("kiosk")).json()["joined"] == 0
    assert client.post("/referrals", json={"customer": fay, "code": code}).status_code == 401
    bean = client.post("/referrals", json={"customer": fay, "code": code}, headers=h("bean"))
    assert bean.status_code == 403  # a tenant key may not join shoppers


def test_a_new_shopper_registers_with_a_code_in_one_call_and_a_wrong_code_registers_nobody(core):
    app, client = core
    ann = shopper(client, 1)
    code = code_of(client, ann)
    wrong = client.post(
        "/customers",
        json={"phone": "+447911123007", "referral_code": "ZZZZZZZZ"},
        headers=h("kiosk"),
    )
    assert wrong.status_code == 404 and "referral code" in wrong.json()["detail"]
    r = client.post(
        "/customers", json={"phone": "+447911123007", "referral_code": code}, headers=h("kiosk")
    )
    assert r.status_code == 201, r.text  # the same phone: the refused call registered nothing
    gus = str(r.json()["id"])
    assert join(client, gus, code).status_code == 409  # joined already, with the registration
    assert wallet(app.config, ann) == {}
    qr = client.get("/stores/shoe-hub/qr", headers=h("admin")).json()["code"]
    assert scan(client, gus, qr).json()["outcome"] == "credited"
    assert wallet(app.config, ann) == {"mall": REFERRER_POINTS}


def test_a_first_purchase_at_a_till_is_a_qualifying_trigger_too(tmp_path):
    """The spend side's purchases call the same seam: the first of them pays the referrer."""
    from tests.cloud_core.terminal_helpers import serve_terminal, tk

    with serve_terminal(tmp_path) as (client, app):
        ann = shopper(client, 1)
        code = code_of(client, ann)
        r = client.post(
            "/customers", json={"phone": "+447911123008", "referral_code": code}, headers=h("kiosk")
        )
        hal = str(r.json()["id"])
        body = {"customer": hal, "receipt": "R-1", "amount_cents": 3900}
        assert client.post("/terminal/purchases", json=body, headers=tk("pizza")).status_code == 201
        assert wallet(app.config, ann) == {"mall": REFERRER_POINTS}
        body = {"customer": hal, "receipt": "R-2", "amount_cents": 1200}
        assert client.post("/terminal/purchases", json=body, headers=tk("pizza")).status_code == 201
        assert wallet(app.config, ann) == {"mall": REFERRER_POINTS}  # once
