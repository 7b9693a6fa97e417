"""The control panel in headless Chromium (Debian's ``/usr/bin/chromium`` driven by
Playwright), against the real core on uvicorn, the real broker and, for node health, a real
edge node process. One browser per module; every test its own broker, core and database.

The screenshots these tests save into docs/screenshots/ are the ones the README shows.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from mallnet.ids import UuidV7Factory
from mallnet.wire import decode, encode
from mallnet.wire.payloads import (
    FootfallBatch,
    FootfallEvent,
    HealthReport,
    OfferNotice,
    ParkingBatch,
)
from mallnet.wire.topics import FOOTFALL, HEALTH, INBOX, PRESENCE
from mallnet.wire.topics import PARKING as PARKING_TOPIC
from tests.cloud_core.api_helpers import KEYS
from tests.cloud_core.helpers import (
    Walker,
    add_campaign,
    api_config,
    key_of,
    receipted_ids,
    receipts_collector,
    register,
)
from tests.cloud_core.parking_helpers import PARKING, Gate
from tests.conftest import MALL, Collector, wait_until
from tests.edge_node.helpers import browse_trace, node_config

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
ROLES = [
    {"name": "office", "role": "admin", "key": KEYS["admin"]},
    {"name": "bean-bar", "role": "tenant", "business": "bean-bar", "key": KEYS["bean"]},
    {"name": "shoe-hub", "role": "tenant", "business": "shoe-hub", "key": KEYS["shoe"]},
    {"name": "atrium", "role": "kiosk", "key": KEYS["kiosk"]},
]
LAPTOP = {"width": 1280, "height": 800}
TABLET = {"width": 820, "height": 1180}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def clock():
    """The core runs on the real clock here: a real edge node dates its reports by it."""
    return time.time


@pytest.fixture
def panel(tmp_path, core_settings, run_core):
    """The whole core (API on uvicorn and ingest) with every role's key; its base URL."""
    config = api_config(tmp_path, ROLES, core_settings, kiosks=["kiosk-atrium"], parking=PARKING)
    app = run_core(config, only=None)
    return config, app, f"http://127.0.0.1:{config.api.port}"


def sign_in(browser: Browser, base: str, who: str, viewport: dict[str, int] = LAPTOP) -> Page:
    """A fresh browser context signed in with this role's key; fails on any request that
    leaves the core (the panel must work with no internet)."""
    context = browser.new_context(viewport=viewport, base_url=base)  # type: ignore[arg-type]
    page = context.new_page()
    outside: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))
    page.on(
        "console", lambda m: errors.append(f"{m.text} {m.location}") if m.type == "error" else None
    )
    page._mallnet_outside = outside  # type: ignore[attr-defined]
    page._mallnet_errors = errors  # type: ignore[attr-defined]
    page.goto("/panel/")
    expect(page).to_have_url(f"{base}/panel/login")
    page.fill("input[name=key]", KEYS[who])
    page.click("button[type=submit]")
    expect(page.locator("#who")).to_be_visible()
    return page


def no_outside_requests(page: Page, *, console: bool = True) -> None:
    """Nothing was fetched from outside the core (and the console shows no error: a script
    or style the CSP refused would show there)."""
    assert page._mallnet_outside == []  # type: ignore[attr-defined]
    if console:
        assert page._mallnet_errors == []  # type: ignore[attr-defined]


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def data(page: Page, path: str) -> tuple[int, Any]:
    """A panel data endpoint with the page's session cookie."""
    r = page.request.get(path)
    return r.status, r.json()


