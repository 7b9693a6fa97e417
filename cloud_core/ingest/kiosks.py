"""A kiosk's check-in batches in the ingest transaction: each event claimed once by id,
receipted to the kiosk, decided by ``rules/checkins.py``; a kiosk the config does not list
is dead-lettered. Kiosks are never store nodes (the config checks), so the applier hands
any check-in batch here."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from cloud_core.offers import list_campaigns
from cloud_core.rules.checkins import apply_checkin
from cloud_core.store import Conn
from mallnet.mqtt import Inbound
from mallnet.wire.payloads import CheckinBatch

if TYPE_CHECKING:
    from cloud_core.ingest.applier import Applier, Outgoing


def apply_checkins(
    applier: Applier,
    conn: Conn,
    message: Inbound,
    *,
    kiosk: str,
    batch: CheckinBatch,
    out: Outgoing,
    counts: Counter[str],
) -> None:
    """Apply one kiosk's batch (see the module's docstring)."""
    config = applier.config
    known = config.kiosk(kiosk)
    if known is None:
        applier.dead_letters.keep(conn, message, "unauthorised", f"unknown kiosk {kiosk!r}", counts)
        return
    receipts = out.kiosk_receipts.setdefault(kiosk, [])
    for event in batch.events:
        receipts.append(event.id)
        if not applier.first_time(
            conn, event_id=event.id, node=kiosk, topic="checkins", out=out, counts=counts
        ) or applier.stale(event.id, event.ts, out, counts):
            continue
        if out.campaigns is None:
            out.campaigns = list_campaigns(conn)
        result = apply_checkin(
            conn,
            kiosk=known,
            event=event,
            stores=applier.stores,
            visit_rules=applier.rules,
            rules=config.checkins,
            game=config.game,
            tz=applier.tz,
            campaigns=out.campaigns,
        )
        out.notices.extend(result.notices)
        counts[f"checkin_{result.outcome}"] += 1
        counts["points"] += result.points
        out.processed[event.id] = (event.id, kiosk, "checkins", result.outcome, out.now_iso)
