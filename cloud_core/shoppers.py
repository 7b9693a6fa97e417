"""The shopper's own access to their wallet: sign-in by a one-time code, a token per
device, consent to personal offers, and what the wallet shows (pockets with their expiry
dates, the inbox, the offers).

Sign-in: ``start_signin`` makes a six-digit code for a registered customer, keeps only a
salted SHA-256 of it with an expiry and an attempt counter, and the caller hands the code
to a ``CodeChannel`` (``shopper_channels.py``: the development ``LogChannel`` writes it to the
log; an SMS gateway plugs in behind the same seam, docs/core.md). ``check_code`` voids
the code after ``attempts`` wrong guesses, and on success deletes it and the caller makes
a device token: random, shown once, stored as its SHA-256 only, revocable and listed.

Every function takes a connection inside the caller's transaction; nothing here commits.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from cloud_core import offers
from cloud_core.errors import CoreError, NotFound
from cloud_core.ledger import from_iso, iso
from cloud_core.store import Conn
from cloud_core.wallet_config import WalletSettings

log = logging.getLogger(__name__)

CODE_DIGITS = 6
TOKEN_PREFIX = "mw_"  # noqa: S105 - marks a device token, is none


class SigninFailed(CoreError):
    """A sign-in code that is unknown, expired, used up or wrong (the API answers 401)."""


# --- codes and devices -----------------------------------------------------------------


def _digest(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Challenge:
    id: str
    expires_at: datetime
    code: str | None  # None: nobody to send it to (an unknown phone)


def start_signin(
    conn: Conn, customer: str | None, now: datetime, settings: WalletSettings
) -> Challenge:
    """A new code for the customer (older codes of theirs are dropped). For an unknown phone
    (``customer`` None) a challenge that cannot succeed, so the answer tells nobody whether
    the phone is registered."""
    expires = now + timedelta(seconds=settings.code_ttl_s)
    challenge = secrets.token_urlsafe(18)
    if customer is None:
        return Challenge(challenge, expires, None)
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    salt = secrets.token_hex(16)
    conn.execute("DELETE FROM signin_codes WHERE customer_id = ?", (customer,))
    conn.execute(
        "INSERT INTO signin_codes (id, customer_id, salt, code_sha256, attempts, created_at,"
        " expires_at) VALUES (?, ?, ?, ?, 0, ?, ?)",
        (challenge, customer, salt, _digest(salt, code), iso(now), iso(expires)),
    )
    return Challenge(challenge, expires, code)


def check_code(
    conn: Conn, challenge: str, code: str, now: datetime, settings: WalletSettings
) -> str:
    """The customer whose code this is; ``SigninFailed`` otherwise (a wrong guess counts,
    the last allowed one voids the code). A right code is deleted: it works once."""
    row = conn.execute(
        "SELECT customer_id, salt, code_sha256, attempts, expires_at FROM signin_codes"
        " WHERE id = ?",
        (challenge,),
    ).fetchone()
    if row is None:
        raise SigninFailed("unknown or used sign-in code; ask for a new one")
    if from_iso(row["expires_at"]) <= now:
        conn.execute("DELETE FROM signin_codes WHERE id = ?", (challenge,))
        raise SigninFailed("the sign-in code has expired; ask for a new one")
    if not hmac.compare_digest(_digest(row["salt"], code), row["code_sha256"]):
        attempts = int(row["attempts"]) + 1
        if attempts >= settings.code_attempts:
            conn.execute("DELETE FROM signin_codes WHERE id = ?", (challenge,))
            raise SigninFailed("wrong code, and no tries left; ask for a new one")
        conn.execute("UPDATE signin_codes SET attempts = ? WHERE id = ?", (attempts, challenge))
        raise SigninFailed(f"wrong code ({settings.code_attempts - attempts} tries left)")
    conn.execute("DELETE FROM signin_codes WHERE id = ?", (challenge,))
    return str(row["customer_id"])


def drop_expired_codes(conn: Conn, now: datetime) -> int:
    return conn.execute("DELETE FROM signin_codes WHERE expires_at <= ?", (iso(now),)).rowcount


@dataclass(frozen=True)
class Device:
    id: str
    customer: str
    name: str
    created_at: datetime
    expires_at: datetime


def _device(row: Any) -> Device:  # a row read by column name
    return Device(
        id=str(row["id"]),
        customer=str(row["customer_id"]),
        name=str(row["name"]),
        created_at=from_iso(row["created_at"]),
        expires_at=from_iso(row["expires_at"]),
    )


def add_device(
    conn: Conn, customer: str, name: str, now: datetime, settings: WalletSettings
) -> tuple[Device, str]:
    """Sign a device in: (the device, its token — shown once, stored as a digest). Past
    ``devices_max`` the oldest device of the customer is signed out."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    device_id = "d" + secrets.token_hex(8)
    expires = now + timedelta(days=settings.token_ttl_days)
    conn.execute(
        "INSERT INTO customer_devices (id, customer_id, name, token_sha256, created_at,"
        " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        (device_id, customer, name, token_digest(token), iso(now), iso(expires)),
    )
    conn.execute(  # the customer's expired devices go (their tokens work no more anyway)
        "DELETE FROM customer_devices WHERE customer_id = ? AND expires_at <= ?",
        (customer, iso(now)),
    )
    devices = list_devices(conn, customer, now)
    for old in devices[: max(0, len(devices) - settings.devices_max)]:
        conn.execute("DELETE FROM customer_devices WHERE id = ?", (old.id,))
    return Device(device_id, customer, name, now, expires), token