class Nodes:
    """One broker client per store node (a node's client id is bound to it: a second
    connection would take the first one's session), with its receipts."""

    def __init__(self, connect, app) -> None:
        self._connect = connect
        self._app = app
        self._clients: dict[str, tuple[Collector, Any]] = {}
        self._ids = UuidV7Factory()

    def publish(self, node: str, topic: str, payload: bytes, receipts: int) -> None:
        """Publish as the node and wait until the core has receipted ``receipts`` more ids."""
        if node not in self._clients:
            self._clients[node] = receipts_collector(self._connect, node)
        collector, client = self._clients[node]
        before = len(receipted_ids(collector))
        client.publish(topic, payload).wait(10)
        if receipts:
            wait_until(
                lambda: len(receipted_ids(collector)) >= before + receipts,
                what=f"{node}'s message receipted",
            )

    def footfall(self, node: str, hours: int, base: int) -> None:
        """The node's footfall windows for the last ``hours`` hours."""
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        events = []
        for seq, back in enumerate(range(hours - 1, -1, -1), start=1):
            start = now - timedelta(hours=back) + timedelta(minutes=1)
            unique = base + (seq * 7 % 11) * 3
            events.append(
                FootfallEvent(
                    id=self._ids(),
                    seq=seq,
                    ts=start,
                    window_start=start,
                    window_s=60,
                    unique_tags=unique,
                    adverts=unique * 40,
                )
            )
        batch = FootfallBatch(node=node, events=tuple(events))
        self.publish(node, FOOTFALL.topic(MALL, node), encode(batch), len(events))

    def health(self, node: str, depth: int, temp: float) -> None:
        report = HealthReport(
            id=self._ids(), seq=100, ts=datetime.now(UTC), node=node, uptime_s=7200.0,
            adverts_per_s=30.0, events_per_s=0.5, outbox_depth=depth,
            outbox_oldest_age_s=depth * 1.5, outbox_dropped=0, scanner_restarts=1,
            adapter_resets=0, cpu_temp_c=temp,
        )  # fmt: skip
        before = self._app.consumer.stats().get("health", 0)
        self.publish(node, HEALTH.topic(MALL, node), encode(report), 0)  # never receipted
        wait_until(
            lambda: self._app.consumer.stats().get("health", 0) > before, what=f"{node} health"
        )

    def visit(self, node: str, n: int) -> None:
        """Customer ``n`` spends two minutes at the node's store (one dwell event)."""
        walker = Walker(node)
        walker.seq = 200
        event = walker.event(key_of(n), time.time() - 30, "dwell", 120.0)
        self.publish(node, PRESENCE.topic(MALL, node), encode(walker.batch([event])), 1)


