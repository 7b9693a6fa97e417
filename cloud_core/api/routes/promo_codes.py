"""Promo-code pools ("external coupons") and the gift showcase (long: one resource's pools,
uploads, claims, uses, printed list and gifts, with the shopper's codes in the wallet).

Roles: the admin creates pools and gifts and uploads codes; a kiosk (or the admin) claims a
code for a shopper or buys a gift with the shopper's coalition points; the partner's tenant
key reads its own pools, prints them and marks codes used; another tenant's pool answers 404.
"""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from cloud_core import customers as customer_store
from cloud_core import ledger, promo_codes, promo_csv, showcase
from cloud_core.api import promo_models as pm
from cloud_core.api.auth import ApiContext, Principal
from cloud_core.api.deps import (
    ERRORS,
    Admin,
    AdminOrKiosk,
    AdminOrTenant,
    Ctx,
    Limit,
    Offset,
    Staff,
    now,
)
from cloud_core.errors import Conflict, NotFound, PayloadTooLarge
from cloud_core.ingest.notices import NoticeOutbox
from cloud_core.rules.common import Notice
from cloud_core.rules.credit import change_notice
from cloud_core.store import retrying

log = logging.getLogger(__name__)

#: The largest CSV upload (about 150 000 codes of 20 characters).
MAX_UPLOAD_BYTES = 4 * 1024 * 1024

router = APIRouter(prefix="/promo-codes", tags=["promo codes"], responses=ERRORS)
wallet_router = APIRouter(prefix="/customers", tags=["wallets"], responses=ERRORS)


def _stock(pool: promo_codes.Pool) -> pm.StockOut:
    return pm.StockOut(
        total=pool.total, claimed=pool.claimed, used=pool.used, free=pool.free, low=pool.low
    )


def _pool_out(pool: promo_codes.Pool, gift: showcase.Gift | None) -> pm.PoolOut:
    return pm.PoolOut(
        id=pool.id,
        business=pool.business,
        title=pool.title,
        description=pool.description,
        valid_from=pool.valid_from,
        valid_until=pool.valid_until,
        low_stock=pool.low_stock,
        per_customer=pool.per_customer,
        stock=_stock(pool),
        gift=gift.id if gift else None,
    )


def _own_pool(ctx: ApiContext, caller: Principal, pool_id: str) -> promo_codes.Pool:
    with ctx.store.read() as conn:
        pool = promo_codes.get_pool(conn, pool_id)
    if caller.role == "tenant" and pool.business != caller.business:
        raise NotFound(f"no promo-code pool {pool_id!r}")  # another tenant's: do not confirm
    return pool


def _upload_out(upload: promo_codes.Upload) -> pm.UploadOut:
    return pm.UploadOut(
        id=upload.id,
        pool=upload.pool,
        state=upload.state,
        total=upload.total,
        done=upload.done,
        added=upload.added,
        duplicates_in_file=upload.duplicates_in_file,
        duplicates_in_pool=upload.duplicates_in_pool,
        bad=upload.bad,
        problems=[pm.ProblemRow.model_validate(p) for p in upload.problems],
        detail=upload.detail,
        created_at=upload.created_at,
        finished_at=upload.finished_at,
    )


# --- pools -------------------------------------------------------------------------------


@router.post("/pools", status_code=status.HTTP_201_CREATED, summary="Create a promo-code pool")
def create_pool(body: pm.PoolIn, ctx: Ctx, _caller: Admin) -> pm.PoolOut:
    """An empty pool for a partner business; upload its codes next."""
    pool = promo_codes.Pool(
        id=body.id,
        business=body.business,
        title=body.title,
        description=body.description,
        valid_from=body.valid_from.astimezone(UTC),
        valid_until=body.valid_until.astimezone(UTC),
        low_stock=body.low_stock,
        per_customer=body.per_customer,
    )
    with ctx.store.transaction() as conn:
        created = promo_codes.create_pool(conn, pool, now(ctx))
    return _pool_out(created, None)


