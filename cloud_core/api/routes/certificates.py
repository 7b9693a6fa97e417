"""Paper bonus certificates: a seller issues one at the till, a shopper's scan credits it once
(at a kiosk, or through the mall office), the business sees per seller what was issued and
scanned (``cloud_core/certificates.py``). Prepaid gift certificates: the mall office sells
one, a shopper activates it into the ``gift`` pocket (``cloud_core/gift_cards.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from cloud_core import certificates, gift_cards, goods, holds, ledger
from cloud_core import customers as customer_store
from cloud_core.api import terminal_models as t
from cloud_core.api.auth import Principal
from cloud_core.api.deps import (
    ERRORS,
    Admin,
    AdminOrKiosk,
    AdminOrTenant,
    Ctx,
    allow,
    now,
    own_business,
)
from cloud_core.api.routes.terminal import IdempotencyKey
from cloud_core.api.till import expire_holds, idempotent_write, keep_notices, till_of
from cloud_core.store import Conn

router = APIRouter(tags=["certificates"], responses=ERRORS)

Terminal = Annotated[Principal, Depends(allow("terminal"))]


def _out(cert: certificates.Certificate) -> t.CertificateOut:
    return t.CertificateOut(
        code=cert.code,
        business=cert.business,
        store=cert.store,
        seller=cert.seller,
        points=cert.points,
        pocket=cert.pocket,
        issued_at=cert.issued_at,
        expires_at=cert.expires_at,
        scanned=cert.redeemed_at is not None,
        scanned_at=cert.redeemed_at,
    )


@router.post("/terminal/certificates", summary="Issue a paper bonus certificate", status_code=201)
def issue(
    body: t.CertificateIn, ctx: Ctx, caller: Terminal, idempotency_key: IdempotencyKey
) -> t.CertificateOut:
    """A code worth `points` (the business funds them, like its cashback), recorded with the
    seller who issued it; print it and hand it over. Valid for 90 days until scanned."""
    till = till_of(ctx, caller)

    def run(conn: Conn, moment: datetime) -> tuple[t.CertificateOut, list[ledger.Change]]:
        cert = certificates.issue(conn, ctx.config.spending, till, points=body.points, now=moment)
        return _out(cert), []

    return idempotent_write(
        ctx,
        caller,
        key=idempotency_key,
        operation="certificate",
        body=body.model_dump_json(),
        out=t.CertificateOut,
        run=run,
    )


@router.post(
    "/customers/{customer}/certificates",
    summary="Scan a bonus certificate into a wallet",
    responses={409: {"model": ERRORS[409]["model"], "description": "Already scanned or expired."}},
)
def scan(customer: str, body: t.ScanIn, ctx: Ctx, _caller: AdminOrKiosk) -> t.CertificateOut:
    """Credits the certificate's points once (its inbox notice too); a second scan, by
    anyone, is a 409; an unknown code a 404."""
    moment = now(ctx)
    expire_holds(ctx, moment)
    with ctx.store.transaction() as conn:
        customer_store.require_customer(conn, customer)
        cert, change = certificates.redeem(
            conn, ctx.config.spending, code=body.code, customer=customer, now=moment
        )
        keep_notices(ctx, conn, [change], moment)
    return _out(cert)


@router.get("/certificates/sellers", summary="Bonus certificates per issuing seller")
def sellers(
    ctx: Ctx,
    caller: AdminOrTenant,
    business: Annotated[
        str | None, Query(max_length=64, description="The business (tenants: their own).")
    ] = None,
) -> list[t.SellerTallyOut]:
    """Per seller and store: certificates issued and scanned, with their points."""
    if caller.role == "tenant":
        business = business or caller.business or ""
        own_business(caller, business)
    rows: list[Any] = []
    with ctx.store.read() as conn:
        rows = certificates.tally(conn, business or "")
    return [t.SellerTallyOut(**row.__dict__) for row in rows]


def _gift_out(gift: gift_cards.GiftCertificate) -> t.GiftOut:
    return t.GiftOut(
        code=gift.code,
        amount_cents=gift.amount_cents,
        businesses=list(gift.businesses),
        sold_at=gift.sold_at,
        expires_at=gift.expires_at,
        activated=gift.activated_at is not None,
    )


@router.post("/gift-certificates", summary="Sell a prepaid gift certificate", status_code=201)
def sell_gift(body: t.GiftSaleIn, ctx: Ctx, caller: Admin) -> t.GiftOut:
    """The mall office sells a certificate worth `amount_cents`, valid at the named
    businesses (or every shop); each use at a till is settled with the shop that took it."""
    with ctx.store.transaction() as conn:
        gift = gift_cards.sell(
            conn,
            amount_cents=body.amount_cents,
            businesses=tuple(body.businesses),
            valid_days=body.valid_days,
            sold_by=caller.name,
            now=now(ctx),
        )
    return _gift_out(gift)


@router.post(
    "/customers/{customer}/gift-certificates",
    summary="Activate a gift certificate into a wallet",
    responses={409: {"model": ERRORS[409]["model"], "description": "Already used or expired."}},
)
def activate_gift(customer: str, body: t.ScanIn, ctx: Ctx, _caller: AdminOrKiosk) -> t.GiftOut:
    """Its money goes into the `gift` pocket (cents), spendable at its shops; once."""
    moment = now(ctx)
    with ctx.store.transaction() as conn:
        customer_store.require_customer(conn, customer)
        gift, change = gift_cards.activate(conn, code=body.code, customer=customer, now=moment)
        keep_notices(ctx, conn, [change], moment)
    return _gift_out(gift)


def _goods_write(
    ctx: Ctx, caller: Principal, body: t.GoodsIn, key: str, operation: str
) -> t.GoodsOut:
    till = till_of(ctx, caller)
    item = goods.goods_at(ctx.config.spending, till, body.goods)
    act = goods.sell if operation == "goods-sell" else goods.use

    def run(conn: Conn, moment: datetime) -> tuple[t.GoodsOut, list[ledger.Change]]:
        customer_store.require_customer(conn, body.customer)
        changes = act(
            conn,
            item,
            customer=body.customer,
            count=body.count,
            key=f"{caller.name}:{key}",
            now=moment,
        )
        left = holds.available(conn, body.customer, item.id, moment)
        return t.GoodsOut(customer=body.customer, goods=item.id, count=body.count, left=left), (
            changes
        )

    return idempotent_write(
        ctx,
        caller,
        key=key,
        operation=operation,
        body=body.model_dump_json(),
        out=t.GoodsOut,
        run=run,
    )


@router.post("/terminal/goods", summary="Sell items into a goods account", status_code=201)
def sell_goods(
    body: t.GoodsIn, ctx: Ctx, caller: Terminal, idempotency_key: IdempotencyKey
) -> t.GoodsOut:
    """E.g. a card of 5 coffees, paid at the till: the items go into the shopper's goods
    pocket (`spending.goods`) and expire after its `expiry_days`."""
    return _goods_write(ctx, caller, body, idempotency_key, "goods-sell")


@router.post("/terminal/goods/use", summary="Take items from a goods account")
def use_goods(
    body: t.GoodsIn, ctx: Ctx, caller: Terminal, idempotency_key: IdempotencyKey
) -> t.GoodsOut:
    """One coffee handed over: 409 `insufficient-points` if the shopper has fewer items."""
    return _goods_write(ctx, caller, body, idempotency_key, "goods-use")
