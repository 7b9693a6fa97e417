"""Parking storage: sessions per vehicle and car park, occupancy, retention, erasure.

Tables (made by ``m100_parking`` in ``store/migrations.py``): ``parking_sessions``
(one row per stay: open, closed, exit_only, superseded), ``parking_state`` (the current
count per car park), ``parking_occupancy`` (the count after every entry and exit, a time
series) and ``parking_validations`` (coupon codes used, ``parking_codes.py``). Every
function runs in the caller's transaction; what to write is decided in ``rules/parking.py``.
An unregistered vehicle is only ever stored as an HMAC of its plate (``plate_hash``).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from cloud_core import ledger
from cloud_core.store import Conn
from mallnet.plates import normalise_plate
from mallnet.wire.payloads import ParkingEvent

UNREGISTERED_PREFIX = "h:"


def plate_hash(key: bytes, plate: str) -> str:
    """The only form an unregistered plate is kept in: HMAC-SHA256 with the mall's secret."""
    digest = hmac.new(key, normalise_plate(plate).encode(), hashlib.sha256).hexdigest()
    return UNREGISTERED_PREFIX + digest


def is_inside(conn: Conn, car_park: str, vehicle: str) -> bool:
    """Whether the vehicle has an open session at the car park."""
    return (
        conn.execute(
            "SELECT 1 FROM parking_sessions WHERE car_park = ? AND vehicle = ?"
            " AND status = 'open' LIMIT 1",
            (car_park, vehicle),
        ).fetchone()
        is not None
    )


def count_car(conn: Conn, car_park: str, step: int, event: ParkingEvent) -> int:
    """Move the car park's count by ``step`` (never below zero), keep the new count as a
    row of the occupancy series, and return it."""
    conn.execute(
        "INSERT INTO parking_state (car_park, occupied) VALUES (?, ?)"
        " ON CONFLICT (car_park) DO UPDATE SET occupied = CASE"
        " WHEN parking_state.occupied + ? < 0 THEN 0 ELSE parking_state.occupied + ? END",
        (car_park, max(0, step), step, step),
    )
    (occupied,) = conn.execute(
        "SELECT occupied FROM parking_state WHERE car_park = ?", (car_park,)
    ).fetchone()
    conn.execute(
        "INSERT INTO parking_occupancy (car_park, ts, ts_epoch, occupied, event_id)"
        " VALUES (?, ?, ?, ?, ?)",
        (car_park, ledger.iso(event.ts), event.ts.timestamp(), occupied, event.id),
    )
    return int(occupied)


@dataclass(frozen=True)
class EarlyExit:
    """An exit kept as ``exit_only`` whose entry had not arrived yet."""

    session: int
    exit_epoch: float


def early_exit(
    conn: Conn, car_park: str, vehicle: str, entry_epoch: float, window_s: float
) -> EarlyExit | None:
    """The first ``exit_only`` session of the vehicle within ``window_s`` after an entry."""
    row = conn.execute(
        "SELECT id, exit_epoch FROM parking_sessions WHERE car_park = ? AND vehicle = ?"
        " AND status = 'exit_only' AND exit_epoch >= ? AND exit_epoch <= ?"
        " ORDER BY exit_epoch LIMIT 1",
        (car_park, vehicle, entry_epoch, entry_epoch + window_s),
    ).fetchone()
    return None if row is None else EarlyExit(int(row[0]), float(row[1]))


def pair_entry(conn: Conn, exit_: EarlyExit, event: ParkingEvent, customer: str | None) -> None:
    """Close an ``exit_only`` session with the entry that arrived after it."""
    epoch = event.ts.timestamp()
    conn.execute(
        "UPDATE parking_sessions SET status = 'closed', entry_event = ?, entry_gate = ?,"
        " entry_ts = ?, entry_epoch = ?, duration_s = ?, free = 0,"
        " customer_id = COALESCE(customer_id, ?) WHERE id = ?",
        (
            event.id,
            event.gate,
            ledger.iso(event.ts),
            epoch,
            exit_.exit_epoch - epoch,
            customer,
            exit_.session,
        ),
    )


