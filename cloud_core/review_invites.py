"""Invitations to review a store, sent to the shopper's inbox (a job of the mailing
dispatcher, ``mailings.review_invitations``).

``reviews.py`` lists the stores a shopper may review (a visit or purchase
``reviews.invite_after_s`` to ``invite_within_s`` ago, not reviewed yet); this job tells
them, once the delay has passed: one ``MessageNotice`` (``kind: review``, ``ref``: the
store) per shopper and store within ``period_days``, remembered in
``review_invite_notices`` (erased with the shopper).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cloud_core import ledger
from cloud_core.config import CoreConfig
from cloud_core.rules.common import Notice
from cloud_core.store import Conn
from mallnet.ids import new_event_id
from mallnet.wire.payloads import MessageNotice


def notify_due(conn: Conn, config: CoreConfig, now: datetime, period_days: int) -> list[Notice]:
    """The invitations due now, each once per shopper and store per period (in the caller's
    transaction; the caller keeps the notices in the outbox)."""
    settings = config.reviews
    if not settings.enabled:
        return []
    hi = ledger.iso(now - timedelta(seconds=settings.invite_after_s))
    lo = ledger.iso(now - timedelta(seconds=settings.invite_within_s))
    seen = {
        (str(r["customer_id"]), str(r["store"]))
        for r in conn.execute(
            "SELECT DISTINCT customer_id, store FROM visits WHERE ts <= ? AND ts >= ?"
            " UNION SELECT DISTINCT customer_id, store FROM purchases"
            " WHERE status = 'registered' AND ts <= ? AND ts >= ?",
            (hi, lo, hi, lo),
        )
    }
    stores = {s.id: s for s in config.stores}
    period_s = period_days * 86_400
    period = str(int(now.timestamp() // period_s))
    notices = []
    for customer, store in sorted(seen):
        if store not in stores:
            continue
        if conn.execute(
            "SELECT 1 FROM reviews WHERE customer_id = ? AND store = ?", (customer, store)
        ).fetchone():
            continue
        if conn.execute(
            "SELECT 1 FROM review_invite_notices WHERE customer_id = ? AND store = ?"
            " AND ts_epoch > ?",
            (customer, store, now.timestamp() - period_s),
        ).fetchone():
            continue
        kept = conn.execute(
            "INSERT INTO review_invite_notices (customer_id, store, period, ts, ts_epoch)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (customer_id, store, period) DO NOTHING"
            " RETURNING store",
            (customer, store, period, ledger.iso(now), now.timestamp()),
        ).fetchone()
        if kept is None:
            continue
        name = stores[store].name
        message = MessageNotice(
            id=new_event_id(),
            ts=now,
            kind="review",
            ref=store,
            title=f"How was {name}?"[:120],
            text=f"Rate {name} from 1 to 5 stars in your wallet and tell us why.",
        )
        notices.append(Notice(customer, message))
    return notices
