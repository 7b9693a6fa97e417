"""Prepaid gift certificates the mall sells: money (cents), valid in selected shops.

The mall office sells a certificate for an amount, valid at the businesses it names (or
everywhere): a random code ``GC-XXXX-XXXX-XXXX-XXXX``. The shopper activates it into their
wallet once: a lot of that many cents in the ``gift`` pocket, funded by the mall and valid
only at those businesses (``lots.valid_at``). A till takes it like points but without the
coalition cap (it is money); each use is one settlement entry, the mall owing the shop that
accepted it (``holds.commit``), and a refund negates it.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cloud_core import ledger
from cloud_core.errors import Conflict, NotFound
from cloud_core.ledger import COALITION, GIFT
from cloud_core.store import Conn, Row

_CODE = re.compile(r"^GC(-[0-9A-F]{4}){4}$")


def normalise_code(text: str) -> str | None:
    raw = re.sub(r"[\s-]", "", text.strip().upper())
    if not raw.startswith("GC") or len(raw) != 18:
        return None
    code = "GC-" + "-".join(raw[2 + i : 6 + i] for i in range(0, 16, 4))
    return code if _CODE.match(code) else None


@dataclass(frozen=True)
class GiftCertificate:
    code: str
    amount_cents: int
    businesses: tuple[str, ...]  # empty: valid everywhere
    sold_at: datetime
    expires_at: datetime
    activated_at: datetime | None


def _gift(row: Row) -> GiftCertificate:
    return GiftCertificate(
        code=row["code"],
        amount_cents=int(row["amount_cents"]),
        businesses=tuple(json.loads(row["businesses"] or "[]")),
        sold_at=ledger.from_iso(row["sold_at"]),
        expires_at=ledger.from_iso(row["expires_at"]),
        activated_at=ledger.from_iso(row["activated_at"]) if row["activated_at"] else None,
    )


def sell(
    conn: Conn,
    *,
    amount_cents: int,
    businesses: tuple[str, ...],
    valid_days: int,
    sold_by: str,
    now: datetime,
) -> GiftCertificate:
    code = normalise_code("GC" + secrets.token_hex(8))
    assert code is not None
    conn.execute(
        "INSERT INTO gift_certificates (code, amount_cents, businesses, sold_by, sold_at,"
        " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        (
            code,
            amount_cents,
            json.dumps(sorted(set(businesses))),
            sold_by,
            ledger.iso(now),
            ledger.iso(now + timedelta(days=valid_days)),
        ),
    )
    row = conn.execute("SELECT * FROM gift_certificates WHERE code = ?", (code,)).fetchone()
    return _gift(row)


def activate(
    conn: Conn, *, code: str, customer: str, now: datetime
) -> tuple[GiftCertificate, ledger.Change]:
    """Put a certificate's money into the customer's ``gift`` pocket, once."""
    normal = normalise_code(code)
    row = (
        conn.execute("SELECT * FROM gift_certificates WHERE code = ?", (normal,)).fetchone()
        if normal
        else None
    )
    if row is None:
        raise NotFound("no such gift certificate")
    gift = _gift(row)
    if gift.activated_at is not None:
        raise Conflict("this gift certificate has already been activated")
    if gift.expires_at <= now:
        raise Conflict(f"this gift certificate expired on {gift.expires_at.date().isoformat()}")
    where = ", ".join(gift.businesses) or "every shop"
    result = ledger.grant(
        conn,
        customer=customer,
        pocket=GIFT,
        points=gift.amount_cents,
        reason="gift",
        idem_key=f"gift:{gift.code}",
        now=now,
        expires_at=gift.expires_at,
        text=f"+{gift.amount_cents / 100:.2f} gift certificate, valid at {where}"[:300],
        funder=COALITION,
        valid_at=gift.businesses,
    )
    assert result.change is not None
    conn.execute(
        "UPDATE gift_certificates SET customer_id = ?, lot_id = ?, activated_at = ? WHERE code = ?",
        (customer, result.lot_id, ledger.iso(now), gift.code),
    )
    row = conn.execute("SELECT * FROM gift_certificates WHERE code = ?", (gift.code,)).fetchone()
    return _gift(row), result.change
