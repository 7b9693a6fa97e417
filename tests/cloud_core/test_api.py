"""The HTTP API over real uvicorn and httpx: roles, tenant isolation, clear 4xx, erasure."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from cloud_core import ledger
from cloud_core.app import CoreApp
from cloud_core.store import SqliteStore, open_store
from tests.cloud_core.api_helpers import KEYS, h, register
from tests.cloud_core.helpers import START, Clock, make_config, serve_api


@pytest.fixture
def api(tmp_path) -> Iterator[tuple[httpx.Client, CoreApp]]:
    with serve_api(
        tmp_path,
        [
            {"name": "office", "role": "admin", "key": KEYS["admin"]},
            {"name": "atrium", "role": "kiosk", "key": KEYS["kiosk"]},
            {"name": "bean", "role": "tenant", "business": "bean-bar", "key": KEYS["bean"]},
            {
                "name": "shoe",
                "role": "tenant",
                "business": "shoe-hub",
                "key_sha256": hashlib.sha256(KEYS["shoe"].encode()).hexdigest(),
            },
            {"name": "store-1", "role": "node", "node": "store-1", "key": KEYS["node"]},
        ],
    ) as served:
        yield served


def counts(app: CoreApp) -> dict[str, int]:
    store = open_store(app.config.database)
    try:
        return {
            t: store.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("customers", "beacon_keys", "vehicles", "lots", "journal", "campaigns")
        }
    finally:
        store.close()


def seed_points(app: CoreApp, customer: str) -> None:
    store = open_store(app.config.database)
    at = datetime.fromtimestamp(START, UTC)
    try:
        with store.transaction() as conn:
            for pocket, points in (("bean-bar", 30), ("shoe-hub", 40), ("mall", 50)):
                ledger.grant(
                    conn,
                    customer=customer,
                    pocket=pocket,
                    points=points,
                    reason="visit",
                    idem_key=f"seed:{pocket}",
                    now=at,
                )
            for store_id, business in (("bean-bar-l1", "bean-bar"), ("shoe-hub", "shoe-hub")):
                conn.execute(
                    "INSERT INTO visits (event_id, customer_id, store, business, node, ts,"
                    " ts_epoch, day, points) VALUES (?, ?, ?, ?, 'n', ?, ?, '2026-11-23', 10)",
                    (f"e-{store_id}", customer, store_id, business, ledger.iso(at), START),
                )
    finally:
        store.close()


def test_kiosk_registers_a_customer_and_the_admin_attaches_a_beacon_key(api):
    client, _ = api
    r = client.post(
        "/customers", json={"phone": "07911 123456", "email": "a@example.com"}, headers=h("kiosk")
    )
    assert r.status_code == 201
    body = r.json()
    assert body == {"id": body["id"], "phone": "+44*******456", "pockets": []}
    r = client.post(f"/customers/{body['id']}/beacon-keys", json={}, headers=h("admin"))
    assert r.status_code == 201 and len(r.json()["key"]) == 64
    r = client.post(
        f"/customers/{body['id']}/vehicles", json={"plate": "ab12 cde"}, headers=h("admin")
    )
    assert r.json() == {"plate": "AB12CDE"}
    r = client.get(f"/customers/{body['id']}", headers=h("admin"))
    assert r.json()["beacon_keys"] == 1 and r.json()["vehicles"] == ["AB12CDE"]
    found = client.get("/customers", params={"phone": "+44 7911 123456"}, headers=h("kiosk"))
    assert found.status_code == 200 and found.json()["id"] == body["id"]
    missing = client.get("/customers", params={"phone": "07911 123499"}, headers=h("kiosk"))
    assert missing.status_code == 404
    assert (
        client.get("/customers", params={"phone": "07911 123456"}, headers=h("bean")).status_code
        == 403
    )
    # the same phone again, written differently, is a conflict
    r = client.post("/customers", json={"phone": "+44 7911 123456"}, headers=h("kiosk"))
    assert r.status_code == 409 and "already registered" in r.json()["detail"]


def test_a_kiosk_key_sees_only_what_a_self_service_screen_needs(api):
    client, app = api
    r = client.post(
        "/customers",
        json={"phone": "07911 123456", "email": "ann@example.com"},
        headers=h("admin"),
    )
    customer = r.json()["id"]
    client.post(f"/customers/{customer}/vehicles", json={"plate": "AB12CDE"}, headers=h("admin"))
    seed_points(app, customer)
    # finding the shopper who just typed their phone: id, masked phone, wallet; nothing else
    found = client.get("/customers", params={"phone": "07911 123456"}, headers=h("kiosk"))
    assert found.status_code == 200
    body = found.json()
    assert set(body) == {"id", "phone", "pockets"} and body["id"] == customer
    assert body["phone"] == "+44*******456"
    assert {p["pocket"]: p["balance"] for p in body["pockets"]} == {
        "bean-bar": 30,
        "shoe-hub": 40,
        "mall": 50,
    }
    for secret in ("ann@example.com", "AB12CDE", "+447911123456"):
        assert secret not in found.text
    # re-registering an existing phone: a kiosk is not told whose it is; the admin is
    again = client.post("/customers", json={"phone": "+44 7911 123456"}, headers=h("kiosk"))
    assert again.status_code == 409 and customer not in again.text
    again = client.post("/customers", json={"phone": "+44 7911 123456"}, headers=h("admin"))
    assert again.status_code == 409 and customer in again.json()["detail"]
    # a kiosk never mints (or attaches) a beacon key for anybody
    minted = client.post(f"/customers/{customer}/beacon-keys", json={}, headers=h("kiosk"))
    assert minted.status_code == 403
    assert counts(app)["beacon_keys"] == 0
    assert (
        client.post(f"/customers/{customer}/beacon-keys", json={}, headers=h("admin")).status_code
        == 201
    )


def test_phone_lookups_are_rate_limited_per_key(tmp_path):
    keys = [
        {"name": "office", "role": "admin", "key": KEYS["admin"]},
        {"name": "atrium", "role": "kiosk", "key": KEYS["kiosk"]},
    ]
    limits = {"phone_lookups": 3, "phone_lookup_window_s": 60}
    with serve_api(tmp_path, keys, api=limits) as (client, app):
        clock = app.clock
        assert isinstance(clock, Clock)
        register(client)  # a kiosk's registration counts too (its 409 tells a phone is known)
        for phone in ("07911 123456", "07911 123457"):  # found, not found: both count
            r = client.get("/customers", params={"phone": phone}, headers=h("kiosk"))
            assert r.status_code in (200, 404)
        refused = client.get("/customers", params={"phone": "07911 123458"}, headers=h("kiosk"))
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
        r = client.post("/customers", json={"phone": "07911 123459"}, headers=h("kiosk"))
        assert r.status_code == 429
        # per key: the office is not held up by the kiosk
        r = client.get("/customers", params={"phone": "07911 123456"}, headers=h("admin"))
        assert r.status_code == 200
        clock.advance(45)
        refused = client.get("/customers", params={"phone": "07911 123456"}, headers=h("kiosk"))
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "15"
        clock.advance(15)
        r = client.get("/customers", params={"phone": "07911 123456"}, headers=h("kiosk"))
        assert r.status_code == 200
        refused_total = client.get("/ingest/stats", headers=h("admin")).json()["api_refused"]
        assert refused_total["429"] == 3


def test_a_tenant_never_reads_another_tenants_data(api):
    client, app = api
    customer = register(client)
    seed_points(app, customer)
    window = {"starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-31T00:00:00Z"}
    for who, cid in (("bean", "bean-deal"), ("shoe", "shoe-deal")):
        r = client.post(
            "/campaigns", json={"id": cid, "title": "t", "text": "x", **window}, headers=h(who)
        )
        assert r.status_code == 201, r.text

    r = client.get(f"/customers/{customer}/wallet", headers=h("bean"))
    assert [p["pocket"] for p in r.json()["pockets"]] == ["bean-bar"]
    assert (
        client.get(f"/customers/{customer}/history?pocket=shoe-hub", headers=h("bean")).status_code
        == 403
    )
    assert [
        e["pocket"] for e in client.get(f"/customers/{customer}/history", headers=h("bean")).json()
    ] == ["bean-bar"]
    r = client.post(
        f"/customers/{customer}/pockets/shoe-hub/spend",
        json={"points": 1, "idempotency_key": "steal-0001"},
        headers=h("bean"),
    )
    assert r.status_code == 403
    assert [c["id"] for c in client.get("/campaigns", headers=h("bean")).json()] == ["bean-deal"]
    assert client.get("/campaigns/shoe-deal", headers=h("bean")).status_code == 404
    assert client.delete("/campaigns/shoe-deal", headers=h("bean")).status_code == 404
    r = client.post(
        "/campaigns",
        json={"id": "x1", "business": "shoe-hub", "title": "t", "text": "x", **window},
        headers=h("bean"),
    )
    assert r.status_code == 403
    r = client.post(
        "/campaigns",
        json={"id": "x2", "stores": ["shoe-hub"], "title": "t", "text": "x", **window},
        headers=h("bean"),
    )
    assert r.status_code == 422 and "another business" in r.json()["detail"]
    assert [s["store"] for s in client.get("/stats/visits", headers=h("bean")).json()] == [
        "bean-bar-l1"
    ]
    assert [s["id"] for s in client.get("/stores", headers=h("bean")).json()] == ["bean-bar-l1"]
    assert {n["id"] for n in client.get("/nodes", headers=h("bean")).json()} == {
        "store-1",
        "store-1b",
    }
    assert [n["id"] for n in client.get("/nodes", headers=h("node")).json()] == ["store-1"]
    for path in (f"/customers/{customer}", "/dead-letters", "/ingest/stats"):
        assert client.get(path, headers=h("bean")).status_code == 403
    assert (
        client.get(f"/customers/{customer}/wallet", headers=h("shoe")).json()["pockets"][0][
            "pocket"
        ]
        == "shoe-hub"
    )  # the hashed key works too
    # the admin sees everything
    assert len(client.get("/campaigns", headers=h("admin")).json()) == 2
    assert (
        len(client.get(f"/customers/{customer}/wallet", headers=h("admin")).json()["pockets"]) == 3
    )


def test_bad_calls_get_clear_4xx_and_change_nothing(api):
    client, app = api
    customer = register(client)
    seed_points(app, customer)
    before = counts(app)
    assert client.get("/stores").status_code == 401
    assert client.get("/stores", headers={"X-API-Key": "nope-nope-nope-nope"}).status_code == 401
    r = client.post("/customers", json={"phone": "123"}, headers=h("kiosk"))
    assert r.status_code == 422 and "phone" in r.json()["detail"]
    r = client.post("/customers", content=b"{not json", headers=h("kiosk"))
    assert r.status_code == 422
    r = client.post(
        "/customers", json={"phone": "07911 123457", "colour": "red"}, headers=h("kiosk")
    )
    assert r.status_code == 422
    r = client.post(f"/customers/{customer}/beacon-keys", json={"key": "zz"}, headers=h("admin"))
    assert r.status_code == 422
    assert client.get("/customers/c-nobody", headers=h("admin")).status_code == 404
    r = client.post(
        f"/customers/{customer}/pockets/bean-bar/spend",
        json={"points": 31, "idempotency_key": "till-1-0001"},
        headers=h("bean"),
    )
    assert r.status_code == 409 and "30 spendable" in r.json()["detail"]
    r = client.post(
        f"/customers/{customer}/pockets/bean-bar/spend",
        json={"points": 0, "idempotency_key": "till-1-0002"},
        headers=h("bean"),
    )
    assert r.status_code == 422
    r = client.post(
        "/campaigns",
        json={
            "id": "Bad Id",
            "title": "t",
            "text": "x",
            "starts_at": "2026-11-01T00:00:00Z",
            "ends_at": "2026-10-01T00:00:00Z",
        },
        headers=h("bean"),
    )
    assert r.status_code == 422
    r = client.post(
        "/campaigns",
        json={
            "id": "backwards",
            "title": "t",
            "text": "x",
            "starts_at": "2026-11-01T00:00:00Z",
            "ends_at": "2026-10-01T00:00:00Z",
        },
        headers=h("bean"),
    )
    assert r.status_code == 422 and "end after" in r.json()["detail"]
    assert (
        client.post("/customers", json={"phone": "07911 123458"}, headers=h("bean")).status_code
        == 403
    )
    ghost = {
        "id": "ghost",
        "business": "nobody",
        "title": "t",
        "text": "x",
        "starts_at": "2026-11-01T00:00:00Z",
        "ends_at": "2026-12-01T00:00:00Z",
    }
    r = client.post("/campaigns", json=ghost, headers=h("admin"))
    assert r.status_code == 422 and "nobody" in r.json()["detail"]
    assert counts(app) == before
    refused = client.get("/ingest/stats", headers=h("admin")).json()["api_refused"]
    assert {"401", "403", "404", "409", "422"} <= set(refused) and refused["422"] >= 6
    # a good spend, then its retry with the same key, spends once
    for expected in ("spent", "duplicate"):
        r = client.post(
            f"/customers/{customer}/pockets/bean-bar/spend",
            json={"points": 12, "idempotency_key": "till-1-0003"},
            headers=h("bean"),
        )
        assert r.status_code == 200 and r.json()["outcome"] == expected
        assert r.json()["available"] == 18


def test_erasing_a_customer_removes_everything_personal(api):
    client, app = api
    customer = register(client)
    client.post(f"/customers/{customer}/beacon-keys", json={}, headers=h("admin"))
    client.post(f"/customers/{customer}/vehicles", json={"plate": "AB12CDE"}, headers=h("admin"))
    seed_points(app, customer)
    store = open_store(app.config.database)
    try:
        with store.transaction() as conn:  # a stay in progress and a notice not yet published
            conn.execute(
                "INSERT INTO presence_segments (customer_id, store, start_epoch, end_epoch)"
                " VALUES (?, 'bean-bar-l1', ?, ?)",
                (customer, START, START + 30),
            )
            conn.execute(
                "INSERT INTO pending_notices (id, customer_id, topic, payload, created_at)"
                " VALUES ('n-1', ?, ?, x'7b7d', '2026-11-23T10:00:00Z')",
                (customer, f"mall/v1/{app.config.mall}/customers/{customer}/inbox"),
            )
            conn.execute(  # a kiosk check-in, with a receipt token kept for later
                "INSERT INTO kiosk_checkins (event_id, kiosk, customer_id, store, ts, ts_epoch,"
                " outcome, token) VALUES ('e-1', 'kiosk-atrium', ?, NULL,"
                " '2026-11-23T10:00:00Z', ?, 'unsupported', ?)",
                (customer, START, f"receipt:{customer}:FN 42"),
            )
    finally:
        store.close()
    assert client.delete(f"/customers/{customer}", headers=h("bean")).status_code == 403
    r = client.delete(f"/customers/{customer}", headers=h("admin"))
    assert r.status_code == 200 and r.json()["removed"]["customers"] == 1
    assert client.get(f"/customers/{customer}", headers=h("admin")).status_code == 404
    store = open_store(app.config.database)
    try:
        for table in (
            "beacon_keys",
            "vehicles",
            "visits",
            "deliveries",
            "daily_grants",
            "journal",
            "lots",
            "presence_segments",
            "pending_notices",
            "kiosk_checkins",
        ):
            (n,) = store.conn.execute(
                f"SELECT COUNT(*) FROM {table} WHERE customer_id = ?",
                (customer,),
            ).fetchone()
            assert n == 0, table
        assert store.conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0] == 0
    finally:
        store.close()
    store = open_store(app.config.database)
    try:
        assert isinstance(store, SqliteStore)
        dump = "\n".join(store.raw.iterdump())
    finally:
        store.close()
    assert "+447911123456" not in dump and customer not in dump


def test_openapi_is_complete_with_examples(api):
    client, _ = api
    spec = client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            assert op.get("summary"), f"{method} {path} has no summary"
    for name, schema in spec["components"]["schemas"].items():
        if name in ("HTTPValidationError", "ValidationError"):
            continue
        assert schema.get("examples"), f"schema {name} has no example"
    assert client.get("/health").json() == {"status": "ok", "mall": "testmall"}


def test_kiosk_lists_active_offers(api):
    client, _ = api
    now = datetime.fromtimestamp(START, UTC)
    for cid, start in (("live", now - timedelta(days=1)), ("future", now + timedelta(days=1))):
        client.post(
            "/campaigns",
            json={
                "id": cid,
                "title": cid,
                "text": "x",
                "starts_at": start.isoformat(),
                "ends_at": (now + timedelta(days=3)).isoformat(),
            },
            headers=h("bean"),
        )
    assert [o["campaign"] for o in client.get("/kiosk/offers", headers=h("kiosk")).json()] == [
        "live"
    ]


def test_a_busy_port_is_a_clear_error(tmp_path):
    import socket

    from cloud_core.errors import CoreError

    keys = tmp_path / "keys.yaml"
    keys.write_text("keys: [{name: o, role: admin, key: k-admin-0123456789abcdef}]\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = make_config(tmp_path, api={"port": port, "keys_file": str(keys)})
        app = CoreApp(config, only="api", clock=Clock(START))
        with pytest.raises(CoreError, match="port in use"):
            app.start(timeout=10)


def test_erasure_leaves_no_personal_data_in_the_database_files(api):
    client, app = api
    phone, email, plate = "+447911123456", "ann.erased@example.com", "KA1234TX"
    r = client.post("/customers", json={"phone": phone, "email": email}, headers=h("admin"))
    customer = r.json()["id"]
    key = client.post(f"/customers/{customer}/beacon-keys", json={}, headers=h("admin")).json()
    client.post(f"/customers/{customer}/vehicles", json={"plate": plate}, headers=h("admin"))
    other = client.post("/customers", json={"phone": "07911 123499"}, headers=h("admin")).json()
    store = open_store(app.config.database)
    try:
        with store.transaction() as conn:  # what ingest keeps of gate messages it rejected
            conn.executemany(
                "INSERT INTO dead_letters (ts, topic, kind, reason, payload)"
                " VALUES ('2026-11-23T10:00:00Z', 'mall/v1/testmall/gates/g/parking', ?, 'x', ?)",
                [
                    ("schema", b'{"events": [{"plate": "KA 1234 TX", "kind": "entry"}]}'),
                    ("json", f'{{"customer": "{customer}"'.encode()),
                    ("schema", b'{"events": [{"plate": "ZZ9999ZZ"}]}'),  # somebody else's
                ],
            )
    finally:
        store.close()
    database = app.config.database
    erased_values = [phone.encode(), email.encode(), plate.encode(), key["key"].encode()]
    before = database.read_bytes() + database.with_name(database.name + "-wal").read_bytes()
    assert all(value in before for value in erased_values)

    r = client.delete(f"/customers/{customer}", headers=h("admin"))
    assert r.status_code == 200 and r.json()["removed"]["dead_letters"] == 2
    for path in (database, database.with_name(database.name + "-wal")):
        raw = path.read_bytes()  # the files as they are on disk, the API still running
        for value in erased_values:
            assert value not in raw, f"{value!r} still in {path.name}"
        assert b"KA 1234 TX" not in raw
    left = client.get("/dead-letters", headers=h("admin")).json()
    assert [d["payload"] for d in left] == ['{"events": [{"plate": "ZZ9999ZZ"}]}']
    assert client.get(f"/customers/{other['id']}", headers=h("admin")).status_code == 200
