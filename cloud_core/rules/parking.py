"""Parking at the core: plate matching, entry bonus, sessions, occupancy, free-parking validation.

``ParkingRules.apply`` is a function of one parking event and the database state,
run inside the ingest transaction that also marks the event processed (so it
applies at most once, like a visit):

1. occupancy: the car park's count goes up on entry and down on exit (never below
   zero); an entry of a vehicle that has an open session there already (the gate saw it
   twice, or its exit was missed) is not another car. Every change is a row of
   ``parking_occupancy`` — a time series per car park — and a telemetry point;
2. the read is matched to a registered vehicle (``vehicles``): exactly, or — when
   ``fuzzy`` — a registered plate that differs only in OCR look-alikes (the gate
   reader's table, ``mallnet.plates``) if it is the only such plate; anything else is
   an unregistered car. The match kind (``exact``, ``confusable``, ``none``,
   ``ambiguous``, ``low_confidence``) is kept on the session for audit; a read below
   ``min_confidence`` only counts for occupancy;
3. an unregistered plate is never stored: its session is keyed by an HMAC of the
   plate with the mall's secret, and such sessions are deleted after
   ``unregistered_retention_days``;
4. entry opens a session (closing a forgotten open one of the same vehicle as
   ``superseded``); a registered driver gets the entry bonus in the coalition pocket
   at most ``bonus_per_day`` times per local day (``ledger.grant_limited``,
   idempotent by event id) and the offers of campaigns targeting the car park (its
   id or zone, or mall-wide campaigns of the ``mall`` business);
5. exit closes the vehicle's open session with its duration, free when a validated
   coupon covers it; an exit without an entry is kept as ``exit_only``, and paired
   with its entry if that arrives later (entry and exit gates are different nodes,
   so their events may overtake each other).

Free parking: a partner (cinema, restaurant) hands out coupon codes signed with the
mall's validation secret (``make_validation_code``); ``validate_free_parking``
checks the signature, uses each code once, and adds its minutes to the driver's open
session.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from cloud_core import ledger
from cloud_core.config import StoreConfig
from cloud_core.offers import offers_for_visit
from cloud_core.parking_config import CarPark, ParkingSettings
from cloud_core.rules.common import Notice, local_day
from cloud_core.rules.credit import DailyLimit, credit
from cloud_core.telemetry import Point
from mallnet.plates import fold_plate, normalise_plate
from mallnet.wire.payloads import ParkingEvent

log = logging.getLogger(__name__)

ENTRY_RULE = "parking-entry"
PAIR_WINDOW_S = 2 * 86_400  # an exit that arrived before its entry pairs up within this
_CODE = re.compile(r"^P(\d{1,4})-([a-z0-9][a-z0-9_-]{0,63})-([A-Za-z0-9]{1,32})-([0-9a-f]{12})$")


# The tables (parking_sessions, parking_state, parking_occupancy, parking_validations) and
# vehicles.plate_fold are made by the migrations m100_parking and m101_plate_fold in
# cloud_core/store/migrations.py, the one migration registry.


# -- plates ---------------------------------------------------------------------------


def plate_hash(key: bytes, plate: str) -> str:
    """The only form an unregistered plate is kept in: HMAC-SHA256 with the mall's secret."""
    return "h:" + hmac.new(key, normalise_plate(plate).encode(), hashlib.sha256).hexdigest()


MatchKind = Literal["exact", "confusable", "none", "ambiguous"]
MAX_CONFUSABLES = 2  # a read differing from a registered plate in more look-alikes is no match


@dataclass(frozen=True)
class PlateMatch:
    kind: MatchKind
    customer: str | None = None
    plate: str | None = None  # the registered plate matched


def match_plate(conn: sqlite3.Connection, read: str, *, fuzzy: bool = True) -> PlateMatch:
    """The registered vehicle a read belongs to.

    Exact first. Otherwise (``fuzzy``) a registered plate that differs from the read only
    in OCR look-alikes (``O``/``0``/``D``/``Q``, ``S``/``5``, ``A``/``4`` … — the gate
    reader's own table, ``mallnet.plates``), in at most ``MAX_CONFUSABLES`` places, and only
    if no other registered plate is as likely a reading (as few look-alike swaps away):
    when two are, the read is nobody's (``ambiguous``). Any other difference (``S`` read as
    ``G``) is no match: an unregistered car. Costs one indexed lookup, plus one more when not
    exact.
    """
    read = normalise_plate(read)
    row = conn.execute("SELECT customer_id FROM vehicles WHERE plate = ?", (read,)).fetchone()
    if row is not None:
        return PlateMatch("exact", str(row[0]), read)
    if not fuzzy or len(read) < 4:
        return PlateMatch("none")
    near = sorted(
        (sum(a != b for a, b in zip(str(plate), read, strict=True)), str(plate), str(customer))
        for plate, customer in conn.execute(
            "SELECT plate, customer_id FROM vehicles WHERE plate_fold = ?", (fold_plate(read),)
        )
    )
    near = [candidate for candidate in near if candidate[0] <= MAX_CONFUSABLES]
    if not near:
        return PlateMatch("none")
    if len(near) > 1 and near[1][0] == near[0][0]:
        return PlateMatch("ambiguous")  # two plates as likely: nobody's
    _, plate, customer = near[0]
    return PlateMatch("confusable", customer, plate)


