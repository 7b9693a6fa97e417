"""Kiosk check-ins as stored: who a token names, whom a kiosk checked in lately, the record.

The decisions are ``rules/checkins.py``'s; this module only reads and writes rows, in the
caller's (ingest) transaction. ``kiosk_checkins`` is erased with the customer
(``customers.erase_customer``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from cloud_core import ledger
from cloud_core.store import Conn


def customer_named(
    conn: Conn, kind: Literal["customer", "phone", "receipt"], value: str
) -> str | None:
    """The customer a token names: by id (``customer``, ``receipt``) or by E.164 phone."""
    column = "phone" if kind == "phone" else "id"
    row = conn.execute(
        f"SELECT id FROM customers WHERE {column} = ?",  # noqa: S608 (a fixed column)
        (value,),
    ).fetchone()
    return None if row is None else str(row[0])


def customers_nearby(conn: Conn, kiosk: str, epoch: float, window_s: float) -> set[str]:
    """The different customers ``kiosk`` checked in within ``window_s`` either side."""
    return {
        str(row[0])
        for row in conn.execute(
            "SELECT DISTINCT customer_id FROM kiosk_checkins WHERE kiosk = ?"
            " AND ts_epoch > ? AND ts_epoch < ? AND customer_id IS NOT NULL"
            " AND outcome NOT IN ('kiosk_limit', 'unknown_customer')",
            (kiosk, epoch - window_s, epoch + window_s),
        )
    }


def record(
    conn: Conn,
    *,
    event_id: str,
    kiosk: str,
    customer: str | None,
    store: str | None,
    ts: datetime,
    outcome: str,
    token: str | None,
) -> None:
    """Keep one check-in with its outcome (``token`` only where it must wait for a rule)."""
    conn.execute(
        "INSERT INTO kiosk_checkins (event_id, kiosk, customer_id, store, ts, ts_epoch, outcome,"
        " token) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (event_id, kiosk, customer, store, ledger.iso(ts), ts.timestamp(), outcome, token),
    )
