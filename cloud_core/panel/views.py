"""What the panel shows, per role: plain data built from the config and ``reports`` reads.

A tenant sees its own stores, their nodes, its own pocket's credits and redemptions, its own
campaigns and their deliveries; the mall office sees everything, parking and dead letters
included. These functions take the caller (``Principal``) and filter as the HTTP API does,
so a page and its data endpoint can never show more than the API would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cloud_core import mailings, offers, reports
from cloud_core.api.auth import ApiContext, Principal
from cloud_core.config import StoreConfig
from cloud_core.errors import NotFound
from cloud_core.ledger import from_iso
from cloud_core.store import Row

#: A node that sent nothing (no health report, no status change) for this long is "quiet".
QUIET_AFTER_S = 180.0
FEED_ROWS = 50


def is_admin(who: Principal) -> bool:
    return who.role == "admin"


def stores(ctx: ApiContext, who: Principal) -> list[StoreConfig]:
    return [s for s in ctx.config.stores if is_admin(who) or s.business == who.business]


def businesses(ctx: ApiContext, who: Principal) -> list[str]:
    """The businesses this caller may create campaigns for."""
    if not is_admin(who):
        return [who.business or ""]
    return ["mall", *sorted({s.business for s in ctx.config.stores})]


def short_id(customer: str | None) -> str:
    """A shopper's pseudonymous id, cut short for a screen (never a phone or a name)."""
    return "—" if not customer else customer[:8] + "…"


# --- footfall ----------------------------------------------------------------------------


