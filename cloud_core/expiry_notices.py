""" "Points expiring in N days" notices: one per lot, ``spending.expiring_notice_days``
before its expiry, remembered in ``expiry_warnings`` so a lot is announced once."""

from __future__ import annotations

from datetime import datetime, timedelta

from cloud_core import ledger
from cloud_core.rules.common import Notice
from cloud_core.store import Conn
from mallnet.ids import new_event_id
from mallnet.wire.payloads import ExpiringNotice


def warn_expiring(conn: Conn, now: datetime, days: int) -> list[Notice]:
    """Notices for lots expiring within ``days`` that were not announced yet (in the
    caller's transaction); none when ``days`` is 0."""
    if days <= 0:
        return []
    rows = conn.execute(
        "SELECT l.id, l.customer_id, l.pocket, l.remaining, l.expires_at, l.created_at FROM lots l"
        " LEFT JOIN expiry_warnings w ON w.lot_id = l.id"
        " WHERE l.remaining > 0 AND l.expires_at IS NOT NULL AND l.expires_at > ?"
        " AND l.expires_at <= ? AND w.lot_id IS NULL ORDER BY l.expires_at LIMIT 1000",
        (ledger.iso(now), ledger.iso(now + timedelta(days=days))),
    ).fetchall()
    notices = []
    window = timedelta(days=days)
    for row in rows:
        expires = ledger.from_iso(row["expires_at"])
        if expires - ledger.from_iso(row["created_at"]) <= window:
            continue
        conn.execute(
            "INSERT INTO expiry_warnings (lot_id, ts) VALUES (?, ?)"
            " ON CONFLICT (lot_id) DO NOTHING",
            (row["id"], ledger.iso(now)),
        )
        message = ExpiringNotice(
            id=new_event_id(),
            ts=now,
            points=int(row["remaining"]),
            pocket=row["pocket"],
            expires_at=expires,
            text=f"{row['remaining']} points in {row['pocket']} expire on "
            f"{expires:%Y-%m-%d %H:%M} UTC",
        )
        notices.append(Notice(row["customer_id"], message))
    return notices