# -- applying events ---------------------------------------------------------------------


@dataclass(frozen=True)
class ParkingResult:
    outcome: str
    points: int = 0
    notices: tuple[Notice, ...] = ()
    telemetry: tuple[Point, ...] = field(default=())


def as_store(park: CarPark) -> StoreConfig:
    """A car park as campaigns see it: mall-wide campaigns, or ones naming it or its zone."""
    return StoreConfig(id=park.id, name=park.name, business=ledger.COALITION, zone=park.zone)


class ParkingRules:
    """The parking rules of one mall (built once from config; stateless across events)."""

    def __init__(self, settings: ParkingSettings, tz: ZoneInfo, mall: str) -> None:
        self.settings = settings
        self.tz = tz
        self.mall = mall
        self.parks = settings.car_park_of_node()
        self._key = settings.plate_key()

    def knows(self, node: str) -> bool:
        return node in self.parks

    def vehicle_key(self, plate: str) -> str:
        return plate_hash(self._key, plate)

    def apply(self, conn: sqlite3.Connection, *, node: str, event: ParkingEvent) -> ParkingResult:
        park = self.parks[node]
        if event.confidence < self.settings.min_confidence:
            match = PlateMatch("none")
            kind = "low_confidence"
        else:
            match = match_plate(conn, event.plate, fuzzy=self.settings.fuzzy)
            kind = match.kind
        vehicle = match.plate if match.customer is not None and match.plate else None
        vehicle = vehicle or self.vehicle_key(event.plate)
        points = (self._occupancy(conn, park, event, vehicle),)
        self._purge(conn, event.ts)
        if event.kind == "exit":
            outcome = self._exit(conn, park, event, vehicle, kind)
            return ParkingResult(outcome, telemetry=points)
        self._entry(
            conn, park=park, event=event, vehicle=vehicle, customer=match.customer, kind=kind
        )
        if match.customer is None:
            return ParkingResult(f"entry_{kind}", telemetry=points)
        return self._welcome(conn, park, event, match.customer, points)

    def _occupancy(
        self, conn: sqlite3.Connection, park: CarPark, event: ParkingEvent, vehicle: str
    ) -> Point:
        """Count the car in or out. An entry of a vehicle already inside (an open session:
        the gate saw it twice, or its exit was missed) is not another car."""
        step = 1 if event.kind == "entry" else -1
        if (
            step == 1
            and conn.execute(
                "SELECT 1 FROM parking_sessions WHERE car_park = ? AND vehicle = ?"
                " AND status = 'open' LIMIT 1",
                (park.id, vehicle),
            ).fetchone()
        ):
            step = 0
        conn.execute(
            "INSERT INTO parking_state (car_park, occupied) VALUES (?, ?)"
            " ON CONFLICT (car_park) DO UPDATE SET occupied = MAX(0, occupied + ?)",
            (park.id, max(0, step), step),
        )
        (occupied,) = conn.execute(
            "SELECT occupied FROM parking_state WHERE car_park = ?", (park.id,)
        ).fetchone()
        conn.execute(
            "INSERT INTO parking_occupancy (car_park, ts, ts_epoch, occupied, event_id)"
            " VALUES (?, ?, ?, ?, ?)",
            (park.id, ledger.iso(event.ts), event.ts.timestamp(), occupied, event.id),
        )
        fields: dict[str, float] = {"occupied": occupied}
        if park.capacity:
            fields["free"] = max(0, park.capacity - occupied)
        return Point(
            "parking_occupancy", {"mall": self.mall, "car_park": park.id}, fields, event.ts
        )

    def _entry(
        self,
        conn: sqlite3.Connection,
        *,
        park: CarPark,
        event: ParkingEvent,
        vehicle: str,
        customer: str | None,
        kind: str,
    ) -> None:
        epoch = event.ts.timestamp()
        early_exit = conn.execute(
            "SELECT id, exit_epoch FROM parking_sessions WHERE car_park = ? AND vehicle = ?"
            " AND status = 'exit_only' AND exit_epoch >= ? AND exit_epoch <= ?"
            " ORDER BY exit_epoch LIMIT 1",
            (park.id, vehicle, epoch, epoch + PAIR_WINDOW_S),
        ).fetchone()
        if early_exit is not None:  # the exit gate's event overtook this one: pair them
            conn.execute(
                "UPDATE parking_sessions SET status = 'closed', entry_event = ?, entry_gate = ?,"
                " entry_ts = ?, entry_epoch = ?, duration_s = ?, free = 0,"
                " customer_id = COALESCE(customer_id, ?) WHERE id = ?",
                (
                    event.id,
                    event.gate,
                    ledger.iso(event.ts),
                    epoch,
                    float(early_exit[1]) - epoch,
                    customer,
                    int(early_exit[0]),
                ),
            )
            return
        conn.execute(
            "UPDATE parking_sessions SET status = 'superseded'"
            " WHERE car_park = ? AND vehicle = ? AND status = 'open'",
            (park.id, vehicle),
        )
        conn.execute(
            "INSERT INTO parking_sessions (car_park, vehicle, customer_id, status, entry_event,"
            " entry_gate, entry_ts, entry_epoch, match) VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?)",
            (
                park.id,
                vehicle,
                customer,
                event.id,
                event.gate,
                ledger.iso(event.ts),
                event.ts.timestamp(),
                kind,
            ),
        )

    def _welcome(
        self,
        conn: sqlite3.Connection,
        park: CarPark,
        event: ParkingEvent,
        customer: str,
        telemetry: tuple[Point, ...],
    ) -> ParkingResult:
        settings = self.settings
        notices: list[Notice] = []
        day = local_day(event.ts, self.tz)
        granted = 0
        outcome = "entry_registered"
        if settings.entry_bonus > 0 and settings.bonus_per_day > 0:
            text = f"+{settings.entry_bonus} points: welcome to {park.name}"
            bonus = credit(
                conn,
                customer=customer,
                pocket=ledger.COALITION,
                points=settings.entry_bonus,
                reason="parking",
                idem_key=f"parking:{event.id}",
                now=event.ts,
                limit=DailyLimit(ENTRY_RULE, day, max_per_day=settings.bonus_per_day),
                text=text,
            )
            if bonus.notice is not None:
                granted = bonus.result.points
                outcome = "entry_bonus"
                notices.append(bonus.notice)
            elif bonus.result.outcome == "limit":
                outcome = "entry_bonus_limit"
        for offer in offers_for_visit(
            conn,
            customer=customer,
            store=as_store(park),
            ts=event.ts,
            day=day,
            event_id=event.id,
            trigger="parking",
        ):
            notices.append(Notice(customer, offer))
        return ParkingResult(outcome, granted, tuple(notices), telemetry)

    def _exit(
        self, conn: sqlite3.Connection, park: CarPark, event: ParkingEvent, vehicle: str, kind: str
    ) -> str:
        row = conn.execute(
            "SELECT id, entry_epoch, free_minutes FROM parking_sessions"
            " WHERE car_park = ? AND vehicle = ? AND status = 'open'"
            " ORDER BY entry_epoch DESC LIMIT 1",
            (park.id, vehicle),
        ).fetchone()
        epoch = event.ts.timestamp()
        if row is None:
            customer = None if vehicle.startswith("h:") else self._owner(conn, vehicle)
            conn.execute(
                "INSERT INTO parking_sessions (car_park, vehicle, customer_id, status, exit_event,"
                " exit_gate, exit_ts, exit_epoch, match)"
                " VALUES (?, ?, ?, 'exit_only', ?, ?, ?, ?, ?)",
                (
                    park.id,
                    vehicle,
                    customer,
                    event.id,
                    event.gate,
                    ledger.iso(event.ts),
                    epoch,
                    kind,
                ),
            )
            return "exit_unmatched"
        session, entry_epoch, free_minutes = int(row[0]), float(row[1]), int(row[2])
        duration = max(0.0, epoch - entry_epoch)
        free = free_minutes > 0 and duration <= free_minutes * 60
        conn.execute(
            "UPDATE parking_sessions SET status = 'closed', exit_event = ?, exit_gate = ?,"
            " exit_ts = ?, exit_epoch = ?, duration_s = ?, free = ? WHERE id = ?",
            (event.id, event.gate, ledger.iso(event.ts), epoch, duration, int(free), session),
        )
        return "exit_free" if free else "exit"

    @staticmethod
    def _owner(conn: sqlite3.Connection, plate: str) -> str | None:
        row = conn.execute("SELECT customer_id FROM vehicles WHERE plate = ?", (plate,)).fetchone()
        return str(row[0]) if row else None

    def _purge(self, conn: sqlite3.Connection, now: datetime) -> int:
        """Forget unregistered vehicles' sessions older than the retention."""
        cutoff = now.timestamp() - self.settings.unregistered_retention_days * 86_400
        cur = conn.execute(
            "DELETE FROM parking_sessions WHERE customer_id IS NULL"
            " AND COALESCE(exit_epoch, entry_epoch) < ?"
            " AND id NOT IN (SELECT session_id FROM parking_validations)",
            (cutoff,),
        )
        return int(cur.rowcount)