@router.get("/pools", summary="List promo-code pools with their stock")
def list_pools(
    ctx: Ctx, caller: AdminOrTenant, *, limit: Limit = 100, offset: Offset = 0
) -> list[pm.PoolOut]:
    """By id; a tenant sees its own business's pools only."""
    business = caller.business if caller.role == "tenant" else None
    with ctx.store.read() as conn:
        found = promo_codes.list_pools(conn, business, limit=limit, offset=offset)
        backing = {p.id: showcase.gift_of_pool(conn, p.id) for p in found}
    return [_pool_out(p, backing[p.id]) for p in found]


@router.get("/pools/{pool_id}", summary="Read a pool and its stock")
def read_pool(pool_id: str, ctx: Ctx, caller: AdminOrTenant) -> pm.PoolOut:
    pool = _own_pool(ctx, caller, pool_id)
    with ctx.store.read() as conn:
        gift = showcase.gift_of_pool(conn, pool_id)
    return _pool_out(pool, gift)


# --- uploads -----------------------------------------------------------------------------


async def _bounded_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(f"the file is larger than {MAX_UPLOAD_BYTES} bytes")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > MAX_UPLOAD_BYTES:
            raise PayloadTooLarge(f"the file is larger than {MAX_UPLOAD_BYTES} bytes")
    return bytes(body)


