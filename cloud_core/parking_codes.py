"""Free-parking coupon codes: signed by partners, used once, added to an open session.

A partner (cinema, restaurant) hands out codes signed with the mall's validation secret
(``make_validation_code``: ``P<minutes>-<business>-<serial>-<signature>``);
``validate_free_parking`` checks the signature, uses each code once
(``parking_validations``), and adds its minutes to the driver's open session, which the
parking rules then close as free when the stay fits (``rules/parking.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cloud_core import ledger
from cloud_core.parking_config import ParkingSettings
from cloud_core.store import Conn

_CODE = re.compile(r"^P(\d{1,4})-([a-z0-9][a-z0-9_-]{0,63})-([A-Za-z0-9]{1,32})-([0-9a-f]{12})$")


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
    conn: Conn,
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


def validate_for_purchase(
    conn: Conn,
    parking: ParkingSettings,
    *,
    business: str,
    customer: str,
    amount_cents: int,
    purchase_id: str,
    now: datetime,
) -> Validation | None:
    """A partner's purchase (``parking.purchase_validations``) validates the shopper's open
    session: the core makes the partner's own free-parking code for it, with the purchase as
    its serial, and applies it as a code handed over at the till would be — once per
    purchase (``parking_validations``). ``None`` when no rule covers the purchase."""
    rule = next(
        (
            r
            for r in parking.purchase_validations
            if r.business == business and amount_cents >= r.min_amount_cents
        ),
        None,
    )
    if rule is None:
        return None
    key = parking.validation_key()
    code = make_validation_code(key, business, purchase_id, rule.minutes)
    return validate_free_parking(conn, key, code=code, now=now, customer=customer)