# -- free-parking validation ------------------------------------------------------------


def make_validation_code(key: bytes, business: str, serial: str, minutes: int) -> str:
    """A partner's coupon code: ``P<minutes>-<business>-<serial>-<signature>``."""
    body = f"P{minutes}-{business}-{serial}"
    return f"{body}-{hmac.new(key, body.encode(), hashlib.sha256).hexdigest()[:12]}"


def code_business(code: str) -> str | None:
    """The partner business a coupon code names (hyphens and all), or None if malformed."""
    found = _CODE.match(code.strip())
    return found.group(2) if found else None


@dataclass(frozen=True)
class Validation:
    outcome: Literal["validated", "invalid", "used", "no_session"]
    minutes: int = 0
    session: int | None = None
    business: str | None = None


def validate_free_parking(
    conn: sqlite3.Connection,
    key: bytes,
    *,
    code: str,
    now: datetime,
    customer: str | None = None,
    vehicle: str | None = None,
) -> Validation:
    """Apply a coupon to the open session of a customer (or of a vehicle key); once per code."""
    found = _CODE.match(code.strip())
    if found is None:
        return Validation("invalid")
    minutes, business, serial, signature = found.groups()
    expected = make_validation_code(key, business, serial, int(minutes)).rsplit("-", 1)[1]
    if not hmac.compare_digest(expected, signature) or int(minutes) <= 0:
        return Validation("invalid")
    if conn.execute("SELECT 1 FROM parking_validations WHERE code = ?", (code,)).fetchone():
        return Validation("used")
    if customer is not None:
        where, arg = "customer_id = ?", customer
    elif vehicle is not None:
        where, arg = "vehicle = ?", vehicle
    else:
        return Validation("no_session")
    row = conn.execute(
        f"SELECT id FROM parking_sessions WHERE {where} AND status = 'open'"  # noqa: S608 - fixed
        " ORDER BY entry_epoch DESC LIMIT 1",
        (arg,),
    ).fetchone()
    if row is None:
        return Validation("no_session")
    session = int(row[0])
    conn.execute(
        "UPDATE parking_sessions SET free_minutes = free_minutes + ? WHERE id = ?",
        (int(minutes), session),
    )
    conn.execute(
        "INSERT INTO parking_validations (code, business, minutes, session_id, ts)"
        " VALUES (?, ?, ?, ?, ?)",
        (code, business, int(minutes), session, ledger.iso(now)),
    )
    return Validation("validated", int(minutes), session, business)


