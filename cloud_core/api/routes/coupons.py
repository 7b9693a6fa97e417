"""Coupon series (docs/core.md, "Coupons"): the admin or a tenant creates series and issues
coupons; a kiosk (or the admin) sells them for coalition points; the wallet lists a shopper's
coupons; the owner's till redeems them once (``POST /terminal/coupons/redeem``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response, status

from cloud_core import coupons, ledger
from cloud_core import customers as customer_store
from cloud_core.api import coupon_models as cm
from cloud_core.api.auth import ApiContext, Principal
from cloud_core.api.deps import (
    ERRORS,
    AdminOrKiosk,
    AdminOrTenant,
    Ctx,
    Limit,
    Offset,
    Staff,
    allow,
    now,
)
from cloud_core.api.routes.me import Me
from cloud_core.api.till import idempotent_write, keep_notices, till_of
from cloud_core.errors import Forbidden, InvalidInput, NotFound
from cloud_core.store import Conn, retrying

router = APIRouter(prefix="/coupons", tags=["coupons"], responses=ERRORS)
wallet_router = APIRouter(prefix="/customers", tags=["wallets"], responses=ERRORS)
till_router = APIRouter(prefix="/terminal", tags=["terminal"], responses=ERRORS)
me_router = APIRouter(prefix="/me", tags=["shopper"], responses=ERRORS)

Terminal = Annotated[Principal, Depends(allow("terminal"))]
IdempotencyKey = Annotated[
    str,
    Header(
        min_length=8,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="A retry with the same key and body gets the original answer.",
    ),
]


def _series_out(s: coupons.Series) -> cm.SeriesOut:
    return cm.SeriesOut(
        id=s.id,
        owner=s.owner,
        title=s.title,
        discount=s.discount,
        emission_start=s.emission_start,
        emission_end=s.emission_end,
        total_cap=s.total_cap,
        per_customer_cap=s.per_customer_cap,
        code_mode=s.code_mode,
        valid_from=s.valid_from,
        valid_until=s.valid_until,
        valid_day=s.valid_day,
        price_points=s.price_points,
        issued=s.issued,
    )


def qr_key(ctx: ApiContext) -> bytes | None:
    """The coupons' QR key (read from ``coupons.secret_file``), None if not configured."""
    return ctx.config.coupons.key() if ctx.config.coupons is not None else None


def coupon_out(ctx: ApiContext, c: coupons.Coupon, key: bytes | None = None) -> cm.CouponOut:
    key = key or qr_key(ctx)
    qr = coupons.qr_payload(key, c) if key is not None else None
    s = c.series
    return cm.CouponOut(
        id=c.id,
        series=s.id,
        owner=s.owner,
        title=s.title,
        discount=s.discount,
        customer=c.customer,
        code=c.code,
        qr=qr,
        source=c.source,
        points=c.points,
        issued_at=c.issued_at,
        valid_from=s.valid_from,
        valid_until=s.valid_until,
        valid_day=s.valid_day,
        used_at=c.used_at,
        used_store=c.used_store,
    )


def _own(caller: Principal, series: coupons.Series) -> None:
    if caller.role == "tenant" and series.owner != caller.business:
        raise NotFound(f"no coupon series {series.id!r}")


@router.post("/series", status_code=status.HTTP_201_CREATED, summary="Create a coupon series")
def create_series(body: cm.SeriesIn, ctx: Ctx, caller: AdminOrTenant) -> cm.SeriesOut:
    """A tenant's key creates its own business's series; the admin any business's or the
    mall's (`owner: mall`, redeemable at every till)."""
    owner = body.owner or (caller.business if caller.role == "tenant" else None)
    if owner is None:
        raise InvalidInput("owner is needed (a business or `mall`)")
    if caller.role == "tenant" and owner != caller.business:
        raise Forbidden("a tenant creates its own business's series only")
    series = coupons.Series(
        id=body.id,
        owner=owner,
        title=body.title,
        discount=body.discount,
        emission_start=body.emission_start,
        emission_end=body.emission_end,
        total_cap=body.total_cap,
        per_customer_cap=body.per_customer_cap,
        code_mode=body.code_mode,
        shared_code=body.shared_code,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        valid_day=body.valid_day,
        price_points=body.price_points,
    )
    with ctx.store.transaction() as conn:
        coupons.create_series(conn, series, now(ctx))
    return _series_out(series)


@router.get("/series", summary="Coupon series")
def list_series(
    ctx: Ctx, caller: Staff, limit: Limit = 100, offset: Offset = 0
) -> list[cm.SeriesOut]:
    """By id; a tenant sees its own business's series only."""
    owner = caller.business if caller.role == "tenant" else None
    with ctx.store.read() as conn:
        return [
            _series_out(s) for s in coupons.list_series(conn, owner, limit=limit, offset=offset)
        ]


@router.get("/series/{series_id}", summary="A coupon series, with the coupons issued")
def get_series(series_id: str, ctx: Ctx, caller: Staff) -> cm.SeriesOut:
    with ctx.store.read() as conn:
        series = coupons.get_series(conn, series_id)
    _own(caller, series)
    return _series_out(series)


