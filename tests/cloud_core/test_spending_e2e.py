"""The seeds' scenario end to end, through the real broker, core (ingest + API) and HTTP: a
car enters the gate, 500 mall points arrive, a 40 € pizzeria order takes at most 6 € in
points, the settlement report says the mall owes the pizzeria exactly what was taken; every
credit and write-off reaches the shopper's inbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud_core import customers
from cloud_core.cards import issue_card_token
from cloud_core.store import open_store
from mallnet.wire import decode, encode
from mallnet.wire.payloads import CreditNotice, ExpiringNotice, ParkingBatch
from mallnet.wire.topics import INBOX, PARKING
from tests.cloud_core.api_helpers import h
from tests.cloud_core.helpers import api_client, api_config
from tests.cloud_core.parking_helpers import SECRET, Gate
from tests.cloud_core.terminal_helpers import (
    CARD_SECRET,
    grant,
    spending_overrides,
    th,
    till_keys,
    tk,
)
from tests.conftest import MALL, Collector, wait_until


def test_parking_bonus_pays_a_capped_share_of_a_pizza_and_the_mall_owes_the_pizzeria(
    broker, tmp_path, core_settings, run_core, *, core_client, connect, clock, request
):
    config = api_config(
        tmp_path,
        till_keys(),
        core_settings,
        parking={
            "car_parks": [{"id": "north", "name": "North car park", "nodes": ["gate-north"]}],
            "entry_bonus": 500,  # €5 in points
            "hash_secret": SECRET,
        },
        **spending_overrides(),
    )
    now = datetime.fromtimestamp(clock(), UTC)
    store = open_store(config.database)
    try:
        with store.transaction() as conn:
            driver, _ = customers.register_customer(conn, "+44 7911 123901", default_region="GB")
            customers.attach_vehicle(conn, driver, "KA 7777 TX", "UA", now)
    finally:
        store.close()
    app = run_core(config, only=None)
    inbox = Collector()
    core_client("driver-app", subscriptions=[(INBOX.topic(MALL, driver), 1)], on_message=inbox)
    client = api_client(config)
    request.addfinalizer(client.close)

    # 1. The car enters the gate (the existing parking flow): 500 mall points arrive.
    gate = connect("gate-north")
    event = Gate().event("KA7777TX", at=now)
    gate.publish(
        PARKING.topic(MALL, "gate-north"), encode(ParkingBatch(node="gate-north", events=(event,)))
    ).wait(10)

    def wallet() -> dict[str, int]:
        r = client.get(f"/customers/{driver}/wallet", headers=h("admin"))
        return {p["pocket"]: p["available"] for p in r.json()["pockets"]}

    wait_until(lambda: wallet() == {"mall": 500}, what="the parking bonus")

    # 2. At the pizzeria the seller scans the driver's card QR and quotes a 40 € order.
    token = issue_card_token(CARD_SECRET.encode(), driver, now)
    who = client.post("/terminal/identify", json={"card_token": token}, headers=th("pizza"))
    assert who.status_code == 200 and who.json()["customer"] == driver
    quote = client.post(
        "/terminal/quote",
        json={"customer": driver, "receipt": "NAP-0042", "order_cents": 4000},
        headers=th("pizza"),
    ).json()
    assert quote["cap_points"] == 600  # 15 % of 40 €: at most 6 € in points
    assert quote["max_points"] == 500 and quote["to_pay_cents"] == 3500

    # More than 6 € is refused however it is asked; the 5 € the driver has, in two goes.
    body = {"customer": driver, "receipt": "NAP-0042", "order_cents": 4000}
    r = client.post("/terminal/holds", json=body | {"coalition_points": 601}, headers=tk("pizza"))
    assert r.status_code == 409 and r.json()["type"] == "urn:mallnet:problem:cap-exceeded"
    held = []
    for points in (300, 200):
        r = client.post(
            "/terminal/holds", json=body | {"coalition_points": points}, headers=tk("pizza")
        )
        assert r.status_code == 201, r.text
        held.append(r.json()["id"])
    for hold_id in held:
        r = client.post(f"/terminal/holds/{hold_id}/commit", headers=tk("pizza"))
        assert r.status_code == 200 and r.json()["status"] == "committed"
    paid = client.post(
        "/terminal/purchases",
        json={"customer": driver, "receipt": "NAP-0042", "amount_cents": 3500},
        headers=tk("pizza"),
    )
    assert paid.status_code == 201 and paid.json()["cashback_points"] == 350

    # 3. The settlement report: the mall owes the pizzeria exactly the points taken.
    period = now.strftime("%Y-%m")
    rep = client.get(f"/settlements/{period}", headers=h("admin")).json()
    assert rep["lines"] == [
        {
            "payer": "mall",
            "payee": "pizzeria",
            "amount_cents": 500,
            "commission_cents": 0,
            "entries": 2,
        }
    ]
    assert wallet() == {"mall": 0, "pizzeria": 350}

    # 4. The inbox: the bonus, each write-off and the cashback, published by the ingest worker.
    def notices() -> list[CreditNotice]:
        out = []
        for m in list(inbox.messages):
            message = decode(m.topic, m.payload).message
            if isinstance(message, CreditNotice):
                out.append(message)
        return out

    wait_until(lambda: len(notices()) >= 4, what="the credit and write-off notices")
    seen = sorted((n.reason, n.points, n.pocket) for n in notices())
    assert seen == [
        ("cashback", 350, "pizzeria"),
        ("parking", 500, "mall"),
        ("redemption", -300, "mall"),
        ("redemption", -200, "mall"),
    ]
    assert app.consumer is not None


def test_abandoned_holds_and_expiring_points_reach_the_inbox_from_the_expiry_job(
    broker, tmp_path, core_settings, run_core, core_client, *, clock, request
):
    config = api_config(
        tmp_path,
        till_keys(),
        core_settings,
        **spending_overrides(ingest={"batch_wait_ms": 1, "expiry_interval_s": 0.2}),
    )
    now = datetime.fromtimestamp(clock(), UTC)
    store = open_store(config.database)
    try:
        with store.transaction() as conn:
            ann, _ = customers.register_customer(conn, "+44 7911 123902", default_region="GB")
    finally:
        store.close()
    app = run_core(config, only=None)
    inbox = Collector()
    core_client("ann-app", subscriptions=[(INBOX.topic(MALL, ann), 1)], on_message=inbox)
    client = api_client(config)
    request.addfinalizer(client.close)
    grant(app, ann, "mall", 400, expires_at=now + timedelta(days=5))
    r = client.post(
        "/terminal/holds",
        json={"customer": ann, "receipt": "R-1", "order_cents": 2000, "coalition_points": 300},
        headers=tk("pizza"),
    )
    assert r.status_code == 201
    # nobody commits: the expiry job gives the points back; two days on, the points expire
    # within the three days of `spending.expiring_notice_days`
    clock.advance(2 * 86_400 + 1)

    def messages() -> list[object]:
        return [decode(m.topic, m.payload).message for m in list(inbox.messages)]

    def kinds() -> set[tuple[str, int]]:
        out: set[tuple[str, int]] = set()
        for m in messages():
            if isinstance(m, CreditNotice):
                out.add((m.reason, m.points))
            elif isinstance(m, ExpiringNotice):
                out.add(("expiring", m.points))
        return out

    wait_until(
        lambda: {("redemption", -300), ("release", 300), ("expiring", 400)} <= kinds(),
        what="the hold's write-off, its release and the expiry warning",
    )
    r = client.get(f"/customers/{ann}/wallet", headers=h("admin"))
    assert r.json()["pockets"][0]["available"] == 400
    warning = next(m for m in messages() if isinstance(m, ExpiringNotice))
    expires = now + timedelta(days=5)
    assert warning.expires_at == expires
    assert warning.text == f"400 points in mall expire on {expires:%Y-%m-%d %H:%M} UTC"
