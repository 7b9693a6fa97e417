"""Visits and stays: the storage the visit rules decide on (``rules/visits.py``).

``presence_segments`` holds each customer's stays per store as connected pieces
(``join_presence``), whatever order their events arrive in; ``visits`` holds each
qualifying visit with the points it paid. Every function runs in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cloud_core import ledger
from cloud_core.store import Conn


def join_presence(
    conn: Conn,
    *,
    customer: str,
    store: str,
    start: float,
    end: float,
    gap_s: float,
) -> tuple[float, float]:
    """Record that ``customer`` was at ``store`` from ``start`` to ``end`` (epoch seconds)
    and return the continuous stay this belongs to.

    Every stored segment that overlaps ``[start - gap_s, end + gap_s]`` is merged with it
    into one row, so the segments are the connected pieces of everything seen so far,
    whatever the order it arrived in.
    """
    rows = conn.execute(
        "SELECT id, start_epoch, end_epoch FROM presence_segments"
        " WHERE customer_id = ? AND store = ? AND end_epoch >= ? AND start_epoch <= ?",
        (customer, store, start - gap_s, end + gap_s),
    ).fetchall()
    lo = min([start, *(float(r[1]) for r in rows)])
    hi = max([end, *(float(r[2]) for r in rows)])
    if not rows:
        conn.execute(
            "INSERT INTO presence_segments (customer_id, store, start_epoch, end_epoch)"
            " VALUES (?, ?, ?, ?)",
            (customer, store, lo, hi),
        )
        return lo, hi
    keep, *merged = rows
    conn.executemany("DELETE FROM presence_segments WHERE id = ?", [(r[0],) for r in merged])
    if (lo, hi) != (float(keep[1]), float(keep[2])):
        conn.execute(
            "UPDATE presence_segments SET start_epoch = ?, end_epoch = ? WHERE id = ?",
            (lo, hi, keep[0]),
        )
    return lo, hi


@dataclass(frozen=True)
class DayState:
    """What the visit rules check, read at once: a visit here within the cooldown window
    (either side of the event's time), today's points at this business, the stores visited
    today, and whether this store is one of them."""

    recent_here: bool
    earned_today: int
    stores_today: int
    here_today: bool


def day_state(
    conn: Conn,
    *,
    customer: str,
    store: str,
    business: str,
    day: str,
    around: tuple[float, float],
) -> DayState:
    recent, earned, stores, here = conn.execute(
        "SELECT COALESCE(MAX(CASE WHEN store = :store AND ts_epoch > :lo AND ts_epoch < :hi"
        " THEN 1 ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN day = :day AND business = :business THEN points END), 0),"
        " COUNT(DISTINCT CASE WHEN day = :day THEN store END),"
        " COALESCE(MAX(CASE WHEN day = :day AND store = :store THEN 1 ELSE 0 END), 0)"
        " FROM visits WHERE customer_id = :customer"
        " AND (day = :day OR (store = :store AND ts_epoch > :lo AND ts_epoch < :hi))",
        {
            "business": business,
            "store": store,
            "customer": customer,
            "day": day,
            "lo": around[0],
            "hi": around[1],
        },
    ).fetchone()
    return DayState(bool(recent), int(earned), int(stores), bool(here))


def record_visit(
    conn: Conn,
    *,
    event_id: str,
    customer: str,
    store: str,
    business: str,
    node: str,
    ts: datetime,
    day: str,
    points: int,
) -> None:
    conn.execute(
        "INSERT INTO visits (event_id, customer_id, store, business, node, ts, ts_epoch, day,"
        " points) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (event_id, customer, store, business, node, ledger.iso(ts), ts.timestamp(), day, points),
    )


def forget_stays_before(conn: Conn, epoch: float) -> None:
    """Forget stays that ended before ``epoch`` (only a stale event could join them)."""
    conn.execute("DELETE FROM presence_segments WHERE end_epoch < ?", (epoch,))
