"""Two-phase redemptions at a till: reserve → commit or release; unclosed holds expire.

``reserve`` draws the points from their lots at once (earliest expiry first, journalled as
``redemption``), so they cannot be spent twice while the cashier finishes the sale, and
records which lots gave how much (``hold_parts``). ``commit`` makes the spend final and
writes the settlement entries (``settlements.py``); ``release`` — or ``expire_due`` once
the hold is older than ``spending.hold_ttl_s`` — puts the points back into the very lots
they came from. Each function runs inside the caller's write transaction (which
serialises every check and write), returns the ledger changes for the inbox and commits
nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cloud_core import ledger, settlements
from cloud_core.errors import HoldClosed, HoldExpired, NotFound
from cloud_core.ledger import COALITION, GIFT
from cloud_core.rules import redemption
from cloud_core.spending_config import SpendingSettings
from cloud_core.store import Conn, Row


@dataclass(frozen=True)
class Till:
    """Who acts at a till: the tenant's business, the store, the till and the seller."""

    business: str
    store: str
    till: str
    seller: str


@dataclass(frozen=True)
class Hold:
    id: str
    customer: str
    business: str
    store: str
    receipt: str
    status: str
    points: int
    store_points: int
    coalition_points: int
    gift_points: int
    created_at: datetime
    expires_at: datetime
    seller: str
    closed_by: str | None


def _hold(row: Row) -> Hold:
    return Hold(
        id=row["id"],
        customer=row["customer_id"],
        business=row["business"],
        store=row["store"],
        receipt=row["receipt"],
        status=row["status"],
        points=int(row["points"]),
        store_points=int(row["points"]) - int(row["coalition_points"]) - int(row["gift_points"]),
        coalition_points=int(row["coalition_points"]),
        gift_points=int(row["gift_points"]),
        created_at=ledger.from_iso(row["created_at"]),
        expires_at=ledger.from_iso(row["expires_at"]),
        seller=row["seller"],
        closed_by=row["closed_by"],
    )


def get(conn: Conn, hold_id: str, business: str) -> Hold:
    """A hold of this business (``NotFound`` for another's: ids are not probed)."""
    row = conn.execute(
        "SELECT * FROM holds WHERE id = ? AND business = ?", (hold_id, business)
    ).fetchone()
    if row is None:
        raise NotFound(f"no hold {hold_id!r} at this business")
    return _hold(row)


def receipt_order(conn: Conn, store: str, receipt: str) -> int:
    row = conn.execute(
        "SELECT order_cents FROM receipts WHERE store = ? AND receipt = ?", (store, receipt)
    ).fetchone()
    return int(row["order_cents"]) if row else 0


def receipt_usage(conn: Conn, store: str, receipt: str) -> tuple[int, int]:
    """Points (all, coalition) held or spent on a receipt."""
    row = conn.execute(
        "SELECT COALESCE(SUM(points), 0) AS points,"
        " COALESCE(SUM(coalition_points), 0) AS coalition FROM holds"
        " WHERE store = ? AND receipt = ? AND status IN ('held', 'committed')",
        (store, receipt),
    ).fetchone()
    return int(row["points"]), int(row["coalition"])


def available(conn: Conn, customer: str, pocket: str, now: datetime, at: str | None = None) -> int:
    """Spendable now (``at``: only lots valid at that business, for gift money)."""
    row = conn.execute(
        "SELECT COALESCE(SUM(remaining), 0) AS n FROM lots WHERE customer_id = ?"
        " AND pocket = ? AND remaining > 0 AND (expires_at IS NULL OR expires_at > ?)"
        " AND (valid_at IS NULL OR CAST(? AS TEXT) IS NULL OR valid_at LIKE ?)",
        (customer, pocket, ledger.iso(now), at, f"%,{at},%"),
    ).fetchone()
    return int(row["n"])


