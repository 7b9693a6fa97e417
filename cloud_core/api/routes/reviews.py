"""Reviews and ratings: invitations after a visit, a review (after a visit or from a table QR),
moderation by the mall, the tenant's reply, ratings per store (``cloud_core/reviews.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from cloud_core import customers, reviews
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
    own_business,
)
from cloud_core.config import Ident, StoreConfig
from cloud_core.errors import Conflict, InvalidInput, NotFound
from cloud_core.schemes_config import ReviewSettings

router = APIRouter(tags=["reviews"], responses=ERRORS)


def _example(**example: JsonValue) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})


class InvitationOut(BaseModel):
    model_config = _example(store="shoe-hub", name="Shoe Hub", visited_at="2026-11-23T10:00:00Z")
    store: str = Field(description="A store the shopper visited and may review.")
    name: str = Field(description="Its name.")
    visited_at: datetime = Field(description="The shopper's last visit there.")


class ReviewIn(BaseModel):
    model_config = _example(
        customer="c5f0c2a9be1d34c7a8b6e0f1", store="shoe-hub", stars=5, text="Great service."
    )
    customer: str = Field(min_length=1, max_length=64, description="The reviewing shopper.")
    store: Ident = Field(description="The store reviewed.")
    stars: int = Field(ge=1, le=5, description="1 to 5 stars.")
    text: str = Field(default="", max_length=1000, description="What the shopper says.")
    table_code: str | None = Field(
        default=None,
        max_length=200,
        description="A table QR code of the store (no visit needed); none: a recent visit.",
    )


class ReviewOut(BaseModel):
    model_config = _example(
        id="r5f0c2a9be1d34c7a8b6e0f1",
        store="shoe-hub",
        stars=5,
        text="Great service.",
        source="visit",
        status="published",
        created_at="2026-11-23T12:00:00Z",
        moderation_note=None,
        reply="Thank you!",
        replied_at="2026-11-23T13:00:00Z",
    )
    id: str = Field(description="Review id.")
    store: str = Field(description="The store reviewed.")
    stars: int = Field(description="1 to 5.")
    text: str = Field(description="The shopper's text.")
    source: Literal["visit", "table"] = Field(description="Invited by a visit or a table QR.")
    status: Literal["pending", "published", "rejected"] = Field(
        description="pending until the mall publishes or rejects it; only published ones count."
    )
    created_at: datetime = Field(description="When it was written.")
    moderation_note: str | None = Field(description="The mall's note (e.g. why rejected).")
    reply: str | None = Field(description="The tenant's reply.")
    replied_at: datetime | None = Field(description="When the tenant replied.")


class ModerationIn(BaseModel):
    model_config = _example(decision="publish", note=None)
    decision: Literal["publish", "reject"] = Field(description="Publish or reject.")
    note: str | None = Field(default=None, max_length=300, description="Why (kept).")


class ReplyIn(BaseModel):
    model_config = _example(text="Thank you, see you soon!")
    text: str = Field(min_length=1, max_length=1000, description="The tenant's reply.")


class RatingOut(BaseModel):
    model_config = _example(store="shoe-hub", reviews=4, average=4.25, histogram=[0, 0, 1, 1, 2])
    store: str = Field(description="The store.")
    reviews: int = Field(description="Published reviews.")
    average: float | None = Field(description="Mean stars of those (None: no review yet).")
    histogram: list[int] = Field(description="Published reviews with 1, 2, 3, 4 and 5 stars.")


class TableCodeOut(BaseModel):
    model_config = _example(
        store="bean-bar-l1", table="t12", code="mr1.bean-bar-l1.t12.3q2-7w9Xz0aBcDeFgHiJkL"
    )
    store: str = Field(description="The store.")
    table: str = Field(description="The table.")
    code: str = Field(description="What the table's printed QR encodes.")


def _settings(ctx: ApiContext) -> ReviewSettings:
    if not ctx.config.reviews.enabled:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "reviews are not enabled")
    return ctx.config.reviews


def _store(ctx: ApiContext, store: str) -> StoreConfig:
    found = ctx.stores.get(store)
    if found is None:
        raise NotFound(f"no store {store!r}")
    return found


def _table_key(ctx: ApiContext) -> bytes:
    if ctx.config.store_qr is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "table QR codes need store_qr configured")
    return ctx.config.store_qr.key()


def _out(review: reviews.Review) -> ReviewOut:
    return ReviewOut(
        id=review.id,
        store=review.store,
        stars=review.stars,
        text=review.text,
        source="table" if review.source == "table" else "visit",
        status=review.status,
        created_at=review.created_at,
        moderation_note=review.moderation_note,
        reply=review.reply,
        replied_at=review.replied_at,
    )


@router.get(
    "/customers/{customer}/review-invitations", summary="Stores a shopper is invited to review"
)
def invitations(customer: str, ctx: Ctx, _caller: AdminOrKiosk) -> list[InvitationOut]:
    """Stores the shopper visited between `reviews.invite_after_s` and `invite_within_s` ago
    and has not reviewed yet (what the app shows as "rate your visit")."""
    settings = _settings(ctx)
    with ctx.store.read() as conn:
        customers.require_customer(conn, customer)
        found = reviews.invitations(
            conn,
            customer,
            now(ctx),
            after_s=settings.invite_after_s,
            within_s=settings.invite_within_s,
        )
    return [
        InvitationOut(store=i.store, name=ctx.stores[i.store].name, visited_at=i.visited_at)
        for i in found
        if i.store in ctx.stores
    ]


@router.post("/reviews", status_code=status.HTTP_201_CREATED, summary="A shopper reviews a store")
def write_review(body: ReviewIn, ctx: Ctx, _caller: AdminOrKiosk) -> ReviewOut:
    """1–5 stars and a text, after an invitation (a recent visit) or with the store's table
    QR code; one per shopper and store (409). Pending until the mall moderates it."""
    settings = _settings(ctx)
    store = _store(ctx, body.store)
    source = "visit"
    if body.table_code is not None:
        if reviews.verify_table_code(_table_key(ctx), ctx.config.mall, body.table_code) != store.id:
            raise InvalidInput("this table QR code belongs to another store")
        source = "table"
    with ctx.store.transaction() as conn:
        customers.require_customer(conn, body.customer)
        if source == "visit" and store.id not in {
            i.store
            for i in reviews.invitations(
                conn,
                body.customer,
                now(ctx),
                after_s=settings.invite_after_s,
                within_s=settings.invite_within_s,
            )
        }:
            raise Conflict("no visit to review: the shopper is not invited to review this store")
        review_id = reviews.add(
            conn,
            customer=body.customer,
            store=store.id,
            business=store.business,
            stars=body.stars,
            text=body.text.strip(),
            source=source,
            now=now(ctx),
        )
        return _out(reviews.get(conn, review_id))


@router.get("/reviews", summary="Reviews, newest first")
def list_reviews(
    ctx: Ctx,
    caller: AdminOrTenant,
    *,
    limit: Limit = 50,
    offset: Offset = 0,
    store: Annotated[str | None, Query(max_length=64, description="One store only.")] = None,
    review_status: Annotated[
        Literal["pending", "published", "rejected"] | None,
        Query(alias="status", description="One status only."),
    ] = None,
) -> list[ReviewOut]:
    """The mall sees every review (to moderate); a tenant its own stores' reviews."""
    _settings(ctx)
    if store is not None:
        own_business(caller, _store(ctx, store).business)
    business = caller.business if caller.role == "tenant" else None
    with ctx.store.read() as conn:
        found = reviews.find(
            conn,
            store=store,
            business=business,
            status=review_status,
            limit=limit,
            offset=offset,
        )
    return [_out(r) for r in found]