def test_admin_and_tenants_sign_in_and_a_tenant_sees_only_its_own(browser, panel, connect):
    config, app, base = panel
    now = datetime.now(UTC)
    for business, title in (("bean-bar", "Hot chocolate -20 %"), ("shoe-hub", "Socks 2 for 1")):
        add_campaign(
            config,
            id=f"{business}-winter",
            business=business,
            title=title,
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=7),
        )
    register(config, 1, "+44 7911 123001")
    register(config, 2, "+44 7911 123002")
    nodes = Nodes(connect, app)
    for node, base_count in (("store-1", 20), ("store-2", 12), ("store-3", 6)):
        nodes.footfall(node, 10, base_count)
    nodes.health("store-1", 3, 51.5)
    nodes.health("store-2", 0, 47.0)
    nodes.visit("store-1", 1)
    nodes.visit("store-2", 2)
    nodes.publish("store-3", PRESENCE.topic(MALL, "store-3"), b"{not json", 0)
    gate = Gate()
    cars = tuple(
        gate.event(plate, at=datetime.now(UTC) - timedelta(minutes=m))
        for plate, m in (("AA1234BB", 40), ("BC5678AA", 25), ("KA0001AX", 5))
    )
    batch = ParkingBatch(node="gate-north", events=cars)
    nodes.publish("gate-north", PARKING_TOPIC.topic(MALL, "gate-north"), encode(batch), 3)

    # the mall office sees every store, node, campaign and dead letter
    admin = sign_in(browser, base, "admin")
    chart = admin.locator('[data-chart="footfall"]')
    expect(chart).to_have_attribute("data-drawn", "24")
    expect(admin.locator("#stores tbody tr")).to_have_count(3)
    shot(admin, "panel-overview-admin-en.png")
    admin.click('nav a[data-nav="/feed"]')
    expect(admin.locator("#credits tbody tr")).to_have_count(2)
    expect(admin.locator("#deliveries tbody tr")).to_have_count(2)
    shot(admin, "panel-feed-admin-en.png")
    admin.click('nav a[data-nav="/parking"]')
    expect(admin.locator('[data-chart="parking"]')).to_have_attribute("data-drawn", "3")
    expect(admin.locator("#car-parks tr[data-car-park=p1] td").nth(1)).to_have_text("3")
    expect(admin.locator("#entries tbody tr")).to_have_count(3)
    assert "AA1234BB" not in admin.content()  # no plates on screen
    shot(admin, "panel-parking-admin-en.png")
    admin.click('nav a[data-nav="/dead-letters"]')
    expect(admin.locator("#dead-letters tbody tr")).to_have_count(1)
    admin.click('nav a[data-nav="/nodes"]')
    expect(admin.locator("#nodes tr[data-node=store-1] .badge")).to_have_text("online")
    status, seen = data(admin, "/panel/data/nodes")
    assert status == 200 and {"store-1", "store-2", "store-3", "kiosk-atrium"} <= {
        n["id"] for n in seen
    }
    no_outside_requests(admin)

    # a tenant, on a tablet, in Ukrainian: its own store, nodes, pocket and campaigns only
    bean = sign_in(browser, base, "bean", TABLET)
    bean.goto("/panel/lang/uk?next=/panel/")
    expect(bean.locator("html")).to_have_attribute("lang", "uk")
    expect(bean.locator('[data-chart="footfall"]')).to_have_attribute("data-drawn", "24")
    expect(bean.locator("#stores tbody tr")).to_have_count(1)
    expect(bean.locator("#stores tbody tr")).to_have_attribute("data-store", "bean-bar-l1")
    fits = bean.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert fits, "the tablet page scrolls sideways"
    shot(bean, "panel-overview-tenant-uk-tablet.png")
    nav = bean.locator("nav a").evaluate_all("links => links.map(a => a.dataset.nav)")
    # no parking, no dead letters; the features whose API serves a tenant: its promo-code
    # pools, its settlements
    assert nav == ["/", "/feed", "/campaigns", "/nodes", "/promo-codes", "/settlement"]
    bean.goto("/panel/nodes")
    assert bean.locator("#nodes tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.node)"
    ) == ["store-1", "store-1b"]
    bean.goto("/panel/campaigns")
    expect(bean.locator("#campaigns tbody tr")).to_have_count(1)
    no_outside_requests(bean)
    for page, status in (
        ("/panel/campaigns/shoe-hub-winter", 404),
        ("/panel/dead-letters", 403),
        ("/panel/parking", 403),
    ):
        response = bean.goto(page)
        assert response is not None and response.status == status, page
        assert "Socks" not in bean.content() and "{not json" not in bean.content()

    # the panel's data endpoints apply the same scopes
    status, footfall = data(bean, "/panel/data/footfall")
    assert status == 200 and [s["store"] for s in footfall["series"]] == ["bean-bar-l1"]
    assert sum(footfall["series"][0]["values"]) > 0
    status, seen = data(bean, "/panel/data/nodes")
    assert status == 200 and [n["id"] for n in seen] == ["store-1", "store-1b"]
    status, feed = data(bean, "/panel/data/feed")
    assert status == 200 and {c["pocket"] for c in feed["credits"]} == {"bean-bar"}
    assert {d["campaign"] for d in feed["deliveries"]} == {"bean-bar-winter"}
    status, campaigns = data(bean, "/panel/data/campaigns")
    assert status == 200 and [c["id"] for c in campaigns] == ["bean-bar-winter"]
    assert data(bean, "/panel/data/parking")[0] == 403
    no_outside_requests(bean, console=False)  # the refused pages above log their status

    # the other tenant sees its own, in Russian
    shoe = sign_in(browser, base, "shoe")
    shoe.goto("/panel/lang/ru?next=/panel/feed")
    expect(shoe.locator("#credits tbody tr")).to_have_count(1)
    expect(shoe.locator("#credits")).to_contain_text("shoe-hub")
    expect(shoe.locator("#credits")).not_to_contain_text("bean-bar")
    shot(shoe, "panel-feed-tenant-ru.png")

    # no session, a kiosk's key, a wrong key: nothing
    with httpx.Client(base_url=base) as anonymous:
        assert anonymous.get("/panel/data/feed").status_code == 401
        r = anonymous.get("/panel/nodes")
        assert r.status_code == 303 and r.headers["location"] == "/panel/login"
        csp = anonymous.get("/panel/login").headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        for key in (KEYS["kiosk"], "not-a-key-at-all-000"):
            r = anonymous.post("/panel/login", data={"key": key})
            assert r.status_code in (401, 403) and "mallnet_panel" not in r.headers.get(
                "set-cookie", ""
            )


def test_a_campaign_made_in_the_panel_reaches_a_shoppers_inbox(
    browser, panel, connect, core_client
):
    config, app, base = panel
    ann = register(config, 1, "+44 7911 123001")
    inbox = Collector()
    core_client("inbox", subscriptions=[(INBOX.topic(MALL, ann), 1)], on_message=inbox)

    page = sign_in(browser, base, "bean")
    page.click('nav a[data-nav="/campaigns"]')
    page.click("#new-campaign")
    start = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    page.fill("input[name=id]", "panel-latte")
    page.fill("input[name=title]", "Latte for 1 point")
    page.fill("textarea[name=text]", "Show this at Bean Bar today.")
    page.fill("input[name=starts_at]", start)
    page.check("input[name=stores][value=bean-bar-l1]")
    shot(page, "panel-campaign-new-en.png")
    page.click("#campaign-form button[type=submit]")
    expect(page).to_have_url(f"{base}/panel/campaigns/panel-latte?done=saved")
    expect(page.locator(".notice")).to_be_visible()

    Nodes(connect, app).visit("store-1", 1)
    wait_until(
        lambda: any(
            isinstance(n := decode(m.topic, m.payload).message, OfferNotice)
            and n.offer.campaign == "panel-latte"
            for m in list(inbox.messages)
        ),
        what="the panel's campaign in Ann's inbox",
    )
    # the campaign page shows the delivery live (htmx refreshes its deliveries)
    expect(page.locator("#campaign-deliveries tbody tr")).to_have_count(1, timeout=20_000)
    shot(page, "panel-campaign-deliveries-en.png")

    # an edit keeps the campaign's deliveries (and so its caps)
    page.fill("input[name=title]", "Latte for 2 points")
    page.click("#campaign-form button[type=submit]")
    expect(page.locator(".notice")).to_be_visible()
    page.goto("/panel/campaigns")
    row = page.locator("#campaigns tr[data-campaign=panel-latte]")
    expect(row).to_contain_text("Latte for 2 points")
    expect(row.locator(".deliveries")).to_have_text("1")

    # a form without the session's CSRF token changes nothing
    r = page.request.post(
        "/panel/campaigns/panel-latte/delete", form={"csrf": "forged"}, max_redirects=0
    )
    assert r.status == 403
    expect(page.locator("#campaigns tr[data-campaign=panel-latte]")).to_have_count(1)
    no_outside_requests(page)


