"""The seller's terminal through the real core, uvicorn and HTTP: capped redemptions that
cannot be beaten by splitting, two-phase holds that expire, no overspending under
concurrency, exact refunds, idempotent writes, shopper identification."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import httpx
import pytest

from cloud_core.cards import issue_card_token
from cloud_core.store import open_store
from mallnet.broker import free_port
from tests.cloud_core.api_helpers import h, register
from tests.cloud_core.terminal_helpers import (
    CARD_SECRET,
    available,
    grant,
    later,
    ledger_problems,
    serve_terminal,
    th,
    tk,
)

BOTH_BACKENDS = True  # the tests that take `database` run on SQLite and on PostgreSQL


@pytest.fixture
def till(tmp_path):
    with serve_terminal(tmp_path) as served:
        yield served


def redeem_once(c: httpx.Client, customer: str, receipt: str, points: int) -> int:
    """Hold and commit ``points`` as a till would, retrying what the core asks to retry
    (503 + Retry-After: a PostgreSQL serialization conflict, nothing written)."""
    while True:
        r = hold(c, customer, receipt, 400, coalition=points, key=f"k-{receipt}-hold")
        if r.status_code == 201:
            while True:
                done = c.post(
                    f"/terminal/holds/{r.json()['id']}/commit",
                    headers=tk("pizza", f"k-{receipt}-commit"),
                )
                if done.status_code != 503:
                    return done.status_code
        elif r.status_code != 503:
            return int(r.status_code)


def hold(client, customer, receipt, order, *, coalition=0, store=0, till="pizza", key=None):
    return client.post(
        "/terminal/holds",
        json={
            "customer": customer,
            "receipt": receipt,
            "order_cents": order,
            "coalition_points": coalition,
            "store_points": store,
        },
        headers=tk(till, key),
    )


def problem_type(r) -> str:
    assert r.headers["content-type"] == "application/problem+json", r.text
    return str(r.json()["type"])


def test_the_15_percent_cap_cannot_be_beaten_by_splitting_an_order(till):
    client, app = till
    ann = register(client)
    grant(app, ann, "mall", 2000)
    q = client.post(
        "/terminal/quote",
        json={"customer": ann, "receipt": "R-1", "order_cents": 4000},
        headers=th("pizza"),
    ).json()
    assert (q["cap_points"], q["cap_left"], q["max_points"], q["to_pay_cents"]) == (
        600,
        600,
        600,
        3400,
    )
    # three calls on one receipt, from two tills: 15 % of 40 € in all, never more
    assert hold(client, ann, "R-1", 4000, coalition=250).status_code == 201
    assert hold(client, ann, "R-1", 4000, coalition=250, till="pizza2").status_code == 201
    r = hold(client, ann, "R-1", 4000, coalition=101)
    assert r.status_code == 409 and problem_type(r) == "urn:mallnet:problem:cap-exceeded"
    assert "600" in r.json()["detail"]
    # a smaller sum for the same receipt does not lower what was held, nor raise the cap
    r = hold(client, ann, "R-1", 1000, coalition=101)
    assert r.status_code == 409 and problem_type(r) == "urn:mallnet:problem:cap-exceeded"
    assert hold(client, ann, "R-1", 1000, coalition=100).status_code == 201
    q = client.post(
        "/terminal/quote",
        json={"customer": ann, "receipt": "R-1", "order_cents": 4000},
        headers=th("pizza"),
    ).json()
    assert q["cap_left"] == 0 and q["used_points"] == 600 and q["to_pay_cents"] == 3400
    assert available(client, ann)["mall"] == 1400
    assert ledger_problems(app) == []


def test_store_pockets_are_spent_only_at_their_store_and_points_never_pay_more_than_the_order(
    till,
):
    client, app = till
    ann = register(client)
    grant(app, ann, "pizzeria", 900, reason="visit")
    grant(app, ann, "bean-bar", 900, reason="visit")
    # the pizzeria's pocket pays at the pizzeria (no cap on a store's own points) ...
    assert hold(client, ann, "R-2", 800, store=800).status_code == 201
    r = hold(client, ann, "R-2", 800, store=1)
    assert r.status_code == 422 and "more than the order" in r.json()["detail"]
    # ... and Bean Bar's pocket is not the shoe shop's to spend
    r = hold(client, ann, "S-1", 5000, store=10, till="shoe")
    assert r.status_code == 409
    assert problem_type(r) == "urn:mallnet:problem:insufficient-points"
    assert available(client, ann) == {"bean-bar": 900, "pizzeria": 100}


def test_soonest_expiring_points_are_spent_first(till):
    client, app = till
    ann = register(client)
    now = datetime.fromtimestamp(app.clock(), UTC)
    grant(app, ann, "mall", 100)  # never expires
    grant(app, ann, "mall", 100, expires_at=now.replace(hour=23))
    grant(app, ann, "mall", 100, expires_at=now.replace(hour=20))
    held = hold(client, ann, "R-3", 1000, coalition=150).json()
    assert held["coalition_points"] == 150
    r = client.get(f"/customers/{ann}/history", headers=h("admin"))
    spent = [e for e in r.json() if e["reason"] == "redemption"]
    # 100 from the lot expiring at 20:00, then 50 from the one at 23:00; none from the rest
    assert sorted(e["delta"] for e in spent) == [-100, -50]
    assert (
        client.get(f"/customers/{ann}/wallet", headers=h("admin"))
        .json()["pockets"][0]["next_expiry"]
        .startswith(now.replace(hour=23).date().isoformat())
    )


def test_an_abandoned_hold_expires_and_returns_the_points(till):
    client, app = till
    ann = register(client)
    grant(app, ann, "mall", 500)
    held = hold(client, ann, "R-4", 4000, coalition=600 - 100).json()
    assert held["status"] == "held" and available(client, ann) == {"mall": 0}
    later(app, 301)  # the till lost its connection; nobody commits or releases
    r = client.post(f"/terminal/holds/{held['id']}/commit", headers=tk("pizza"))
    assert r.status_code == 409 and problem_type(r) == "urn:mallnet:problem:hold-expired"
    assert available(client, ann) == {"mall": 500}
    assert (
        client.get(f"/terminal/holds/{held['id']}", headers=th("pizza")).json()["status"]
        == "expired"
    )
    r = client.post(f"/terminal/holds/{held['id']}/release", headers=tk("pizza"))
    assert r.status_code == 409 and problem_type(r) == "urn:mallnet:problem:hold-expired"
    assert ledger_problems(app) == []


def test_commit_and_release_are_final_and_recorded_with_the_seller(till):
    client, app = till
    ann = register(client)
    grant(app, ann, "mall", 500)
    first = hold(client, ann, "R-5", 4000, coalition=300).json()
    assert first["seller"] == "maria"
    done = client.post(f"/terminal/holds/{first['id']}/commit", headers=tk("pizza2"))
    assert done.status_code == 200 and done.json()["closed_by"] == "ivan"
    r = client.post(f"/terminal/holds/{first['id']}/commit", headers=tk("pizza"))
    assert r.status_code == 409 and problem_type(r) == "urn:mallnet:problem:hold-closed"
    assert "already committed" in r.json()["detail"]
    r = client.post(f"/terminal/holds/{first['id']}/release", headers=tk("pizza"))
    assert r.status_code == 409 and problem_type(r) == "urn:mallnet:problem:hold-closed"
    second = hold(client, ann, "R-6", 1000, coalition=150).json()
    r = client.post(f"/terminal/holds/{second['id']}/release", headers=tk("pizza"))
    assert r.json()["status"] == "released"
    assert available(client, ann) == {"mall": 200}
    # another business's till cannot see or close the pizzeria's holds
    r = client.post(f"/terminal/holds/{second['id']}/commit", headers=tk("bean"))
    assert r.status_code == 404
    assert ledger_problems(app) == []


def test_every_write_is_idempotent_and_a_reused_key_with_another_body_is_refused(till):
    client, app = till
    ann = register(client)
    grant(app, ann, "mall", 500)
    a = hold(client, ann, "R-7", 4000, coalition=100, key="till-1-R-7-a")
    b = hold(client, ann, "R-7", 4000, coalition=100, key="till-1-R-7-a")
    assert a.status_code == b.status_code == 201 and a.json() == b.json()
    assert available(client, ann) == {"mall": 400}  # held once
    r = hold(client, ann, "R-7", 4000, coalition=200, key="till-1-R-7-a")
    assert r.status_code == 409
    assert problem_type(r) == "urn:mallnet:problem:idempotency-key-reused"
    c1 = client.post(f"/terminal/holds/{a.json()['id']}/commit", headers=tk("pizza", "commit-1"))
    c2 = client.post(f"/terminal/holds/{a.json()['id']}/commit", headers=tk("pizza", "commit-1"))
    assert c1.status_code == c2.status_code == 200 and c1.json() == c2.json()
    body = {"customer": ann, "receipt": "R-7", "amount_cents": 3900}
    p1 = client.post("/terminal/purchases", json=body, headers=tk("pizza", "purchase-R-7"))
    p2 = client.post("/terminal/purchases", json=body, headers=tk("pizza", "purchase-R-7"))
    assert p1.status_code == p2.status_code == 201 and p1.json() == p2.json()
    assert p1.json()["cashback_points"] == 390
    assert available(client, ann) == {"mall": 400, "pizzeria": 390}
    r = client.post("/terminal/purchases", json=body, headers=tk("pizza"))
    assert r.status_code == 409 and "already registered" in r.json()["detail"]
    r = client.post("/terminal/holds", json={}, headers=th("pizza"))
    assert r.status_code == 422  # no Idempotency-Key (and no body)


def test_concurrent_redemptions_through_the_api_never_overspend(tmp_path, database):
    with serve_terminal(tmp_path, database=database) as (client, app):
        ann = register(client)
        grant(app, ann, "mall", 500)
        outcomes: list[int] = []
        lock = threading.Lock()

        def redeem(n: int) -> None:
            with httpx_client(client) as c:
                code = redeem_once(c, ann, f"C-{n}", 60)
            with lock:
                outcomes.append(code)

        threads = [threading.Thread(target=redeem, args=(n,)) for n in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert outcomes.count(200) == 8  # 8 × 60 = 480 of 500
        assert outcomes.count(409) == 16
        assert available(client, ann) == {"mall": 20}
        assert ledger_problems(app) == []


def httpx_client(client):
    return httpx.Client(base_url=client.base_url, timeout=30)


def test_a_refund_reverses_cashback_and_redemption_exactly(till):
    client, app = till
    ann = register(client)
    grant(app, ann, "mall", 500)
    grant(app, ann, "pizzeria", 50, reason="visit")
    before = available(client, ann)
    held = hold(client, ann, "R-8", 4000, coalition=400, store=50).json()
    client.post(f"/terminal/holds/{held['id']}/commit", headers=tk("pizza"))
    bought = client.post(
        "/terminal/purchases",
        json={"customer": ann, "receipt": "R-8", "amount_cents": 3550},
        headers=tk("pizza"),
    ).json()
    assert bought["cashback_points"] == 355
    assert available(client, ann) == {"mall": 100, "pizzeria": 355}
    r = client.post("/terminal/refunds", json={"receipt": "R-8"}, headers=tk("pizza2"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["points_returned"], out["cashback_reversed"]) == (450, 355)
    assert out["purchase"]["status"] == "refunded" and out["holds"] == [held["id"]]
    assert available(client, ann) == before
    r = client.post("/terminal/refunds", json={"receipt": "R-8"}, headers=tk("pizza"))
    assert r.status_code == 409 and "already refunded" in r.json()["detail"]
    r = client.post("/terminal/refunds", json={"receipt": "NOPE-1"}, headers=tk("pizza"))
    assert r.status_code == 404
    assert problem_type(r) == "urn:mallnet:problem:unknown-receipt"
    assert ledger_problems(app) == []


def test_a_refund_whose_cashback_was_spent_is_refused_and_changes_nothing(till):
    client, app = till
    ann = register(client)
    client.post(
        "/terminal/purchases",
        json={"customer": ann, "receipt": "R-9", "amount_cents": 1000},
        headers=tk("pizza"),
    )
    spent = hold(client, ann, "R-10", 500, store=100).json()
    client.post(f"/terminal/holds/{spent['id']}/commit", headers=tk("pizza"))
    r = client.post("/terminal/refunds", json={"receipt": "R-9"}, headers=tk("pizza"))
    assert r.status_code == 409 and "already spent" in r.json()["detail"]
    assert available(client, ann) == {"pizzeria": 0}
    assert ledger_problems(app) == []


def test_the_shopper_is_identified_by_card_token_or_phone_never_by_guessing(till):
    client, app = till
    ann = register(client)
    grant(app, ann, "mall", 500)
    now = datetime.fromtimestamp(app.clock(), UTC)
    token = issue_card_token(CARD_SECRET.encode(), ann, now)
    r = client.post("/terminal/identify", json={"card_token": token}, headers=th("pizza"))
    assert r.status_code == 200, r.text
    assert r.json() == {
        "customer": ann,
        "pockets": [
            {"pocket": "mall", "available": 500, "next_expiry": None},
            {"pocket": "pizzeria", "available": 0, "next_expiry": None},
        ],
    }
    forged = issue_card_token(b"not-the-mall-secret-0123456789", ann, now)
    r = client.post("/terminal/identify", json={"card_token": forged}, headers=th("pizza"))
    assert r.status_code == 422 and problem_type(r) == "urn:mallnet:problem:card-token"
    later(app, 121)
    r = client.post("/terminal/identify", json={"card_token": token}, headers=th("pizza"))
    assert r.status_code == 422 and "expired" in r.json()["detail"]
    r = client.post("/terminal/identify", json={"phone": "07911 123456"}, headers=th("pizza"))
    assert r.status_code == 200 and r.json()["customer"] == ann
    codes = [
        client.post(
            "/terminal/identify", json={"phone": "07911 000000"}, headers=th("pizza")
        ).status_code
        for _ in range(10)
    ]
    assert codes[-1] == 429 and set(codes[:9]) == {404}
    # roles: a kiosk or tenant key is no till
    r = client.post("/terminal/identify", json={"card_token": token}, headers=h("kiosk"))
    assert r.status_code == 403


def test_erasure_takes_the_shoppers_holds_and_purchases_but_not_what_partners_owe(till):
    client, app = till
    ann = register(client)
    grant(app, ann, "mall", 500)
    held = hold(client, ann, "R-11", 4000, coalition=300).json()
    client.post(f"/terminal/holds/{held['id']}/commit", headers=tk("pizza"))
    hold(client, ann, "R-12", 1000, coalition=100)  # left open
    client.post(
        "/terminal/purchases",
        json={"customer": ann, "receipt": "R-11", "amount_cents": 3700},
        headers=tk("pizza"),
    )
    r = client.delete(f"/customers/{ann}", headers=h("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["removed"]["holds"] == 2 and r.json()["removed"]["purchases"] == 1
    store = open_store(app.config.database)
    try:
        for table in ("holds", "hold_parts", "purchases", "lots", "journal"):
            (n,) = store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
            assert n == 0, table
        (stored,) = store.conn.execute(
            "SELECT COUNT(*) FROM api_requests WHERE response LIKE ?", (f"%{ann}%",)
        ).fetchone()
        assert stored == 0
    finally:
        store.close()
    rep = client.get("/settlements/2026-11", headers=h("admin")).json()
    assert rep["total_cents"] == 300  # the mall still owes the pizzeria


def test_two_api_workers_on_one_database_never_overspend(tmp_path, database):
    """Two core APIs (each its own connection to the same SQLite file or PostgreSQL
    database, as two workers on two hosts are) take redemptions of one balance at once:
    the write transactions serialise them (PostgreSQL: SERIALIZABLE, a loser retried)."""
    from cloud_core.app import CoreApp
    from tests.cloud_core.helpers import START, Clock, api_config
    from tests.cloud_core.terminal_helpers import spending_overrides, till_keys

    first = api_config(tmp_path, till_keys(), database=database, **spending_overrides())
    second = first.model_copy(update={"api": first.api.model_copy(update={"port": free_port()})})
    apps = [CoreApp(c, only="api", clock=Clock(START)) for c in (first, second)]
    for app in apps:
        app.start()
    try:
        bases = [f"http://127.0.0.1:{c.api.port}" for c in (first, second)]
        with httpx.Client(base_url=bases[0], timeout=30) as client:
            ann = register(client)
        grant(apps[0], ann, "mall", 500)
        outcomes: list[int] = []
        lock = threading.Lock()

        def redeem(n: int) -> None:
            with httpx.Client(base_url=bases[n % 2], timeout=30) as c:
                code = redeem_once(c, ann, f"W-{n}", 60)
            with lock:
                outcomes.append(code)

        threads = [threading.Thread(target=redeem, args=(n,)) for n in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert outcomes.count(200) == 8 and outcomes.count(409) == 16
        with httpx.Client(base_url=bases[1], timeout=30) as client:
            assert available(client, ann) == {"mall": 20}
        assert ledger_problems(apps[0]) == []
    finally:
        for app in apps:
            app.stop()
