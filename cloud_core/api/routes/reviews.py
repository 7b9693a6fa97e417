"""Reviews and ratings of stores (``cloud_core/reviews.py``; docs/core.md "Reviews"): the
invited shopper reviews (``/me``), the tenant replies, the mall moderates, and anyone with
a key reads a store's ratings (visible reviews only)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from cloud_core import reviews
from cloud_core.api.auth import ApiContext, Principal
from cloud_core.api.deps import ERRORS, Admin, AdminOrTenant, Ctx, Limit, Offset, Staff, now
from cloud_core.api.routes.me import Me
from cloud_core.config import StoreConfig
from cloud_core.engagement_config import ReviewSettings

router = APIRouter(tags=["reviews"], responses=ERRORS)


class InvitationOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "r0123456789abcdef0123",
                    "store": "bean-bar-l1",
                    "source": "visit",
                    "created_at": "2026-11-23T11:00:00Z",
                    "expires_at": "2026-12-07T11:00:00Z",
                }
            ]
        }
    )
    id: str
    store: str
    source: str = Field(description="`visit`, `purchase` or `qr` (a table's code).")
    created_at: datetime
    expires_at: datetime


class TableCodeIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"code": "mallnet:r:bean-bar-l1:4f2a9c0b1d3e5f6a7b8c9d0e"}]
        },
    )
    code: str = Field(min_length=1, max_length=200, description="The table QR's text.")


class TableCodeOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"store": "bean-bar-l1", "code": "mallnet:r:bean-bar-l1:4f2a9c0b1d3e5f6a7b8c9d0e"}
            ]
        }
    )
    store: str
    code: str = Field(description="Print it as a QR on the store's tables.")


class ReviewIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"invitation": "r0123456789abcdef0123", "stars": 5, "text": "Great!"}]
        },
    )
    invitation: str = Field(min_length=1, max_length=64, description="Your invitation's id.")
    stars: int = Field(ge=1, le=5, description="1 to 5.")
    text: str = Field(default="", max_length=10_000, description="Bounded by `reviews.text_max`.")


class ReplyIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"text": "Thank you, see you soon!"}]}
    )
    text: str = Field(min_length=1, max_length=2000, description="The store's answer.")


class ModerationIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"hidden": True, "reason": "offensive language"}]},
    )
    hidden: bool = Field(description="Hide (true) or show (false) the review.")
    reason: str = Field(min_length=1, max_length=500, description="Why (kept with the review).")


class ReviewOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "v0123456789abcdef0123",
                    "store": "bean-bar-l1",
                    "stars": 4,
                    "text": "Good coffee",
                    "created_at": "2026-11-23T12:00:00Z",
                    "reply": "Thank you!",
                    "replied_at": "2026-11-23T13:00:00Z",
                    "hidden": False,
                    "moderation_reason": None,
                }
            ]
        }
    )
    id: str
    store: str
    stars: int
    text: str
    created_at: datetime
    reply: str | None
    replied_at: datetime | None
    hidden: bool
    moderation_reason: str | None = Field(description="Shown to the mall and the tenant.")


class RatingOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "store": "bean-bar-l1",
                    "count": 3,
                    "average": 4.33,
                    "distribution": {"1": 0, "2": 0, "3": 0, "4": 2, "5": 1},
                }
            ]
        }
    )
    store: str
    count: int = Field(description="Visible reviews.")
    average: float | None = Field(description="Average stars (none without reviews).")
    distribution: dict[str, int] = Field(description="Reviews per star, `1` … `5`.")


def _settings(ctx: ApiContext) -> ReviewSettings:
    if ctx.config.reviews is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "reviews are not configured")
    return ctx.config.reviews


def _store(ctx: ApiContext, store: str) -> StoreConfig:
    found = ctx.stores.get(store)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no store {store}")
    return found


def _out(review: reviews.Review, *, staff: bool) -> ReviewOut:
    return ReviewOut(
        id=review.id,
        store=review.store,
        stars=review.stars,
        text=review.text,
        created_at=review.created_at,
        reply=review.reply,
        replied_at=review.replied_at,
        hidden=review.hidden,
        moderation_reason=review.moderation_reason if staff else None,
    )


def _invitation(inv: reviews.Invitation) -> InvitationOut:
    return InvitationOut(
        id=inv.id,
        store=inv.store,
        source=inv.source,
        created_at=inv.created_at,
        expires_at=inv.expires_at,
    )


@router.get("/me/review-invitations", summary="Your open invitations to review a store")
def my_invitations(ctx: Ctx, me: Me) -> list[InvitationOut]:
    _settings(ctx)
    with ctx.store.read() as conn:
        return [_invitation(i) for i in reviews.open_invitations(conn, me.customer, now(ctx))]


@router.post(
    "/me/review-invitations",
    summary="Scan a table's review QR: that day's invitation for its store",
    status_code=status.HTTP_201_CREATED,
)
def scan_table_code(body: TableCodeIn, ctx: Ctx, me: Me) -> InvitationOut:
    settings = _settings(ctx)
    with ctx.store.transaction() as conn:
        inv = reviews.invite_from_qr(
            conn,
            ctx.config,
            settings.key("review secret"),
            customer=me.customer,
            code=body.code,
            now=now(ctx),
        )
    return _invitation(inv)


@router.post(
    "/me/reviews",
    summary="Review a store through your invitation (1–5 stars and a text), once",
    status_code=status.HTTP_201_CREATED,
)
def post_review(body: ReviewIn, ctx: Ctx, me: Me) -> ReviewOut:
    """Only the invited shopper may use an invitation (404 for anyone else's), once (409),
    before it expires (422)."""
    _settings(ctx)
    with ctx.store.transaction() as conn:
        review = reviews.submit(
            conn,
            ctx.config,
            customer=me.customer,
            invitation_id=body.invitation,
            stars=body.stars,
            text=body.text,
            now=now(ctx),
        )
    return _out(review, staff=False)


def _own_store(ctx: ApiContext, caller: Principal, store: str) -> StoreConfig:
    found = _store(ctx, store)
    if caller.role == "tenant" and found.business != caller.business:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not your store")
    return found


@router.get(
    "/stores/{store}/review-code",
    summary="The store's signed table QR text for reviews",
)
def review_code(store: str, ctx: Ctx, caller: AdminOrTenant) -> TableCodeOut:
    settings = _settings(ctx)
    _own_store(ctx, caller, store)
    return TableCodeOut(store=store, code=reviews.table_code(settings.key("review secret"), store))


@router.get(
    "/stores/{store}/ratings",
    summary="A store's rating: average, count, distribution (hidden reviews excluded)",
)
def store_rating(store: str, ctx: Ctx, _caller: Staff) -> RatingOut:
    _settings(ctx)
    _store(ctx, store)
    with ctx.store.read() as conn:
        rated = reviews.rating(conn, store)
    return RatingOut(
        store=store,
        count=rated.count,
        average=rated.average,
        distribution={str(k): v for k, v in rated.distribution.items()},
    )


@router.get(
    "/stores/{store}/reviews",
    summary="A store's reviews, newest first (hidden ones to the mall and the store only)",
)
def store_reviews(
    store: str, ctx: Ctx, caller: Staff, limit: Limit = 50, offset: Offset = 0
) -> list[ReviewOut]:
    _settings(ctx)
    found = _store(ctx, store)
    staff = caller.role == "admin" or (
        caller.role == "tenant" and caller.business == found.business
    )
    with ctx.store.read() as conn:
        rows = reviews.list_reviews(conn, store, with_hidden=staff, limit=limit, offset=offset)
    return [_out(r, staff=staff) for r in rows]


@router.post("/reviews/{review}/reply", summary="The store's tenant replies to a review")
def reply_review(review: str, body: ReplyIn, ctx: Ctx, caller: AdminOrTenant) -> ReviewOut:
    _settings(ctx)
    with ctx.store.transaction() as conn:
        found = reviews.get(conn, review)
        if caller.role == "tenant" and found.business != caller.business:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "not your store's review")
        replied = reviews.reply(conn, review, body.text, caller.name, now(ctx))
    return _out(replied, staff=True)


@router.post(
    "/reviews/{review}/moderation", summary="The mall hides or shows a review, with a reason"
)
def moderate_review(review: str, body: ModerationIn, ctx: Ctx, caller: Admin) -> ReviewOut:
    _settings(ctx)
    with ctx.store.transaction() as conn:
        done = reviews.moderate(
            conn, review, hidden=body.hidden, reason=body.reason, by=caller.name, now=now(ctx)
        )
    return _out(done, staff=True)