def test_a_node_shows_online_then_offline_with_an_alert_when_its_process_is_killed(
    browser, panel, broker, tmp_path
):
    _config, _app, base = panel
    trace = tmp_path / "trace.jsonl"
    browse_trace(trace, shoppers=1)
    password = broker.add_user("store-1")
    path = node_config(tmp_path, broker, "store-1", password, trace, at_end="idle")
    node = subprocess.Popen(
        [sys.executable, "-m", "mallnet.cli", "edge", "run", "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        page = sign_in(browser, base, "admin")
        page.click('nav a[data-nav="/nodes"]')
        row = page.locator("#nodes tr[data-node=store-1]")
        expect(row).to_have_attribute("data-state", "online", timeout=30_000)
        expect(row.locator("td").nth(4)).not_to_have_text("—", timeout=30_000)  # its outbox
        expect(page.locator("#alerts")).to_have_count(0)
        shot(page, "panel-nodes-online-en.png")

        node.send_signal(signal.SIGKILL)
        node.wait(timeout=30)
        # the broker publishes its Last Will; the page's live part shows it without a reload
        expect(row).to_have_attribute("data-state", "offline", timeout=30_000)
        expect(page.locator("#alerts [data-alert=store-1]")).to_be_visible()
        shot(page, "panel-nodes-offline-alert-en.png")
        status, nodes = data(page, "/panel/data/nodes")
        (store_1,) = [n for n in nodes if n["id"] == "store-1"]
        assert status == 200 and store_1["alert"] == "offline"
        assert store_1["outbox_depth"] is not None and store_1["last_seen"] is not None
        assert json.dumps(nodes)  # plain JSON
        no_outside_requests(page)
    finally:
        if node.poll() is None:
            node.kill()
            node.wait(timeout=10)


def test_the_office_uploads_a_partners_codes_and_watches_the_report(browser, panel, tmp_path):
    """The promo-code page in a real browser under the panel's CSP: a CSV chosen in the file
    input, its progress and report live, the printed list; nothing from outside."""
    _config, _app, base = panel
    now = datetime.now(UTC)
    r = httpx.post(
        f"{base}/promo-codes/pools",
        json={
            "id": "latte",
            "business": "bean-bar",
            "title": "A free latte",
            "valid_from": (now - timedelta(days=1)).isoformat(),
            "valid_until": (now + timedelta(days=30)).isoformat(),
            "low_stock": 5,
        },
        headers={"X-API-Key": KEYS["admin"]},
    )
    assert r.status_code == 201, r.text
    page = sign_in(browser, base, "admin")
    page.click('nav a[data-nav="/promo-codes"]')
    expect(page.locator('#pools tr[data-pool="latte"]')).to_be_visible()
    csv = "code\n" + "".join(f"LATTE-{i:04d}\n" for i in range(40)) + "LATTE-0003\nx\n"
    (tmp_path / "latte.csv").write_text(csv)
    page.set_input_files("#upload input[type=file]", tmp_path / "latte.csv")
    page.click("#upload button[type=submit]")
    expect(page.locator('[data-state="done"]')).to_be_visible(timeout=15_000)
    expect(page.locator('[data-state="done"] .added')).to_have_text("40")
    expect(page.locator('[data-state="done"] .problems tbody tr')).to_have_count(2)
    expect(page.locator('#pools tr[data-pool="latte"] .free')).to_have_text("40")
    shot(page, "panel-promo-codes.png")
    with page.expect_navigation():
        page.click('#pools tr[data-pool="latte"] a.print')
    expect(page.locator("td.code")).to_have_count(40)
    no_outside_requests(page)
