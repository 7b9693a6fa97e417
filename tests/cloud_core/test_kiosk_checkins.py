"""Kiosk check-ins at the core (rules/checkins.py), through the real broker: each credits once,
under the same cooldown and caps as a beacon visit, and a kiosk acts only for the shopper who
just identified."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from cloud_core.config import CheckinRules, KioskConfig, StoreConfig
from cloud_core.rules.checkins import Token, over_limit, parse_token, target
from cloud_core.store import open_store
from mallnet.ids import new_event_id
from mallnet.mqtt import MqttClient
from mallnet.wire import decode, encode
from mallnet.wire.payloads import CheckinBatch, CheckinEvent, Receipt
from mallnet.wire.topics import CHECKINS, KIOSK_RECEIPTS, PRESENCE
from tests.cloud_core.core_process import start_core, write_config
from tests.cloud_core.helpers import START, STORES, Walker, key_of, make_config, register, wallet
from tests.conftest import MALL, Collector, wait_until

KIOSKS = [
    {"id": "kiosk-bean", "store": "bean-bar-l1"},
    {"id": "kiosk-atrium", "stores": ["shoe-hub"]},
]


# --- pure decisions -------------------------------------------------------------------------


def test_tokens_parse_into_what_they_name_and_nothing_else():
    assert parse_token("customer:c0123abc") == Token("customer", "c0123abc")
    assert parse_token("phone:+447911123001") == Token("phone", "+447911123001")
    assert parse_token("receipt:c0123abc:FN 123/45 total 12.50") == Token("receipt", "c0123abc")
    for bad in ("customer:", "customer:a b", "phone:07911", "phone:+44a", "receipt:c1", "x:y", ""):
        assert parse_token(bad) is None, bad


def test_a_kiosk_credits_its_own_store_and_its_listed_stores_only():
    stores = {s["id"]: StoreConfig.model_validate(s) for s in STORES}
    bean = KioskConfig(id="kiosk-bean", store="bean-bar-l1")
    atrium = KioskConfig(id="kiosk-atrium", stores=("shoe-hub",))
    assert target(bean, "bean-bar-l1", stores).store == stores["bean-bar-l1"]
    assert target(bean, "shoe-hub", stores).kind == "refused"
    assert target(atrium, "shoe-hub", stores).kind == "store"
    assert target(atrium, None, stores).kind == "kiosk"
    assert target(atrium, "no-such-store", stores).kind == "refused"


def test_a_kiosk_may_serve_only_so_many_different_customers_in_its_window():
    rules = CheckinRules(max_customers=2)
    assert not over_limit("ann", set(), rules)
    assert not over_limit("bob", {"ann"}, rules)
    assert over_limit("cat", {"ann", "bob"}, rules)
    assert not over_limit("ann", {"ann", "bob"}, rules)  # the shoppers it served, again


# --- through the broker ---------------------------------------------------------------------


class Kiosk:
    """Makes check-ins as a kiosk does (ids at the source, its own sequence)."""

    def __init__(self, client: MqttClient, kiosk: str) -> None:
        self.client, self.kiosk, self.seq = client, kiosk, 0

    def event(self, token: str, store: str | None, at: float = START) -> CheckinEvent:
        self.seq += 1
        ts = datetime.fromtimestamp(at, UTC)
        return CheckinEvent(id=new_event_id(), seq=self.seq, ts=ts, token=token, store=store)

    def send(self, *events: CheckinEvent) -> None:
        batch = CheckinBatch(node=self.kiosk, events=events)
        reason = self.client.publish(CHECKINS.topic(MALL, self.kiosk), encode(batch), 1).wait(10)
        assert reason == 0


def kiosk_at(connect, kiosk: str) -> tuple[Kiosk, Collector]:
    receipts = Collector()
    client = connect(
        kiosk, subscriptions=[(KIOSK_RECEIPTS.topic(MALL, kiosk), 1)], on_message=receipts
    )
    return Kiosk(client, kiosk), receipts


def receipted(receipts: Collector) -> set[str]:
    ids: set[str] = set()
    for message in list(receipts.messages):
        receipt = decode(message.topic, message.payload).message
        assert isinstance(receipt, Receipt)
        ids.update(receipt.ids)
    return ids


def rows(config, sql: str) -> list[tuple[Any, ...]]:
    store = open_store(config.database)
    try:
        return [tuple(r) for r in store.conn.execute(sql)]
    finally:
        store.close()


@pytest.fixture
def kiosk_config(core_config):
    return core_config.model_validate(
        {**core_config.model_dump(), "kiosks": KIOSKS, "checkins": {"max_customers": 3}}
    )


def test_a_store_check_in_sent_twice_credits_once_and_is_receipted_to_the_kiosk(
    kiosk_config, run_core, connect
):
    ann = register(kiosk_config, 1, "+44 7911 123001")
    app = run_core(kiosk_config)
    kiosk, receipts = kiosk_at(connect, "kiosk-bean")
    event = kiosk.event(f"customer:{ann}", "bean-bar-l1")
    kiosk.send(event)
    kiosk.send(event)  # the kiosk resends (no PUBACK seen, a restart …)
    wait_until(lambda: app.consumer.stats().get("duplicates", 0) >= 1, what="the duplicate")
    wait_until(lambda: event.id in receipted(receipts), what="the receipt")
    assert receipted(receipts) == {event.id}
    assert wallet(kiosk_config, ann) == {"bean-bar": 10}
    assert rows(kiosk_config, "SELECT node, points FROM visits") == [("kiosk-bean", 10)]
    assert rows(kiosk_config, "SELECT outcome FROM kiosk_checkins") == [("credited",)]


def test_a_beacon_visit_and_a_kiosk_check_in_share_the_cooldown_and_the_daily_cap(
    kiosk_config, run_core, connect, clock
):
    ann = register(kiosk_config, 1, "+44 7911 123001")
    app = run_core(kiosk_config)
    clock.set(START + 600)
    walker = Walker("store-1")
    node = connect("store-1")
    node.publish(
        PRESENCE.topic(MALL, "store-1"), encode(walker.batch(walker.walk(key_of(1), START)))
    ).wait(10)
    wait_until(lambda: wallet(kiosk_config, ann) == {"bean-bar": 10}, what="the beacon visit")
    kiosk, receipts = kiosk_at(connect, "kiosk-bean")
    within = kiosk.event(f"customer:{ann}", "bean-bar-l1", START + 600)  # cooldown is 3600 s
    kiosk.send(within)
    wait_until(lambda: within.id in receipted(receipts), what="the receipt")
    assert wallet(kiosk_config, ann) == {"bean-bar": 10}
    # past the cooldown the kiosk credits; the daily cap (30) counts both kinds of visit
    later = [kiosk.event(f"customer:{ann}", "bean-bar-l1", START + h * 4000) for h in (1, 2, 3)]
    clock.set(START + 3 * 4000 + 10)
    kiosk.send(*later)
    wait_until(lambda: {e.id for e in later} <= receipted(receipts), what="the receipts")
    assert wallet(kiosk_config, ann) == {"bean-bar": 30}
    outcomes = rows(kiosk_config, "SELECT outcome FROM kiosk_checkins ORDER BY ts_epoch")
    assert outcomes == [("cooldown",), ("credited",), ("credited",), ("capped",)]
    assert app.consumer.stats()["checkin_cooldown"] == 1


def test_tokens_phone_receipt_kiosk_visit_limits_and_future_dates(
    kiosk_config, run_core, connect, clock, caplog
):
    ann = register(kiosk_config, 1, "+44 7911 123001")
    bob = register(kiosk_config, 2, "+44 7911 123002")
    app = run_core(kiosk_config)
    kiosk, receipts = kiosk_at(connect, "kiosk-atrium")
    sent = [
        kiosk.event("phone:+447911123002", None),  # bob, typed offline: a kiosk visit
        kiosk.event(f"customer:{bob}", None, START + 60),  # the day's kiosk visit was paid
        kiosk.event(f"customer:{ann}", "shoe-hub", START + 120),  # a listed store's QR
        kiosk.event(f"customer:{ann}", "book-nook", START + 130),  # not this kiosk's store
        kiosk.event(f"receipt:{ann}:FN 42 total 9.99", None, START + 140),  # kept for later
        kiosk.event("phone:+447911999999", None, START + 150),  # nobody's number
        kiosk.event("hello", None, START + 160),
        kiosk.event(f"customer:{ann}", None, START + 10_000),  # dated ahead of the core
    ]
    kiosk.send(*sent)
    wait_until(lambda: {e.id for e in sent} <= receipted(receipts), what="the receipts")
    assert wallet(kiosk_config, bob) == {"mall": 5}
    assert wallet(kiosk_config, ann) == {"shoe-hub": 10}
    got = rows(kiosk_config, "SELECT outcome, token FROM kiosk_checkins ORDER BY ts_epoch")
    assert got == [
        ("credited", None),
        ("limit", None),
        ("credited", None),
        ("wrong_store", None),
        ("unsupported", f"receipt:{ann}:FN 42 total 9.99"),
        ("unknown_customer", None),
        ("bad_token", None),
    ]
    outcomes = dict(rows(kiosk_config, "SELECT event_id, outcome FROM processed_events"))
    assert outcomes[sent[-1].id] == "future"
    assert app.consumer.stats()["checkin_unsupported"] == 1
    assert "7911123002" not in caplog.text and "7911999999" not in caplog.text


def test_a_kiosk_cannot_credit_many_different_customers_at_once(kiosk_config, run_core, connect):
    customers = [register(kiosk_config, n, f"+44 7911 12300{n}") for n in range(1, 6)]
    run_core(kiosk_config)  # max_customers: 3 per 300 s either side
    kiosk, receipts = kiosk_at(connect, "kiosk-atrium")
    sent = [kiosk.event(f"customer:{c}", None, START + i) for i, c in enumerate(customers)]
    again = kiosk.event(f"customer:{customers[0]}", "shoe-hub", START + 10)
    kiosk.send(*sent, again)
    wait_until(lambda: {e.id for e in [*sent, again]} <= receipted(receipts), what="receipts")
    got = rows(kiosk_config, "SELECT outcome FROM kiosk_checkins ORDER BY ts_epoch")
    assert got == [("credited",)] * 3 + [("kiosk_limit",)] * 2 + [("credited",)]
    assert wallet(kiosk_config, customers[3]) == {}
    assert wallet(kiosk_config, customers[0]) == {"mall": 5, "shoe-hub": 10}


def test_check_ins_from_an_unknown_kiosk_are_dead_lettered(kiosk_config, run_core, connect):
    ann = register(kiosk_config, 1, "+44 7911 123001")
    app = run_core(kiosk_config)
    kiosk, receipts = kiosk_at(connect, "kiosk-rogue")
    kiosk.send(kiosk.event(f"customer:{ann}", "bean-bar-l1"))
    wait_until(lambda: app.consumer.stats().get("dead_letters", 0) == 1, what="a dead letter")
    got = rows(kiosk_config, "SELECT topic, kind FROM dead_letters")
    assert got == [(CHECKINS.topic(MALL, "kiosk-rogue"), "unauthorised")]
    assert wallet(kiosk_config, ann) == {} and receipted(receipts) == set()


def test_a_core_killed_between_commit_and_ack_credits_a_kiosk_check_in_once(
    tmp_path: Path, broker, core_settings, connect
):
    path = write_config(tmp_path, broker)
    data = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**data, "kiosks": KIOSKS}))
    config = make_config(tmp_path, core_settings)  # same database file, for the helpers
    ann = register(config, 1, "+44 7911 123001")
    kiosk, receipts = kiosk_at(connect, "kiosk-bean")
    event = kiosk.event(f"customer:{ann}", "bean-bar-l1", time.time())
    log = tmp_path / "core.log"
    core = start_core(path, log, crash_after=1)
    try:

        def crashed() -> bool:  # publish until the core's session takes it
            if core.poll() is not None:
                return True
            kiosk.client.publish(
                CHECKINS.topic(MALL, "kiosk-bean"),
                encode(CheckinBatch(node=kiosk.kiosk, events=(event,))),
                1,
            ).wait(10)
            return False

        wait_until(crashed, timeout=30, what="the core to crash after its first commit")
        assert core.returncode == 9, log.read_text()
    finally:
        if core.poll() is None:
            core.kill()
            core.wait()
    assert receipted(receipts) == set()  # committed, never acked nor receipted
    core = start_core(path, log)
    try:
        wait_until(lambda: event.id in receipted(receipts), timeout=30, what="the receipt")
    finally:
        core.send_signal(signal.SIGTERM)
        assert core.wait(20) == 0, log.read_text()
    assert wallet(config, ann) == {"bean-bar": 10}
    assert rows(config, "SELECT outcome FROM kiosk_checkins") == [("credited",)]


def test_kiosks_are_plain_ids_or_name_known_stores(core_config):
    data = core_config.model_dump()
    config = core_config.model_validate({**data, "kiosks": ["kiosk-a", {"id": "kiosk-b"}]})
    assert [(k.id, k.store) for k in config.kiosks] == [("kiosk-a", None), ("kiosk-b", None)]
    with pytest.raises(ValueError, match="unknown store 'nowhere'"):
        core_config.model_validate({**data, "kiosks": [{"id": "kiosk-a", "store": "nowhere"}]})
    with pytest.raises(ValueError, match="listed twice or is also a node"):
        core_config.model_validate({**data, "kiosks": ["store-1"]})