def device_of_token(conn: Conn, token: str, now: datetime) -> Device | None:
    """The signed-in device holding this token, or None (unknown, revoked or expired)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = conn.execute(
        "SELECT id, customer_id, name, created_at, expires_at FROM customer_devices"
        " WHERE token_sha256 = ?",
        (token_digest(token),),
    ).fetchone()
    if row is None or from_iso(row["expires_at"]) <= now:
        return None
    return _device(row)


def list_devices(conn: Conn, customer: str, now: datetime) -> list[Device]:
    """The customer's signed-in devices, oldest first."""
    rows = conn.execute(
        "SELECT id, customer_id, name, created_at, expires_at FROM customer_devices"
        " WHERE customer_id = ? AND expires_at > ? ORDER BY created_at, id",
        (customer, iso(now)),
    ).fetchall()
    return [_device(row) for row in rows]


def revoke_device(conn: Conn, customer: str, device: str) -> None:
    """Sign one of the customer's devices out; ``NotFound`` if it is not theirs."""
    cur = conn.execute(
        "DELETE FROM customer_devices WHERE id = ? AND customer_id = ?", (device, customer)
    )
    if cur.rowcount != 1:
        raise NotFound(f"no device {device!r}")


# --- consent ---------------------------------------------------------------------------


def offers_consent(conn: Conn, customer: str) -> bool:
    """Whether the customer takes personal offers (yes until they say no)."""
    row = conn.execute(
        "SELECT offers FROM customer_consents WHERE customer_id = ?", (customer,)
    ).fetchone()
    return row is None or bool(row["offers"])


def set_offers_consent(conn: Conn, customer: str, value: bool, now: datetime) -> None:
    conn.execute(
        "INSERT INTO customer_consents (customer_id, offers, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (customer_id) DO UPDATE SET offers = excluded.offers,"
        " updated_at = excluded.updated_at",
        (customer, int(value), iso(now)),
    )


# --- what the wallet shows -------------------------------------------------------------


@dataclass(frozen=True)
class Lot:
    points: int
    expires_at: datetime | None


def open_lots(conn: Conn, customer: str, now: datetime) -> dict[str, list[Lot]]:
    """Per pocket, the unexpired points left, grouped by expiry date (soonest first; points
    that never expire last)."""
    rows = conn.execute(
        "SELECT pocket, remaining, expires_at FROM lots WHERE customer_id = ? AND remaining > 0"
        " AND (expires_at IS NULL OR expires_at > ?)",
        (customer, iso(now)),
    ).fetchall()
    grouped: dict[str, dict[str | None, int]] = {}
    for row in rows:
        by_expiry = grouped.setdefault(str(row["pocket"]), {})
        by_expiry[row["expires_at"]] = by_expiry.get(row["expires_at"], 0) + int(row["remaining"])
    return {
        pocket: [
            Lot(points, from_iso(expiry) if expiry else None)
            for expiry, points in sorted(by_expiry.items(), key=lambda kv: (kv[0] is None, kv[0]))
        ]
        for pocket, by_expiry in sorted(grouped.items())
    }


@dataclass(frozen=True)
class InboxEntry:
    """A line of the shopper's inbox: a journal row (a credit, a spend, an expiry) or an
    offer delivered to them. ``id`` orders entries of one kind (``j12``, ``o7``)."""

    id: str
    kind: Literal["credit", "debit", "offer"]
    ts: datetime
    text: str
    pocket: str | None = None
    points: int | None = None
    campaign: str | None = None