def _review_for(ctx: ApiContext, caller: Principal, review_id: str) -> reviews.Review:
    with ctx.store.read() as conn:
        review = reviews.get(conn, review_id)
    own_business(caller, review.business)
    return review


@router.post("/reviews/{review_id}/moderation", summary="The mall publishes or rejects a review")
def moderate(review_id: str, body: ModerationIn, ctx: Ctx, _caller: Admin) -> ReviewOut:
    _settings(ctx)
    decision: reviews.Status = "published" if body.decision == "publish" else "rejected"
    with ctx.store.transaction() as conn:
        reviews.moderate(conn, review_id, decision, body.note, now(ctx))
        return _out(reviews.get(conn, review_id))


@router.post("/reviews/{review_id}/reply", summary="The tenant replies to a review")
def reply(review_id: str, body: ReplyIn, ctx: Ctx, caller: AdminOrTenant) -> ReviewOut:
    """The store's tenant (or the mall) answers; a later reply replaces the earlier one."""
    _settings(ctx)
    _review_for(ctx, caller, review_id)
    with ctx.store.transaction() as conn:
        reviews.reply(conn, review_id, body.text.strip(), now(ctx))
        return _out(reviews.get(conn, review_id))


@router.get("/stores/{store}/rating", summary="A store's rating from its published reviews")
def rating(store: str, ctx: Ctx, _caller: Staff) -> RatingOut:
    _settings(ctx)
    found = _store(ctx, store)
    with ctx.store.read() as conn:
        counts = reviews.histogram(conn, found.id)
    total = sum(counts)
    average = round(sum((i + 1) * n for i, n in enumerate(counts)) / total, 2) if total else None
    return RatingOut(store=found.id, reviews=total, average=average, histogram=counts)


@router.get("/stores/{store}/table-qr", summary="The review QR code for a table of a store")
def table_qr(
    store: str,
    ctx: Ctx,
    caller: AdminOrTenant,
    table: Annotated[str, Query(pattern=r"^[A-Za-z0-9_-]{1,32}$", description="Table name.")],
) -> TableCodeOut:
    """What to print on the table: a shopper who scans it may review the store without a
    visit recorded (a café's tables, where no beacon is)."""
    _settings(ctx)
    found = _store(ctx, store)
    own_business(caller, found.business)
    code = reviews.table_code(_table_key(ctx), ctx.config.mall, found.id, table)
    return TableCodeOut(store=found.id, table=table, code=code)
