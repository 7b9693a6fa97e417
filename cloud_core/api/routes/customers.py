"""Customers: register, find by phone, read, erase, beacon keys, vehicles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from cloud_core import customers as customer_store
from cloud_core import ledger, reports
from cloud_core.api import models as m
from cloud_core.api.auth import ApiContext, Principal
from cloud_core.api.deps import (
    ERRORS,
    RATE_LIMITED,
    Admin,
    AdminOrKiosk,
    Ctx,
    now,
)
from cloud_core.errors import Conflict, NotFound
from cloud_core.ledger import from_iso
from cloud_core.rules import referral

router = APIRouter(prefix="/customers", tags=["customers"], responses=ERRORS)


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
        pockets = ledger.balances(conn, customer, now(ctx))
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


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a customer",
    responses=RATE_LIMITED,
)
def register_customer(body: m.CustomerIn, ctx: Ctx, caller: AdminOrKiosk) -> m.AnyCustomerOut:
    """Create a wallet keyed by the phone number (normalised to E.164). A kiosk gets the
    kiosk view back, and a 409 that does not say whose the phone is. With a friend's
    `referral_code` the new shopper joins with it (`POST /referrals`)."""
    if caller.role != "admin":
        ctx.limit_phone_lookups(caller)  # a 409 tells whether a phone is known
    try:
        with ctx.store.transaction() as conn:
            customer, _phone = customer_store.register_customer(
                conn,
                body.phone,
                default_region=ctx.config.default_region,
                email=body.email,
                now=now(ctx),
            )
            if body.referral_code is not None:  # rules/referral.py: paid on the first visit
                if not ctx.config.referrals.enabled:
                    raise NotFound("referrals are not enabled")
                referral.join(
                    conn,
                    referee=customer,
                    code=body.referral_code,
                    now=now(ctx),
                    settings=ctx.config.referrals,
                )
    except Conflict:
        if caller.role != "admin":
            raise
        e164 = customer_store.normalise_phone(body.phone, ctx.config.default_region)
        with ctx.store.read() as conn:
            owner = reports.customer_of_phone(conn, e164)
        raise Conflict(f"this phone number is already registered to {owner or '?'}") from None
    return _customer_for(ctx, caller, customer)


@router.get("", summary="Find a customer by phone number", responses=RATE_LIMITED)
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


@router.get("/{customer}", summary="Read a customer")
def read_customer(customer: str, ctx: Ctx, _caller: Admin) -> m.CustomerOut:
    return _customer_out(ctx, customer)


@router.delete("/{customer}", summary="Erase a customer")
def erase_customer(customer: str, ctx: Ctx, _caller: Admin) -> m.ErasedOut:
    """Remove the phone, e-mail, beacon keys, vehicles, visits, deliveries, parking sessions,
    dead letters naming the customer and the wallet — from the tables and from the database
    files (SQLite: secure delete, then the WAL checkpointed and truncated; PostgreSQL: the
    tables rewritten by VACUUM FULL)."""
    with ctx.store.transaction() as conn:
        removed = customer_store.erase_customer(conn, customer)
    ctx.store.checkpoint()  # and from the files: no WAL frame / dead row keeps a copy
    return m.ErasedOut(customer=customer, removed=removed)


@router.post(
    "/{customer}/beacon-keys", status_code=status.HTTP_201_CREATED, summary="Attach a beacon key"
)
def attach_beacon_key(
    customer: str, body: m.BeaconKeyIn, ctx: Ctx, _caller: Admin
) -> m.BeaconKeyOut:
    """Attach the key of a pre-programmed tag, or make a new key for the app (admin only: a
    key lets its holder be seen as the customer, so a kiosk never mints one)."""
    with ctx.store.transaction() as conn:
        key_id, key = customer_store.attach_beacon_key(conn, customer, body.key, now(ctx))
    return m.BeaconKeyOut(key_id=key_id, key=key)


@router.post(
    "/{customer}/vehicles", status_code=status.HTTP_201_CREATED, summary="Attach a vehicle"
)
def attach_vehicle(customer: str, body: m.VehicleIn, ctx: Ctx, _caller: Admin) -> m.VehicleOut:
    with ctx.store.transaction() as conn:
        plate = customer_store.attach_vehicle(conn, customer, body.plate, body.country, now(ctx))
    return m.VehicleOut(plate=plate)