@router.post(
    "/pools/{pool_id}/uploads",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Upload a partner's codes (CSV)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
    responses={
        413: {"model": ERRORS[400]["model"], "description": "The file is over 4 MiB."},
        415: {"model": ERRORS[400]["model"], "description": "Not `text/csv`."},
        422: {"model": ERRORS[400]["model"], "description": "Not UTF-8 CSV, or no code in it."},
    },
)
async def upload_codes(
    pool_id: str,
    request: Request,
    ctx: Ctx,
    _caller: Admin,
    background: BackgroundTasks,
    response: Response,
) -> pm.UploadOut:
    """A `text/csv` body: one code per line in the first column (a `code` header is
    optional). A file that is not UTF-8 CSV with at least one row is refused whole (422,
    nothing written); otherwise the rows are judged in the background — read the upload
    (`Location`) for its progress and the report of duplicates and bad rows."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "text/csv":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send the codes as text/csv")
    body = await _bounded_body(request)
    total = await run_in_threadpool(promo_csv.check_envelope, body)

    def start() -> promo_codes.Upload:
        with ctx.store.transaction() as conn:
            return promo_codes.start_upload(conn, pool_id, total, now(ctx))

    upload = await run_in_threadpool(start)
    background.add_task(promo_codes.run_upload, ctx.store, upload, body, lambda: now(ctx))
    response.headers["Location"] = f"/promo-codes/pools/{pool_id}/uploads/{upload.id}"
    return _upload_out(upload)


@router.get("/pools/{pool_id}/uploads/{upload_id}", summary="An upload's progress and report")
def read_upload(pool_id: str, upload_id: str, ctx: Ctx, _caller: Admin) -> pm.UploadOut:
    with ctx.store.read() as conn:
        return _upload_out(promo_codes.get_upload(conn, pool_id, upload_id, now(ctx)))


# --- claims and uses ---------------------------------------------------------------------


@router.post(
    "/pools/{pool_id}/claims",
    status_code=status.HTTP_201_CREATED,
    summary="Give a shopper the next unused code",
    responses={
        200: {"model": pm.ClaimOut, "description": "The shopper's code given before."},
        409: {
            "model": ERRORS[409]["model"],
            "description": "No code left (`urn:mallnet:problem:promo-codes-exhausted`), the "
            "pool is not valid now, or its codes are sold as a gift.",
        },
    },
)
def claim_code(
    pool_id: str, body: pm.ClaimIn, ctx: Ctx, _caller: AdminOrKiosk, response: Response
) -> pm.ClaimOut:
    """Each code goes to one shopper only. Within the pool's per-customer cap a claim gives a
    new code (201); at the cap, or repeated with the same `request_key`, the shopper's code
    comes back (200, `already_claimed`)."""
    moment = now(ctx)
    key = None if body.request_key is None else f"{body.customer}:{body.request_key}"

    def attempt() -> tuple[promo_codes.Claim, int]:
        # one whole transaction, safe to run again (a PostgreSQL serialization conflict)
        with ctx.store.transaction() as conn:
            customer_store.require_customer(conn, body.customer)
            gift = showcase.gift_of_pool(conn, pool_id)
            if gift is not None:
                raise Conflict(f"pool {pool_id!r} backs gift {gift.id!r}: its codes are bought")
            got = promo_codes.claim(conn, pool_id, body.customer, moment, request_key=key)
            return got, promo_codes.get_pool(conn, pool_id).free

    got, left = retrying(attempt)  # PostgreSQL: a lost serialization conflict runs again
    if got.outcome == "already_claimed":
        response.status_code = status.HTTP_200_OK
    return pm.ClaimOut(
        outcome=got.outcome, pool=got.pool, code=got.code, claimed_at=got.claimed_at, left=left
    )


@router.post(
    "/pools/{pool_id}/uses",
    summary="Mark a code used (the partner)",
    responses={
        409: {
            "model": ERRORS[409]["model"],
            "description": "Used before (`urn:mallnet:problem:promo-code-used`), never given "
            "to a shopper, or the pool has expired.",
        }
    },
)
def use_code(pool_id: str, body: pm.UseIn, ctx: Ctx, caller: AdminOrTenant) -> pm.UseOut:
    """The partner took the code a shopper showed: once. The same request again with its
    `request_key` is answered again; any other attempt on a used code is a 409."""
    _own_pool(ctx, caller, pool_id)
    with ctx.store.transaction() as conn:
        used = promo_codes.mark_used(
            conn, pool_id, body.code, caller.name, now(ctx), request_key=body.request_key
        )
    return pm.UseOut(outcome=used.outcome, pool=used.pool, code=used.code, used_at=used.used_at)


@router.get(
    "/pools/{pool_id}/print",
    response_class=HTMLResponse,
    summary="The pool's codes as a printable list (for a partner with no POS)",
    responses={200: {"content": {"text/html": {}}, "description": "An HTML page to print."}},
)
def print_codes(
    pool_id: str,
    ctx: Ctx,
    caller: AdminOrTenant,
    *,
    include_used: Annotated[bool, Query(description="Also list codes already used.")] = True,
) -> HTMLResponse:
    """Every code in upload order with a column to tick, the date and a signature; served
    whole by the core (no script, no outside resource)."""
    pool = _own_pool(ctx, caller, pool_id)
    with ctx.store.read() as conn:
        rows = promo_codes.printable_codes(conn, pool_id, include_used=include_used)
    html = promo_codes.printable_page(pool, rows, now(ctx))
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'self'",
            "Cache-Control": "no-store",
        },
    )


# --- gifts -------------------------------------------------------------------------------


def _gift_out(gift: showcase.Gift, pool: promo_codes.Pool) -> pm.GiftOut:
    return pm.GiftOut(
        id=gift.id,
        pool=gift.pool,
        business=pool.business,
        title=gift.title,
        description=gift.description,
        points=gift.points,
        left=pool.free,
        valid_until=pool.valid_until,
    )


@router.post("/gifts", status_code=status.HTTP_201_CREATED, summary="Put a gift on the showcase")
def create_gift(body: pm.GiftIn, ctx: Ctx, _caller: Admin) -> pm.GiftOut:
    """A gift priced in coalition points, backed by a pool (its codes are sold, not claimed)."""
    gift = showcase.Gift(
        id=body.id,
        pool=body.pool,
        title=body.title,
        description=body.description,
        points=body.points,
    )
    with ctx.store.transaction() as conn:
        showcase.create_gift(conn, gift, now(ctx))
        pool = promo_codes.get_pool(conn, gift.pool)
    return _gift_out(gift, pool)


@router.get("/gifts", summary="The gift showcase")
def list_gifts(
    ctx: Ctx, caller: Staff, *, limit: Limit = 100, offset: Offset = 0
) -> list[pm.GiftOut]:
    """Every gift with its price and the codes left; a tenant sees its own business's."""
    business = caller.business if caller.role == "tenant" else None
    with ctx.store.read() as conn:
        found = showcase.list_gifts(conn, business, limit=limit, offset=offset)
    return [_gift_out(g, p) for g, p in found]


