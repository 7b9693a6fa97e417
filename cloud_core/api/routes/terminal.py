"""The seller's terminal (role ``terminal``): identify the shopper, quote, reserve → commit
or release points, register and refund purchases. Thin: the decisions are in
``rules/redemption.py``, the writes in ``holds.py`` and ``purchases.py``.

Every write takes an ``Idempotency-Key`` header (``idempotency.py``): the same key and body
answer the original result, another body 409. Each write first expires the holds that are
due (their points back to the shoppers), then runs in one ``BEGIN IMMEDIATE`` transaction
with its inbox notices (the pending-notice outbox; the ingest worker publishes them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path

from cloud_core import coupons, holds, ledger, parking_codes, purchases, reports
from cloud_core import customers as customer_store
from cloud_core.api import terminal_models as t
from cloud_core.api.auth import Principal
from cloud_core.api.deps import ERRORS, RATE_LIMITED, Ctx, allow, now
from cloud_core.api.models import Problem
from cloud_core.api.till import expire_holds, hold_out, idempotent_write, purchase_out, till_of
from cloud_core.cards import verify_card_token
from cloud_core.errors import InvalidInput, NotFound
from cloud_core.ingest.notices import NoticeOutbox
from cloud_core.ledger import COALITION, GIFT
from cloud_core.rules import referral
from cloud_core.store import Conn

router = APIRouter(prefix="/terminal", tags=["terminal"], responses=ERRORS)

Terminal = Annotated[Principal, Depends(allow("terminal"))]
IdempotencyKey = Annotated[
    str,
    Header(
        min_length=8,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="Unique per write: a retry with the same key and body gets the original "
        "answer; the same key with another body is refused (409).",
        examples=["till-3-R-1001-hold-1"],
    ),
]
HoldId = Annotated[
    str,
    Path(
        max_length=64,
        description="The hold's id (`POST /terminal/holds` answered it).",
        examples=["h5d0c1e2f3a4b5c6d7e8f9a0b"],
    ),
]

SPEND_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {
        "model": Problem,
        "description": "Unknown customer, hold or receipt (`urn:mallnet:problem:unknown-receipt`).",
    },
    409: {
        "model": Problem,
        "description": "Refused, nothing written: `type` says why — "
        "`urn:mallnet:problem:insufficient-points`, `…:cap-exceeded`, `…:hold-expired`, "
        "`…:hold-closed` (already committed, released or refunded), "
        "`…:idempotency-key-reused`.",
    },
}


@router.post(
    "/identify",
    summary="Identify the shopper by card QR token or phone",
    responses=RATE_LIMITED,
)
def identify(body: t.IdentifyIn, ctx: Ctx, caller: Terminal) -> t.IdentifyOut:
    """Scan the shopper's card QR (a signed token valid for minutes, never the phone
    number) or type the phone number they tell (rate-limited per key, like a kiosk's
    lookup). Answers the customer id and the pockets spendable at this till."""
    till = till_of(ctx, caller)
    moment = now(ctx)
    if body.card_token is not None:
        if ctx.card_key is None:
            raise InvalidInput("card tokens are not configured here (cards.secret_file)")
        customer = verify_card_token(ctx.card_key, body.card_token, moment)
    else:
        ctx.limit_phone_lookups(caller)
        e164 = customer_store.normalise_phone(body.phone or "", ctx.config.default_region)
        with ctx.store.read() as conn:
            found = reports.customer_of_phone(conn, e164)
        if found is None:
            raise NotFound("no customer with this phone number")
        customer = found
    with ctx.store.read() as conn:
        customer_store.require_customer(conn, customer)
        pockets = {b.pocket: b for b in ledger.balances(conn, customer, moment)}
    return t.IdentifyOut(
        customer=customer,
        pockets=[
            t.TerminalPocket(
                pocket=p,
                available=pockets[p].available if p in pockets else 0,
                next_expiry=pockets[p].next_expiry if p in pockets else None,
            )
            for p in (COALITION, till.business)
        ],
    )


@router.post("/quote", summary="What the shopper can pay with points on a receipt")
def quote(body: t.QuoteIn, ctx: Ctx, caller: Terminal) -> t.QuoteOut:
    """Per pocket the points usable now, the coalition cap of the receipt (the partner's
    share of the order, less what is already held or spent on the receipt) and the amount
    left to pay. Writes nothing."""
    till = till_of(ctx, caller)
    moment = now(ctx)
    expire_holds(ctx, moment)
    with ctx.store.read() as conn:
        customer_store.require_customer(conn, body.customer)
        q = holds.quote(
            conn,
            ctx.config.spending,
            till,
            customer=body.customer,
            receipt=body.receipt,
            order_cents=body.order_cents,
            now=moment,
        )
    return t.QuoteOut(
        customer=body.customer,
        receipt=body.receipt,
        order_cents=q.order_cents,
        cap_pct=q.cap_pct,
        cap_points=q.cap_points,
        cap_left=q.cap_left,
        used_points=q.used_points,
        pockets=[
            t.QuotePocket(
                pocket=COALITION, available=q.coalition_available, usable=q.coalition_usable
            ),
            t.QuotePocket(pocket=till.business, available=q.store_available, usable=q.store_usable),
        ]
        + (
            [t.QuotePocket(pocket=GIFT, available=q.gift_available, usable=q.gift_usable)]
            if q.gift_available
            else []
        ),
        max_points=q.max_points,
        to_pay_cents=q.to_pay_cents,
    )


@router.post(
    "/holds",
    summary="Reserve points for a receipt (phase 1)",
    status_code=201,
    responses=SPEND_ERRORS,
)
def reserve(
    body: t.HoldIn, ctx: Ctx, caller: Terminal, idempotency_key: IdempotencyKey
) -> t.HoldOut:
    """Takes the points out of the shopper's pockets now (soonest-expiring first), capped per
    receipt; commit the hold when the sale is done or release it; an abandoned hold
    expires after `spending.hold_ttl_s` and its points go back."""
    till = till_of(ctx, caller)

    def run(conn: Conn, moment: datetime) -> tuple[t.HoldOut, list[ledger.Change]]:
        customer_store.require_customer(conn, body.customer)
        hold, changes = holds.reserve(
            conn,
            ctx.config.spending,
            till,
            customer=body.customer,
            receipt=body.receipt,
            order_cents=body.order_cents,
            store_points=body.store_points,
            coalition_points=body.coalition_points,
            gift_cents=body.gift_cents,
            now=moment,
        )
        return hold_out(hold), changes

    return idempotent_write(
        ctx,
        caller,
        key=idempotency_key,
        operation="hold",
        body=body.model_dump_json(),
        out=t.HoldOut,
        run=run,
    )


@router.get("/holds/{hold_id}", summary="A hold of this business")
def get_hold(hold_id: HoldId, ctx: Ctx, caller: Terminal) -> t.HoldOut:
    till = till_of(ctx, caller)
    expire_holds(ctx, now(ctx))
    with ctx.store.read() as conn:
        return hold_out(holds.get(conn, hold_id, till.business))


@router.post("/holds/{hold_id}/commit", summary="Commit a hold (phase 2)", responses=SPEND_ERRORS)
def commit(
    hold_id: HoldId, ctx: Ctx, caller: Terminal, idempotency_key: IdempotencyKey
) -> t.HoldOut:
    """The points are spent for good; coalition points funded by another partner (or the
    mall) are recorded in the settlements journal. 409 `hold-expired` past `expires_at`,
    `hold-closed` if already committed or released."""
    till = till_of(ctx, caller)

    def run(conn: Conn, moment: datetime) -> tuple[t.HoldOut, list[ledger.Change]]:
        hold = holds.commit(conn, ctx.config.spending, ctx.tz, till, hold_id=hold_id, now=moment)
        return hold_out(hold), []

    return idempotent_write(
        ctx,
        caller,
        key=idempotency_key,
        operation=f"commit:{hold_id}",
        body="",
        out=t.HoldOut,
        run=run,
    )


@router.post(
    "/holds/{hold_id}/release",
    summary="Release a hold (the sale did not happen)",
    responses=SPEND_ERRORS,
)
def release(
    hold_id: HoldId, ctx: Ctx, caller: Terminal, idempotency_key: IdempotencyKey
) -> t.HoldOut:
    """The points go back into the lots they came from."""
    till = till_of(ctx, caller)

    def run(conn: Conn, moment: datetime) -> tuple[t.HoldOut, list[ledger.Change]]:
        hold, changes = holds.release(conn, till, hold_id, moment)
        return hold_out(hold), changes

    return idempotent_write(
        ctx,
        caller,
        key=idempotency_key,
        operation=f"release:{hold_id}",
        body="",
        out=t.HoldOut,
        run=run,
    )


@router.post(
    "/purchases", summary="Register a purchase (cashback)", status_code=201, responses=SPEND_ERRORS
)
def register_purchase(
    body: t.PurchaseIn, ctx: Ctx, caller: Terminal, idempotency_key: IdempotencyKey
) -> t.PurchaseOut:
    """Records the receipt once per store and credits the cashback of the store's rule
    (`spending.partners`: `cashback_pct` into the business's own pocket or the coalition)."""
    till = till_of(ctx, caller)
    store_name = ctx.stores[till.store].name

    def run(conn: Conn, moment: datetime) -> tuple[t.PurchaseOut, list[ledger.Change]]:
        customer_store.require_customer(conn, body.customer)
        purchase, changes = purchases.register(
            conn,
            ctx.config.spending,
            till,
            customer=body.customer,
            receipt=body.receipt,
            amount_cents=body.amount_cents,
            now=moment,
            store_name=store_name,
        )
        # a referred new shopper's first qualifying visit or purchase pays the referrer, once
        rewarded = referral.reward_first_visit(
            conn, customer=body.customer, trigger=f"purchase:{purchase.id}", ts=moment
        )
        NoticeOutbox(ctx.config.mall, ctx.store).keep(conn, rewarded, ledger.iso(moment))
        if ctx.config.coupons is not None:  # a purchase here may issue another's coupon
            coupons.coalition_grants(
                conn,
                ctx.config.coupons.coalition,
                business=till.business,
                customer=body.customer,
                amount_cents=body.amount_cents,
                purchase_id=purchase.id,
                now=moment,
            )
        out = purchase_out(purchase)
        if ctx.config.parking is not None:  # a partner's purchase validates the car park
            validated = parking_codes.validate_for_purchase(
                conn,
                ctx.config.parking,
                business=till.business,
                customer=body.customer,
                amount_cents=body.amount_cents,
                purchase_id=purchase.id,
                now=moment,
            )
            if validated is not None and validated.outcome == "validated":
                out = out.model_copy(update={"free_parking_minutes": validated.minutes})
        return out, changes

    return idempotent_write(
        ctx,
        caller,
        key=idempotency_key,
        operation="purchase",
        body=body.model_dump_json(),
        out=t.PurchaseOut,
        run=run,
    )


@router.post("/refunds", summary="Refund or cancel a receipt", responses=SPEND_ERRORS)
def refund(
    body: t.RefundIn, ctx: Ctx, caller: Terminal, idempotency_key: IdempotencyKey
) -> t.RefundOut:
    """Reverses exactly what the receipt did: redeemed points back into their lots (with
    the settlement entries negated), open holds released, cashback taken back. 404
    `unknown-receipt`; 409 if the cashback was already spent (nothing written)."""
    till = till_of(ctx, caller)

    def run(conn: Conn, moment: datetime) -> tuple[t.RefundOut, list[ledger.Change]]:
        done, changes = purchases.refund(conn, till, receipt=body.receipt, now=moment, tz=ctx.tz)
        out = t.RefundOut(
            receipt=done.receipt,
            points_returned=done.points_returned,
            cashback_reversed=done.cashback_reversed,
            holds=list(done.holds),
            purchase=purchase_out(done.purchase) if done.purchase else None,
        )
        return out, changes

    return idempotent_write(
        ctx,
        caller,
        key=idempotency_key,
        operation="refund",
        body=body.model_dump_json(),
        out=t.RefundOut,
        run=run,
    )
