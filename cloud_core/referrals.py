"""Referral codes and the new shoppers who joined with them: the rows of ``rules/referral.py``.

``referral_codes`` holds one code per shopper (made on first ask, never changed);
``referrals`` one row per new shopper who joined with a code, with the reward's terms as
they were when the shopper joined, ``pending`` until the first qualifying visit and then
``rewarded`` (``mark_rewarded`` moves it exactly once). Every function runs in the
caller's transaction.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from cloud_core import ledger
from cloud_core.store import Conn

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed
CODE_LENGTH = 8


def normalise_code(code: str) -> str:
    return code.strip().upper().replace("-", "").replace(" ", "")


def code_of(conn: Conn, customer: str, now: datetime) -> str:
    """The customer's referral code, made (random, unique) on first ask."""
    while True:
        row = conn.execute(
            "SELECT code FROM referral_codes WHERE customer_id = ?", (customer,)
        ).fetchone()
        if row is None:  # a new random code; taken already (unlikely): try another
            code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
            row = conn.execute(
                "INSERT INTO referral_codes (customer_id, code, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING RETURNING code",
                (customer, code, ledger.iso(now)),
            ).fetchone()
        if row is not None:
            return str(row["code"])


def referrer_of_code(conn: Conn, code: str) -> str | None:
    row = conn.execute(
        "SELECT customer_id FROM referral_codes WHERE code = ?", (normalise_code(code),)
    ).fetchone()
    return None if row is None else str(row["customer_id"])


@dataclass(frozen=True)
class Newcomer:
    """What decides whether a shopper is new: when they registered, and whether anything
    was ever credited to them or any visit or purchase recorded."""

    registered_at: datetime
    active: bool
    referred: bool


def newcomer(conn: Conn, customer: str) -> Newcomer | None:
    row = conn.execute(
        "SELECT created_at,"
        " EXISTS (SELECT 1 FROM visits WHERE customer_id = ?) AS visited,"
        " EXISTS (SELECT 1 FROM journal WHERE customer_id = ?)"
        " OR EXISTS (SELECT 1 FROM purchases WHERE customer_id = ?) AS credited,"
        " EXISTS (SELECT 1 FROM referrals WHERE referee_id = ?) AS referred"
        " FROM customers WHERE id = ?",
        (customer, customer, customer, customer, customer),
    ).fetchone()
    if row is None:
        return None
    return Newcomer(
        ledger.from_iso(str(row["created_at"])),
        bool(row["visited"]) or bool(row["credited"]),
        bool(row["referred"]),
    )


def add_referral(
    conn: Conn,
    *,
    referee: str,
    referrer: str,
    referrer_points: int,
    referee_points: int,
    now: datetime,
) -> bool:
    """Record that ``referee`` joined with ``referrer``'s code; False if they already had."""
    row = conn.execute(
        "INSERT INTO referrals (referee_id, referrer_id, referrer_points, referee_points,"
        " status, created_at) VALUES (?, ?, ?, ?, 'pending', ?)"
        " ON CONFLICT (referee_id) DO NOTHING RETURNING referee_id",
        (referee, referrer, referrer_points, referee_points, ledger.iso(now)),
    ).fetchone()
    return row is not None


@dataclass(frozen=True)
class Pending:
    referrer: str
    referrer_points: int
    referee_points: int


def pending_of(conn: Conn, referee: str) -> Pending | None:
    """The referral waiting for ``referee``'s first qualifying visit, if any."""
    row = conn.execute(
        "SELECT referrer_id, referrer_points, referee_points FROM referrals"
        " WHERE referee_id = ? AND status = 'pending'",
        (referee,),
    ).fetchone()
    if row is None:
        return None
    return Pending(str(row["referrer_id"]), int(row["referrer_points"]), int(row["referee_points"]))


def mark_rewarded(conn: Conn, referee: str, trigger: str, now: datetime) -> bool:
    """Move the referral from pending to rewarded; False if it was not pending (once)."""
    row = conn.execute(
        "UPDATE referrals SET status = 'rewarded', rewarded_at = ?, trigger = ?"
        " WHERE referee_id = ? AND status = 'pending' RETURNING referee_id",
        (ledger.iso(now), trigger, referee),
    ).fetchone()
    return row is not None


@dataclass(frozen=True)
class Tally:
    joined: int
    rewarded: int


def tally(conn: Conn, referrer: str) -> Tally:
    row = conn.execute(
        "SELECT COUNT(*) AS joined,"
        " COALESCE(SUM(CASE WHEN status = 'rewarded' THEN 1 ELSE 0 END), 0) AS rewarded"
        " FROM referrals WHERE referrer_id = ?",
        (referrer,),
    ).fetchone()
    return Tally(int(row["joined"]), int(row["rewarded"]))


def erase(conn: Conn, customer: str) -> int:
    """Delete the customer's code and every referral naming them (erasure)."""
    n = conn.execute("DELETE FROM referral_codes WHERE customer_id = ?", (customer,)).rowcount
    return (
        n
        + conn.execute(
            "DELETE FROM referrals WHERE referee_id = ? OR referrer_id = ?", (customer, customer)
        ).rowcount
    )
