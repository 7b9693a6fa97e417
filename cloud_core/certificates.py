"""Paper bonus certificates (the seeds' "бумажный сертификат"): a seller issues one for a
number of points at the till and hands it over printed (a code and its QR); the shopper scans
it into their wallet once. Each certificate remembers the seller, till and store that issued
it, so a business sees per seller how many were issued and how many were scanned.

The code is random (64 bits, ``BC-XXXX-XXXX-XXXX-XXXX``): it cannot be guessed, and it is
only valid because the core keeps it. Its points go where the business's cashback goes
(its own pocket, or the coalition pocket funded by it) and expire like cashback does; an
unscanned certificate expires after ``certificate_days``.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cloud_core import ledger
from cloud_core.errors import Conflict, NotFound
from cloud_core.holds import Till
from cloud_core.ledger import COALITION
from cloud_core.spending_config import SpendingSettings
from cloud_core.store import Conn, Row

CERTIFICATE_DAYS = 90
_CODE = re.compile(r"^BC(-[0-9A-F]{4}){4}$")


def normalise_code(text: str) -> str | None:
    """The code as stored (upper case, with hyphens), or None if it cannot be one."""
    raw = re.sub(r"[\s-]", "", text.strip().upper())
    if not raw.startswith("BC") or len(raw) != 18:
        return None
    code = "BC-" + "-".join(raw[2 + i : 6 + i] for i in range(0, 16, 4))
    return code if _CODE.match(code) else None


@dataclass(frozen=True)
class Certificate:
    code: str
    business: str
    store: str
    seller: str
    points: int
    pocket: str
    issued_at: datetime
    expires_at: datetime
    customer: str | None
    redeemed_at: datetime | None


def _certificate(row: Row) -> Certificate:
    return Certificate(
        code=row["code"],
        business=row["business"],
        store=row["store"],
        seller=row["seller"],
        points=int(row["points"]),
        pocket=row["pocket"],
        issued_at=ledger.from_iso(row["issued_at"]),
        expires_at=ledger.from_iso(row["expires_at"]),
        customer=row["customer_id"],
        redeemed_at=ledger.from_iso(row["redeemed_at"]) if row["redeemed_at"] else None,
    )


def issue(
    conn: Conn, settings: SpendingSettings, till: Till, *, points: int, now: datetime
) -> Certificate:
    """A new certificate for ``points``, issued by the till's seller."""
    rules = settings.rules(till.business)
    pocket = COALITION if rules.cashback_pocket == "coalition" else till.business
    code = normalise_code("BC" + secrets.token_hex(8))
    assert code is not None
    conn.execute(
        "INSERT INTO bonus_certificates (code, business, store, till, seller, points, pocket,"
        " issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            code,
            till.business,
            till.store,
            till.till,
            till.seller,
            points,
            pocket,
            ledger.iso(now),
            ledger.iso(now + timedelta(days=CERTIFICATE_DAYS)),
        ),
    )
    row = conn.execute("SELECT * FROM bonus_certificates WHERE code = ?", (code,)).fetchone()
    return _certificate(row)


def redeem(
    conn: Conn,
    settings: SpendingSettings,
    *,
    code: str,
    customer: str,
    now: datetime,
) -> tuple[Certificate, ledger.Change]:
    """Credit a certificate's points to the customer who scanned it, once."""
    normal = normalise_code(code)
    row = (
        conn.execute("SELECT * FROM bonus_certificates WHERE code = ?", (normal,)).fetchone()
        if normal
        else None
    )
    if row is None:
        raise NotFound("no such bonus certificate")
    cert = _certificate(row)
    if cert.redeemed_at is not None:
        raise Conflict("this certificate has already been scanned")
    if cert.expires_at <= now:
        raise Conflict(f"this certificate expired on {cert.expires_at.date().isoformat()}")
    rules = settings.rules(cert.business)
    result = ledger.grant(
        conn,
        customer=customer,
        pocket=cert.pocket,
        points=cert.points,
        reason="certificate",
        idem_key=f"certificate:{cert.code}",
        now=now,
        expires_at=now + timedelta(days=rules.cashback_expiry_days or 365),
        text=f"+{cert.points} points: bonus certificate from {cert.store}",
        funder=cert.business if cert.pocket == COALITION else None,
    )
    assert result.change is not None
    conn.execute(
        "UPDATE bonus_certificates SET customer_id = ?, lot_id = ?, redeemed_at = ? WHERE code = ?",
        (customer, result.lot_id, ledger.iso(now), cert.code),
    )
    row = conn.execute("SELECT * FROM bonus_certificates WHERE code = ?", (cert.code,)).fetchone()
    return _certificate(row), result.change


@dataclass(frozen=True)
class SellerTally:
    seller: str
    store: str
    issued: int
    issued_points: int
    scanned: int
    scanned_points: int


def tally(conn: Conn, business: str) -> list[SellerTally]:
    """Per seller and store of a business: certificates issued and scanned, with points."""
    rows = conn.execute(
        "SELECT seller, store, COUNT(*) AS issued, SUM(points) AS issued_points,"
        " SUM(CASE WHEN redeemed_at IS NOT NULL THEN 1 ELSE 0 END) AS scanned,"
        " SUM(CASE WHEN redeemed_at IS NOT NULL THEN points ELSE 0 END) AS scanned_points"
        " FROM bonus_certificates WHERE business = ? GROUP BY seller, store"
        " ORDER BY seller, store",
        (business,),
    ).fetchall()
    return [
        SellerTally(
            r["seller"],
            r["store"],
            int(r["issued"]),
            int(r["issued_points"]),
            int(r["scanned"]),
            int(r["scanned_points"]),
        )
        for r in rows
    ]
