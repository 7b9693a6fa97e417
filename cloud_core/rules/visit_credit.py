"""What a qualifying visit earns, however the shopper visited: a beacon stay past the
store's ``min_dwell_s`` (``visits.py``), a kiosk check-in at the store (``checkins.py``) or
a scan of the code at the store's door (``store_qr.py``).

``credit_visit`` runs inside the ingest transaction that also marks the event processed
(or, for a store QR scan, the API's transaction that records the scan):

1. cooldown: no second visit for the same customer and store within ``cooldown_s``
   of another (checked on both sides of the event's time, so the order in which
   nodes' events arrive does not matter, and whichever node or kiosk of the store saw it);
2. daily cap: a business pays at most ``daily_cap`` visit points per customer per
   local day; a visit over the cap is recorded with the points that still fit (maybe 0);
3. the points go to the store's business pocket, expiring as the store's rule says;
4. the game: the visit that makes ``game.stores`` different stores today pays the
   coalition bonus, once per customer per day (``credit`` with a ``DailyLimit``);
5. matching offers are delivered (``offers.offers_for_visit``) within each campaign's
   frequency cap; a campaign with ``bonus_points`` also credits them to its business's
   pocket with each delivery (a per-campaign visit reward, outside the daily cap);
6. a new shopper's first visit pays their referrer (``referral.reward_first_visit``).

One module for every way of visiting, so there is one cooldown and one cap.
"""

from __future__ import annotations

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
from cloud_core.rules.referral import reward_first_visit
from cloud_core.store import Conn

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


def credit_visit(
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
    campaigns: Sequence[Campaign] | None = None,
) -> VisitResult:
    """The steps above for a visit that qualifies (a beacon stay past ``min_dwell_s``, or a kiosk
    check-in at the store: ``node`` is then the kiosk): cooldown, daily cap, points, the
    game and offers, shared by both ways of visiting."""
    epoch = ts.timestamp()
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
    # a new shopper's first qualifying visit pays whoever referred them (rules/referral.py)
    notices.extend(reward_first_visit(conn, customer=customer, trigger=f"visit:{event_id}", ts=ts))
    return VisitResult("credited" if points > 0 else "capped", points, tuple(notices))


def _campaign(conn: Conn, campaigns: Sequence[Campaign] | None, campaign_id: str) -> Campaign:
    for campaign in campaigns or ():
        if campaign.id == campaign_id:
            return campaign
    return get_campaign(conn, campaign_id)
