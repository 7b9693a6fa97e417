"""The control panel over real uvicorn and HTTP, without a browser: sign-in, the session
cookie, CSRF and origin checks, session expiry, sign-in rate limit, headers, languages, and
a campaign edit that keeps its deliveries. (The browser tests: test_panel_browser.py.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from cloud_core import offers
from cloud_core.panel import i18n
from cloud_core.panel.sessions import IDLE_S, LOGINS_PER_MINUTE
from cloud_core.store import open_store
from tests.cloud_core.api_helpers import KEYS
from tests.cloud_core.helpers import START, add_campaign, serve_api

TEMPLATES = Path(__file__).resolve().parents[2] / "cloud_core" / "panel" / "templates"
ROLES = [
    {"name": "office", "role": "admin", "key": KEYS["admin"]},
    {"name": "bean-bar", "role": "tenant", "business": "bean-bar", "key": KEYS["bean"]},
    {"name": "atrium", "role": "kiosk", "key": KEYS["kiosk"]},
]


def sign_in(client: httpx.Client, who: str) -> str:
    """Sign in; returns the CSRF token of the session."""
    r = client.post("/panel/login", data={"key": KEYS[who]})
    assert r.status_code == 303 and r.headers["location"] == "/panel/", r.text
    page = client.get("/panel/campaigns/new")
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_every_message_the_templates_use_exists_in_three_languages():
    used = set()
    for path in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r't\("([a-z_.]+)"\)', path.read_text()))
    prefixes = {"role.", "state.", "alert.", "segment."}  # t("state." + n.state) and kin
    used |= {f"state.{s}" for s in ("online", "offline", "unknown")}
    used |= {f"alert.{a}" for a in ("offline", "quiet")}
    used |= {f"role.{r}" for r in ("admin", "tenant")}
    used |= {f"segment.{s}" for s in offers.SEGMENTS}
    assert used - set(i18n.MESSAGES) == set()
    assert not any(k.endswith(".") for k in used - prefixes)
    for key, texts in i18n.MESSAGES.items():
        assert len(texts) == 3 and all(t.strip() for t in texts), key
    assert i18n.pick(None, "uk-UA,uk;q=0.9,en;q=0.8") == "uk"
    assert i18n.pick("ru", "uk") == "ru"
    assert i18n.pick("xx", "de-DE") == "en"


def test_sign_in_gives_a_strict_session_cookie_and_only_staff_roles_get_one(tmp_path):
    with serve_api(tmp_path, ROLES) as (client, _):
        r = client.get("/panel/feed")
        assert r.status_code == 303 and r.headers["location"] == "/panel/login"
        login = client.get("/panel/login")
        csp = login.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "http" not in csp
        assert login.headers["x-frame-options"] == "DENY"
        assert login.headers["cache-control"] == "no-store"
        for key, status in ((KEYS["kiosk"], 403), ("k-unknown-0123456789", 401), ("", 401)):
            r = client.post("/panel/login", data={"key": key})
            assert r.status_code == status and "set-cookie" not in r.headers
        r = client.post("/panel/login", data={"key": KEYS["bean"]})
        assert r.status_code == 303
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/panel" in cookie
        assert KEYS["bean"] not in r.headers["set-cookie"]  # the key never goes to the browser
        assert client.get("/panel/feed").status_code == 200
        # the assets are the core's own, with their licences beside them
        for asset in ("vendor/htmx/htmx.min.js", "vendor/uplot/uPlot.iife.min.js", "panel.js"):
            assert client.get(f"/panel/static/{asset}").status_code == 200
        assert "/panel" not in client.get("/openapi.json").text  # not part of the API


def test_forms_need_the_session_token_and_the_same_origin_and_sessions_expire(tmp_path):
    with serve_api(tmp_path, ROLES) as (client, app):
        csrf = sign_in(client, "bean")
        form = {
            "csrf": csrf,
            "id": "latte",
            "title": "Latte",
            "text": "At Bean Bar",
            "starts_at": "2026-11-23T09:00",
            "ends_at": "2026-11-30T09:00",
        }
        for bad, headers in (
            ({**form, "csrf": "forged"}, {}),
            ({k: v for k, v in form.items() if k != "csrf"}, {}),
            (form, {"Origin": "http://evil.example"}),
        ):
            r = client.post("/panel/campaigns", data=bad, headers=headers)
            assert r.status_code == 403
        assert client.get("/panel/campaigns/latte").status_code == 404  # nothing was made
        r = client.post("/panel/campaigns", data=form)
        assert r.status_code == 303 and r.headers["location"] == "/panel/campaigns/latte?done=saved"
        # a tenant's business comes from its key, whatever the form says
        r = client.post("/panel/campaigns", data={**form, "id": "sneaky", "business": "shoe-hub"})
        assert r.status_code == 303
        assert "bean-bar" in client.get("/panel/campaigns/sneaky").text
        # bad input: a clear message, nothing saved
        r = client.post(
            "/panel/campaigns", data={**form, "id": "late", "ends_at": "2026-11-01T00:00"}
        )
        assert r.status_code == 422 and "must end after it starts" in r.text
        assert client.get("/panel/campaigns/late").status_code == 404

        app.clock.advance(IDLE_S + 1)  # type: ignore[attr-defined]
        r = client.get("/panel/feed", headers={"HX-Request": "true"})  # a live refresh
        assert r.status_code == 200 and r.headers["hx-redirect"] == "/panel/login"
        r = client.get("/panel/feed")
        assert r.status_code == 303 and r.headers["location"] == "/panel/login"

        csrf = sign_in(client, "admin")
        client.post("/panel/logout", data={"csrf": csrf})
        assert client.get("/panel/feed").status_code == 303


def test_sign_in_attempts_are_rate_limited_per_address(tmp_path):
    with serve_api(tmp_path, ROLES) as (client, _):
        for _ in range(LOGINS_PER_MINUTE):
            assert (
                client.post("/panel/login", data={"key": "k-wrong-0123456789"}).status_code == 401
            )
        r = client.post("/panel/login", data={"key": KEYS["admin"]})
        assert r.status_code == 429 and "set-cookie" not in r.headers


def test_languages_switch_by_cookie_or_the_browser(tmp_path):
    with serve_api(tmp_path, ROLES) as (client, _):
        assert "Вхід" in client.get("/panel/login", headers={"Accept-Language": "uk"}).text
        r = client.get("/panel/lang/ru", params={"next": "/panel/login"})
        assert r.status_code == 303 and r.headers["location"] == "/panel/login"
        assert "Вход" in client.get("/panel/login").text
        # never a redirect off the panel
        r = client.get("/panel/lang/en", params={"next": "https://evil.example/"})
        assert r.headers["location"] == "/panel/"


def test_an_edited_campaign_keeps_its_deliveries(tmp_path):
    with serve_api(tmp_path, ROLES) as (client, app):
        config = app.config
        now = datetime.fromtimestamp(START, UTC)
        add_campaign(config, id="winter", starts_at=now - timedelta(days=1))
        store = open_store(config.database)
        try:
            with store.transaction() as conn:
                before = offers.get_campaign(conn, "winter")
                offers.offers_for_visit(
                    conn,
                    customer="c1",
                    place=config.stores[0],
                    ts=now,
                    day="2026-11-23",
                    event_id="e1",
                    trigger="visit",
                )
            csrf = sign_in(client, "bean")
            r = client.post(
                "/panel/campaigns/winter",
                data={
                    "csrf": csrf,
                    "title": "Winter latte",
                    "text": "Now with cream",
                    "starts_at": "2026-11-22T10:00",
                    "ends_at": "2026-12-30T10:00",
                    "cap_count": "2",
                },
            )
            assert r.status_code == 303, r.text
            with store.read() as conn:
                after = offers.get_campaign(conn, "winter")
                assert offers.delivery_count(conn, after) == 1
        finally:
            store.close()
        assert after.instance == before.instance and after.title == "Winter latte"
        assert after.cap_count == 2 and after.business == "bean-bar"
        assert "Winter latte" in client.get("/panel/campaigns/winter").text
