"""End to end: gate frames (image files) → plate → broker → core → bonus and offer in the inbox."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import yaml

from cloud_core import customers, ledger, offers
from cloud_core.store import open_store
from edge_node.camera.app import GateApp
from edge_node.camera.config import load_gate_config
from edge_node.camera.synth import make_sample
from mallnet.wire import decode
from mallnet.wire.payloads import CreditNotice, OfferNotice
from mallnet.wire.topics import INBOX
from tests.cloud_core.helpers import START, Clock, make_config
from tests.conftest import MALL, Collector, wait_until

PLATE = "KA7777TX"
SECRET = "e2e-parking-secret-0123456789abcdef"


def test_a_car_at_the_gate_earns_its_driver_the_entry_bonus_and_an_offer(
    broker, tmp_path, core_settings, run_core, core_client
):
    config = make_config(
        tmp_path,
        core_settings,
        parking={
            "car_parks": [
                {
                    "id": "north",
                    "name": "North car park",
                    "zone": "parking",
                    "nodes": ["gate-north"],
                }
            ],
            "entry_bonus": 50,
            "hash_secret": SECRET,
        },
    )
    # The driver and the mall's parking campaign, straight into the core's database.
    now = datetime.fromtimestamp(START, UTC)
    store = open_store(config.database)
    try:
        with store.transaction() as conn:
            customer, _ = customers.register_customer(conn, "+44 7911 123901", default_region="GB")
            customers.attach_vehicle(conn, customer, "KA 7777 TX", "UA", now)
            offers.create_campaign(
                conn,
                offers.Campaign(
                    id="park-and-shop",
                    business="mall",
                    title="Free coffee after parking",
                    text="Show this at Bean Bar.",
                    image_url=None,
                    starts_at=now - timedelta(days=1),
                    ends_at=now + timedelta(days=7),
                    stores=(),
                    zones=("parking",),
                    segment="all",
                    cap_count=1,
                    cap_period_s=None,
                ),
                {},
                now,
            )
    finally:
        store.close()
    app = run_core(config)
    # the gate stamps its reads with the real time: the core's clock must not be behind it
    # (it refuses events dated more than ingest.max_clock_skew_s ahead)
    assert isinstance(app.clock, Clock)
    app.clock.set(time.time() + 60)
    inbox = Collector()
    core_client("customer-app", subscriptions=[(INBOX.topic(MALL, customer), 1)], on_message=inbox)

    # The gate camera: a few frames of an empty lane, the car, the empty lane again.
    frames = tmp_path / "gate-frames"
    frames.mkdir()
    empty = np.full((720, 1280, 3), 100, np.uint8)
    empty[430:] = 60
    car = make_sample(4242, "UA", "perspective", plate=PLATE).image
    for n, frame in enumerate([empty] * 2 + [car] * 3 + [empty] * 3):
        cv2.imwrite(str(frames / f"{n:03d}.jpg"), frame)
    password = broker.add_user("gate-north")
    gate_yaml = tmp_path / "gate.yaml"
    gate_yaml.write_text(
        yaml.safe_dump(
            {
                "node": {"id": "gate-north", "mall": MALL},
                "mqtt": {
                    "port": broker.port,
                    "username": "gate-north",
                    "password": password,
                    "reconnect_min_s": 0.1,
                    "reconnect_max_s": 1,
                },
                "lanes": [
                    {
                        "gate": "north-in",
                        "direction": "entry",
                        "camera": {"type": "file", "path": "gate-frames", "fps": 10},
                        "countries": ["UA"],
                    }
                ],
                "outbox": {"path": "gate-outbox.sqlite"},
                "at_end": "exit",
                "drain_timeout_s": 30,
            }
        )
    )
    # Runs until the core has receipted the parking event.
    assert GateApp(load_gate_config(gate_yaml)).run() == 0

    def messages():
        return [decode(m.topic, m.payload).message for m in list(inbox.messages)]

    wait_until(lambda: len(messages()) >= 2, what="the bonus and the offer in the inbox")
    credit = next(m for m in messages() if isinstance(m, CreditNotice))
    offer = next(m for m in messages() if isinstance(m, OfferNotice))
    assert (credit.points, credit.pocket, credit.reason) == (50, "mall", "parking")
    assert "North car park" in credit.text
    assert offer.trigger == "parking" and offer.offer.campaign == "park-and-shop"
    store = open_store(config.database)
    try:
        with store.read() as conn:
            balances = {b.pocket: b.balance for b in ledger.balances(conn, customer, now)}
            (status,) = conn.execute(
                "SELECT status FROM parking_sessions WHERE customer_id = ?", (customer,)
            ).fetchone()
    finally:
        store.close()
    assert balances == {"mall": 50}
    assert status == "open"

    def gate_health_kept() -> bool:
        store = open_store(config.database)
        try:
            row = store.conn.execute("SELECT last_health FROM nodes WHERE id = 'gate-north'")
            found = row.fetchone()
            dead = store.conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
        finally:
            store.close()
        assert dead == 0, "the gate's messages must not be dead-lettered"
        return found is not None and found[0] is not None

    wait_until(gate_health_kept, what="the gate's heartbeat at the core")