def open_session(
    conn: Conn,
    *,
    car_park: str,
    vehicle: str,
    customer: str | None,
    event: ParkingEvent,
    match: str,
) -> None:
    """Open a session for an entry, marking a forgotten open one of the vehicle superseded."""
    conn.execute(
        "UPDATE parking_sessions SET status = 'superseded'"
        " WHERE car_park = ? AND vehicle = ? AND status = 'open'",
        (car_park, vehicle),
    )
    conn.execute(
        "INSERT INTO parking_sessions (car_park, vehicle, customer_id, status, entry_event,"
        " entry_gate, entry_ts, entry_epoch, match) VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?)",
        (
            car_park,
            vehicle,
            customer,
            event.id,
            event.gate,
            ledger.iso(event.ts),
            event.ts.timestamp(),
            match,
        ),
    )


@dataclass(frozen=True)
class OpenSession:
    id: int
    entry_epoch: float
    free_minutes: int


def open_session_of(conn: Conn, car_park: str, vehicle: str) -> OpenSession | None:
    """The vehicle's latest open session at the car park."""
    row = conn.execute(
        "SELECT id, entry_epoch, free_minutes FROM parking_sessions"
        " WHERE car_park = ? AND vehicle = ? AND status = 'open'"
        " ORDER BY entry_epoch DESC LIMIT 1",
        (car_park, vehicle),
    ).fetchone()
    return None if row is None else OpenSession(int(row[0]), float(row[1]), int(row[2]))


def close_session(
    conn: Conn, session: int, event: ParkingEvent, duration_s: float, free: bool
) -> None:
    conn.execute(
        "UPDATE parking_sessions SET status = 'closed', exit_event = ?, exit_gate = ?,"
        " exit_ts = ?, exit_epoch = ?, duration_s = ?, free = ? WHERE id = ?",
        (
            event.id,
            event.gate,
            ledger.iso(event.ts),
            event.ts.timestamp(),
            duration_s,
            int(free),
            session,
        ),
    )


def keep_exit_only(
    conn: Conn,
    *,
    car_park: str,
    vehicle: str,
    customer: str | None,
    event: ParkingEvent,
    match: str,
) -> None:
    """Keep an exit without an entry (its entry may still arrive: ``early_exit``)."""
    conn.execute(
        "INSERT INTO parking_sessions (car_park, vehicle, customer_id, status, exit_event,"
        " exit_gate, exit_ts, exit_epoch, match)"
        " VALUES (?, ?, ?, 'exit_only', ?, ?, ?, ?, ?)",
        (
            car_park,
            vehicle,
            customer,
            event.id,
            event.gate,
            ledger.iso(event.ts),
            event.ts.timestamp(),
            match,
        ),
    )


def purge_unregistered(conn: Conn, before: datetime) -> int:
    """Forget unregistered vehicles' sessions that ended (or began) before ``before``."""
    cur = conn.execute(
        "DELETE FROM parking_sessions WHERE customer_id IS NULL"
        " AND COALESCE(exit_epoch, entry_epoch) < ?"
        " AND id NOT IN (SELECT session_id FROM parking_validations)",
        (before.timestamp(),),
    )
    return int(cur.rowcount)


def erase_parking(conn: Conn, customer: str) -> int:
    """Forget an erased customer's parking sessions (call with ``customers.erase_customer``)."""
    conn.execute(
        "DELETE FROM parking_validations WHERE session_id IN"
        " (SELECT id FROM parking_sessions WHERE customer_id = ?)",
        (customer,),
    )
    cur = conn.execute("DELETE FROM parking_sessions WHERE customer_id = ?", (customer,))
    return int(cur.rowcount)
