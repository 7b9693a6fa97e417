"""Gate reads through the real broker and core: only OCR look-alikes are forgiven, the match
kind is audited on the session (and shown by the API), and a car inside counts once."""

from __future__ import annotations

from datetime import timedelta

from cloud_core import customers as customer_store
from cloud_core import ledger
from cloud_core.store import open_store
from mallnet.wire import encode
from mallnet.wire.payloads import ParkingBatch, ParkingEvent
from mallnet.wire.topics import PARKING
from tests.cloud_core.helpers import START, api_client, api_config, receipts_collector
from tests.cloud_core.parking_helpers import PARKING as PARKING_CONFIG
from tests.cloud_core.parking_helpers import T0, Gate
from tests.conftest import MALL

ADMIN = "k-admin-0123456789abcdef"
KIOSK = "k-kiosk-0123456789abcdef"
KEYS = [
    {"name": "office", "role": "admin", "key": ADMIN},
    {"name": "atrium", "role": "kiosk", "key": KIOSK},
]


class GateNode:
    """A gate node on the broker: sends one event per batch and waits for its receipt."""

    def __init__(self, connect) -> None:
        self.receipts, self.client = receipts_collector(connect, "gate-north")
        self.gate = Gate()
        self.sent = 0

    def send(self, event: ParkingEvent) -> None:
        batch = ParkingBatch(node="gate-north", events=(event,))
        self.client.publish(PARKING.topic(MALL, "gate-north"), encode(batch)).wait(10)
        self.sent += 1
        self.receipts.wait_for(self.sent)

    def read(self, plate: str, minute: int, kind: str = "entry", confidence: float = 0.95):
        self.send(
            self.gate.event(plate, kind, T0 + timedelta(minutes=minute), confidence=confidence)
        )


def customers(config, *plates: str) -> list[str]:
    store = open_store(config.database)
    out = []
    try:
        with store.transaction() as conn:
            for n, plate in enumerate(plates):
                customer, _ = customer_store.register_customer(
                    conn, f"+44 7911 1239{n:02d}", default_region="GB"
                )
                customer_store.attach_vehicle(conn, customer, plate, "UA", T0)
                out.append(customer)
    finally:
        store.close()
    return out


def coalition(config, customer: str) -> int:
    store = open_store(config.database)
    try:
        with store.read() as conn:
            pockets = {b.pocket: b.balance for b in ledger.balances(conn, customer, T0)}
    finally:
        store.close()
    return pockets.get(ledger.COALITION, 0)


def test_a_confident_misread_that_is_no_look_alike_credits_nobody(
    tmp_path, core_settings, run_core, connect, clock
):
    config = api_config(tmp_path, KEYS, core_settings, parking=PARKING_CONFIG)
    alice, dave, erin = customers(config, "RK300AS", "KA0001TI", "KA0001T1")
    app = run_core(config, only=None)
    clock.set(START + 3600)  # the core's clock after the gate's reads
    gate = GateNode(connect)
    gate.read("RK300AG", 1)  # G for S at 0.95: not a look-alike → an unregistered car
    assert coalition(config, alice) == 0
    gate.read("RK3O0AS", 2)  # O for 0: the reader's own confusion → Alice
    assert coalition(config, alice) == 40
    gate.read("KAO001TL", 3)  # as far from Dave's as from Erin's plate: nobody's
    assert coalition(config, dave) == coalition(config, erin) == 0
    gate.read("KAO001TI", 4)  # one swap from Dave's, two from Erin's: Dave's
    assert coalition(config, dave) == 40 and coalition(config, erin) == 0
    assert app.consumer is not None
    stats = app.consumer.stats()
    assert (stats["entry_none"], stats["entry_bonus"], stats["entry_ambiguous"]) == (1, 2, 1)
    with api_client(config) as api:
        for who in (ADMIN, KIOSK):
            sessions = api.get(f"/parking/customers/{alice}/sessions", headers={"X-API-Key": who})
            assert [(s["status"], s["match"]) for s in sessions.json()] == [("open", "confusable")]
    store = open_store(config.database)
    try:
        matches = [
            r[0] for r in store.conn.execute("SELECT match FROM parking_sessions ORDER BY id")
        ]
    finally:
        store.close()
    assert matches == ["none", "confusable", "ambiguous", "confusable"]


def test_a_car_seen_entering_again_without_an_exit_is_one_car(
    tmp_path, core_settings, run_core, connect, clock
):
    config = api_config(tmp_path, KEYS, core_settings, parking=PARKING_CONFIG)
    customers(config, "RK300AS")
    run_core(config, only=None)
    clock.set(START + 3600)
    gate = GateNode(connect)
    for minute in (1, 2, 3):  # an unregistered car, three entries, no exit
        gate.read("XX1111XX", minute)
    gate.read("RK300AS", 4)
    gate.read("RK3O0AS", 5)  # the same registered car again, read with a look-alike
    gate.read("XX1111XX", 6, "exit")
    with api_client(config) as api:
        series = api.get("/parking/car-parks/p1/occupancy", headers={"X-API-Key": ADMIN}).json()
    assert [p["occupied"] for p in series] == [1, 1, 1, 2, 2, 1]
