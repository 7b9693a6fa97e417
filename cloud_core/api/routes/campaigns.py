"""Campaigns: tenants' and the mall's offers."""

from __future__ import annotations

from datetime import UTC

from fastapi import APIRouter, HTTPException, status

from cloud_core import ledger, offers
from cloud_core.api import models as m
from cloud_core.api.auth import ApiContext, Principal
from cloud_core.api.deps import (
    ERRORS,
    AdminOrTenant,
    Ctx,
    Limit,
    Offset,
    Since,
    Until,
    now,
    own_business,
)
from cloud_core.errors import InvalidInput, NotFound

router = APIRouter(prefix="/campaigns", tags=["campaigns"], responses=ERRORS)


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


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a campaign")
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
        campaign = offers.create_campaign(conn, campaign, places, now(ctx))
    return _campaign_out(ctx, campaign)


@router.get("", summary="List campaigns")
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


@router.get("/{campaign_id}", summary="Read a campaign")
def read_campaign(campaign_id: str, ctx: Ctx, caller: AdminOrTenant) -> m.CampaignOut:
    return _campaign_out(ctx, _own_campaign(ctx, caller, campaign_id))


@router.delete(
    "/{campaign_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a campaign"
)
def delete_campaign(campaign_id: str, ctx: Ctx, caller: AdminOrTenant) -> None:
    _own_campaign(ctx, caller, campaign_id)
    with ctx.store.transaction() as conn:
        offers.delete_campaign(conn, campaign_id)