# -- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    id: int
    car_park: str
    customer: str | None
    status: str
    entry_ts: datetime | None
    exit_ts: datetime | None
    duration_s: float | None
    free_minutes: int
    free: bool | None
    match: str


def sessions_of(conn: sqlite3.Connection, customer: str, limit: int = 50) -> list[Session]:
    """A customer's parking sessions, newest first."""
    rows = conn.execute(
        "SELECT id, car_park, customer_id, status, entry_ts, exit_ts, duration_s, free_minutes,"
        " free, match FROM parking_sessions WHERE customer_id = ?"
        " ORDER BY COALESCE(entry_epoch, exit_epoch) DESC LIMIT ?",
        (customer, limit),
    ).fetchall()
    return [
        Session(
            int(r[0]),
            str(r[1]),
            r[2],
            str(r[3]),
            ledger.from_iso(r[4]) if r[4] else None,
            ledger.from_iso(r[5]) if r[5] else None,
            r[6],
            int(r[7]),
            None if r[8] is None else bool(r[8]),
            str(r[9]),
        )
        for r in rows
    ]


def occupancy_series(
    conn: sqlite3.Connection, car_park: str, since: datetime | None = None
) -> list[tuple[datetime, int]]:
    """The car park's occupancy after each entry and exit since ``since``, oldest first."""
    start = since.timestamp() if since is not None else float("-inf")
    rows = conn.execute(
        "SELECT ts, occupied FROM parking_occupancy WHERE car_park = ? AND ts_epoch >= ?"
        " ORDER BY ts_epoch, id",
        (car_park, start),
    ).fetchall()
    return [(ledger.from_iso(str(ts)), int(occ)) for ts, occ in rows]


def erase_parking(conn: sqlite3.Connection, customer: str) -> int:
    """Forget an erased customer's parking sessions (call with ``identity.erase_customer``)."""
    conn.execute(
        "DELETE FROM parking_validations WHERE session_id IN"
        " (SELECT id FROM parking_sessions WHERE customer_id = ?)",
        (customer,),
    )
    cur = conn.execute("DELETE FROM parking_sessions WHERE customer_id = ?", (customer,))
    return int(cur.rowcount)
