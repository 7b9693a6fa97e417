"""Store QR check-ins: a shopper's scan of the code at a store's door is a visit.

``apply_scan`` runs in the API's transaction, after the code's signature and window
were checked (``cloud_core/store_qr.py``):

1. the same code scanned again by the same shopper is refused (outcome ``replayed``,
   nothing credited): one scan per shopper and code;
2. otherwise the scan is a pay-per-visit visit of the store through
   ``visit_credit.credit_visit`` — the same cooldown (whichever node, kiosk or QR saw the
   last visit: QR then beacon, or beacon then QR, is one visit), the same daily cap, the
   game and offers as a beacon visit, no dwell. The visit's node is ``store-qr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from cloud_core import store_qr
from cloud_core.config import GameRules, StoreConfig, VisitRules
from cloud_core.rules.common import Notice
from cloud_core.rules.visit_credit import credit_visit
from cloud_core.store import Conn

NODE = "store-qr"

Outcome = Literal["replayed", "credited", "cooldown", "capped"]


@dataclass(frozen=True)
class ScanResult:
    outcome: Outcome
    points: int = 0
    notices: tuple[Notice, ...] = field(default=())


def apply_scan(
    conn: Conn,
    *,
    customer: str,
    store: StoreConfig,
    rules: VisitRules,
    game: GameRules,
    tz: ZoneInfo,
    code: str,
    event_id: str,
    ts: datetime,
) -> ScanResult:
    """Apply one verified scan; see the module's docstring."""
    if not store_qr.record_scan(
        conn, customer=customer, code=code, store=store.id, event_id=event_id, now=ts
    ):
        return ScanResult("replayed")
    visit = credit_visit(
        conn,
        customer=customer,
        store=store,
        rules=rules,
        game=game,
        tz=tz,
        node=NODE,
        event_id=event_id,
        ts=ts,
    )
    outcome: Outcome = "cooldown" if visit.outcome == "cooldown" else "credited"
    if visit.outcome == "capped":
        outcome = "capped"
    store_qr.set_outcome(conn, event_id, outcome)
    return ScanResult(outcome, visit.points, visit.notices)