@router.post(
    "/gifts/{gift_id}/purchases",
    status_code=status.HTTP_201_CREATED,
    summary="Buy a gift with coalition points",
    responses={
        200: {"model": pm.PurchaseOut, "description": "The same purchase again (same key)."},
        409: {
            "model": ERRORS[409]["model"],
            "description": "Sold out (`urn:mallnet:problem:promo-codes-exhausted`), too few "
            "points (`urn:mallnet:problem:insufficient-points`), the shopper's cap reached or "
            "the gift not valid now; nothing was spent.",
        },
    },
)
def buy_gift(
    gift_id: str, body: pm.PurchaseIn, ctx: Ctx, _caller: AdminOrKiosk, response: Response
) -> pm.PurchaseOut:
    """Takes the gift's points from the shopper's coalition pocket and gives the next unused
    code, both or neither; the shopper's inbox gets a notice of the write-off."""
    moment = now(ctx)

    def attempt() -> tuple[showcase.Purchase, int]:
        # one whole transaction, safe to run again (a PostgreSQL serialization conflict)
        with ctx.store.transaction() as conn:
            customer_store.require_customer(conn, body.customer)
            bought = showcase.buy(conn, gift_id, body.customer, body.idempotency_key, moment)
            if bought.changes:
                NoticeOutbox(ctx.config.mall, ctx.store).keep(
                    conn, [_write_off_notice(body.customer, bought)], ledger.iso(moment)
                )
            available = sum(
                b.available
                for b in ledger.balances(conn, body.customer, moment)
                if b.pocket == ledger.COALITION
            )
            return bought, available

    bought, available = retrying(attempt)
    if bought.outcome == "duplicate":
        response.status_code = status.HTTP_200_OK
    return pm.PurchaseOut(
        outcome=bought.outcome,
        id=bought.id,
        gift=bought.gift,
        code=bought.code,
        points=bought.points,
        available=available,
        ts=bought.ts,
    )


def _write_off_notice(customer: str, bought: showcase.Purchase) -> Notice:
    first = bought.changes[0]
    merged = ledger.Change(
        customer, first.pocket, -bought.points, first.reason, first.text, first.ts
    )
    return Notice(customer, change_notice(merged, f"-{bought.points} points: {first.text}"))


# --- the shopper's codes -----------------------------------------------------------------


@wallet_router.get("/{customer}/promo-codes", summary="A shopper's promo codes")
def customer_codes(customer: str, ctx: Ctx, caller: Staff) -> list[pm.HeldCodeOut]:
    """Newest first, claimed and bought alike; a tenant sees its own business's codes only."""
    business = caller.business if caller.role == "tenant" else None
    with ctx.store.read() as conn:
        customer_store.require_customer(conn, customer)
        held = promo_codes.wallet_codes(conn, customer, business)
    return [
        pm.HeldCodeOut(
            pool=c.pool,
            business=c.business,
            title=c.title,
            code=c.code,
            claimed_at=c.claimed_at,
            used_at=c.used_at,
            valid_until=c.valid_until,
        )
        for c in held
    ]
