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

It returns the inbox notices to publish after the commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from cloud_core import ledger, visit_log
from cloud_core.config import GameRules, StoreConfig, VisitRules
from cloud_core.offers import Campaign, get_campaign, offers_for_visit
from cloud_core.rules.common import Notice, local_day
from cloud_core.rules.credit import DailyLimit, credit

Outcome = Literal["short", "cooldown", "credited", "capped"]


@dataclass(frozen=True)
class VisitResult:
    outcome: Outcome
    points: int = 0
    notices: tuple[Notice, ...] = field(default=())


def expiry_of(rules: VisitRules, ts: datetime, tz: ZoneInfo) -> datetime | None:
    if rules.expiry == "end_of_day":
        local = ts.astimezone(tz)
        midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=tz)
        return midnight
    if rules.expiry == "after" and rules.expires_after_s is not None:
        return ts + timedelta(seconds=rules.expires_after_s)
    return None


def apply_visit(
    conn: sqlite3.Connection,
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
    day = local_day(ts, tz)
    seen = visit_log.day_state(
        conn,
        customer=customer,
        store=store.id,
        business=store.business,
        day=day,
        around=(epoch - rules.cooldown_s, epoch + rules.cooldown_s),
    )
    if rules.cooldown_s > 0 and seen.recent_here:
        return VisitResult("cooldown")
    here_before = seen.here_today
    stores_today = seen.stores_today + (0 if here_before else 1)
    points = max(0, min(rules.points, rules.daily_cap - seen.earned_today))
    visit_log.record_visit(
        conn,
        event_id=event_id,
        customer=customer,
        store=store.id,
        business=store.business,
        node=node,
        ts=ts,
        day=day,
        points=points,
    )
    notices: list[Notice] = []
    if points > 0:
        text = f"+{points} points at {store.name}"
        paid = credit(
            conn,
            customer=customer,
            pocket=store.business,
            points=points,
            reason="visit",
            idem_key=f"visit:{event_id}",
            now=ts,
            expires_at=expiry_of(rules, ts, tz),
            text=text,
        )
        notices.extend([paid.notice] if paid.notice else [])
    if game.enabled and not here_before and stores_today >= game.stores:  # a new store today
        text = f"+{game.points} points: {game.stores} different stores today"
        bonus = credit(
            conn,
            customer=customer,
            pocket=ledger.COALITION,
            points=game.points,
            reason="game",
            idem_key=f"game:{customer}:{day}",
            now=ts,
            limit=DailyLimit("game-stores", day, max_per_day=1),
            text=text,
        )
        notices.extend([bonus.notice] if bonus.notice else [])
    for offer in offers_for_visit(
        conn,
        customer=customer,
        place=store,
        ts=ts,
        day=day,
        event_id=event_id,
        trigger="visit",
        campaigns=campaigns,
    ):
        notices.append(Notice(customer, offer))
        campaign = _campaign(conn, campaigns, offer.offer.campaign)
        if campaign.bonus_points > 0:
            text = f"+{campaign.bonus_points} bonus points: {campaign.title}"
            bonus = credit(
                conn,
                customer=customer,
                pocket=campaign.business,
                points=campaign.bonus_points,
                reason="visit",
                idem_key=f"campaign:{campaign.id}:{event_id}",
                now=ts,
                expires_at=expiry_of(rules, ts, tz),
                text=text,
            )
            notices.extend([bonus.notice] if bonus.notice else [])
    return VisitResult("credited" if points > 0 else "capped", points, tuple(notices))


def _campaign(
    conn: sqlite3.Connection, campaigns: Sequence[Campaign] | None, campaign_id: str
) -> Campaign:
    for campaign in campaigns or ():
        if campaign.id == campaign_id:
            return campaign
    return get_campaign(conn, campaign_id)