def _hour_start(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def footfall_series(ctx: ApiContext, who: Principal) -> dict[str, Any]:
    """Unique tags per store and hour over the last 24 hours (the chart's data)."""
    now = datetime.fromtimestamp(ctx.clock(), UTC)
    first = _hour_start(now) - timedelta(hours=23)
    hours = [first + timedelta(hours=i) for i in range(24)]
    mine = stores(ctx, who)
    store_of = {node: s.id for s in mine for node in s.nodes}
    with ctx.store.read() as conn:
        rows = reports.footfall(
            conn,
            among=sorted(store_of),
            from_hour=first.strftime("%Y-%m-%dT%H:00Z"),
            limit=100_000,
            offset=0,
        )
    index = {h.strftime("%Y-%m-%dT%H:00Z"): i for i, h in enumerate(hours)}
    values = {s.id: [0] * len(hours) for s in mine}
    for row in rows:
        i = index.get(row["hour"])
        if i is not None:
            values[store_of[row["node"]]][i] += int(row["unique_tags"])
    return {
        "hours": [int(h.timestamp()) for h in hours],
        "series": [{"store": s.id, "label": s.name or s.id, "values": values[s.id]} for s in mine],
    }


@dataclass(frozen=True)
class StoreDay:
    id: str
    name: str
    business: str
    unique_tags: int
    visits: int
    customers: int
    points: int


def store_days(ctx: ApiContext, who: Principal, series: dict[str, Any]) -> list[StoreDay]:
    """Per store: footfall over the chart's 24 hours, visits and points of the local day."""
    day = datetime.fromtimestamp(ctx.clock(), ZoneInfo(ctx.config.timezone)).date().isoformat()
    business = None if is_admin(who) else (who.business or "")
    with ctx.store.read() as conn:
        visits = {r["store"]: r for r in reports.visit_stats(conn, business=business, day=day)}
    tags = {s["store"]: sum(s["values"]) for s in series["series"]}
    out = []
    for s in stores(ctx, who):
        v = visits.get(s.id)
        out.append(
            StoreDay(
                s.id,
                s.name or s.id,
                s.business,
                tags.get(s.id, 0),
                int(v["visits"]) if v else 0,
                int(v["customers"]) if v else 0,
                int(v["points"] or 0) if v else 0,
            )
        )
    return out


# --- the feed ----------------------------------------------------------------------------


def _journal(rows: list[Row]) -> list[dict[str, Any]]:
    return [
        {
            "ts": r["ts"],
            "customer": short_id(r["customer_id"]),
            "pocket": r["pocket"],
            "points": int(r["delta"]),
            "text": r["text"] or r["reason"],
        }
        for r in rows
    ]


def feed(ctx: ApiContext, who: Principal) -> dict[str, list[dict[str, Any]]]:
    """The newest credits, redemptions and offer deliveries this caller may see."""
    pocket = None if is_admin(who) else (who.business or "")
    with ctx.store.read() as conn:
        credits = reports.journal_feed(conn, kind="grant", pocket=pocket, limit=FEED_ROWS)
        spends = reports.journal_feed(conn, kind="spend", pocket=pocket, limit=FEED_ROWS)
        delivered = reports.deliveries_feed(conn, business=pocket, campaign=None, limit=FEED_ROWS)
    return {
        "credits": _journal(credits),
        "redemptions": _journal(spends),
        "deliveries": [_delivery(r) for r in delivered],
    }


def _delivery(r: Row) -> dict[str, Any]:
    return {
        "ts": r["ts"],
        "customer": short_id(r["customer_id"]),
        "campaign": r["campaign_id"],
        "business": r["business"],
        "title": r["title"],
        "trigger": r["trigger"],
    }


# --- nodes -------------------------------------------------------------------------------


def _age(now: datetime, iso: str | None) -> float | None:
    return None if not iso else max(0.0, (now - from_iso(iso)).total_seconds())


def nodes(ctx: ApiContext, who: Principal) -> list[dict[str, Any]]:
    """Every node (and, for the office, kiosk and gate) with its retained status, last
    heartbeat and what its last health report said; ``alert`` is ``offline`` or ``quiet``."""
    config = ctx.config
    kind: dict[str, tuple[str, str]] = {}  # node -> (kind, where)
    for s in stores(ctx, who):
        kind.update({n: ("store", s.name or s.id) for n in s.nodes})
    if is_admin(who):
        kind.update({k.id: ("kiosk", k.store or "") for k in config.kiosks})
        for park in config.parking.car_parks if config.parking else ():
            kind.update({n: ("gate", park.name) for n in park.nodes})
    now = datetime.fromtimestamp(ctx.clock(), UTC)
    with ctx.store.read() as conn:
        rows = reports.nodes(conn)
    ids = sorted(set(kind) | (set(rows) if is_admin(who) else set()))
    out = []
    for node in ids:
        row = rows.get(node)
        health = json.loads(row["last_health"]) if row and row["last_health"] else {}
        state = (row["state"] if row else None) or ("online" if health else None)
        age = _age(now, row["last_seen"] if row else None)
        alert = None
        if state == "offline":
            alert = "offline"
        elif age is not None and age > QUIET_AFTER_S:
            alert = "quiet"
        what, where = kind.get(node, ("node", ""))
        out.append(
            {
                "id": node,
                "kind": what,
                "where": where,
                "state": state or "unknown",
                "since": row["since"] if row else None,
                "software": row["software"] if row else None,
                "last_seen": row["last_seen"] if row else None,
                "age_s": None if age is None else round(age),
                "outbox_depth": health.get("outbox_depth"),
                "outbox_oldest_age_s": health.get("outbox_oldest_age_s"),
                "scanner_restarts": health.get("scanner_restarts"),
                "cpu_temp_c": health.get("cpu_temp_c"),
                "uptime_s": health.get("uptime_s"),
                "alert": alert,
            }
        )
    return out


# --- parking (the office only) -----------------------------------------------------------


def parking(ctx: ApiContext) -> dict[str, Any]:
    settings = ctx.config.parking
    if settings is None:
        return {"configured": False, "car_parks": [], "entries": [], "series": []}
    since = datetime.fromtimestamp(ctx.clock(), UTC) - timedelta(hours=24)
    with ctx.store.read() as conn:
        occupied = reports.parking_occupied(conn)
        entries = reports.parking_entries(conn, FEED_ROWS)
        series = {p.id: reports.occupancy_series(conn, p.id, since) for p in settings.car_parks}
    return {
        "configured": True,
        "car_parks": [
            {"id": p.id, "name": p.name, "capacity": p.capacity, "occupied": occupied.get(p.id, 0)}
            for p in settings.car_parks
        ],
        "entries": [
            {
                "car_park": r["car_park"],
                "status": r["status"],
                "entry": r["entry_ts"],
                "exit": r["exit_ts"],
                "free_minutes": int(r["free_minutes"]),
                "match": r["match"],
                "registered": bool(r["registered"]),
            }
            for r in entries
        ],
        "series": [
            {
                "car_park": park,
                "ts": [int(ts.timestamp()) for ts, _ in points],
                "occupied": [n for _, n in points],
            }
            for park, points in series.items()
        ],
    }


# --- campaigns ---------------------------------------------------------------------------


def campaigns(ctx: ApiContext, who: Principal) -> list[tuple[offers.Campaign, int]]:
    business = None if is_admin(who) else (who.business or "")
    with ctx.store.read() as conn:
        found = offers.list_campaigns(conn, business, limit=500)
        return [(c, offers.delivery_count(conn, c)) for c in found]


def own_campaign(ctx: ApiContext, who: Principal, campaign_id: str) -> offers.Campaign | None:
    """The campaign, if it exists and this caller may see it (another tenant's: None)."""
    try:
        with ctx.store.read() as conn:
            campaign = offers.get_campaign(conn, campaign_id)
    except NotFound:
        return None
    if not is_admin(who) and campaign.business != who.business:
        return None
    return campaign


def deliveries(ctx: ApiContext, campaign: offers.Campaign) -> list[dict[str, Any]]:
    with ctx.store.read() as conn:
        rows = reports.deliveries_feed(conn, business=None, campaign=campaign.id, limit=FEED_ROWS)
    return [_delivery(r) for r in rows]


def dead_letters(ctx: ApiContext) -> list[dict[str, Any]]:
    with ctx.store.read() as conn:
        rows = reports.dead_letters(conn, before_id=None, node=None, limit=FEED_ROWS)
    return [
        {
            "id": r["id"],
            "ts": r["ts"],
            "node": r["node"],
            "topic": r["topic"],
            "kind": r["kind"],
            "reason": r["reason"],
            "size": r["size"],
            "payload": bytes(r["payload"])[:200].decode("utf-8", "replace"),
        }
        for r in rows
    ]


def mailings_with_status(
    ctx: ApiContext, who: Principal
) -> list[tuple[mailings.Mailing, dict[str, dict[str, int]]]]:
    """The caller's mailings (the office: all), newest first, with rows per channel and
    status (``cloud_core/mailings.py``)."""
    if ctx.config.mailings is None:
        return []
    sender = None if is_admin(who) else (who.business or "")
    with ctx.store.read() as conn:
        found = mailings.list_mailings(conn, sender, 200, 0)
        return [(m, mailings.status_counts(conn, m.id)) for m in found]
