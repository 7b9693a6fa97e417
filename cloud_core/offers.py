"""Campaigns created by tenants, matched against visits, with per-customer frequency caps.

A campaign targets places — stores and car parks (``Place``) — by id and/or zone
(neither: every store of its business) and a customer segment. A tenant's campaign acts
only at that tenant's own stores, whatever zone it names (a zone shared with a
competitor does not reach the competitor's store); the mall's own campaigns (business
``mall``, ``ledger.COALITION``) may span any store, zone and car park, and with no
target reach all of them. A delivery row is written, in the transaction of the event
that triggered it, for every offer pushed, so no customer gets an offer more often than
``cap_count`` times per ``cap_period_s`` (or per campaign when no period is set).
Deliveries belong to one campaign *instance* (an internal id made when the campaign is
created): a campaign deleted and created again under the same id starts with no
deliveries.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from cloud_core.errors import Conflict, InvalidInput, NotFound
from cloud_core.ledger import COALITION, from_iso, iso
from cloud_core.parking_config import CarPark
from cloud_core.store import Conn, Row
from cloud_core.store.filters import Filters
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


class Place(Protocol):
    """Where an offer can be earned: a store (``StoreConfig`` is one) or a car park
    (``CarParkPlace``). It belongs to a business — a car park to the mall's,
    ``ledger.COALITION`` — and may lie in a zone; campaigns target places by id or zone."""

    @property
    def id(self) -> str: ...

    @property
    def business(self) -> str: ...

    @property
    def zone(self) -> str | None: ...


@dataclass(frozen=True)
class CarParkPlace:
    """A car park as a place offers can be earned at: the mall's own (``COALITION``)."""

    id: str
    zone: str | None
    business: str = COALITION

    @classmethod
    def of(cls, park: CarPark) -> CarParkPlace:
        return cls(id=park.id, zone=park.zone)


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
    instance: str = ""  # internal id of this creation of the campaign; set by create_campaign

    def card(self) -> OfferCard:
        return OfferCard(
            campaign=self.id,
            business=self.business,
            title=self.title,
            text=self.text,
            image_url=self.image_url,
            valid_until=self.ends_at,
        )

    def targets(self, place: Place) -> bool:
        mall_wide = self.business == COALITION
        if not mall_wide and place.business != self.business:
            return False  # a tenant's campaign never acts at another business's place
        if not self.stores and not self.zones:
            return True
        return place.id in self.stores or (place.zone is not None and place.zone in self.zones)


def _from_row(row: Row) -> Campaign:
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
        instance=str(row["instance"]),
    )


def _check(campaign: Campaign, places: Mapping[str, Place]) -> None:
    if campaign.ends_at <= campaign.starts_at:
        raise InvalidInput("a campaign must end after it starts")
    if campaign.bonus_points < 0:
        raise InvalidInput("bonus points cannot be negative")
    for store_id in campaign.stores:
        place = places.get(store_id)
        if place is None:
            raise InvalidInput(f"no store {store_id!r}")
        if campaign.business not in (place.business, COALITION):
            raise InvalidInput(f"store {store_id!r} belongs to another business")


def create_campaign(
    conn: Conn, campaign: Campaign, places: Mapping[str, Place], now: datetime
) -> Campaign:
    """Store a campaign as a new instance; its target places (stores, car parks) must exist
    and belong to its business (the mall's campaigns may name any). Returns it with its
    instance id."""
    _check(campaign, places)
    if conn.execute("SELECT 1 FROM campaigns WHERE id = ?", (campaign.id,)).fetchone():
        raise Conflict(f"campaign {campaign.id!r} exists")
    campaign = dataclasses.replace(campaign, instance=secrets.token_hex(12))
    conn.execute(
        "INSERT INTO campaigns (id, business, title, text, image_url, starts_at, ends_at, stores,"
        " zones, segment, cap_count, cap_period_s, created_at, bonus_points, instance)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            campaign.instance,
        ),
    )
    return campaign


def update_campaign(conn: Conn, campaign: Campaign, places: Mapping[str, Place]) -> Campaign:
    """Change an existing campaign's text, time, targets, segment, caps and bonus in place:
    its business and instance stay, so its deliveries (and the caps they count) stay too.
    Checked as ``create_campaign`` checks a new one."""
    current = get_campaign(conn, campaign.id)
    campaign = dataclasses.replace(campaign, business=current.business, instance=current.instance)
    _check(campaign, places)
    conn.execute(
        "UPDATE campaigns SET title = ?, text = ?, image_url = ?, starts_at = ?, ends_at = ?,"
        " stores = ?, zones = ?, segment = ?, cap_count = ?, cap_period_s = ?, bonus_points = ?"
        " WHERE id = ?",
        (
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
            campaign.bonus_points,
            campaign.id,
        ),
    )
    return campaign


def delivery_count(conn: Conn, campaign: Campaign) -> int:
    """Offers pushed for this instance of the campaign."""
    (count,) = conn.execute(
        "SELECT COUNT(*) FROM deliveries WHERE campaign_instance = ?", (campaign.instance,)
    ).fetchone()
    return int(count)


def get_campaign(conn: Conn, campaign_id: str) -> Campaign:
    row = conn.execute("SELECT * FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
    if row is None:
        raise NotFound(f"no campaign {campaign_id!r}")
    return _from_row(row)


def list_campaigns(
    conn: Conn,
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
    at = iso(active_at) if active_at is not None else None
    where = (
        Filters()
        .add("business = ?", business)
        .add("starts_at <= ? AND ends_at > ?", at, at)
        .add("ends_at > ?", iso(since) if since is not None else None)
        .add("starts_at < ?", iso(until) if until is not None else None)
    )
    sql = f"SELECT * FROM campaigns{where.sql} ORDER BY id"  # noqa: S608
    params = where.params
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params = [*params, limit, offset]
    return [_from_row(row) for row in conn.execute(sql, params)]


def delete_campaign(conn: Conn, campaign_id: str) -> None:
    get_campaign(conn, campaign_id)
    conn.execute("DELETE FROM campaigns WHERE id = ?", (campaign_id,))


def _in_segment(conn: Conn, segment: Segment, customer: str, ts: datetime, day: str) -> bool:
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
    conn: Conn,
    *,
    customer: str,
    place: Place,
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
        if not campaign.targets(place):
            continue
        if not _in_segment(conn, campaign.segment, customer, ts, day):
            continue
        since = ts.timestamp() - campaign.cap_period_s if campaign.cap_period_s else float("-inf")
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM deliveries WHERE campaign_instance = ? AND customer_id = ?"
            " AND ts_epoch > ?",
            (campaign.instance, customer, since),
        ).fetchone()
        if count >= campaign.cap_count:
            continue
        cur = conn.execute(
            "INSERT INTO deliveries (campaign_id, campaign_instance, customer_id, ts,"
            " ts_epoch, trigger, event_id) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (campaign.id, campaign.instance, customer, iso(ts), ts.timestamp(), trigger, event_id),
        )
        if cur.rowcount == 1:
            notices.append(
                OfferNotice(id=new_event_id(), ts=ts, trigger=trigger, offer=campaign.card())
            )
    return notices
