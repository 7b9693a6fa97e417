"""The HTTP API's routers. Each handler checks its caller's role and business, then reads
or writes through ``Store`` (one ``BEGIN IMMEDIATE`` transaction per write)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import AfterValidator, AwareDatetime

from cloud_core import customers as customer_store
from cloud_core import ledger, offers, reports
from cloud_core.api import models as m
from cloud_core.api.auth import (
    Admin,
    AdminOrKiosk,
    AdminOrTenant,
    ApiContext,
    Caller,
    Ctx,
    Principal,
    Staff,
    own_business,
)
from cloud_core.errors import Conflict, InvalidInput, NotFound
from cloud_core.ledger import from_iso


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range") from None


UtcTime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Most rows in this page.")]
Offset = Annotated[
    int,
    Query(ge=0, le=10_000_000, description="Rows to skip: the next page starts at offset + limit."),
]
Since = Annotated[
    UtcTime | None, Query(description="Only from this time on (inclusive; with a UTC offset).")
]
Until = Annotated[
    UtcTime | None, Query(description="Only before this time (exclusive; with a UTC offset).")
]

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": m.Problem, "description": "Bad request."},
    401: {"model": m.Problem, "description": "Missing or unknown API key."},
    403: {"model": m.Problem, "description": "Your role or business may not do this."},
    404: {"model": m.Problem, "description": "No such thing."},
    409: {"model": m.Problem, "description": "Conflicts with existing data."},
}
#: Calls that look a phone number up are rate-limited per key (api.phone_lookups).
RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {"model": m.Problem, "description": "Too many phone-number lookups; see Retry-After."},
}

customers = APIRouter(prefix="/customers", tags=["customers"], responses=ERRORS)
wallets = APIRouter(prefix="/customers", tags=["wallets"], responses=ERRORS)
mall = APIRouter(tags=["stores and nodes"], responses=ERRORS)
campaigns = APIRouter(prefix="/campaigns", tags=["campaigns"], responses=ERRORS)
stats = APIRouter(prefix="/stats", tags=["statistics"], responses=ERRORS)
admin = APIRouter(tags=["operations"], responses=ERRORS)


def _now(ctx: ApiContext) -> datetime:
    return datetime.fromtimestamp(ctx.clock(), UTC)


# --- customers ----------------------------------------------------------------------


def _customer_out(ctx: ApiContext, customer: str) -> m.CustomerOut:
    with ctx.store.read() as conn:
        row = customer_store.require_customer(conn, customer)
        keys = reports.beacon_key_count(conn, customer)
        plates = reports.plates_of(conn, customer)
    return m.CustomerOut(
        id=row["id"],
        phone=row["phone"],
        email=row["email"],
        created_at=from_iso(row["created_at"]),
        beacon_keys=keys,
        vehicles=plates,
    )


def _mask_phone(e164: str) -> str:
    """``+447911123456`` → ``+44*******456``: enough for a shopper to recognise their own."""
    return e164[:3] + "*" * max(0, len(e164) - 6) + e164[-3:]


def _kiosk_customer_out(ctx: ApiContext, customer: str) -> m.KioskCustomerOut:
    """What a self-service screen shows the customer who just identified: no e-mail, no
    plates, no key count — a kiosk key must not become a directory of personal data."""
    with ctx.store.read() as conn:
        row = customer_store.require_customer(conn, customer)
        pockets = ledger.balances(conn, customer, _now(ctx))
    return m.KioskCustomerOut(
        id=row["id"],
        phone=_mask_phone(str(row["phone"])),
        pockets=[
            m.PocketOut(
                pocket=p.pocket, balance=p.balance, available=p.available, next_expiry=p.next_expiry
            )
            for p in pockets
        ],
    )


def _customer_for(ctx: ApiContext, caller: Principal, customer: str) -> m.AnyCustomerOut:
    if caller.role == "admin":
        return _customer_out(ctx, customer)
    return _kiosk_customer_out(ctx, customer)


@customers.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a customer",
    responses=RATE_LIMITED,
)
def register_customer(body: m.CustomerIn, ctx: Ctx, caller: AdminOrKiosk) -> m.AnyCustomerOut:
    """Create a wallet keyed by the phone number (normalised to E.164). A kiosk gets the
    kiosk view back, and a 409 that does not say whose the phone is."""
    if caller.role != "admin":
        ctx.limit_phone_lookups(caller)  # a 409 tells whether a phone is known
    try:
        with ctx.store.transaction() as conn:
            customer, _phone = customer_store.register_customer(
                conn,
                body.phone,
                default_region=ctx.config.default_region,
                email=body.email,
                now=_now(ctx),
            )
    except Conflict:
        if caller.role != "admin":
            raise
        e164 = customer_store.normalise_phone(body.phone, ctx.config.default_region)
        with ctx.store.read() as conn:
            owner = reports.customer_of_phone(conn, e164)
        raise Conflict(f"this phone number is already registered to {owner or '?'}") from None
    return _customer_for(ctx, caller, customer)


@customers.get("", summary="Find a customer by phone number", responses=RATE_LIMITED)
def find_customer(
    ctx: Ctx,
    caller: AdminOrKiosk,
    phone: Annotated[
        str,
        Query(min_length=3, max_length=32, description="Any common format, e.g. 07911 123456."),
    ],
) -> m.AnyCustomerOut:
    """The customer registered with this phone number (404 if none), e.g. at a kiosk: a
    kiosk gets the id, the masked phone and the wallet only. Lookups are rate-limited per
    key (`api.phone_lookups` per `api.phone_lookup_window_s`; 429 with Retry-After)."""
    ctx.limit_phone_lookups(caller)
    e164 = customer_store.normalise_phone(phone, ctx.config.default_region)
    with ctx.store.read() as conn:
        found = reports.customer_of_phone(conn, e164)
    if found is None:
        raise NotFound("no customer with this phone number")
    return _customer_for(ctx, caller, found)


@customers.get("/{customer}", summary="Read a customer")
def read_customer(customer: str, ctx: Ctx, _caller: Admin) -> m.CustomerOut:
    return _customer_out(ctx, customer)


@customers.delete("/{customer}", summary="Erase a customer")
def erase_customer(customer: str, ctx: Ctx, _caller: Admin) -> m.ErasedOut:
    """Remove the phone, e-mail, beacon keys, vehicles, visits, deliveries, parking sessions,
    dead letters naming the customer and the wallet — from the tables and from the database
    files (secure delete, then the WAL checkpointed and truncated)."""
    with ctx.store.transaction() as conn:
        removed = customer_store.erase_customer(conn, customer)
    ctx.store.checkpoint()  # and from the files: no WAL frame keeps a copy
    return m.ErasedOut(customer=customer, removed=removed)


@customers.post(
    "/{customer}/beacon-keys", status_code=status.HTTP_201_CREATED, summary="Attach a beacon key"
)
def attach_beacon_key(
    customer: str, body: m.BeaconKeyIn, ctx: Ctx, _caller: Admin
) -> m.BeaconKeyOut:
    """Attach the key of a pre-programmed tag, or make a new key for the app (admin only: a
    key lets its holder be seen as the customer, so a kiosk never mints one)."""
    with ctx.store.transaction() as conn:
        key_id, key = customer_store.attach_beacon_key(conn, customer, body.key, _now(ctx))
    return m.BeaconKeyOut(key_id=key_id, key=key)


@customers.post(
    "/{customer}/vehicles", status_code=status.HTTP_201_CREATED, summary="Attach a vehicle"
)
def attach_vehicle(customer: str, body: m.VehicleIn, ctx: Ctx, _caller: Admin) -> m.VehicleOut:
    with ctx.store.transaction() as conn:
        plate = customer_store.attach_vehicle(conn, customer, body.plate, body.country, _now(ctx))
    return m.VehicleOut(plate=plate)


# --- wallets --------------------------------------------------------------------------


@wallets.get("/{customer}/wallet", summary="Balances per pocket")
def wallet(customer: str, ctx: Ctx, caller: Staff) -> m.WalletOut:
    """A tenant sees only its own pocket; admins and kiosks see every pocket."""
    with ctx.store.read() as conn:
        customer_store.require_customer(conn, customer)
        pockets = ledger.balances(conn, customer, _now(ctx))
    if caller.role == "tenant":
        pockets = [p for p in pockets if p.pocket == caller.business]
    return m.WalletOut(
        customer=customer,
        pockets=[
            m.PocketOut(
                pocket=p.pocket, balance=p.balance, available=p.available, next_expiry=p.next_expiry
            )
            for p in pockets
        ],
    )


@wallets.get("/{customer}/history", summary="Journal of a wallet")
def wallet_history(
    customer: str,
    ctx: Ctx,
    caller: AdminOrTenant,
    *,
    pocket: Annotated[
        str | None, Query(description="Only this pocket (tenants: their own).")
    ] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[m.JournalEntry]:
    """Newest first; one page of `limit` rows from `offset`, optionally within a time range."""
    if caller.role == "tenant":
        pocket = pocket or caller.business or ""
        own_business(caller, pocket)
    with ctx.store.read() as conn:
        customer_store.require_customer(conn, customer)
        rows = ledger.history(
            conn, customer, pocket, limit, offset=offset, since=since, until=until
        )
    return [
        m.JournalEntry(
            id=r["id"],
            ts=from_iso(r["ts"]),
            pocket=r["pocket"],
            delta=r["delta"],
            kind=r["kind"],
            reason=r["reason"],
            text=r["text"],
        )
        for r in rows
    ]


@wallets.post("/{customer}/pockets/{pocket}/spend", summary="Spend points from a pocket")
def spend(
    customer: str, pocket: str, body: m.SpendIn, ctx: Ctx, caller: AdminOrTenant
) -> m.SpendOut:
    """Draws the earliest-expiring lots first; 409 if the pocket cannot cover it."""
    own_business(caller, pocket)
    now = _now(ctx)
    with ctx.store.transaction() as conn:
        customer_store.require_customer(conn, customer)
        result = ledger.spend(
            conn,
            customer=customer,
            pocket=pocket,
            points=body.points,
            idem_key=f"api-spend:{pocket}:{body.idempotency_key}",
            now=now,
            text=body.text,
        )
        available = sum(
            b.available for b in ledger.balances(conn, customer, now) if b.pocket == pocket
        )
    return m.SpendOut(outcome=result.outcome, points=result.points, available=available)


# --- stores and nodes -----------------------------------------------------------------


def _visible_stores(ctx: ApiContext, caller: Principal) -> list[m.StoreOut]:
    return [
        m.StoreOut(id=s.id, name=s.name, business=s.business, zone=s.zone, nodes=list(s.nodes))
        for s in ctx.config.stores
        if caller.role != "tenant" or s.business == caller.business
    ]


@mall.get("/stores", summary="The mall's stores")
def list_stores(ctx: Ctx, caller: Staff) -> list[m.StoreOut]:
    """Tenants see their own stores only."""
    return _visible_stores(ctx, caller)


@mall.get("/nodes", summary="Edge nodes and their last status and health")
def list_nodes(ctx: Ctx, caller: Caller) -> list[m.NodeOut]:
    """Admins see every node, tenants their stores' nodes, a node key itself."""
    store_of = ctx.config.store_of_node()
    with ctx.store.read() as conn:
        rows = reports.nodes(conn)
    ids = sorted(set(store_of) | set(rows))
    out = []
    for node in ids:
        store = store_of.get(node)
        if caller.role == "tenant" and (store is None or store.business != caller.business):
            continue
        if caller.role == "node" and node != caller.node:
            continue
        if caller.role == "kiosk":
            continue
        row = rows.get(node)
        out.append(
            m.NodeOut(
                id=node,
                store=store.id if store else None,
                state=row["state"] if row else None,
                since=from_iso(row["since"]) if row and row["since"] else None,
                software=row["software"] if row else None,
                last_seen=from_iso(row["last_seen"]) if row and row["last_seen"] else None,
                health=json.loads(row["last_health"]) if row and row["last_health"] else None,
            )
        )
    return out