@dataclass(frozen=True)
class Cursor:
    """The last journal row and delivery an inbox reader has seen."""

    journal: int = 0
    delivery: int = 0


def _journal_entry(row: Any) -> InboxEntry:
    delta = int(row["delta"])
    return InboxEntry(
        id=f"j{row['id']}",
        kind="credit" if delta > 0 else "debit",
        ts=from_iso(row["ts"]),
        text=str(row["text"]) or f"{delta:+d}",
        pocket=str(row["pocket"]),
        points=delta,
    )


def _offer_entry(row: Any) -> InboxEntry:
    return InboxEntry(
        id=f"o{row['id']}",
        kind="offer",
        ts=from_iso(row["ts"]),
        text=" — ".join(t for t in (row["title"], row["text"]) if t) or str(row["campaign_id"]),
        campaign=str(row["campaign_id"]),
    )


def _order(entry: InboxEntry) -> tuple[datetime, str, int]:
    return entry.ts, entry.id[0], int(entry.id[1:])  # by time, then in the order written


_JOURNAL = "SELECT id, ts, pocket, delta, text FROM journal WHERE customer_id = ? AND id > ?"
_DELIVERED = (
    "SELECT d.id, d.ts, d.campaign_id, c.title, c.text FROM deliveries d"
    " LEFT JOIN campaigns c ON c.instance = d.campaign_instance"
    " WHERE d.customer_id = ? AND d.id > ?"
)


def inbox(conn: Conn, customer: str, *, limit: int = 50) -> tuple[list[InboxEntry], Cursor]:
    """The newest ``limit`` inbox entries (newest first) and the cursor of everything so far
    (what a live reader passes to ``inbox_since``)."""
    journal = conn.execute(_JOURNAL + " ORDER BY id DESC LIMIT ?", (customer, 0, limit)).fetchall()
    delivered = conn.execute(
        _DELIVERED + " ORDER BY d.id DESC LIMIT ?", (customer, 0, limit)
    ).fetchall()
    entries = [_journal_entry(r) for r in journal] + [_offer_entry(r) for r in delivered]
    entries.sort(key=_order, reverse=True)
    cursor = Cursor(
        max((int(r["id"]) for r in journal), default=0),
        max((int(r["id"]) for r in delivered), default=0),
    )
    return entries[:limit], cursor


def inbox_since(
    conn: Conn, customer: str, after: Cursor, limit: int = 100
) -> tuple[list[InboxEntry], Cursor, bool]:
    """The entries after ``after``, oldest first, at most ``limit`` of each kind; the cursor
    past them; and whether more are waiting (ask again at once)."""
    journal = conn.execute(
        _JOURNAL + " ORDER BY id LIMIT ?", (customer, after.journal, limit)
    ).fetchall()
    delivered = conn.execute(
        _DELIVERED + " ORDER BY d.id LIMIT ?", (customer, after.delivery, limit)
    ).fetchall()
    entries = [_journal_entry(r) for r in journal] + [_offer_entry(r) for r in delivered]
    entries.sort(key=_order)
    cursor = Cursor(
        max([after.journal, *(int(r["id"]) for r in journal)]),
        max([after.delivery, *(int(r["id"]) for r in delivered)]),
    )
    return entries, cursor, len(journal) == limit or len(delivered) == limit


def latest(conn: Conn) -> Cursor:
    """The newest journal row and delivery of anyone (one cheap read: is there news?)."""
    row = conn.execute(
        "SELECT (SELECT MAX(id) FROM journal) AS j, (SELECT MAX(id) FROM deliveries) AS d"
    ).fetchone()
    return Cursor(int(row["j"] or 0), int(row["d"] or 0))


@dataclass(frozen=True)
class ShopperOffer:
    campaign: offers.Campaign
    received: bool


def offers_for(conn: Conn, customer: str, now: datetime) -> list[ShopperOffer]:
    """The mall's running offers (what the kiosks show), each marked if it was delivered
    to this shopper (e.g. on arrival by car)."""
    received = {
        str(row["campaign_instance"])
        for row in conn.execute(
            "SELECT DISTINCT campaign_instance FROM deliveries WHERE customer_id = ?", (customer,)
        )
    }
    return [
        ShopperOffer(c, c.instance in received) for c in offers.list_campaigns(conn, active_at=now)
    ]
