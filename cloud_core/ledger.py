"""The loyalty ledger: pockets, lots with expiry, an append-only journal, idempotency keys.

A customer's wallet has pockets: one per business (points earned there are spent only
there) and the mall's coalition pocket ``mall``. Points are granted as *lots* that may
expire; a spend draws the earliest-expiring unexpired lots first; the expiry job zeroes
what is left of due lots. Every change is one journal row naming its lot, so

* a pocket's balance is the sum of its journal (and equals the sum of its lots' remainders),
* no balance is ever negative (``remaining >= 0`` is a table constraint),
* no lot is spent twice (a lot's journal rows sum to its remainder, never below zero).

Every write carries an idempotency key; a key seen before writes nothing and reports
``duplicate``. Every function here runs inside the caller's ``Store.transaction()`` —
which is how rule checks (a cap, a cooldown) and the write they guard share one
transaction. Nothing here commits.

For other rules (parking bonuses, check-ins) use ``grant`` for plain credits and
``grant_limited`` for "at most N per customer per day" credits.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from cloud_core.errors import InsufficientPoints, InvalidInput
from cloud_core.store.filters import Filters

COALITION = "mall"
"""The mall's coalition pocket."""

Reason = Literal[
    "visit",
    "game",
    "parking",
    "checkin",
    "expiry",
    "spend",
    "adjustment",
    "gift",  # a gift of the showcase bought with points (gifts.py); kind 'spend'
]