def quote(
    conn: Conn,
    settings: SpendingSettings,
    till: Till,
    *,
    customer: str,
    receipt: str,
    order_cents: int,
    now: datetime,
) -> redemption.Quote:
    """What the shopper may pay with points on this receipt now (a read: writes nothing).
    The receipt's total is the largest order sum given for it."""
    total = max(order_cents, receipt_order(conn, till.store, receipt))
    used, used_coalition = receipt_usage(conn, till.store, receipt)
    return redemption.quote(
        order_cents=total,
        cap_pct=settings.rules(till.business).coalition_cap_pct or 0,
        store_available=available(conn, customer, till.business, now),
        coalition_available=available(conn, customer, COALITION, now),
        used_points=used,
        used_coalition=used_coalition,
        gift_available=available(conn, customer, GIFT, now, at=till.business),
    )


def reserve(
    conn: Conn,
    settings: SpendingSettings,
    till: Till,
    *,
    customer: str,
    receipt: str,
    order_cents: int,
    store_points: int,
    coalition_points: int,
    now: datetime,
    gift_cents: int = 0,
) -> tuple[Hold, list[ledger.Change]]:
    """Hold points (and gift money) for a receipt (coalition points capped; never more than
    the balance or the order)."""
    q = quote(
        conn, settings, till, customer=customer, receipt=receipt, order_cents=order_cents, now=now
    )
    redemption.check_request(
        q, store_points=store_points, coalition_points=coalition_points, gift_cents=gift_cents
    )
    conn.execute(
        "INSERT INTO receipts (store, receipt, business, order_cents) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (store, receipt) DO UPDATE SET order_cents = excluded.order_cents",
        (till.store, receipt, till.business, q.order_cents),
    )
    hold_id = "h" + secrets.token_hex(12)
    expires = now + timedelta(seconds=settings.hold_ttl_s)
    points = store_points + coalition_points + gift_cents
    conn.execute(
        "INSERT INTO holds (id, customer_id, business, store, till, seller, receipt, status,"
        " points, coalition_points, gift_points, created_at, expires_at, expires_epoch)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'held', ?, ?, ?, ?, ?, ?)",
        (
            hold_id,
            customer,
            till.business,
            till.store,
            till.till,
            till.seller,
            receipt,
            points,
            coalition_points,
            gift_cents,
            ledger.iso(now),
            ledger.iso(expires),
            expires.timestamp(),
        ),
    )
    changes: list[ledger.Change] = []
    wants = ((till.business, store_points), (COALITION, coalition_points), (GIFT, gift_cents))
    for pocket, wanted in wants:
        if wanted <= 0:
            continue
        drawn = ledger.draw(
            conn,
            customer=customer,
            pocket=pocket,
            points=wanted,
            idem_key=f"hold:{hold_id}",
            now=now,
            reason="redemption",
            text=f"-{wanted} {'cents' if pocket == GIFT else 'points'} held at {till.store} "
            f"(receipt {receipt})",
            at=till.business if pocket == GIFT else None,
        )
        for d in drawn:
            conn.execute(
                "INSERT INTO hold_parts (hold_id, lot_id, pocket, funder, points)"
                " VALUES (?, ?, ?, ?, ?)",
                (hold_id, d.lot_id, pocket, d.funder, d.points),
            )
            changes.append(d.change)
    return get(conn, hold_id, till.business), changes


def _parts(conn: Conn, hold_id: str) -> list[Row]:
    return conn.execute(
        "SELECT lot_id, pocket, funder, points FROM hold_parts WHERE hold_id = ? ORDER BY lot_id",
        (hold_id,),
    ).fetchall()


def _put_back(
    conn: Conn, hold: Hold, now: datetime, reason: ledger.Reason, text: str
) -> list[ledger.Change]:
    return [
        ledger.put_back(
            conn,
            lot_id=int(part["lot_id"]),
            points=int(part["points"]),
            idem_key=f"{reason}:{hold.id}",
            now=now,
            reason=reason,
            text=text,
        )
        for part in _parts(conn, hold.id)
    ]


