"""Parking at the core: plate matching, entry bonus, sessions, occupancy (the decisions).

``ParkingRules.apply`` is a function of one parking event and the database state,
run inside the ingest transaction that also marks the event processed (so it
applies at most once, like a visit). What it decides, the storage modules write
(``parking_sessions``, ``customers.match_plate``, ``ledger`` through ``credit``):

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
   at most ``bonus_per_day`` times per local day (``credit`` with a ``DailyLimit``,
   idempotent by event id) and the offers of campaigns targeting the car park as a
   place (its id or zone, or mall-wide campaigns of the ``mall`` business);
5. exit closes the vehicle's open session with its duration, free when a validated
   coupon covers it (``parking_codes``); an exit without an entry is kept as
   ``exit_only``, and paired with its entry if that arrives later (entry and exit gates
   are different nodes, so their events may overtake each other).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from zoneinfo import ZoneInfo

from cloud_core import ledger, parking_sessions
from cloud_core.customers import PlateMatch, customer_of_plate, match_plate
from cloud_core.offers import CarParkPlace, offers_for_visit
from cloud_core.parking_config import CarPark, ParkingSettings
from cloud_core.rules.common import Notice, local_day
from cloud_core.rules.credit import DailyLimit, credit
from cloud_core.store import Conn
from cloud_core.telemetry import Point
from mallnet.wire.payloads import ParkingEvent

log = logging.getLogger(__name__)

ENTRY_RULE = "parking-entry"
PAIR_WINDOW_S = 2 * 86_400  # an exit that arrived before its entry pairs up within this


@dataclass(frozen=True)
class ParkingResult:
    outcome: str
    points: int = 0
    notices: tuple[Notice, ...] = ()
    telemetry: tuple[Point, ...] = field(default=())


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
        return parking_sessions.plate_hash(self._key, plate)

    def apply(self, conn: Conn, *, node: str, event: ParkingEvent) -> ParkingResult:
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
        parking_sessions.purge_unregistered(
            conn, event.ts - timedelta(days=self.settings.unregistered_retention_days)
        )
        if event.kind == "exit":
            outcome = self._exit(conn, park, event, vehicle, kind)
            return ParkingResult(outcome, telemetry=points)
        self._entry(
            conn, park=park, event=event, vehicle=vehicle, customer=match.customer, kind=kind
        )
        if match.customer is None:
            return ParkingResult(f"entry_{kind}", telemetry=points)
        return self._welcome(conn, park, event, match.customer, points)

    def _occupancy(self, conn: Conn, park: CarPark, event: ParkingEvent, vehicle: str) -> Point:
        """Count the car in or out. An entry of a vehicle already inside (an open session:
        the gate saw it twice, or its exit was missed) is not another car."""
        step = 1 if event.kind == "entry" else -1
        if step == 1 and parking_sessions.is_inside(conn, park.id, vehicle):
            step = 0
        occupied = parking_sessions.count_car(conn, park.id, step, event)
        fields: dict[str, float] = {"occupied": occupied}
        if park.capacity:
            fields["free"] = max(0, park.capacity - occupied)
        return Point(
            "parking_occupancy", {"mall": self.mall, "car_park": park.id}, fields, event.ts
        )

    def _entry(
        self,
        conn: Conn,
        *,
        park: CarPark,
        event: ParkingEvent,
        vehicle: str,
        customer: str | None,
        kind: str,
    ) -> None:
        early = parking_sessions.early_exit(
            conn, park.id, vehicle, event.ts.timestamp(), PAIR_WINDOW_S
        )
        if early is not None:  # the exit gate's event overtook this one: pair them
            parking_sessions.pair_entry(conn, early, event, customer)
            return
        parking_sessions.open_session(
            conn, car_park=park.id, vehicle=vehicle, customer=customer, event=event, match=kind
        )

    def _welcome(
        self,
        conn: Conn,
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
            bonus = credit(
                conn,
                customer=customer,
                pocket=ledger.COALITION,
                points=settings.entry_bonus,
                reason="parking",
                idem_key=f"parking:{event.id}",
                now=event.ts,
                limit=DailyLimit(ENTRY_RULE, day, max_per_day=settings.bonus_per_day),
                text=f"+{settings.entry_bonus} points: welcome to {park.name}",
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
            place=CarParkPlace.of(park),
            ts=event.ts,
            day=day,
            event_id=event.id,
            trigger="parking",
        ):
            notices.append(Notice(customer, offer))
        return ParkingResult(outcome, granted, tuple(notices), telemetry)

    def _exit(self, conn: Conn, park: CarPark, event: ParkingEvent, vehicle: str, kind: str) -> str:
        session = parking_sessions.open_session_of(conn, park.id, vehicle)
        if session is None:
            unregistered = vehicle.startswith(parking_sessions.UNREGISTERED_PREFIX)
            customer = None if unregistered else customer_of_plate(conn, vehicle)
            parking_sessions.keep_exit_only(
                conn, car_park=park.id, vehicle=vehicle, customer=customer, event=event, match=kind
            )
            return "exit_unmatched"
        duration = max(0.0, event.ts.timestamp() - session.entry_epoch)
        free = session.free_minutes > 0 and duration <= session.free_minutes * 60
        parking_sessions.close_session(conn, session.id, event, duration, free)
        return "exit_free" if free else "exit"