@router.post(
    "/series/{series_id}/coupons",
    status_code=status.HTTP_201_CREATED,
    summary="Issue a coupon to a shopper",
    responses={200: {"model": cm.CouponOut, "description": "The same coupon again (same key)."}},
)
def issue(
    series_id: str, body: cm.IssueIn, ctx: Ctx, caller: AdminOrTenant, response: Response
) -> cm.CouponOut:
    """A grant by the admin or the series' tenant (a campaign calls the same function). 409
    `coupons-exhausted` past the total or per-shopper cap, `coupon-not-issuable` outside the
    emission period."""
    if body.customer is None and caller.role != "admin":
        raise Forbidden("only the admin issues bearer coupons")
    moment = now(ctx)
    key = f"coupon-grant:{caller.name}:{body.idempotency_key}"

    def attempt() -> coupons.Coupon:
        with ctx.store.transaction() as conn:
            _own(caller, coupons.get_series(conn, series_id))
            if body.customer is not None:
                customer_store.require_customer(conn, body.customer)
            return coupons.issue(conn, series_id, body.customer, key, moment)

    coupon = retrying(attempt)
    if coupon.outcome == "duplicate":
        response.status_code = status.HTTP_200_OK
    return coupon_out(ctx, coupon)


@router.post(
    "/series/{series_id}/purchases",
    status_code=status.HTTP_201_CREATED,
    summary="Buy a coupon with coalition points",
    responses={200: {"model": cm.CouponOut, "description": "The same coupon again (same key)."}},
)
def buy(
    series_id: str, body: cm.BuyIn, ctx: Ctx, _caller: AdminOrKiosk, response: Response
) -> cm.CouponOut:
    """The series' points from the shopper's coalition pocket and the coupon, both or
    neither (409 `insufficient-points`, `coupons-exhausted`)."""
    moment = now(ctx)

    def attempt() -> coupons.Coupon:
        with ctx.store.transaction() as conn:
            customer_store.require_customer(conn, body.customer)
            bought = coupons.buy(conn, series_id, body.customer, body.idempotency_key, moment)
            keep_notices(ctx, conn, bought.changes, moment)
            return bought

    coupon = retrying(attempt)
    if coupon.outcome == "duplicate":
        response.status_code = status.HTTP_200_OK
    return coupon_out(ctx, coupon)


@wallet_router.get("/{customer}/coupons", summary="A shopper's coupons")
def customer_coupons(customer: str, ctx: Ctx, caller: Staff) -> list[cm.CouponOut]:
    """Newest first, used ones too; a tenant sees its own business's coupons only."""
    owner = caller.business if caller.role == "tenant" else None
    with ctx.store.read() as conn:
        customer_store.require_customer(conn, customer)
        held = coupons.wallet(conn, customer, owner)
    key = qr_key(ctx)
    return [coupon_out(ctx, c, key) for c in held]


@router.post("/series/{series_id}/uses", summary="The partner marks a coupon used")
def mark_used(
    series_id: str,
    body: cm.RedeemIn,
    ctx: Ctx,
    caller: AdminOrTenant,
    idempotency_key: IdempotencyKey,
) -> cm.CouponOut:
    """For a partner with no till: its tenant key (or the admin) marks a coupon of its own
    series used, by QR payload or code, under the same rules as the till's redemption."""
    with ctx.store.read() as conn:
        series = coupons.get_series(conn, series_id)
    _own(caller, series)
    coupon_id = _verified(ctx, body)

    def run(conn: Conn, moment: datetime) -> tuple[cm.CouponOut, list[ledger.Change]]:
        used = coupons.redeem(
            conn,
            business=series.owner,
            store="-",
            seller=caller.name,
            now=moment,
            tz=ctx.tz,
            coupon_id=coupon_id,
            code=body.code,
            customer=body.customer,
            series_id=series_id,
        )
        return coupon_out(ctx, used), []

    return idempotent_write(
        ctx,
        caller,
        key=idempotency_key,
        operation=f"coupon-use:{series_id}",
        body=body.model_dump_json(),
        out=cm.CouponOut,
        run=run,
    )


def _verified(ctx: ApiContext, body: cm.RedeemIn) -> str | None:
    """The coupon id of a verified QR payload (None when a code is given instead)."""
    if body.qr is None:
        if body.code is None:
            raise InvalidInput("give the coupon's qr or its code")
        return None
    if ctx.config.coupons is None:
        raise InvalidInput("coupon QR payloads are not configured here (coupons.secret_file)")
    coupon_id, holder = coupons.verify_qr(ctx.config.coupons.key(), body.qr)
    if body.customer is not None and holder not in (None, body.customer):
        raise coupons.CouponQrError("this coupon belongs to another shopper")
    return coupon_id


@me_router.get("/coupons", summary="Your coupons, with their QR payloads")
def my_coupons(ctx: Ctx, me: Me) -> list[cm.CouponOut]:
    """Newest first, used ones too: show a coupon's `qr` at the till."""
    with ctx.store.read() as conn:
        held = coupons.wallet(conn, me.customer)
    key = qr_key(ctx)
    return [coupon_out(ctx, c, key) for c in held]


@till_router.post("/coupons/redeem", summary="Redeem a coupon at the till (once)")
def redeem(
    body: cm.RedeemIn,
    ctx: Ctx,
    caller: Terminal,
    idempotency_key: IdempotencyKey,
) -> cm.CouponOut:
    """By the scanned QR payload (signed; 422 `coupon-qr` if forged or altered) or by a code.
    409 `coupon-used`, `coupon-not-valid` (outside its days); 403 `coupon-other-business`."""
    till = till_of(ctx, caller)
    coupon_id = _verified(ctx, body)

    def run(conn: Conn, moment: datetime) -> tuple[cm.CouponOut, list[ledger.Change]]:
        used = coupons.redeem(
            conn,
            business=till.business,
            store=till.store,
            seller=till.seller,
            now=moment,
            tz=ctx.tz,
            coupon_id=coupon_id,
            code=body.code,
            customer=body.customer,
        )
        return coupon_out(ctx, used), []

    return idempotent_write(
        ctx,
        caller,
        key=idempotency_key,
        operation="coupon-redeem",
        body=body.model_dump_json(),
        out=cm.CouponOut,
        run=run,
    )
