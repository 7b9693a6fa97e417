"""Purchases at a till: cashback by the store's rule, and refunds that reverse exactly.

``register`` records a receipt once per store (``UNIQUE (store, receipt)``) and credits the
business's cashback (``cashback_pct`` of the sum, rounded down; into its own pocket, or
into the coalition pocket funded by it — the seeds' "Magnet"). ``refund`` reverses
everything the receipt did: its committed redemptions go back into their lots (and their
settlement entries are negated), open holds on it are released, and its cashback is taken
back — from the cashback's own lot first, then from the same pocket; if the shopper has
already spent it, the refund is refused (nothing written). Runs in the caller's
transaction.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cloud_core import holds, ledger
from cloud_core.errors import Conflict, InsufficientPoints, UnknownReceipt
from cloud_core.holds import Till
from cloud_core.ledger import COALITION
from cloud_core.rules import redemption
from cloud_core.spending_config import SpendingSettings
from cloud_core.store import Conn, Row


@dataclass(frozen=True)
class Purchase:
    id: str
    customer: str
    store: str
    receipt: str
    amount_cents: int
    cashback_points: int
    cashback_pocket: str | None
    status: str
    ts: datetime
    seller: str


def _purchase(row: Row) -> Purchase:
    return Purchase(
        id=row["id"],
        customer=row["customer_id"],
        store=row["store"],
        receipt=row["receipt"],
        amount_cents=int(row["amount_cents"]),
        cashback_points=int(row["cashback_points"]),
        cashback_pocket=row["cashback_pocket"],
        status=row["status"],
        ts=ledger.from_iso(row["ts"]),
        seller=row["seller"],
    )


def register(
    conn: Conn,
    settings: SpendingSettings,
    till: Till,
    *,
    customer: str,
    receipt: str,
    amount_cents: int,
    now: datetime,
    store_name: str,
) -> tuple[Purchase, list[ledger.Change]]:
    """Record a purchase and credit its cashback (``Conflict`` if the receipt is known)."""
    if conn.execute(
        "SELECT 1 FROM purchases WHERE store = ? AND receipt = ?", (till.store, receipt)
    ).fetchone():
        raise Conflict(f"receipt {receipt!r} is already registered at {till.store}")
    rules = settings.rules(till.business)
    points = redemption.share(amount_cents, rules.cashback_pct or 0)
    purchase_id = "p" + secrets.token_hex(12)
    pocket = None
    lot_id = None
    changes = []
    if points > 0:
        coalition = rules.cashback_pocket == "coalition"
        pocket = COALITION if coalition else till.business
        result = ledger.grant(
            conn,
            customer=customer,
            pocket=pocket,
            points=points,
            reason="cashback",
            idem_key=f"cashback:{purchase_id}",
            now=now,
            expires_at=now + timedelta(days=rules.cashback_expiry_days or 365),
            text=f"+{points} points cashback at {store_name}",
            funder=till.business if coalition else None,
        )
        lot_id = result.lot_id
        if result.change is not None:
            changes.append(result.change)
    conn.execute(
        "INSERT INTO purchases (id, customer_id, business, store, till, seller, receipt,"
        " amount_cents, cashback_points, cashback_pocket, cashback_lot_id, status, ts)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'registered', ?)",
        (
            purchase_id,
            customer,
            till.business,
            till.store,
            till.till,
            till.seller,
            receipt,
            amount_cents,
            points,
            pocket,
            lot_id,
            ledger.iso(now),
        ),
    )
    row = conn.execute("SELECT * FROM purchases WHERE id = ?", (purchase_id,)).fetchone()
    return _purchase(row), changes


@dataclass(frozen=True)
class Refund:
    receipt: str
    purchase: Purchase | None
    points_returned: int  # redeemed points back to the shopper
    cashback_reversed: int  # cashback points taken back
    holds: tuple[str, ...]  # the holds refunded or released


def _reverse_cashback(conn: Conn, purchase_row: Row, now: datetime) -> list[ledger.Change]:
    points = int(purchase_row["cashback_points"])
    if points <= 0:
        return []
    customer, pocket = purchase_row["customer_id"], purchase_row["cashback_pocket"]
    key = f"reversal:{purchase_row['id']}"
    text = f"-{points} points: cashback of refunded receipt {purchase_row['receipt']}"
    changes = []
    lot = conn.execute(
        "SELECT remaining, expires_at FROM lots WHERE id = ?", (purchase_row["cashback_lot_id"],)
    ).fetchone()
    from_lot = min(points, int(lot["remaining"])) if lot is not None else 0
    if from_lot > 0:
        conn.execute(
            "UPDATE lots SET remaining = remaining - ? WHERE id = ?",
            (from_lot, purchase_row["cashback_lot_id"]),
        )
        conn.execute(
            "INSERT INTO journal (ts, customer_id, pocket, delta, kind, reason, lot_id, idem_key,"
            " text) VALUES (?, ?, ?, ?, 'spend', 'reversal', ?, ?, ?)",
            (
                ledger.iso(now),
                customer,
                pocket,
                -from_lot,
                purchase_row["cashback_lot_id"],
                key,
                text,
            ),
        )
        changes.append(ledger.Change(customer, pocket, -from_lot, "reversal", text, now))
    rest = points - from_lot
    if rest > 0:
        try:
            drawn = ledger.draw(
                conn,
                customer=customer,
                pocket=pocket,
                points=rest,
                idem_key=key,
                now=now,
                reason="reversal",
                text=text,
            )
        except InsufficientPoints:
            raise InsufficientPoints(
                f"the shopper has already spent {rest} of the {points} cashback points of "
                f"this receipt; refund the money less {rest} cents, or credit them first"
            ) from None
        changes += [d.change for d in drawn]
    return changes


def refund(
    conn: Conn, till: Till, *, receipt: str, now: datetime, tz: ZoneInfo
) -> tuple[Refund, list[ledger.Change]]:
    """Reverse a receipt's cashback and redemptions exactly (``UnknownReceipt`` if the store
    never saw it; ``Conflict`` if it was refunded already)."""
    purchase_row = conn.execute(
        "SELECT * FROM purchases WHERE store = ? AND receipt = ? AND business = ?",
        (till.store, receipt, till.business),
    ).fetchone()
    on_receipt = holds.on_receipt(conn, till.business, till.store, receipt)
    if purchase_row is None and not on_receipt:
        raise UnknownReceipt(f"no purchase or redemption with receipt {receipt!r} at {till.store}")
    live = [h for h in on_receipt if h.status in ("held", "committed")]
    if (purchase_row is None or purchase_row["status"] == "refunded") and not live:
        raise Conflict(f"receipt {receipt!r} is already refunded")
    changes: list[ledger.Change] = []
    returned = 0
    for hold in live:
        if hold.status == "committed":
            changes += holds.refund(conn, hold, now, tz, till.seller)
        elif hold.expires_at > now:
            changes += holds.release(conn, till, hold.id, now)[1]
        else:  # due: the expiry job's work, done now
            changes += holds.expire_due(conn, now)
            continue
        returned += hold.points
    reversed_points = 0
    purchase = None
    if purchase_row is not None and purchase_row["status"] == "registered":
        changes += _reverse_cashback(conn, purchase_row, now)
        reversed_points = int(purchase_row["cashback_points"])
        conn.execute(
            "UPDATE purchases SET status = 'refunded', refunded_at = ?, refunded_by = ?"
            " WHERE id = ?",
            (ledger.iso(now), till.seller, purchase_row["id"]),
        )
        row = conn.execute("SELECT * FROM purchases WHERE id = ?", (purchase_row["id"],)).fetchone()
        purchase = _purchase(row)
    return (
        Refund(receipt, purchase, returned, reversed_points, tuple(h.id for h in live)),
        changes,
    )


def erase_spending(conn: Conn, customer: str) -> dict[str, int]:
    """Erase a customer's holds, purchases, expiry warnings and the stored answers of till
    writes that name them (before their lots go: these rows point at them). Settlement
    entries stay: they name partners, a hold id and a receipt, never the shopper, and what
    one partner owes another does not go away with the shopper."""
    removed = {
        "hold_parts": conn.execute(
            "DELETE FROM hold_parts WHERE hold_id IN (SELECT id FROM holds WHERE customer_id = ?)",
            (customer,),
        ).rowcount,
        "gift_certificates": conn.execute(
            "UPDATE gift_certificates SET customer_id = NULL, lot_id = NULL WHERE customer_id = ?",
            (customer,),
        ).rowcount,
        "bonus_certificates": conn.execute(
            "UPDATE bonus_certificates SET customer_id = NULL, lot_id = NULL WHERE customer_id = ?",
            (customer,),
        ).rowcount,
        "expiry_warnings": conn.execute(
            "DELETE FROM expiry_warnings WHERE lot_id IN"
            " (SELECT id FROM lots WHERE customer_id = ?)",
            (customer,),
        ).rowcount,
    }
    for table in ("holds", "purchases"):
        removed[table] = conn.execute(
            f"DELETE FROM {table} WHERE customer_id = ?",  # noqa: S608 - fixed names
            (customer,),
        ).rowcount
    removed["api_requests"] = conn.execute(
        "DELETE FROM api_requests WHERE response LIKE ?", (f"%{customer}%",)
    ).rowcount
    return removed