# --- campaigns ------------------------------------------------------------------------


def _campaign_out(ctx: ApiContext, c: offers.Campaign) -> m.CampaignOut:
    with ctx.store.read() as conn:
        count = offers.delivery_count(conn, c)
    return m.CampaignOut(
        id=c.id,
        business=c.business,
        title=c.title,
        text=c.text,
        image_url=c.image_url,
        starts_at=c.starts_at,
        ends_at=c.ends_at,
        stores=list(c.stores),
        zones=list(c.zones),
        segment=c.segment,
        cap_count=c.cap_count,
        cap_period_s=c.cap_period_s,
        bonus_points=c.bonus_points,
        deliveries=count,
    )


@campaigns.post("", status_code=status.HTTP_201_CREATED, summary="Create a campaign")
def create_campaign(body: m.CampaignIn, ctx: Ctx, caller: AdminOrTenant) -> m.CampaignOut:
    """A tenant creates campaigns for its own business only (its key sets `business`); they
    act at its own stores only. The admin also creates the mall's own campaigns (business
    `mall`), which may target any store, zone or car park."""
    business = body.business or caller.business
    if business is None:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "an admin must give the business")
    own_business(caller, business)
    places: dict[str, offers.Place] = dict(ctx.stores)
    if business == ledger.COALITION:
        parks = ctx.config.parking.car_parks if ctx.config.parking else ()
        places.update({park.id: offers.CarParkPlace.of(park) for park in parks})
    elif business not in {store.business for store in ctx.config.stores}:
        raise InvalidInput(f"no store of the mall belongs to business {business!r}")
    campaign = offers.Campaign(
        id=body.id,
        business=business,
        title=body.title,
        text=body.text,
        image_url=body.image_url,
        starts_at=body.starts_at.astimezone(UTC),
        ends_at=body.ends_at.astimezone(UTC),
        stores=tuple(body.stores),
        zones=tuple(body.zones),
        segment=body.segment,
        cap_count=body.cap_count,
        cap_period_s=body.cap_period_s,
        bonus_points=body.bonus_points,
    )
    with ctx.store.transaction() as conn:
        campaign = offers.create_campaign(conn, campaign, places, _now(ctx))
    return _campaign_out(ctx, campaign)


