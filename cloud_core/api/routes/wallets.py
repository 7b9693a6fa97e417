"""Wallets: balances per pocket, the journal, spending."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from cloud_core import customers as customer_store
from cloud_core import ledger, reports
from cloud_core.api import models as m
from cloud_core.api.deps import (
    ERRORS,
    AdminOrKiosk,
    AdminOrTenant,
    Ctx,
    Limit,
    Offset,
    Since,
    Staff,
    Until,
    now,
    own_business,
)
from cloud_core.ledger import from_iso

router = APIRouter(prefix="/customers", tags=["wallets"], responses=ERRORS)

RECENT_CREDITS = 5
EXPIRING_DAYS = 7


@router.get("/{customer}/wallet", summary="Balances per pocket")
def wallet(customer: str, ctx: Ctx, caller: Staff) -> m.WalletOut:
    """A tenant sees only its own pocket; admins and kiosks see every pocket."""
    with ctx.store.read() as conn:
        customer_store.require_customer(conn, customer)
        pockets = ledger.balances(conn, customer, now(ctx))
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


@router.get("/{customer}/wallet/summary", summary="Recent credits and points expiring soon")
def wallet_summary(customer: str, ctx: Ctx, _caller: AdminOrKiosk) -> m.WalletSummaryOut:
    """For a self-service screen: the last few credits (date, pocket, points, text) and,
    per pocket, the points expiring within the next week with the earliest date."""
    moment = now(ctx)
    with ctx.store.read() as conn:
        customer_store.require_customer(conn, customer)
        recent = reports.recent_credits(conn, customer, RECENT_CREDITS)
        expiring = reports.expiring_between(
            conn, customer, moment, moment + timedelta(days=EXPIRING_DAYS)
        )
    return m.WalletSummaryOut(
        customer=customer,
        recent=[
            m.CreditOut(ts=c.ts, pocket=c.pocket, points=c.points, text=c.text) for c in recent
        ],
        expiring=[
            m.ExpiringOut(pocket=e.pocket, points=e.points, earliest=e.earliest) for e in expiring
        ],
        expiring_days=EXPIRING_DAYS,
    )


@router.get("/{customer}/history", summary="Journal of a wallet")
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


@router.post("/{customer}/pockets/{pocket}/spend", summary="Spend points from a pocket")
def spend(
    customer: str, pocket: str, body: m.SpendIn, ctx: Ctx, caller: AdminOrTenant
) -> m.SpendOut:
    """Draws the earliest-expiring lots first; 409 if the pocket cannot cover it."""
    own_business(caller, pocket)
    moment = now(ctx)
    with ctx.store.transaction() as conn:
        customer_store.require_customer(conn, customer)
        result = ledger.spend(
            conn,
            customer=customer,
            pocket=pocket,
            points=body.points,
            idem_key=f"api-spend:{pocket}:{body.idempotency_key}",
            now=moment,
            text=body.text,
        )
        available = sum(
            b.available for b in ledger.balances(conn, customer, moment) if b.pocket == pocket
        )
    return m.SpendOut(outcome=result.outcome, points=result.points, available=available)
