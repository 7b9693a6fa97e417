"""The shopper's web wallet in headless Chromium (Debian's, through Playwright), against the
real core — broker, ingest, API — with nothing mocked: sign in with the code the
development channel logs, watch the parking bonus of a car driven through the gate arrive
live, show the loyalty-card QR and prove, by decoding it from a screenshot, that a till
would accept it. Plus the page's own safety: CSP, cookies, CSRF, no external URL.

Screenshots go to ``$WALLET_SCREENSHOTS_DIR`` when set (the README's are made with
``WALLET_SCREENSHOTS_DIR=docs/screenshots``), else to a temp folder.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright
from pyzbar.pyzbar import decode as zbar_decode

from cloud_core import customers
from cloud_core.cards import verify_card_token
from cloud_core.errors import CardTokenError
from cloud_core.store import open_store
from cloud_core.wallet_web.messages import MESSAGES
from mallnet.mqtt import MqttClient
from mallnet.wire import encode
from mallnet.wire.payloads import ParkingBatch
from mallnet.wire.topics import PARKING
from tests.cloud_core.helpers import api_config
from tests.cloud_core.parking_helpers import PARKING as PARKS
from tests.cloud_core.parking_helpers import T0, Gate
from tests.cloud_core.shopper_helpers import (
    ANN,
    API_KEYS,
    CARD_SECRET,
    add_shopper,
    catch_codes,
    wallet_api,
)
from tests.conftest import MALL, settings_for, wait_until

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 420, "height": 900}, locale="en-GB")
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("WALLET_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sign_in_in_browser(
    page: Page, base: str, codes, phone: str, *, count: int = 1, wrong_first: str | None = None
) -> None:
    """Sign in through the pages; ``wrong_first``: type a wrong code first and expect this
    error (and the code form again)."""
    page.goto(f"{base}/wallet")
    expect(page).to_have_url(re.compile(r"/wallet/sign-in$"))
    page.fill("#phone", phone)
    page.click("#sign-in button")
    code = codes.last(count)
    if wrong_first is not None:
        page.fill("#code", f"{(int(code) + 1) % 1_000_000:06d}")
        page.click("#verify button")
        expect(page.locator(".error")).to_have_text(wrong_first)
    page.fill("#code", code)
    page.click("#verify button")
    expect(page).to_have_url(re.compile(r"/wallet$"))


def qr_texts(png: bytes) -> list[str]:
    image = Image.open(io.BytesIO(png)).convert("L")
    return [found.data.decode() for found in zbar_decode(image)]


def test_a_driver_signs_in_sees_the_parking_bonus_arrive_and_shows_a_card_a_till_accepts(
    broker, tmp_path, core_settings, run_core, page
):
    config = api_config(
        tmp_path,
        API_KEYS,
        core_settings,
        parking={**PARKS, "entry_bonus": 500},
        cards={"secret": CARD_SECRET, "ttl_s": 120},
        wallet={"inbox_poll_s": 0.1},
    )
    store = open_store(config.database)
    try:
        with store.transaction() as conn:
            ann, _ = customers.register_customer(conn, ANN, default_region="GB", now=T0)
            customers.attach_vehicle(conn, ann, "KA 7777 TX", "UA", T0)
    finally:
        store.close()
    with catch_codes() as codes:
        app = run_core(config, only=None)
        base = f"http://127.0.0.1:{config.api.port}"
        sign_in_in_browser(page, base, codes, "07911 123456")
        expect(page.locator("#balances")).to_contain_text("No points yet")
        expect(page.locator("#live")).to_be_visible()  # the live inbox is connected

        # A car drives in at the north gate: the real core credits the parking bonus.
        gate = MqttClient(settings_for(broker, "gate-north"), "gate-north")
        gate.start()
        try:
            assert gate.wait_subscribed(10)
            batch = ParkingBatch(node="gate-north", events=(Gate().event("KA7777TX", at=T0),))
            gate.publish(PARKING.topic(MALL, "gate-north"), encode(batch)).wait(10)
        finally:
            gate.stop()
        inbox = page.locator("#inbox .entry.credit").first
        expect(inbox).to_contain_text("500", timeout=15_000)  # arrived live, no reload
        expect(page.locator("#balances .pocket[data-pocket=mall] .points")).to_have_text("500")
        expect(page.locator("#balances")).to_contain_text("Mall points")
        page.reload()  # the history table is drawn with the page
        expect(page.locator(".history")).to_contain_text("+500")
        page.screenshot(path=str(shots(tmp_path) / "wallet-en.png"), full_page=True)

        # The card: decode the QR from a screenshot; it is the token a till verifies.
        card = page.locator("#card")
        expect(card).to_be_visible()
        page.wait_for_function("() => document.getElementById('card').naturalWidth > 0")
        texts = qr_texts(card.screenshot())
        assert len(texts) == 1, texts
        now = datetime.fromtimestamp(app.clock(), UTC)
        assert verify_card_token(CARD_SECRET.encode(), texts[0], now) == ann
        assert "7911" not in texts[0]  # never the phone number


@pytest.mark.parametrize("lang", ["uk", "ru"])
def test_the_wallet_speaks_ukrainian_and_russian(tmp_path, page, lang):
    with catch_codes() as codes, wallet_api(tmp_path) as (client, app):
        add_shopper(app.config.database, ANN, points=500)
        base = str(client.base_url).rstrip("/")
        page.goto(f"{base}/wallet/sign-in?lang={lang}")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        sign_in_in_browser(page, base, codes, ANN, wrong_first=MESSAGES[lang]["err_code"])
        words = {"uk": "Бали ТРЦ", "ru": "Баллы ТРЦ"}[lang]
        expect(page.locator("#balances")).to_contain_text(words)
        page.screenshot(path=str(shots(tmp_path) / f"wallet-{lang}.png"), full_page=True)


def test_the_page_is_locked_down_csp_cookies_and_csrf(tmp_path, page):
    with catch_codes() as codes, wallet_api(tmp_path) as (client, app):
        add_shopper(app.config.database, ANN, points=500)
        base = str(client.base_url).rstrip("/")
        sign_in_in_browser(page, base, codes, ANN)
        response = page.goto(f"{base}/wallet")
        assert response is not None
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        (session,) = [c for c in page.context.cookies() if c["name"] == "mw_session"]
        assert session["httpOnly"] and session["sameSite"] == "Strict"
        assert session["path"] == "/wallet"
        html = page.content()
        assert "://" not in re.sub(r'xmlns="[^"]+"', "", html)  # no external URL
        for url in re.findall(r'(?:src|href)="(/[^"]+)"', html):
            assert page.request.get(f"{base}{url}").status == 200, url
        # a form posted without the page's CSRF token changes nothing
        cookie = {"mw_session": session["value"]}
        with httpx.Client(base_url=base, cookies=cookie) as other:
            r = other.post(
                "/wallet/erase",
                content="confirm=yes&csrf=guess",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert r.status_code == 403
        page.goto(f"{base}/wallet")
        expect(page.locator("#balances")).to_contain_text("500")
        # erasure from the wallet: confirmed, then everything is gone
        page.check("form.danger input[name=confirm]")
        page.click("form.danger button")
        expect(page.locator("main")).to_contain_text("deleted")
        page.goto(f"{base}/wallet")
        expect(page).to_have_url(re.compile(r"/wallet/sign-in$"))
        store = open_store(app.config.database)
        try:
            with store.read() as conn:
                assert conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0] == 0
        finally:
            store.close()


def test_a_stuffed_form_is_refused_and_changes_nothing(tmp_path):
    with wallet_api(tmp_path) as (client, _app):
        client.get("/wallet/sign-in")  # the pre-session cookie
        fields = "&".join(f"f{n}=x" for n in range(50))
        r = client.post(
            "/wallet/sign-in",
            content=fields,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
        r = client.post(
            "/wallet/sign-in",
            content="phone=07911123456&csrf=wrong",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 403 and MESSAGES["en"]["err_csrf"] in r.text


def test_the_card_rotates_before_its_token_expires(tmp_path, page):
    with (
        catch_codes() as codes,
        wallet_api(tmp_path, cards={"secret": CARD_SECRET, "ttl_s": 10}) as (client, app),
    ):
        ann = add_shopper(app.config.database, ANN)
        base = str(client.base_url).rstrip("/")
        sign_in_in_browser(page, base, codes, ANN)
        card = page.locator("#card")
        assert card.get_attribute("data-refresh") == "7"  # ¾ of the token's 10 s
        page.wait_for_function("() => document.getElementById('card').naturalWidth > 0")
        (first,) = qr_texts(card.screenshot())
        app.clock.advance(8)  # the core's time: the page's timer runs on the browser's
        expect(card).to_have_attribute("src", re.compile(r"\?t=\d+$"), timeout=20_000)
        shown: list[str] = []

        def a_new_card() -> bool:
            shown[:] = qr_texts(card.screenshot())
            return len(shown) == 1 and shown[0] != first

        wait_until(a_new_card, timeout=30, what="the new card drawn")
        second = shown[0]
        key = CARD_SECRET.encode()
        expired = datetime.fromtimestamp(app.clock.advance(2), UTC)  # the first one's end
        with pytest.raises(CardTokenError, match="expired"):
            verify_card_token(key, first, expired)
        assert verify_card_token(key, second, expired) == ann
