"""The loyalty ledger: pockets, lots with expiry, an append-only journal, idempotency keys
(long: the ledger's write primitives and its invariant check belong together).

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
``grant_limited`` for "at most N per customer per day" credits. The till's two-phase
redemptions (``holds.py``) use ``draw`` and ``put_back``: a ``spend`` row moves points out
of a lot (negative) or back into the same lot (positive, reason ``release``/``refund``), so
the invariants above hold through holds, releases and refunds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from cloud_core.errors import InsufficientPoints, InvalidInput
from cloud_core.store import Conn, Row
from cloud_core.store.filters import Filters

COALITION = "mall"
"""The mall's coalition pocket."""
GIFT = "gift"
"""Prepaid gift certificates' money (cents), valid at the businesses each lot names."""

Reason = Literal[
    "visit",
    "game",
    "parking",
    "checkin",
    "expiry",
    "spend",
    "adjustment",
    "cashback",  # a purchase's points back (purchases.py)
    "redemption",  # points reserved at a till (holds.py); kind 'spend'
    "release",  # a released or expired hold's points, back into their lots; kind 'spend', +
    "refund",  # a refunded purchase's redeemed points, back into their lots; kind 'spend', +
    "reversal",  # a refunded purchase's cashback, taken back; kind 'spend'
    "certificate",  # a paper bonus certificate scanned into the wallet (certificates.py)
    "gift",  # a prepaid gift certificate activated into the `gift` pocket (gift_cards.py)
    "goods",  # items of a goods account sold (+) or taken (-) at a till (goods.py)
    "referral",  # a referred new shopper's first visit (rules/referral.py)
    "lottery",  # a lottery prize (lotteries.py)
    "showcase",  # a gift of the showcase bought with points (showcase.py); kind 'spend'
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


def claim_key(conn: Conn, key: str, now: datetime, outcome: str) -> bool:
    """Record an idempotency key; False if it was already used (then write nothing)."""
    if not key:
        raise InvalidInput("an idempotency key is required")
    cur = conn.execute(
        "INSERT INTO idempotency (key, ts, outcome) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (key, iso(now), outcome),
    )
    return cur.rowcount == 1


def _journal(
    conn: Conn,
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
    conn: Conn,
    *,
    customer: str,
    pocket: str,
    points: int,
    reason: Reason,
    idem_key: str,
    now: datetime,
    expires_at: datetime | None = None,
    text: str = "",
    funder: str | None = None,
    valid_at: tuple[str, ...] = (),
) -> GrantResult:
    """Credit ``points`` to a pocket as a new lot; ``duplicate`` if the key was used.
    ``funder``: the business that pays for these points when they are spent at another
    (None: the mall for the coalition pocket, the pocket's business otherwise)."""
    if points <= 0:
        raise InvalidInput(f"a grant must be positive, got {points}")
    if not claim_key(conn, idem_key, now, "grant"):
        return GrantResult("duplicate")
    row = conn.execute(
        "INSERT INTO lots (customer_id, pocket, granted, remaining, expires_at, created_at,"
        " funder, valid_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            customer,
            pocket,
            points,
            points,
            iso(expires_at) if expires_at else None,
            iso(now),
            funder,
            "," + ",".join(valid_at) + "," if valid_at else None,
        ),
    ).fetchone()
    lot_id = int(row["id"])
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
    conn: Conn,
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
            " ON CONFLICT (customer_id, rule, day) DO UPDATE SET count = daily_grants.count + 1",
            (customer, rule, day),
        )
    return result


def spend(
    conn: Conn,
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
    drawn = draw(
        conn,
        customer=customer,
        pocket=pocket,
        points=points,
        idem_key=idem_key,
        now=now,
        reason=reason,
        text=text,
    )
    claim_key(conn, idem_key, now, "spend")
    changes = [d.change for d in drawn]
    return SpendResult("spent", points, tuple(changes))


@dataclass(frozen=True)
class Drawn:
    """Points ``draw`` took from one lot, and who funds them."""

    lot_id: int
    points: int
    funder: str
    change: Change


def draw(
    conn: Conn,
    *,
    customer: str,
    pocket: str,
    points: int,
    idem_key: str,
    now: datetime,
    reason: Reason,
    text: str = "",
    at: str | None = None,
) -> list[Drawn]:
    """Take ``points`` from the pocket's unexpired lots, earliest expiry first (no key is
    claimed: the caller's own record makes it idempotent); ``at``: only lots valid at that
    business (gift money). ``InsufficientPoints`` (nothing written) if they do not cover it."""
    if points <= 0:
        raise InvalidInput(f"a spend must be positive, got {points}")
    lots = conn.execute(
        "SELECT id, remaining, funder FROM lots WHERE customer_id = ? AND pocket = ?"
        " AND remaining > 0 AND (expires_at IS NULL OR expires_at > ?)"
        " AND (valid_at IS NULL OR CAST(? AS TEXT) IS NULL OR valid_at LIKE ?)"
        " ORDER BY expires_at IS NULL, expires_at, id",
        (customer, pocket, iso(now), at, f"%,{at},%"),
    ).fetchall()
    available = sum(int(lot["remaining"]) for lot in lots)
    if available < points:
        raise InsufficientPoints(
            f"pocket {pocket!r} holds {available} spendable points, {points} asked"
        )
    left = points
    drawn = []
    for lot in lots:
        if left == 0:
            break
        take = min(left, int(lot["remaining"]))
        conn.execute("UPDATE lots SET remaining = remaining - ? WHERE id = ?", (take, lot["id"]))
        change = _journal(
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
        funder = lot["funder"] or (COALITION if pocket in (COALITION, GIFT) else pocket)
        drawn.append(Drawn(int(lot["id"]), take, funder, change))
        left -= take
    return drawn


def put_back(
    conn: Conn,
    *,
    lot_id: int,
    points: int,
    idem_key: str,
    now: datetime,
    reason: Reason,
    text: str = "",
) -> Change:
    """Return ``points`` into the lot they were drawn from (a released hold, a refund); a
    lot that expired meanwhile keeps them until the expiry job zeroes it again."""
    row = conn.execute(
        "UPDATE lots SET remaining = remaining + ? WHERE id = ? RETURNING customer_id, pocket",
        (points, lot_id),
    ).fetchone()
    if row is None:
        raise InvalidInput(f"no lot {lot_id}")
    return _journal(
        conn,
        now=now,
        customer=row["customer_id"],
        pocket=row["pocket"],
        delta=points,
        kind="spend",
        reason=reason,
        lot_id=lot_id,
        idem_key=idem_key,
        text=text,
    )


def expire_due(conn: Conn, now: datetime) -> list[Change]:
    """Zero every lot whose expiry has passed, one journal row each (the expiry job)."""
    due = conn.execute(
        "SELECT id, customer_id, pocket, remaining FROM lots"
        " WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ?",
        (iso(now),),
    ).fetchall()
    changes = []
    for lot in due:
        # a lot can expire twice: points of a hold released after its expiry come back
        key = f"expire:{lot['id']}:{iso(now)}"
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


def balances(conn: Conn, customer: str, now: datetime) -> list[Balance]:
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
    conn: Conn,
    customer: str,
    pocket: str | None = None,
    limit: int = 100,
    *,
    offset: int = 0,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Row]:
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


def check_invariants(conn: Conn) -> list[str]:
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