def _close(conn: Conn, hold: Hold, status: str, now: datetime, by: str) -> Hold:
    conn.execute(
        "UPDATE holds SET status = ?, closed_at = ?, closed_by = ? WHERE id = ?",
        (status, ledger.iso(now), by, hold.id),
    )
    return get(conn, hold.id, hold.business)


def _open(hold: Hold, now: datetime) -> None:
    if hold.status == "held" and hold.expires_at <= now:
        raise HoldExpired(
            f"hold {hold.id} expired at {hold.expires_at.isoformat()}; its points go back to "
            "the shopper: reserve again"
        )
    if hold.status == "expired":
        raise HoldExpired(f"hold {hold.id} expired; its points went back to the shopper")
    if hold.status != "held":
        raise HoldClosed(f"hold {hold.id} is already {hold.status}")


def commit(
    conn: Conn,
    settings: SpendingSettings,
    tz: ZoneInfo,
    till: Till,
    *,
    hold_id: str,
    now: datetime,
) -> Hold:
    """Make a hold's spend final and write who owes whom for its coalition points."""
    hold = get(conn, hold_id, till.business)
    _open(hold, now)
    for part in _parts(conn, hold.id):
        funder = str(part["funder"])
        if part["pocket"] not in (COALITION, GIFT) or funder == hold.business:
            continue
        amount = int(part["points"])
        pct = 0.0 if funder == COALITION else settings.rules(funder).commission_pct or 0.0
        settlements.record(
            conn,
            now=now,
            tz=tz,
            payer=funder,
            payee=hold.business,
            amount_cents=amount,
            commission_cents=redemption.commission(amount, pct),
            kind="redemption",
            hold_id=hold.id,
            store=hold.store,
            receipt=hold.receipt,
        )
    return _close(conn, hold, "committed", now, till.seller)


def release(
    conn: Conn, till: Till, hold_id: str, now: datetime
) -> tuple[Hold, list[ledger.Change]]:
    """Give a hold's points back (the sale did not happen)."""
    hold = get(conn, hold_id, till.business)
    _open(hold, now)
    changes = _put_back(conn, hold, now, "release", f"+{hold.points} points released")
    return _close(conn, hold, "released", now, till.seller), changes


def refund(conn: Conn, hold: Hold, now: datetime, tz: ZoneInfo, by: str) -> list[ledger.Change]:
    """Reverse a committed hold exactly: its points back into their lots, its settlement
    entries negated."""
    changes = _put_back(
        conn, hold, now, "refund", f"+{hold.points} points back (receipt {hold.receipt} refunded)"
    )
    settlements.reverse_hold(conn, hold_id=hold.id, now=now, tz=tz)
    _close(conn, hold, "refunded", now, by)
    return changes


def on_receipt(conn: Conn, business: str, store: str, receipt: str) -> list[Hold]:
    rows = conn.execute(
        "SELECT * FROM holds WHERE business = ? AND store = ? AND receipt = ? ORDER BY created_at",
        (business, store, receipt),
    ).fetchall()
    return [_hold(r) for r in rows]


def any_due(conn: Conn, now: datetime) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM holds WHERE status = 'held' AND expires_epoch <= ? LIMIT 1",
            (now.timestamp(),),
        ).fetchone()
        is not None
    )


def expire_due(conn: Conn, now: datetime) -> list[ledger.Change]:
    """Every hold past its time: its points back into their lots, status ``expired``."""
    rows = conn.execute(
        "SELECT * FROM holds WHERE status = 'held' AND expires_epoch <= ? ORDER BY expires_epoch",
        (now.timestamp(),),
    ).fetchall()
    changes: list[ledger.Change] = []
    for row in rows:
        hold = _hold(row)
        changes += _put_back(
            conn, hold, now, "release", f"+{hold.points} points back (an unfinished sale expired)"
        )
        _close(conn, hold, "expired", now, "expiry")
    return changes
