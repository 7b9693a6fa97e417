"""Pay-per-visit: points for a qualifying visit, cooldowns, daily caps, the stores game.

``apply_visit`` is a function of one resolved presence event and the ledger state,
run inside the ingest transaction that also marks the event processed:

1. a visit qualifies once the shopper has been inside ``min_dwell_s`` continuously:
   each dwell or exit event covers ``[ts - inside_s, ts]``, and the customer's presences
   at the store that overlap or lie within ``join_gap_s`` of each other are one stay
   (``join_presence``). A shopper's beacon id rotates every 600 s and the node cannot
   link the two ids, so a stay across a rotation arrives as the old tag's exit and the
   new tag's enter/dwell/exit; the core resolves both to the customer and joins them.
   The joined stay is the same whatever order its pieces arrive in, from whichever of
   the store's nodes;
2. cooldown: no second visit for the same customer and store within ``cooldown_s``
   of another (checked on both sides of the event's time, so the order in which
   nodes' events arrive does not matter, and whichever node of the store saw it);
3. daily cap: a business pays at most ``daily_cap`` visit points per customer per
   local day; a visit over the cap is recorded with the points that still fit (maybe 0);
4. the points go to the store's business pocket, expiring as the store's rule says;
5. the game: the visit that makes ``game.stores`` different stores today pays the
   coalition bonus, once per customer per day (``credit`` with a ``DailyLimit``);
6. matching offers are delivered (``offers.offers_for_visit``) within each campaign's
   frequency cap; a campaign with ``bonus_points`` also credits them to its business's
   pocket with each delivery (a per-campaign visit reward, outside the daily cap).

It returns the inbox notices to publish after the commit. Steps 2–6 are ``credit_visit``
in ``rules/visit_credit.py``, which a kiosk check-in at a store also uses
(``rules/checkins.py``): one cooldown and one cap whichever way the shopper visited.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from cloud_core import visit_log
from cloud_core.config import GameRules, StoreConfig, VisitRules
from cloud_core.offers import Campaign
from cloud_core.rules.visit_credit import VisitResult, credit_visit
from cloud_core.store import Conn

__all__ = ["VisitResult", "apply_visit"]


def apply_visit(
    conn: Conn,
    *,
    customer: str,
    store: StoreConfig,
    rules: VisitRules,
    game: GameRules,
    tz: ZoneInfo,
    node: str,
    event_id: str,
    ts: datetime,
    inside_s: float,
    campaigns: Sequence[Campaign] | None = None,
) -> VisitResult:
    epoch = ts.timestamp()
    start, end = visit_log.join_presence(
        conn,
        customer=customer,
        store=store.id,
        start=epoch - inside_s,
        end=epoch,
        gap_s=rules.join_gap_s,
    )
    if end - start < rules.min_dwell_s:
        return VisitResult("short")
    return credit_visit(
        conn,
        customer=customer,
        store=store,
        rules=rules,
        game=game,
        tz=tz,
        node=node,
        event_id=event_id,
        ts=ts,
        campaigns=campaigns,
    )
