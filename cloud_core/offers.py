"""Campaigns created by tenants, matched against visits, with per-customer frequency caps.

A campaign targets stores and/or zones (neither: every store of its business) and a
customer segment. A delivery row is written, in the transaction of the event that
triggered it, for every offer pushed, so no customer gets an offer more often than
``cap_count`` times per ``cap_period_s`` (or per campaign when no period is set).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from cloud_core.config import StoreConfig
from cloud_core.errors import Conflict, InvalidInput, NotFound
from cloud_core.ledger import from_iso, iso
from mallnet.ids import new_event_id
from mallnet.wire.payloads import OfferCard, OfferNotice

Segment = Literal["all", "new", "returning", "drivers"]
SEGMENTS: dict[str, str] = {
    "all": "every customer",
    "new": "customers registered in the last 30 days",
    "returning": "customers with a visit before today",
    "drivers": "customers with a registered vehicle",
}
NEW_CUSTOMER_DAYS = 30


@dataclass(frozen=True)
class Campaign:
    id: str
    business: str
    title: str
    text: str
    image_url: str | None
    starts_at: datetime
    ends_at: datetime
    stores: tuple[str, ...]
    zones: tuple[str, ...]
    segment: Segment
    cap_count: int
    cap_period_s: float | None
    bonus_points: int = 0

    def card(self) -> OfferCard:
        return OfferCard(
            campaign=self.id,
            business=self.business,
            title=self.title,
            text=self.text,
            image_url=self.image_url,
            valid_until=self.ends_at,
        )

    def targets(self, store: StoreConfig) -> bool:
        if not self.stores and not self.zones:
            return store.business == self.business
        return store.id in self.stores or (store.zone is not None and store.zone in self.zones)


def _from_row(row: sqlite3.Row) -> Campaign:
    return Campaign(
        id=row["id"],
        business=row["business"],
        title=row["title"],
        text=row["text"],
        image_url=row["image_url"],
        starts_at=from_iso(row["starts_at"]),
        ends_at=from_iso(row["ends_at"]),
        stores=tuple(json.loads(row["stores"])),
        zones=tuple(json.loads(row["zones"])),
        segment=row["segment"],
        cap_count=int(row["cap_count"]),
        cap_period_s=row["cap_period_s"],
        bonus_points=int(row["bonus_points"]),
    )


def create_campaign(
    conn: sqlite3.Connection, campaign: Campaign, stores: dict[str, StoreConfig], now: datetime
) -> Campaign:
    """Store a campaign; its target stores must exist and belong to its business."""
    if campaign.ends_at <= campaign.starts_at:
        raise InvalidInput("a campaign must end after it starts")
    if campaign.bonus_points < 0:
        raise InvalidInput("bonus points cannot be negative")
    for store_id in campaign.stores:
        store = stores.get(store_id)
        if store is None:
            raise InvalidInput(f"no store {store_id!r}")
        if store.business != campaign.business:
            raise InvalidInput(f"store {store_id!r} belongs to another business")
    if conn.execute("SELECT 1 FROM campaigns WHERE id = ?", (campaign.id,)).fetchone():
        raise Conflict(f"campaign {campaign.id!r} exists")
    conn.execute(
        "INSERT INTO campaigns (id, business, title, text, image_url, starts_at, ends_at, stores,"
        " zones, segment, cap_count, cap_period_s, created_at, bonus_points)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            campaign.id,
            campaign.business,
            campaign.title,
            campaign.text,
            campaign.image_url,
            iso(campaign.starts_at),
            iso(campaign.ends_at),
            json.dumps(list(campaign.stores)),
            json.dumps(list(campaign.zones)),
            campaign.segment,
            campaign.cap_count,
            campaign.cap_period_s,
            iso(now),
            campaign.bonus_points,
        ),
    )
    return campaign


def get_campaign(conn: sqlite3.Connection, campaign_id: str) -> Campaign:
    row = conn.execute("SELECT * FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
    if row is None:
        raise NotFound(f"no campaign {campaign_id!r}")
    return _from_row(row)


def list_campaigns(
    conn: sqlite3.Connection,
    business: str | None = None,
    active_at: datetime | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Campaign]:
    """Campaigns by id; ``since``/``until``: only those valid at some time in that range;
    ``limit``/``offset``: one page (in SQL)."""
    sql = "SELECT * FROM campaigns WHERE 1 = 1"
    params: list[str | int] = []
    if business is not None:
        sql += " AND business = ?"
        params.append(business)
    if active_at is not None:
        sql += " AND starts_at <= ? AND ends_at > ?"
        params += [iso(active_at), iso(active_at)]
    if since is not None:
        sql += " AND ends_at > ?"
        params.append(iso(since))
    if until is not None:
        sql += " AND starts_at < ?"
        params.append(iso(until))
    sql += " ORDER BY id"
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params += [limit, offset]
    return [_from_row(row) for row in conn.execute(sql, params)]


def delete_campaign(conn: sqlite3.Connection, campaign_id: str) -> None:
    get_campaign(conn, campaign_id)
    conn.execute("DELETE FROM campaigns WHERE id = ?", (campaign_id,))


def _in_segment(
    conn: sqlite3.Connection, segment: Segment, customer: str, ts: datetime, day: str
) -> bool:
    if segment == "all":
        return True
    if segment == "new":
        row = conn.execute("SELECT created_at FROM customers WHERE id = ?", (customer,)).fetchone()
        return row is not None and row[0] >= iso(ts - timedelta(days=NEW_CUSTOMER_DAYS))
    if segment == "returning":
        return (
            conn.execute(
                "SELECT 1 FROM visits WHERE customer_id = ? AND day < ? LIMIT 1", (customer, day)
            ).fetchone()
            is not None
        )
    return (
        conn.execute("SELECT 1 FROM vehicles WHERE customer_id = ? LIMIT 1", (customer,)).fetchone()
        is not None
    )


def offers_for_visit(
    conn: sqlite3.Connection,
    *,
    customer: str,
    store: StoreConfig,
    ts: datetime,
    day: str,
    event_id: str,
    trigger: Literal["visit", "parking", "checkin"],
    campaigns: Sequence[Campaign] | None = None,
) -> list[OfferNotice]:
    """Record and return the offers this event earns the customer (caps respected).

    ``campaigns`` may hold every campaign, read once per ingest batch in the same
    transaction; otherwise they are read here.
    """
    notices = []
    if campaigns is None:
        campaigns = list_campaigns(conn, active_at=ts)
    for campaign in campaigns:
        if not campaign.starts_at <= ts < campaign.ends_at:
            continue
        if not campaign.targets(store):
            continue
        if not _in_segment(conn, campaign.segment, customer, ts, day):
            continue
        since = ts.timestamp() - campaign.cap_period_s if campaign.cap_period_s else float("-inf")
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM deliveries WHERE campaign_id = ? AND customer_id = ?"
            " AND ts_epoch > ?",
            (campaign.id, customer, since),
        ).fetchone()
        if count >= campaign.cap_count:
            continue
        cur = conn.execute(
            "INSERT OR IGNORE INTO deliveries (campaign_id, customer_id, ts, ts_epoch, trigger,"
            " event_id) VALUES (?, ?, ?, ?, ?, ?)",
            (campaign.id, customer, iso(ts), ts.timestamp(), trigger, event_id),
        )
        if cur.rowcount == 1:
            notices.append(
                OfferNotice(id=new_event_id(), ts=ts, trigger=trigger, offer=campaign.card())
            )
    return notices