@campaigns.get("", summary="List campaigns")
def list_campaigns(
    ctx: Ctx,
    caller: AdminOrTenant,
    *,
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[m.CampaignOut]:
    """By id; tenants see their own campaigns only. `since`/`until`: only campaigns valid at
    some time in that range."""
    with ctx.store.read() as conn:
        found = offers.list_campaigns(
            conn,
            caller.business if caller.role == "tenant" else None,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
    return [_campaign_out(ctx, c) for c in found]


def _own_campaign(ctx: ApiContext, caller: Principal, campaign_id: str) -> offers.Campaign:
    with ctx.store.read() as conn:
        campaign = offers.get_campaign(conn, campaign_id)
    if caller.role == "tenant" and campaign.business != caller.business:
        raise NotFound(f"no campaign {campaign_id!r}")  # another tenant's: do not even confirm
    return campaign


@campaigns.get("/{campaign_id}", summary="Read a campaign")
def read_campaign(campaign_id: str, ctx: Ctx, caller: AdminOrTenant) -> m.CampaignOut:
    return _campaign_out(ctx, _own_campaign(ctx, caller, campaign_id))


@campaigns.delete(
    "/{campaign_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a campaign"
)
def delete_campaign(campaign_id: str, ctx: Ctx, caller: AdminOrTenant) -> None:
    _own_campaign(ctx, caller, campaign_id)
    with ctx.store.transaction() as conn:
        offers.delete_campaign(conn, campaign_id)


@mall.get("/kiosk/offers", summary="Offers a kiosk shows now")
def kiosk_offers(ctx: Ctx, _caller: AdminOrKiosk) -> list[m.OfferOut]:
    with ctx.store.read() as conn:
        active = offers.list_campaigns(conn, active_at=_now(ctx))
    return [m.OfferOut(**c.card().model_dump()) for c in active]


# --- statistics -----------------------------------------------------------------------


@stats.get("/visits", summary="Visits per store and day")
def visit_stats(
    ctx: Ctx,
    caller: AdminOrTenant,
    day: Annotated[
        str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="Local day.")
    ] = None,
    store: Annotated[str | None, Query(description="One store.")] = None,
) -> list[m.VisitStats]:
    """Tenants see their own stores only."""
    business = (caller.business or "") if caller.role == "tenant" else None
    with ctx.store.read() as conn:
        rows = reports.visit_stats(conn, business=business, day=day, store=store)
    return [
        m.VisitStats(
            store=r["store"],
            day=r["day"],
            visits=r["visits"],
            customers=r["customers"],
            points=r["points"],
        )
        for r in rows
    ]


def _hour(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:00Z")


@stats.get("/footfall", summary="Footfall per node and hour (SQLite rollups)")
def footfall_stats(
    ctx: Ctx,
    caller: AdminOrTenant,
    *,
    node: Annotated[str | None, Query(max_length=64, description="One node.")] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> list[m.FootfallStats]:
    """By hour, then node; tenants see their stores' nodes only. `since`/`until` select the
    hours that overlap that range."""
    own = None
    if caller.role == "tenant":
        own = sorted(
            n
            for n, store in ctx.config.store_of_node().items()
            if store.business == caller.business
        )
    with ctx.store.read() as conn:
        rows = reports.footfall(
            conn,
            among=own,
            node=node,
            from_hour=None if since is None else _hour(since),
            # hours that start before it
            until=None if until is None else until.strftime("%Y-%m-%dT%H:%MZ"),
            limit=limit,
            offset=offset,
        )
    return [
        m.FootfallStats(
            node=r["node"],
            hour=r["hour"],
            unique_tags=r["unique_tags"],
            adverts=r["adverts"],
            windows=r["windows"],
        )
        for r in rows
    ]


# --- operations -----------------------------------------------------------------------


def _dead_letter_out(row: sqlite3.Row, preview: int | None) -> m.DeadLetterOut:
    kept = bytes(row["payload"])
    shown = kept if preview is None else kept[:preview]
    return m.DeadLetterOut(
        id=row["id"],
        ts=from_iso(row["ts"]),
        node=row["node"],
        topic=row["topic"],
        kind=row["kind"],
        reason=row["reason"],
        size=row["size"],
        sha256=row["sha256"],
        kept=len(kept),
        payload=shown.decode("utf-8", "replace"),
    )


@admin.get("/dead-letters", summary="Messages ingest rejected (newest first, bounded)")
def dead_letters(
    ctx: Ctx,
    _caller: Admin,
    limit: Annotated[int, Query(ge=1, le=200, description="Most rows in this page.")] = 50,
    before_id: Annotated[
        int | None,
        Query(
            ge=1,
            le=2**62,
            description="Only rows older than this id (the next page: the last id of this one).",
        ),
    ] = None,
    node: Annotated[str | None, Query(max_length=64, description="Only this node's.")] = None,
    preview: Annotated[int, Query(ge=0, le=1024, description="Payload bytes shown per row.")] = 256,
) -> list[m.DeadLetterOut]:
    """At most 200 rows of at most 1 KiB of payload each; `GET /dead-letters/{id}` shows
    all that was kept of one."""
    with ctx.store.read() as conn:
        rows = reports.dead_letters(conn, before_id=before_id, node=node, limit=limit)
    return [_dead_letter_out(r, preview) for r in rows]


@admin.get("/dead-letters/{dead_letter_id}", summary="One dead letter with its kept payload")
def dead_letter(
    dead_letter_id: Annotated[int, Path(ge=1, le=2**62)], ctx: Ctx, _caller: Admin
) -> m.DeadLetterOut:
    """The payload as kept (its first `ingest.dead_letters.payload_max_bytes`)."""
    with ctx.store.read() as conn:
        row = reports.dead_letter(conn, dead_letter_id)
    if row is None:
        raise NotFound(f"no dead letter {dead_letter_id}")
    return _dead_letter_out(row, None)


@admin.get("/ingest/stats", summary="Processed events by outcome, dead letters per node")
def ingest_stats(ctx: Ctx, _caller: Admin) -> m.IngestStats:
    with ctx.store.read() as conn:
        totals = reports.ingest_totals(conn)
    outcomes, dead, by_node = totals.outcomes, totals.dead_letters, totals.dead_letters_by_node
    refused = {str(code): n for code, n in sorted(ctx.refused.items())}
    return m.IngestStats(
        outcomes=outcomes, dead_letters=dead, dead_letters_by_node=by_node, api_refused=refused
    )