def iso(moment: datetime) -> str:
    """The one text form of a time in the database: UTC, fixed width, sortable as text
    (``2026-11-23T10:15:30.250000+00:00``)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class Change:
    """One journal row as callers see it (for inbox notices)."""

    customer: str
    pocket: str
    delta: int
    reason: Reason
    text: str
    ts: datetime


@dataclass(frozen=True)
class GrantResult:
    outcome: Literal["granted", "duplicate", "limit"]
    points: int = 0
    lot_id: int | None = None
    change: Change | None = None


@dataclass(frozen=True)
class SpendResult:
    outcome: Literal["spent", "duplicate"]
    points: int
    changes: tuple[Change, ...] = ()


@dataclass(frozen=True)
class Balance:
    pocket: str
    balance: int
    available: int
    next_expiry: datetime | None


def claim_key(conn: sqlite3.Connection, key: str, now: datetime, outcome: str) -> bool:
    """Record an idempotency key; False if it was already used (then write nothing)."""
    if not key:
        raise InvalidInput("an idempotency key is required")
    cur = conn.execute(
        "INSERT OR IGNORE INTO idempotency (key, ts, outcome) VALUES (?, ?, ?)",
        (key, iso(now), outcome),
    )
    return cur.rowcount == 1


def _journal(
    conn: sqlite3.Connection,
    *,
    now: datetime,
    customer: str,
    pocket: str,
    delta: int,
    kind: str,
    reason: Reason,
    lot_id: int,
    idem_key: str,
    text: str,
) -> Change:
    conn.execute(
        "INSERT INTO journal (ts, customer_id, pocket, delta, kind, reason, lot_id, idem_key, text)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (iso(now), customer, pocket, delta, kind, reason, lot_id, idem_key, text),
    )
    return Change(customer, pocket, delta, reason, text, now)


def grant(
    conn: sqlite3.Connection,
    *,
    customer: str,
    pocket: str,
    points: int,
    reason: Reason,
    idem_key: str,
    now: datetime,
    expires_at: datetime | None = None,
    text: str = "",
) -> GrantResult:
    """Credit ``points`` to a pocket as a new lot; ``duplicate`` if the key was used."""
    if points <= 0:
        raise InvalidInput(f"a grant must be positive, got {points}")
    if not claim_key(conn, idem_key, now, "grant"):
        return GrantResult("duplicate")
    cur = conn.execute(
        "INSERT INTO lots (customer_id, pocket, granted, remaining, expires_at, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (customer, pocket, points, points, iso(expires_at) if expires_at else None, iso(now)),
    )
    lot_id = int(cur.lastrowid or 0)
    change = _journal(
        conn,
        now=now,
        customer=customer,
        pocket=pocket,
        delta=points,
        kind="grant",
        reason=reason,
        lot_id=lot_id,
        idem_key=idem_key,
        text=text,
    )
    return GrantResult("granted", points, lot_id, change)


def grant_limited(
    conn: sqlite3.Connection,
    *,
    customer: str,
    pocket: str,
    points: int,
    reason: Reason,
    idem_key: str,
    now: datetime,
    rule: str,
    day: str,
    max_per_day: int = 1,
    expires_at: datetime | None = None,
    text: str = "",
) -> GrantResult:
    """``grant``, at most ``max_per_day`` times per customer, ``rule`` and ``day``.

    The count and the grant share the caller's transaction, so concurrent workers
    cannot both pass the check. A duplicate key does not use up the day's count.
    """
    row = conn.execute(
        "SELECT count FROM daily_grants WHERE customer_id = ? AND rule = ? AND day = ?",
        (customer, rule, day),
    ).fetchone()
    used = int(row[0]) if row else 0
    if used >= max_per_day:
        if conn.execute("SELECT 1 FROM idempotency WHERE key = ?", (idem_key,)).fetchone():
            return GrantResult("duplicate")
        return GrantResult("limit")
    result = grant(
        conn,
        customer=customer,
        pocket=pocket,
        points=points,
        reason=reason,
        idem_key=idem_key,
        now=now,
        expires_at=expires_at,
        text=text,
    )
    if result.outcome == "granted":
        conn.execute(
            "INSERT INTO daily_grants (customer_id, rule, day, count) VALUES (?, ?, ?, 1)"
            " ON CONFLICT (customer_id, rule, day) DO UPDATE SET count = count + 1",
            (customer, rule, day),
        )
    return result


def spend(
    conn: sqlite3.Connection,
    *,
    customer: str,
    pocket: str,
    points: int,
    idem_key: str,
    now: datetime,
    reason: Reason = "spend",
    text: str = "",
) -> SpendResult:
    """Draw ``points`` from the pocket's unexpired lots, earliest expiry first.

    Raises ``InsufficientPoints`` (and writes nothing) if they do not cover it.
    """
    if points <= 0:
        raise InvalidInput(f"a spend must be positive, got {points}")
    if conn.execute("SELECT 1 FROM idempotency WHERE key = ?", (idem_key,)).fetchone():
        return SpendResult("duplicate", 0)
    lots = conn.execute(
        "SELECT id, remaining FROM lots WHERE customer_id = ? AND pocket = ? AND remaining > 0"
        " AND (expires_at IS NULL OR expires_at > ?)"
        " ORDER BY expires_at IS NULL, expires_at, id",
        (customer, pocket, iso(now)),
    ).fetchall()
    available = sum(int(lot["remaining"]) for lot in lots)
    if available < points:
        raise InsufficientPoints(
            f"pocket {pocket!r} holds {available} spendable points, {points} asked"
        )
    claim_key(conn, idem_key, now, "spend")
    left = points
    changes = []
    for lot in lots:
        if left == 0:
            break
        take = min(left, int(lot["remaining"]))
        conn.execute("UPDATE lots SET remaining = remaining - ? WHERE id = ?", (take, lot["id"]))
        changes.append(
            _journal(
                conn,
                now=now,
                customer=customer,
                pocket=pocket,
                delta=-take,
                kind="spend",
                reason=reason,
                lot_id=int(lot["id"]),
                idem_key=idem_key,
                text=text,
            )
        )
        left -= take
    return SpendResult("spent", points, tuple(changes))


def expire_due(conn: sqlite3.Connection, now: datetime) -> list[Change]:
    """Zero every lot whose expiry has passed, one journal row each (the expiry job)."""
    due = conn.execute(
        "SELECT id, customer_id, pocket, remaining FROM lots"
        " WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ?",
        (iso(now),),
    ).fetchall()
    changes = []
    for lot in due:
        key = f"expire:{lot['id']}"
        if not claim_key(conn, key, now, "expire"):
            continue  # cannot happen while remaining > 0, kept as a guard
        conn.execute("UPDATE lots SET remaining = 0 WHERE id = ?", (lot["id"],))
        changes.append(
            _journal(
                conn,
                now=now,
                customer=lot["customer_id"],
                pocket=lot["pocket"],
                delta=-int(lot["remaining"]),
                kind="expire",
                reason="expiry",
                lot_id=int(lot["id"]),
                idem_key=key,
                text=f"{lot['remaining']} points expired",
            )
        )
    return changes


def balances(conn: sqlite3.Connection, customer: str, now: datetime) -> list[Balance]:
    """Per pocket: the journal balance, what is spendable now, and the next expiry."""
    rows = conn.execute(
        "SELECT pocket, SUM(remaining) AS balance,"
        " SUM(CASE WHEN expires_at IS NULL OR expires_at > :now THEN remaining ELSE 0 END)"
        "   AS available,"
        " MIN(CASE WHEN remaining > 0 AND expires_at > :now THEN expires_at END) AS next_expiry"
        " FROM lots WHERE customer_id = :customer GROUP BY pocket ORDER BY pocket",
        {"customer": customer, "now": iso(now)},
    ).fetchall()
    return [
        Balance(
            pocket=row["pocket"],
            balance=int(row["balance"]),
            available=int(row["available"]),
            next_expiry=from_iso(row["next_expiry"]) if row["next_expiry"] else None,
        )
        for row in rows
    ]


def history(
    conn: sqlite3.Connection,
    customer: str,
    pocket: str | None = None,
    limit: int = 100,
    *,
    offset: int = 0,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[sqlite3.Row]:
    """The customer's journal, newest first, optionally for one pocket and a time range
    (``since`` inclusive, ``until`` exclusive); one page of ``limit`` rows from ``offset``."""
    where = (
        Filters()
        .add("customer_id = ?", customer)
        .add("pocket = ?", pocket)
        .add("ts >= ?", iso(since) if since is not None else None)
        .add("ts < ?", iso(until) if until is not None else None)
    )
    columns = "id, ts, pocket, delta, kind, reason, text"
    sql = f"SELECT {columns} FROM journal{where.sql} ORDER BY id DESC LIMIT ? OFFSET ?"  # noqa: S608
    return conn.execute(sql, [*where.params, limit, offset]).fetchall()


def check_invariants(conn: sqlite3.Connection) -> list[str]:
    """Every broken ledger invariant, as text (an empty list means the ledger is sound)."""
    problems = []
    for row in conn.execute(
        "SELECT j.customer_id, j.pocket, SUM(j.delta) AS journal,"
        " (SELECT SUM(remaining) FROM lots l WHERE l.customer_id = j.customer_id"
        "  AND l.pocket = j.pocket) AS lots"
        " FROM journal j GROUP BY j.customer_id, j.pocket"
    ):
        if row["journal"] != row["lots"]:
            problems.append(
                f"{row['customer_id']}/{row['pocket']}: journal {row['journal']} != lots "
                f"{row['lots']}"
            )
        if row["journal"] < 0:
            problems.append(f"{row['customer_id']}/{row['pocket']}: negative balance")
    for row in conn.execute(
        "SELECT l.id, l.granted, l.remaining, SUM(j.delta) AS net,"
        " SUM(CASE WHEN j.kind = 'grant' THEN 1 ELSE 0 END) AS grants"
        " FROM lots l LEFT JOIN journal j ON j.lot_id = l.id GROUP BY l.id"
    ):
        if row["net"] != row["remaining"] or row["grants"] != 1:
            problems.append(f"lot {row['id']}: journal net {row['net']} != {row['remaining']}")
        if not 0 <= row["remaining"] <= row["granted"]:
            problems.append(f"lot {row['id']}: remaining {row['remaining']} out of range")
    return problems
