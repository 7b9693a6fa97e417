"""Parking rules at the core: matching, entry bonus, privacy, sessions, validation, occupancy."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from cloud_core import customers, ledger, offers
from cloud_core.customers import PlateMatch, match_plate
from cloud_core.parking_codes import make_validation_code, validate_free_parking
from cloud_core.parking_config import ParkingSettings
from cloud_core.reports import occupancy_series, sessions_of
from cloud_core.rules.parking import ParkingRules
from cloud_core.store import Store, open_store
from mallnet.errors import ConfigError
from mallnet.wire.payloads import CreditNotice, OfferNotice, ParkingEvent
from tests.cloud_core.helpers import make_config
from tests.cloud_core.parking_helpers import PARKING, T0, Gate

BOTH_BACKENDS = True  # the rules' tests run on SQLite and on PostgreSQL (conftest.py)


@pytest.fixture
def db(database):
    store = open_store(database)
    yield store
    store.close()


@pytest.fixture
def rules() -> ParkingRules:
    return ParkingRules(ParkingSettings.model_validate(PARKING), ZoneInfo("UTC"), "testmall")


def customer_with(store: Store, phone: str, *plates: str) -> str:
    with store.transaction() as conn:
        customer, _ = customers.register_customer(conn, phone, default_region="GB", now=T0)
        for plate in plates:
            customers.attach_vehicle(conn, customer, plate, "UA", T0)
    return customer


def apply(store: Store, rules: ParkingRules, event: ParkingEvent, node: str = "gate-north"):
    with store.transaction() as conn:
        return rules.apply(conn, node=node, event=event)


def coalition(store: Store, customer: str) -> int:
    with store.read() as conn:
        assert ledger.check_invariants(conn) == []
        pockets = {b.pocket: b.balance for b in ledger.balances(conn, customer, T0)}
    return pockets.get(ledger.COALITION, 0)


def add_parking_campaign(store: Store) -> None:
    campaign = offers.Campaign(
        id="parking-welcome",
        business="mall",
        title="Free coffee",
        text="Show this at Bean Bar.",
        image_url=None,
        starts_at=T0 - timedelta(days=1),
        ends_at=T0 + timedelta(days=30),
        stores=(),
        zones=("parking",),
        segment="drivers",
        cap_count=5,
        cap_period_s=None,
    )
    with store.transaction() as conn:
        offers.create_campaign(conn, campaign, {}, T0)


def test_a_registered_entry_earns_the_bonus_once_a_day_and_an_offer(db, rules):
    customer = customer_with(db, "+447911123001", "KA1234TX")
    add_parking_campaign(db)
    gate = Gate()
    first = apply(db, rules, gate.event("KA1234TX"))
    assert first.outcome == "entry_bonus" and first.points == 40
    kinds = [type(n.message) for n in first.notices]
    assert kinds == [CreditNotice, OfferNotice]
    credit = first.notices[0].message
    assert isinstance(credit, CreditNotice)
    assert (credit.points, credit.pocket, credit.reason) == (40, "mall", "parking")
    offer = first.notices[1].message
    assert isinstance(offer, OfferNotice) and offer.trigger == "parking"
    assert all(n.customer == customer for n in first.notices)
    # Out and in again the same day: no second bonus.
    assert (
        apply(db, rules, gate.event("KA1234TX", "exit", T0 + timedelta(hours=1))).outcome == "exit"
    )
    again = apply(db, rules, gate.event("KA1234TX", at=T0 + timedelta(hours=2)))
    assert again.outcome == "entry_bonus_limit" and again.points == 0
    assert coalition(db, customer) == 40
    # The next day: a bonus again.
    next_day = apply(db, rules, gate.event("KA1234TX", at=T0 + timedelta(days=1)))
    assert next_day.outcome == "entry_bonus"
    assert coalition(db, customer) == 80


def test_the_bonus_is_idempotent_by_event_id(db, rules):
    customer = customer_with(db, "+447911123002", "AB1234CE")
    event = Gate().event("AB1234CE")
    assert apply(db, rules, event).points == 40
    # The ingest never applies an event twice; even if it did, the ledger key holds.
    with db.transaction() as conn:
        bonus = ledger.grant_limited(
            conn,
            customer=customer,
            pocket="mall",
            points=40,
            reason="parking",
            idem_key=f"parking:{event.id}",
            now=T0,
            rule="parking-entry",
            day="2026-11-23",
        )
    assert bonus.outcome == "duplicate"
    assert coalition(db, customer) == 40


def test_fuzzy_matching_forgives_only_ocr_look_alikes_and_only_when_unambiguous(db):
    alice = customer_with(db, "+447911123003", "KA0001TI")
    bob = customer_with(db, "+447911123004", "KA0001T1")
    carol = customer_with(db, "+447911123005", "RK300AS")
    with db.read() as conn:
        assert match_plate(conn, "KA0001TI").customer == alice  # exact
        assert match_plate(conn, "RK3O0AS") == PlateMatch("confusable", carol, "RK300AS")
        assert match_plate(conn, "RK3OOAS").customer == carol  # O/0 twice
        assert match_plate(conn, "RK3OOA5").kind == "none"  # and S/5 too: too many swaps
        # a confident misread that is no look-alike (G for S) is nobody's
        assert match_plate(conn, "RK300AG").kind == "none"
        assert match_plate(conn, "RK300A").kind == "none"
        # one look-alike from alice's, two from bob's: alice's is the likelier reading
        assert match_plate(conn, "KAO001TI").customer == alice
        # as far from both (O/0 and L/I vs L/1): ambiguous, nobody
        assert match_plate(conn, "KAO001TL").kind == "ambiguous"
        assert match_plate(conn, "KA0001T1", fuzzy=False).customer == bob
        assert match_plate(conn, "RK3O0AS", fuzzy=False).kind == "none"


def test_unregistered_plates_are_only_kept_as_a_keyed_hash_and_expire(db, rules, tmp_path):
    gate = Gate()
    result = apply(db, rules, gate.event("XX9999XX"))
    assert result.outcome == "entry_none" and result.notices == ()
    with db.read() as conn:
        (vehicle,) = conn.execute("SELECT vehicle FROM parking_sessions").fetchone()
    assert vehicle.startswith("h:") and vehicle == rules.vehicle_key("XX 9999 XX")
    other = ParkingRules(
        ParkingSettings.model_validate({**PARKING, "hash_secret": "another-secret-0123456789"}),
        ZoneInfo("UTC"),
        "testmall",
    )
    assert other.vehicle_key("XX9999XX") != vehicle  # keyed: the hash alone tells nothing
    if db.dialect == "sqlite":  # the plate is in no file (PostgreSQL: test_postgres.py)
        db.checkpoint()
        for path in tmp_path.glob("core.sqlite*"):
            assert b"XX9999XX" not in path.read_bytes()
    # The exit is matched through the same hash; after the retention the session is gone.
    assert (
        apply(db, rules, gate.event("XX9999XX", "exit", T0 + timedelta(hours=3))).outcome == "exit"
    )
    later = T0 + timedelta(days=8)
    apply(db, rules, gate.event("YY1111YY", at=later))
    with db.read() as conn:
        left = [r[0] for r in conn.execute("SELECT vehicle FROM parking_sessions")]
    assert left == [rules.vehicle_key("YY1111YY")]


def test_sessions_have_durations_and_odd_sequences_are_kept(db, rules):
    customer = customer_with(db, "+447911123006", "AA1111AA")
    gate = Gate()
    apply(db, rules, gate.event("AA1111AA"))
    apply(db, rules, gate.event("AA1111AA", at=T0 + timedelta(minutes=5)))  # missed the exit
    apply(db, rules, gate.event("AA1111AA", "exit", T0 + timedelta(minutes=95)))
    apply(db, rules, gate.event("AA1111AA", "exit", T0 + timedelta(minutes=99)))  # no entry
    with db.read() as conn:
        sessions = sessions_of(conn, customer)
    assert [(s.status, s.duration_s) for s in sessions] == [
        ("exit_only", None),
        ("closed", 90 * 60.0),
        ("superseded", None),
    ]


def test_an_exit_that_overtook_its_entry_is_paired_with_it(db, rules):
    customer = customer_with(db, "+447911123009", "DD5555DD")
    exit_gate, entry_gate = Gate(), Gate()
    late = apply(db, rules, exit_gate.event("DD5555DD", "exit", T0 + timedelta(minutes=60)))
    assert late.outcome == "exit_unmatched"
    entry = apply(db, rules, entry_gate.event("DD5555DD", at=T0))
    assert entry.outcome == "entry_bonus"
    with db.read() as conn:
        (session,) = sessions_of(conn, customer)
    assert (session.status, session.duration_s) == ("closed", 3600.0)
    with db.read() as conn:
        # In event time: the entry (1), then the exit, which was applied first, floored at 0.
        assert [n for _, n in occupancy_series(conn, "p1")] == [1, 0]


def test_a_coupon_validates_free_parking_once(db, rules):
    customer = customer_with(db, "+447911123007", "BB2222BB")
    key = rules.settings.validation_key()
    code = make_validation_code(key, "cinema", "000123", 180)
    gate = Gate()
    with db.transaction() as conn:
        assert validate_free_parking(conn, key, code=code, now=T0, customer=customer).outcome == (
            "no_session"
        )
    apply(db, rules, gate.event("BB2222BB"))
    with db.transaction() as conn:
        ok = validate_free_parking(conn, key, code=code, now=T0, customer=customer)
        assert (ok.outcome, ok.minutes, ok.business) == ("validated", 180, "cinema")
        assert validate_free_parking(conn, key, code=code, now=T0, customer=customer).outcome == (
            "used"
        )
        forged = code[:-1] + ("0" if code[-1] != "0" else "1")
        assert validate_free_parking(conn, key, code=forged, now=T0, customer=customer).outcome == (
            "invalid"
        )
        longer = code.replace("P180-", "P999-")
        assert validate_free_parking(conn, key, code=longer, now=T0, customer=customer).outcome == (
            "invalid"
        )
        assert validate_free_parking(conn, key, code="junk", now=T0, customer=customer).outcome == (
            "invalid"
        )
    exit_ = apply(db, rules, gate.event("BB2222BB", "exit", T0 + timedelta(minutes=170)))
    assert exit_.outcome == "exit_free"
    with db.read() as conn:
        (session,) = sessions_of(conn, customer)
    assert session.free is True and session.free_minutes == 180
    # An unregistered driver validates by plate (through its hash).
    apply(db, rules, gate.event("ZZ3333ZZ", at=T0 + timedelta(hours=4)))
    code2 = make_validation_code(key, "cinema", "000124", 60)
    with db.transaction() as conn:
        by_plate = validate_free_parking(
            conn, key, code=code2, now=T0, vehicle=rules.vehicle_key("ZZ3333ZZ")
        )
    assert by_plate.outcome == "validated"
    late = apply(db, rules, gate.event("ZZ3333ZZ", "exit", T0 + timedelta(hours=6)))
    assert late.outcome == "exit"  # 2 h stay, 1 h validated: not free


def test_occupancy_is_a_time_series_per_car_park_and_never_negative(db, rules):
    gate = Gate()
    moments = [T0 + timedelta(minutes=m) for m in range(6)]
    apply(db, rules, gate.event("AA0001AA", "exit", moments[0]))  # an exit with nobody in
    apply(db, rules, gate.event("AA0002AA", at=moments[1]))
    apply(db, rules, gate.event("AA0003AA", at=moments[2], confidence=0.2))  # counts anyway
    point = apply(db, rules, gate.event("AA0002AA", "exit", moments[3])).telemetry[0]
    apply(db, rules, gate.event("AA0004AA", at=moments[4]), node="gate-south")
    with db.read() as conn:
        north = occupancy_series(conn, "p1")
        south = occupancy_series(conn, "p2", since=moments[1])
    assert [n for _, n in north] == [0, 1, 2, 1]
    assert [t for t, _ in north] == moments[:4]
    assert [n for _, n in south] == [1]
    assert point.measurement == "parking_occupancy"
    assert point.tags == {"mall": "testmall", "car_park": "p1"}
    assert point.fields == {"occupied": 1, "free": 2}


def test_low_confidence_reads_count_for_occupancy_only(db, rules):
    customer = customer_with(db, "+447911123008", "CC4444CC")
    result = apply(db, rules, Gate().event("CC4444CC", confidence=0.3))
    assert result.outcome == "entry_low_confidence" and result.points == 0
    assert coalition(db, customer) == 0


def test_parking_config_refuses_placeholders_and_clashes(tmp_path):
    weak = ParkingSettings.model_validate({**PARKING, "hash_secret": "changeme"})
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        weak.plate_key()
    missing = ParkingSettings.model_validate(
        {**PARKING, "hash_secret": None, "hash_secret_file": str(tmp_path / "nope")}
    )
    with pytest.raises(ConfigError, match="cannot read"):
        missing.plate_key()
    with pytest.raises(ValidationError, match="hash_secret_file"):
        ParkingSettings.model_validate({**PARKING, "hash_secret": None})
    twice = {
        **PARKING,
        "car_parks": [PARKING["car_parks"][0], {**PARKING["car_parks"][0], "id": "p9"}],
    }
    with pytest.raises(ValidationError, match="gate-north"):
        ParkingSettings.model_validate(twice)
    clash = {**PARKING, "car_parks": [{**PARKING["car_parks"][0], "nodes": ["store-1"]}]}
    with pytest.raises(ValidationError, match="store node and a car-park gate"):
        make_config(tmp_path, parking=clash)
    assert make_config(tmp_path, parking=PARKING).parking is not None
