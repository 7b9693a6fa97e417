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

from cloud_core import ledger
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


def join_presence(
    conn: sqlite3.Connection,
    *,
    customer: str,
    store: str,
    start: float,
    end: float,
    gap_s: float,
) -> tuple[float, float]:
    """Record that ``customer`` was at ``store`` from ``start`` to ``end`` (epoch seconds)
    and return the continuous stay this belongs to.

    Every stored segment that overlaps ``[start - gap_s, end + gap_s]`` is merged with it
    into one row, so the segments are the connected pieces of everything seen so far,
    whatever the order it arrived in.
    """
    rows = conn.execute(
        "SELECT id, start_epoch, end_epoch FROM presence_segments"
        " WHERE customer_id = ? AND store = ? AND end_epoch >= ? AND start_epoch <= ?",
        (customer, store, start - gap_s, end + gap_s),
    ).fetchall()
    lo = min([start, *(float(r[1]) for r in rows)])
    hi = max([end, *(float(r[2]) for r in rows)])
    if not rows:
        conn.execute(
            "INSERT INTO presence_segments (customer_id, store, start_epoch, end_epoch)"
            " VALUES (?, ?, ?, ?)",
            (customer, store, lo, hi),
        )
        return lo, hi
    keep, *merged = rows
    conn.executemany("DELETE FROM presence_segments WHERE id = ?", [(r[0],) for r in merged])
    if (lo, hi) != (float(keep[1]), float(keep[2])):
        conn.execute(
            "UPDATE presence_segments SET start_epoch = ?, end_epoch = ? WHERE id = ?",
            (lo, hi, keep[0]),
        )
    return lo, hi


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
    start, end = join_presence(
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
    # one read for every check: the cooldown (either side of the event's time, this store)
    # and today's points at this business, stores visited, and whether this one was
    recent, earned, stores_before, here_before = conn.execute(
        "SELECT COALESCE(MAX(store = :store AND ts_epoch > :lo AND ts_epoch < :hi), 0),"
        " COALESCE(SUM(CASE WHEN day = :day AND business = :business THEN points END), 0),"
        " COUNT(DISTINCT CASE WHEN day = :day THEN store END),"
        " COALESCE(MAX(day = :day AND store = :store), 0)"
        " FROM visits WHERE customer_id = :customer"
        " AND (day = :day OR (store = :store AND ts_epoch > :lo AND ts_epoch < :hi))",
        {
            "business": store.business,
            "store": store.id,
            "customer": customer,
            "day": day,
            "lo": epoch - rules.cooldown_s,
            "hi": epoch + rules.cooldown_s,
        },
    ).fetchone()
    if rules.cooldown_s > 0 and recent:
        return VisitResult("cooldown")
    stores_today = int(stores_before) + (0 if here_before else 1)
    points = max(0, min(rules.points, rules.daily_cap - int(earned)))
    conn.execute(
        "INSERT INTO visits (event_id, customer_id, store, business, node, ts, ts_epoch, day,"
        " points) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (event_id, customer, store.id, store.business, node, ledger.iso(ts), epoch, day, points),
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
