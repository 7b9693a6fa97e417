"""Promo-code pools and the gift showcase through the real core, uvicorn and HTTP: CSV uploads
with their report, one code per shopper under concurrent claims, "exhausted", the low-stock
alert, the printed list, partners marking codes used, tenant isolation, and gift purchases
that spend points and give a code atomically."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cloud_core import ledger, promo_codes, promo_csv
from cloud_core.app import CoreApp
from cloud_core.store import open_store
from tests.cloud_core.api_helpers import KEYS, h
from tests.cloud_core.helpers import START, api_client, serve_api
from tests.conftest import wait_until

BOTH_BACKENDS = True  # every test here runs on SQLite and on PostgreSQL (conftest.py)
EXHAUSTED = "urn:mallnet:problem:promo-codes-exhausted"
AT = datetime.fromtimestamp(START, UTC)


@pytest.fixture
def api(tmp_path, database) -> Iterator[tuple[httpx.Client, CoreApp]]:
    with serve_api(
        tmp_path,
        [
            {"name": "office", "role": "admin", "key": KEYS["admin"]},
            {"name": "atrium", "role": "kiosk", "key": KEYS["kiosk"]},
            {"name": "bean", "role": "tenant", "business": "bean-bar", "key": KEYS["bean"]},
            {"name": "shoe", "role": "tenant", "business": "shoe-hub", "key": KEYS["shoe"]},
        ],
        database=database,
    ) as served:
        yield served


def shopper(client: httpx.Client, n: int) -> str:
    r = client.post("/customers", json={"phone": f"07911 {100000 + n}"}, headers=h("admin"))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def make_pool(client: httpx.Client, pool: str = "latte", **fields: Any) -> dict[str, Any]:
    body = {
        "id": pool,
        "business": "bean-bar",
        "title": "A free latte",
        "description": "Say the code at the till.",
        "valid_from": (AT - timedelta(days=1)).isoformat(),
        "valid_until": (AT + timedelta(days=30)).isoformat(),
        "low_stock": 2,
        **fields,
    }
    r = client.post("/promo-codes/pools", json=body, headers=h("admin"))
    assert r.status_code == 201, r.text
    return dict(r.json())


def upload(client: httpx.Client, pool: str, text: str | bytes) -> dict[str, Any]:
    """Upload a CSV and wait for its background job to finish; the finished report."""
    body = text.encode() if isinstance(text, str) else text
    r = client.post(
        f"/promo-codes/pools/{pool}/uploads",
        content=body,
        headers=h("admin") | {"content-type": "text/csv"},
    )
    assert r.status_code == 202, r.text
    location = r.headers["location"]
    assert r.json()["state"] == "running" and location.endswith(r.json()["id"])
    report: dict[str, Any] = {}

    def finished() -> bool:
        report.update(client.get(location, headers=h("admin")).json())
        return bool(report["state"] != "running")

    wait_until(finished, what="the upload to finish")
    return report


def codes(n: int, prefix: str = "LATTE") -> str:
    return "code\n" + "".join(f"{prefix}-{i:04d}\n" for i in range(n))


def stock(client: httpx.Client, pool: str) -> dict[str, Any]:
    r = client.get(f"/promo-codes/pools/{pool}", headers=h("admin"))
    assert r.status_code == 200, r.text
    return dict(r.json()["stock"])


def db_rows(app: CoreApp, sql: str, *params: object) -> list[tuple[Any, ...]]:
    store = open_store(app.config.database)
    try:
        with store.read() as conn:
            return [tuple(r) for r in conn.execute(sql, params).fetchall()]
    finally:
        store.close()


def grant(app: CoreApp, customer: str, points: int) -> None:
    store = open_store(app.config.database)
    try:
        with store.transaction() as conn:
            ledger.grant(
                conn,
                customer=customer,
                pocket=ledger.COALITION,
                points=points,
                reason="visit",
                idem_key=f"seed:{customer}",
                now=AT,
            )
    finally:
        store.close()


def test_concurrent_claims_of_the_last_codes_each_get_a_different_code_or_exhausted(api):
    client, app = api
    make_pool(client)
    report = upload(client, "latte", codes(12))
    assert report["added"] == 12
    shoppers = [shopper(client, n) for n in range(30)]
    start = threading.Barrier(len(shoppers))

    def claim(customer: str) -> httpx.Response:
        with api_client(app.config) as own:  # one connection per client, as a kiosk has
            start.wait()
            return own.post(
                "/promo-codes/pools/latte/claims",
                json={"customer": customer},
                headers=h("kiosk"),
            )

    with ThreadPoolExecutor(len(shoppers)) as pool:
        answers = list(pool.map(claim, shoppers))
    got = [r.json()["code"] for r in answers if r.status_code == 201]
    refused = [r for r in answers if r.status_code != 201]
    assert len(got) == 12 and len(set(got)) == 12  # every code once
    assert len(refused) == 18
    for r in refused:
        assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == EXHAUSTED and "exhausted" in r.json()["detail"]
    holders = db_rows(app, "SELECT code, customer_id FROM promo_codes WHERE pool_id = 'latte'")
    assert len({c for c, _ in holders}) == 12 and len({w for _, w in holders}) == 12
    assert stock(client, "latte") == {"total": 12, "claimed": 12, "used": 0, "free": 0, "low": True}


def test_a_claim_again_gives_the_shoppers_code_back_within_the_cap(api):
    client: httpx.Client = api[0]
    make_pool(client)
    make_pool(client, "two-each", per_customer=2)
    upload(client, "latte", codes(5))
    upload(client, "two-each", codes(5, "TWO"))
    ann = shopper(client, 1)
    first = client.post(
        "/promo-codes/pools/latte/claims", json={"customer": ann}, headers=h("kiosk")
    )
    assert first.status_code == 201 and first.json()["outcome"] == "claimed"
    again = client.post(
        "/promo-codes/pools/latte/claims", json={"customer": ann}, headers=h("kiosk")
    )
    assert again.status_code == 200 and again.json()["outcome"] == "already_claimed"
    assert again.json()["code"] == first.json()["code"] and again.json()["left"] == 4

    def claim(key: str) -> httpx.Response:
        return client.post(
            "/promo-codes/pools/two-each/claims",
            json={"customer": ann, "request_key": key},
            headers=h("kiosk"),
        )

    a, a_again, b, c = claim("k1"), claim("k1"), claim("k2"), claim("k3")
    assert a.status_code == 201 and a_again.status_code == 200
    assert a_again.json()["code"] == a.json()["code"]  # a retried request: the same code
    assert b.status_code == 201 and b.json()["code"] != a.json()["code"]
    assert c.status_code == 200 and c.json()["code"] == b.json()["code"]  # the cap: 2
    assert stock(client, "two-each")["claimed"] == 2
    wallet = client.get(f"/customers/{ann}/promo-codes", headers=h("kiosk")).json()
    assert sorted(w["code"] for w in wallet) == sorted(
        [first.json()["code"], a.json()["code"], b.json()["code"]]
    )


def test_an_upload_reports_duplicates_and_bad_rows_with_their_lines(api):
    client, app = api
    make_pool(client)
    text = (
        "\ufeffCode,note\n"  # a header (any case) after a byte-order mark
        "AB-001,first\n"
        "AB-002\n"
        "\n"  # blank: skipped
        "AB-001,again\n"  # line 5: a duplicate within the file
        ",no code\n"  # line 6
        "x\n"  # line 7: too short
        "has space\n"  # line 8
        "ab-001\n"  # codes are case-sensitive: a new code
    )
    report = upload(client, "latte", text)
    assert report["state"] == "done" and report["total"] == report["done"] == 7
    assert (report["added"], report["duplicates_in_file"], report["bad"]) == (3, 1, 3)
    assert report["duplicates_in_pool"] == 0
    problems = {(p["line"], p["kind"]) for p in report["problems"]}
    assert problems == {
        (5, "duplicate_in_file"),
        (6, "bad"),
        (7, "bad"),
        (8, "bad"),
    }
    again = upload(client, "latte", "AB-002\nAB-003\nab-001\n")
    assert (again["added"], again["duplicates_in_pool"]) == (1, 2)
    assert [p["line"] for p in again["problems"]] == [1, 3]
    assert stock(client, "latte")["total"] == 4
    rows = db_rows(app, "SELECT code FROM promo_codes ORDER BY seq")
    assert [r[0] for r in rows] == ["AB-001", "AB-002", "ab-001", "AB-003"]


def test_the_report_lists_a_bounded_number_of_problems_but_counts_all(api):
    client, _ = api
    make_pool(client)
    report = upload(client, "latte", "OK-1\n" + "?\n" * 250 + "OK-1\n" * 1200)
    assert report["bad"] == 250 and report["duplicates_in_file"] == 1200
    assert len(report["problems"]) == 100 and report["added"] == 1


def test_a_bad_request_writes_nothing(api):
    client: httpx.Client = api[0]
    app = api[1]
    make_pool(client)

    def post(body: bytes, kind: str = "text/csv", pool: str = "latte") -> httpx.Response:
        return client.post(
            f"/promo-codes/pools/{pool}/uploads",
            content=body,
            headers=h("admin") | {"content-type": kind},
        )

    assert post(b"AB-001\n", "application/json").status_code == 415
    assert post(b"AB-001\n\xff\xfe\n").status_code == 422  # not UTF-8
    r = post(b"code\n\n")
    assert r.status_code == 422 and "no codes" in r.json()["detail"]
    assert post(b'AB-001\n"unterminated\n').status_code == 422  # not CSV
    big = post(b"AB-0001\n" * (4 * 1024 * 1024 // 8 + 1))
    assert big.status_code == 413 and big.headers["content-type"] == "application/problem+json"
    assert post(b"AB-001\n", pool="nope").status_code == 404
    r = client.post(
        "/promo-codes/pools/latte/uploads",
        content=b"AB-001\n",
        headers=h("bean") | {"content-type": "text/csv"},
    )
    assert r.status_code == 403  # a tenant never uploads (the mall does)
    assert db_rows(app, "SELECT COUNT(*) FROM promo_codes") == [(0,)]
    assert db_rows(app, "SELECT COUNT(*) FROM promo_uploads") == [(0,)]
    assert stock(client, "latte")["total"] == 0


def test_tenants_read_print_and_mark_only_their_own_pools(api):
    client, _ = api
    make_pool(client)
    upload(client, "latte", codes(3))
    ann = shopper(client, 1)
    code = client.post(
        "/promo-codes/pools/latte/claims", json={"customer": ann}, headers=h("kiosk")
    ).json()["code"]
    # the other tenant: neither read, print, list nor mark (and not told the pool exists)
    for r in (
        client.get("/promo-codes/pools/latte", headers=h("shoe")),
        client.get("/promo-codes/pools/latte/print", headers=h("shoe")),
        client.post("/promo-codes/pools/latte/uses", json={"code": code}, headers=h("shoe")),
    ):
        assert r.status_code == 404, r.text
    assert client.get("/promo-codes/pools", headers=h("shoe")).json() == []
    assert client.get(f"/customers/{ann}/promo-codes", headers=h("shoe")).json() == []
    assert client.get("/promo-codes/pools", headers=h("kiosk")).status_code == 403
    claim = client.post(
        "/promo-codes/pools/latte/claims", json={"customer": ann}, headers=h("bean")
    )
    assert claim.status_code == 403
    # the partner itself
    assert [p["id"] for p in client.get("/promo-codes/pools", headers=h("bean")).json()] == [
        "latte"
    ]
    assert [
        c["code"] for c in client.get(f"/customers/{ann}/promo-codes", headers=h("bean")).json()
    ] == [code]
    unissued = client.post(
        "/promo-codes/pools/latte/uses", json={"code": "LATTE-0002"}, headers=h("bean")
    )
    assert unissued.status_code == 409 and "never given" in unissued.json()["detail"]
    used = client.post(
        "/promo-codes/pools/latte/uses",
        json={"code": code, "request_key": "till-1"},
        headers=h("bean"),
    )
    assert used.status_code == 200 and used.json()["outcome"] == "used"
    repeat = client.post(
        "/promo-codes/pools/latte/uses",
        json={"code": code, "request_key": "till-1"},
        headers=h("bean"),
    )
    assert repeat.status_code == 200 and repeat.json()["outcome"] == "duplicate"
    assert repeat.json()["used_at"] == used.json()["used_at"]
    twice = client.post("/promo-codes/pools/latte/uses", json={"code": code}, headers=h("bean"))
    assert twice.status_code == 409
    assert twice.json()["type"] == "urn:mallnet:problem:promo-code-used"
    assert "already used" in twice.json()["detail"]
    missing = client.post(
        "/promo-codes/pools/latte/uses", json={"code": "NOPE-1"}, headers=h("bean")
    )
    assert missing.status_code == 404
    assert stock(client, "latte")["used"] == 1
    wallet = client.get(f"/customers/{ann}/promo-codes", headers=h("kiosk")).json()
    assert wallet[0]["used_at"] == used.json()["used_at"]


def test_the_printed_list_is_one_page_of_the_cores_own(api):
    client, _ = api
    make_pool(client, title="Latte <free>")
    upload(client, "latte", codes(3))
    ann = shopper(client, 1)
    code = client.post(
        "/promo-codes/pools/latte/claims", json={"customer": ann}, headers=h("kiosk")
    ).json()["code"]
    client.post("/promo-codes/pools/latte/uses", json={"code": code}, headers=h("bean"))
    r = client.get("/promo-codes/pools/latte/print", headers=h("bean"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert all(f"LATTE-{i:04d}" in html for i in range(3))
    assert "Latte &lt;free&gt;" in html  # escaped
    assert "://" not in html and "<script" not in html  # nothing from outside, no script
    assert r.headers["content-security-policy"] == "default-src 'none'; style-src 'self'"
    css = re.findall(r'<link rel="stylesheet" href="([^"]+)">', html)
    assert css == ["/panel/static/print.css"] and "/panel/static/favicon.svg" in html
    assert "@media print" in client.get(css[0]).text  # the core's own stylesheet
    assert html.count('class="used"') == 1
    unused = client.get("/promo-codes/pools/latte/print?include_used=false", headers=h("bean"))
    assert code not in unused.text and "LATTE-0001" in unused.text


def test_a_pool_running_low_alerts_once_per_crossing(api, caplog):
    client, _ = api
    make_pool(client, low_stock=2)
    upload(client, "latte", codes(4))
    shoppers = [shopper(client, n) for n in range(4)]

    def claim(customer: str) -> None:
        r = client.post(
            "/promo-codes/pools/latte/claims", json={"customer": customer}, headers=h("kiosk")
        )
        assert r.status_code == 201, r.text

    def alerts() -> int:
        return sum("running low" in r.getMessage() for r in caplog.records)

    def gauge(line: str) -> bool:
        return line in client.get("/metrics", headers=h("admin")).text.splitlines()

    with caplog.at_level(logging.WARNING, logger="cloud_core.promo_codes"):
        claim(shoppers[0])
        assert alerts() == 0 and stock(client, "latte")["low"] is False
        assert gauge('mallnet_promo_pool_low{pool="latte"} 0.0')
        claim(shoppers[1])  # 2 left: at the threshold
        claim(shoppers[2])
        assert alerts() == 1 and stock(client, "latte")["low"] is True
        assert gauge('mallnet_promo_pool_low{pool="latte"} 1.0')
        assert gauge('mallnet_promo_codes{pool="latte",state="free"} 1.0')
        upload(client, "latte", codes(5, "MORE"))  # restocked above the threshold
        assert stock(client, "latte")["low"] is False
        claim(shoppers[3])
        assert alerts() == 1
        for n in range(4, 8):
            claim(shopper(client, n))
        assert alerts() == 2  # the second crossing
        assert gauge('mallnet_promo_codes{pool="latte",state="claimed"} 8.0')


def test_a_pool_outside_its_validity_gives_no_codes(api):
    client, _ = api
    make_pool(
        client,
        valid_from=(AT + timedelta(days=1)).isoformat(),
        valid_until=(AT + timedelta(days=2)).isoformat(),
    )
    upload(client, "latte", codes(2))
    ann = shopper(client, 1)
    r = client.post("/promo-codes/pools/latte/claims", json={"customer": ann}, headers=h("kiosk"))
    assert r.status_code == 409 and "valid from" in r.json()["detail"]
    dup = client.post(
        "/promo-codes/pools",
        json={
            "id": "latte",
            "business": "bean-bar",
            "title": "x",
            "valid_from": AT.isoformat(),
            "valid_until": (AT + timedelta(days=1)).isoformat(),
        },
        headers=h("admin"),
    )
    assert dup.status_code == 409


# --- the gift showcase ---------------------------------------------------------------


def make_gift(client: httpx.Client, n_codes: int, points: int = 200) -> None:
    make_pool(client, "latte-gift")
    upload(client, "latte-gift", codes(n_codes, "GIFT"))
    r = client.post(
        "/promo-codes/gifts",
        json={"id": "latte", "pool": "latte-gift", "title": "A latte", "points": points},
        headers=h("admin"),
    )
    assert r.status_code == 201, r.text


def coalition(client: httpx.Client, customer: str) -> int:
    pockets = client.get(f"/customers/{customer}/wallet", headers=h("admin")).json()["pockets"]
    return sum(p["available"] for p in pockets if p["pocket"] == "mall")


def buy(client: httpx.Client, customer: str, key: str) -> httpx.Response:
    return client.post(
        "/promo-codes/gifts/latte/purchases",
        json={"customer": customer, "idempotency_key": key},
        headers=h("kiosk"),
    )


def test_a_gift_costs_its_points_and_gives_the_next_code_both_or_neither(api):
    client, app = api
    make_gift(client, 2)
    ann, bob = shopper(client, 1), shopper(client, 2)
    grant(app, ann, 500)
    grant(app, bob, 150)
    showcase = client.get("/promo-codes/gifts", headers=h("kiosk")).json()
    assert [(g["id"], g["points"], g["left"]) for g in showcase] == [("latte", 200, 2)]
    first = buy(client, ann, "k1")
    assert first.status_code == 201, first.text
    assert first.json()["code"] == "GIFT-0000" and first.json()["available"] == 300
    again = buy(client, ann, "k1")  # a retry: the same answer, nothing spent
    assert again.status_code == 200 and again.json()["code"] == "GIFT-0000"
    assert again.json()["outcome"] == "duplicate" and coalition(client, ann) == 300
    capped = buy(client, ann, "k2")  # one code per shopper (the pool's cap)
    assert capped.status_code == 409 and coalition(client, ann) == 300
    poor = buy(client, bob, "k1")
    assert poor.status_code == 409
    assert poor.json()["type"] == "urn:mallnet:problem:insufficient-points"
    assert coalition(client, bob) == 150 and stock(client, "latte-gift")["claimed"] == 1
    free = client.post(
        "/promo-codes/pools/latte-gift/claims", json={"customer": bob}, headers=h("kiosk")
    )
    assert free.status_code == 409 and "bought" in free.json()["detail"]  # never for free
    wallet = client.get(f"/customers/{ann}/promo-codes", headers=h("kiosk")).json()
    assert [w["code"] for w in wallet] == ["GIFT-0000"]
    history = client.get(f"/customers/{ann}/history", headers=h("admin")).json()
    assert history[0]["delta"] == -200 and history[0]["reason"] == "showcase"
    assert "GIFT-0000" in history[0]["text"]
    notices = db_rows(app, "SELECT customer_id, payload FROM pending_notices")
    assert len(notices) == 1 and notices[0][0] == ann  # the write-off reaches the inbox
    assert b'"points":-200' in notices[0][1] and b'"reason":"showcase"' in notices[0][1]


def test_concurrent_purchases_of_the_last_gifts_spend_only_for_codes_given(api):
    client, app = api
    make_gift(client, 3)
    shoppers = [shopper(client, n) for n in range(10)]
    for customer in shoppers:
        grant(app, customer, 500)
    start = threading.Barrier(len(shoppers))

    def purchase(customer: str) -> httpx.Response:
        with api_client(app.config) as own:
            start.wait()
            return buy(own, customer, f"k-{customer}")

    with ThreadPoolExecutor(len(shoppers)) as pool:
        answers = dict(zip(shoppers, pool.map(purchase, shoppers), strict=True))
    bought = {c: r.json()["code"] for c, r in answers.items() if r.status_code == 201}
    assert len(bought) == 3 and len(set(bought.values())) == 3
    for customer, r in answers.items():
        if customer in bought:
            assert coalition(client, customer) == 300
        else:
            assert r.status_code == 409 and r.json()["type"] == EXHAUSTED
            assert coalition(client, customer) == 500  # nothing spent without a code
    assert client.get("/promo-codes/gifts", headers=h("kiosk")).json()[0]["left"] == 0
    store = open_store(app.config.database)
    try:
        with store.read() as conn:
            assert ledger.check_invariants(conn) == []
    finally:
        store.close()
    assert db_rows(app, "SELECT COUNT(*) FROM showcase_purchases") == [(3,)]


def test_erasing_a_shopper_keeps_their_code_claimed_by_nobody(api):
    client, app = api
    make_pool(client)
    upload(client, "latte", codes(2))
    ann = shopper(client, 1)
    code = client.post(
        "/promo-codes/pools/latte/claims",
        json={"customer": ann, "request_key": "k1"},
        headers=h("kiosk"),
    ).json()["code"]
    assert client.delete(f"/customers/{ann}", headers=h("admin")).status_code == 200
    assert db_rows(app, "SELECT customer_id, claim_key FROM promo_codes WHERE code = ?", code) == [
        ("", None)
    ]
    assert stock(client, "latte")["free"] == 1  # never given again


# --- the panel ---------------------------------------------------------------------------


def panel_session(base: str, who: str, stack: ExitStack) -> tuple[httpx.Client, str]:
    """A browser-like client signed in to the panel (closed with ``stack``), and its CSRF
    token."""
    browser = stack.enter_context(httpx.Client(base_url=base, timeout=10))
    r = browser.post("/panel/login", data={"key": KEYS[who]})
    assert r.status_code == 303, r.text
    found = re.search(r'name="csrf" value="([^"]+)"', browser.get("/panel/promo-codes").text)
    assert found is not None
    return browser, found.group(1)


def test_the_panel_shows_pools_uploads_with_progress_and_the_report(api):
    with ExitStack() as stack:
        panel_upload(api, stack)


def panel_upload(api: tuple[httpx.Client, CoreApp], stack: ExitStack) -> None:
    client, _ = api
    make_pool(client)
    make_pool(client, "shoe-socks", business="shoe-hub", title="Socks")
    base = str(client.base_url)
    office, csrf = panel_session(base, "admin", stack)
    page = office.get("/panel/promo-codes")
    assert page.status_code == 200 and 'data-pool="latte"' in page.text
    assert 'data-nav="/promo-codes"' in page.text  # the nav entry, now that the API serves it
    assert 'data-pool="shoe-socks"' in page.text and 'id="upload"' in page.text
    text = b"code\nP-0001\nP-0002\nP-0001\nx\n"
    r = office.post(
        "/panel/promo-codes/upload",
        data={"csrf": csrf, "pool": "latte"},
        files={"file": ("codes.csv", text, "text/csv")},
    )
    assert r.status_code == 303 and r.headers["location"] == "/panel/promo-codes", r.text

    def done() -> bool:
        return 'data-state="done"' in office.get("/panel/promo-codes").text

    wait_until(done, what="the upload's report on the page")
    html = office.get("/panel/promo-codes").text
    assert re.search(r'class="added">2<', html)
    assert '<td class="num">4</td><td>duplicate_in_file</td>' in html  # with its line
    assert '<td class="num">5</td><td>bad</td>' in html
    assert stock(client, "latte")["total"] == 2
    forged = office.post(
        "/panel/promo-codes/upload",
        data={"csrf": "nope", "pool": "latte"},
        files={"file": ("codes.csv", b"P-0003\n", "text/csv")},
    )
    assert forged.status_code == 403
    bad = office.post(
        "/panel/promo-codes/upload",
        data={"csrf": csrf, "pool": "latte"},
        files={"file": ("codes.csv", b"\xff\xfe", "text/csv")},
    )
    assert bad.status_code == 422 and "UTF-8" in bad.text
    assert stock(client, "latte")["total"] == 2
    # the partner sees its own pool only, may print it, never upload
    bean, bean_csrf = panel_session(base, "bean", stack)
    mine = bean.get("/panel/promo-codes").text
    assert 'data-pool="latte"' in mine and "shoe-socks" not in mine and 'id="upload"' not in mine
    printed = bean.get("/panel/promo-codes/latte/print")
    assert printed.status_code == 200 and "P-0001" in printed.text
    assert 'href="/panel/static/print.css"' in printed.text
    assert "default-src 'none'" in printed.headers["content-security-policy"]
    css = bean.get("/panel/static/print.css")
    assert css.status_code == 200 and "@media print" in css.text
    assert bean.get("/panel/promo-codes/shoe-socks/print").status_code == 404
    refused = bean.post(
        "/panel/promo-codes/upload",
        data={"csrf": bean_csrf, "pool": "latte"},
        files={"file": ("codes.csv", b"P-0009\n", "text/csv")},
    )
    assert refused.status_code == 403 and stock(client, "latte")["total"] == 2


def test_an_upload_cut_short_reads_as_failed_and_a_new_upload_adds_the_rest(api):
    client, app = api
    make_pool(client)
    store = open_store(app.config.database)
    try:  # an upload whose process stopped after its first chunk (no job is running it)
        with store.transaction() as conn:
            cut = promo_codes.start_upload(conn, "latte", 3, AT)
            promo_codes.add_rows(conn, cut, list(promo_csv.parse(b"C-001\n")), AT)
    finally:
        store.close()
    location = f"/promo-codes/pools/latte/uploads/{cut.id}"
    assert client.get(location, headers=h("admin")).json()["state"] == "running"
    app.clock.advance(promo_codes.STALE_AFTER_S + 1)
    report = client.get(location, headers=h("admin")).json()
    assert report["state"] == "failed" and "interrupted" in report["detail"]
    again = upload(client, "latte", "C-001\nC-002\nC-003\n")
    assert (again["added"], again["duplicates_in_pool"]) == (2, 1)
    assert stock(client, "latte")["total"] == 3
