"""The kiosk's HTTP adapter against the real core API (uvicorn) with a kiosk key."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from cloud_core import ledger
from cloud_core.store import open_store
from kiosk.core_api import HttpCore
from kiosk.ports import CoreRefused, CoreUnreachable, Credit, Expiring, WalletDetails
from mallnet.broker import free_port
from mallnet.logs import RedactingFormatter
from tests.cloud_core.helpers import START, serve_api

KEYS = [
    {"name": "office", "role": "admin", "key": "k-admin-test-0123456789"},
    {"name": "atrium", "role": "kiosk", "key": "k-kiosk-test-0123456789"},
]


def test_phone_look_up_wallet_and_offers_with_the_kiosk_key(tmp_path) -> None:
    with serve_api(tmp_path, KEYS) as (admin, app):
        admin.headers["X-API-Key"] = KEYS[0]["key"]
        created = admin.post("/customers", json={"phone": "+380671234567"})
        assert created.status_code == 201, created.text
        customer = created.json()["id"]
        campaign = {
            "id": "coffee",
            "title": "Coffee 2 for 1",
            "text": "Until noon",
            "starts_at": datetime.fromtimestamp(START - 3600, UTC).isoformat(),
            "ends_at": (datetime.fromtimestamp(START, UTC) + timedelta(days=2)).isoformat(),
        }
        stores = admin.get("/stores").json()
        campaign["business"] = stores[0]["business"]
        assert admin.post("/campaigns", json=campaign).status_code == 201

        at = datetime.fromtimestamp(START, UTC)
        store = open_store(app.config.database)
        with store.transaction() as conn:
            ledger.grant(
                conn,
                customer=customer,
                pocket="mall",
                points=25,
                reason="visit",
                idem_key="seed",
                now=at - timedelta(days=1),
                expires_at=at + timedelta(days=3),
                text="Visit",
            )
        store.close()

        core = HttpCore(str(admin.base_url), KEYS[1]["key"])
        assert core.find_customer("+380671234567") == customer
        assert core.find_customer("+380509999999") is None
        wallet = core.wallet(customer)
        assert wallet.customer == customer
        assert all(p.available >= 0 for p in wallet.pockets)
        assert wallet.details == WalletDetails(
            recent=(Credit(at - timedelta(days=1), "mall", 25, "Visit"),),
            expiring=(Expiring("mall", 25, at + timedelta(days=3)),),
            expiring_days=7,
        )
        [offer] = core.offers()
        assert (offer.campaign, offer.title) == ("coffee", "Coffee 2 for 1")
        with pytest.raises(CoreRefused, match="404"):
            core.wallet("c-nobody")
        core.close()
        stranger = HttpCore(str(admin.base_url), "k-wrong-key-0000000000")
        with pytest.raises(CoreRefused, match="401"):
            stranger.wallet(customer)
        stranger.close()


def test_a_phone_look_up_leaves_no_phone_number_in_the_logs(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with serve_api(tmp_path, KEYS) as (admin, _app):
        core = HttpCore(str(admin.base_url), KEYS[1]["key"])
        assert core.find_customer("+380671234567") is None
        core.close()
    formatter = RedactingFormatter("%(name)s: %(message)s")
    lines = [formatter.format(record) for record in caplog.records]
    assert any("/customers?phone=" in line for line in lines)  # httpx logs the request URL
    assert not any("380671234567" in line for line in lines), lines


def test_a_core_that_is_not_there_is_unreachable() -> None:
    core = HttpCore(f"http://127.0.0.1:{free_port()}", "k", timeout_s=1)
    with pytest.raises(CoreUnreachable):
        core.find_customer("+380671234567")
    core.close()


def test_a_5xx_is_unreachable_not_refused() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"detail": "database busy"})

    core = HttpCore("http://core", "k", transport=httpx.MockTransport(broken))
    with pytest.raises(CoreUnreachable, match="503"):
        core.offers()
    core.close()
