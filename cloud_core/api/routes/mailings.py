"""Mailings to shoppers (``cloud_core/mailings.py``; docs/core.md "Mailings"): the mall or a
tenant (its own customers only) drafts a message for a selection, previews the audience,
sends it, and follows its delivery; shoppers unsubscribe per channel by a signed link."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from cloud_core import coupons, mailings
from cloud_core.api.auth import ApiContext, Principal
from cloud_core.api.deps import ERRORS, AdminOrTenant, Ctx, Limit, Offset, now
from cloud_core.config import Ident
from cloud_core.engagement_config import MailingSettings
from cloud_core.errors import Forbidden, InvalidInput

router = APIRouter(tags=["mailings"], responses=ERRORS)

ChannelName = Literal["inbox", "webhook", "email"]


class SelectionIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"min_visits": 2, "visits_within_days": 30, "store": "bean-bar-l1"}]
        },
    )
    min_visits: int | None = Field(
        default=None, ge=1, le=10_000, description="At least this many visits …"
    )
    visits_within_days: int = Field(
        default=30, ge=1, le=3660, description="… within this many days."
    )
    last_visit_within_days: int | None = Field(
        default=None, ge=1, le=3660, description="Last visit within this many days."
    )
    last_visit_before_days: int | None = Field(
        default=None, ge=1, le=3660, description="Last visit more than this many days ago."
    )
    store: Ident | None = Field(default=None, description="A visit or purchase at this store.")
    pocket: Ident | None = Field(
        default=None, description="A balance in this pocket (a tenant: its own only) …"
    )
    min_balance: int = Field(default=1, ge=1, le=10**9, description="… of at least this.")

    def selection(self) -> mailings.Selection:
        return mailings.Selection(**self.model_dump())


class MailingIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Saturday at Bean Bar",
                    "text": "Hot chocolate -20 % this Saturday.",
                    "channels": ["inbox", "webhook"],
                    "selection": {"min_visits": 2, "visits_within_days": 30},
                }
            ]
        },
    )
    title: str = Field(min_length=1, max_length=120, description="The subject.")
    text: str = Field(min_length=1, max_length=2000, description="The message.")
    channels: list[ChannelName] = Field(
        min_length=1, max_length=3, description="Where to deliver (configured channels only)."
    )
    selection: SelectionIn = Field(default_factory=SelectionIn, description="Who, beyond consent.")
    coupon_series: str | None = Field(
        default=None,
        max_length=64,
        description="A coupon series of the sender (e.g. one valid on one given day): each "
        "recipient is issued one coupon of it when the mailing is sent, and the message names it.",
    )


class PreviewIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"selection": {"last_visit_before_days": 30}}]},
    )
    selection: SelectionIn = Field(default_factory=SelectionIn, description="Who, beyond consent.")


class AudienceOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"audience": 412}]})
    audience: int = Field(description="Shoppers the selection reaches now.")


class MailingOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "m3f9a0c1d2e4b5a6c7d8e",
                    "kind": "mailing",
                    "sender": "bean-bar",
                    "title": "Saturday at Bean Bar",
                    "text": "Hot chocolate -20 % this Saturday.",
                    "channels": ["inbox", "webhook"],
                    "selection": {"min_visits": 2, "visits_within_days": 30},
                    "status": "sending",
                    "audience": 2,
                    "created_at": "2026-11-23T10:00:00Z",
                    "sent_at": "2026-11-23T10:05:00Z",
                    "deliveries": {"inbox": {"sent": 2}, "webhook": {"sent": 1, "pending": 1}},
                }
            ]
        }
    )
    id: str
    kind: str = Field(description="`mailing` or `digest` (the weekly digest).")
    sender: str = Field(description="`mall` or the tenant's business.")
    title: str
    text: str
    channels: list[str]
    selection: SelectionIn
    status: str = Field(description="`draft` or `sending` (queued; see `deliveries`).")
    coupon_series: str | None = Field(
        default=None, description="The coupon series each recipient is issued one of."
    )
    audience: int = Field(description="Shoppers it was queued for (0 for a draft).")
    created_at: datetime
    sent_at: datetime | None
    deliveries: dict[str, dict[str, int]] = Field(
        description="Per channel: rows per status (`pending`, `sent`, `failed`, `skipped`)."
    )


class DeliveryOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer": "c0123456789abcdef01234567",
                    "channel": "webhook",
                    "status": "pending",
                    "attempts": 2,
                    "next_attempt_at": "2026-11-23T10:06:00Z",
                    "last_error": "webhook answered HTTP 500",
                    "sent_at": None,
                }
            ]
        }
    )
    customer: str
    channel: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    sent_at: datetime | None


class UnsubscribedOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"channel": "email", "status": "unsubscribed"}]}
    )
    channel: str
    status: Literal["unsubscribed"] = "unsubscribed"


def _settings(ctx: ApiContext) -> MailingSettings:
    if ctx.config.mailings is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "mailings are not configured")
    return ctx.config.mailings


def _sender(ctx: ApiContext, caller: Principal, selection: SelectionIn) -> str:
    """The caller's sender name; a tenant may select by its own stores and pocket only."""
    if caller.role != "tenant":
        return mailings.MALL
    business = caller.business or ""
    store = ctx.stores.get(selection.store) if selection.store else None
    if selection.store is not None and (store is None or store.business != business):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not your store")
    if selection.pocket is not None and selection.pocket != business:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not your pocket")
    return business


def _out(ctx: ApiContext, mailing: mailings.Mailing) -> MailingOut:
    with ctx.store.read() as conn:
        counts = mailings.status_counts(conn, mailing.id)
    return MailingOut(
        id=mailing.id,
        kind=mailing.kind,
        sender=mailing.sender,
        title=mailing.title,
        text=mailing.text,
        channels=list(mailing.channels),
        selection=SelectionIn.model_validate(mailing.selection.__dict__),
        status=mailing.status,
        audience=mailing.audience,
        created_at=mailing.created_at,
        sent_at=mailing.sent_at,
        deliveries=counts,
        coupon_series=mailing.coupon_series,
    )


def _own(ctx: ApiContext, caller: Principal, mailing_id: str) -> mailings.Mailing:
    with ctx.store.read() as conn:
        mailing = mailings.get(conn, mailing_id)
    if caller.role == "tenant" and mailing.sender != caller.business:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no mailing {mailing_id}")
    return mailing


@router.post(
    "/mailings/preview",
    summary="Count the shoppers a selection reaches now (consented; a tenant's own)",
)
def preview(body: PreviewIn, ctx: Ctx, caller: AdminOrTenant) -> AudienceOut:
    _settings(ctx)
    sender = _sender(ctx, caller, body.selection)
    with ctx.store.read() as conn:
        return AudienceOut(
            audience=len(mailings.audience(conn, sender, body.selection.selection(), now(ctx)))
        )


@router.post(
    "/mailings",
    summary="Draft a mailing (the mall's, or a tenant's to its own customers)",
    status_code=status.HTTP_201_CREATED,
)
def create_mailing(body: MailingIn, ctx: Ctx, caller: AdminOrTenant) -> MailingOut:
    settings = _settings(ctx)
    missing = set(body.channels) - set(settings.channels())
    if missing:
        raise InvalidInput(f"channel(s) not configured: {', '.join(sorted(missing))}")
    sender = _sender(ctx, caller, body.selection)
    draft = mailings.Draft(
        title=body.title,
        text=body.text,
        channels=tuple(body.channels),
        selection=body.selection.selection(),
        coupon_series=body.coupon_series,
    )
    with ctx.store.transaction() as conn:
        if body.coupon_series is not None:
            series = coupons.get_series(conn, body.coupon_series)  # NotFound: 404
            if series.owner != sender:
                raise Forbidden("a mailing carries coupons of its own sender's series only")
        mailing = mailings.create(conn, sender, draft, caller.name, now(ctx))
    return _out(ctx, mailing)


@router.get("/mailings", summary="Mailings, newest first (a tenant: its own)")
def list_mailings(
    ctx: Ctx, caller: AdminOrTenant, limit: Limit = 50, offset: Offset = 0
) -> list[MailingOut]:
    _settings(ctx)
    sender = caller.business if caller.role == "tenant" else None
    with ctx.store.read() as conn:
        found = mailings.list_mailings(conn, sender, limit, offset)
    return [_out(ctx, m) for m in found]


@router.get("/mailings/{mailing}", summary="A mailing and its delivery status per channel")
def get_mailing(mailing: str, ctx: Ctx, caller: AdminOrTenant) -> MailingOut:
    _settings(ctx)
    return _out(ctx, _own(ctx, caller, mailing))


@router.post(
    "/mailings/{mailing}/send",
    summary="Send a draft: queue it per recipient and channel (once; 409 after)",
)
def send_mailing(mailing: str, ctx: Ctx, caller: AdminOrTenant) -> MailingOut:
    settings = _settings(ctx)
    _own(ctx, caller, mailing)
    with ctx.store.transaction() as conn:
        sent = mailings.send(conn, mailing, now(ctx), settings.channels())
    return _out(ctx, sent)


@router.get(
    "/mailings/{mailing}/deliveries",
    summary="Each recipient's delivery per channel: status, attempts, next attempt, last error",
)
def list_deliveries(
    mailing: str, ctx: Ctx, caller: AdminOrTenant, limit: Limit = 100, offset: Offset = 0
) -> list[DeliveryOut]:
    _settings(ctx)
    _own(ctx, caller, mailing)
    with ctx.store.read() as conn:
        rows = mailings.deliveries(conn, mailing, limit, offset)
    return [
        DeliveryOut(
            customer=d.customer,
            channel=d.channel,
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at,
            last_error=d.last_error,
            sent_at=d.sent_at,
        )
        for d in rows
    ]


Token = Annotated[
    str, Query(min_length=10, max_length=500, description="The signed token of the link.")
]


def _unsubscribe(ctx: ApiContext, token: str) -> UnsubscribedOut:
    settings = _settings(ctx)
    customer, channel = mailings.read_token(settings.key("mailing secret"), token)
    with ctx.store.transaction() as conn:
        mailings.unsubscribe(conn, customer, channel, now(ctx))
    return UnsubscribedOut(channel=channel)


@router.get(
    "/unsubscribe",
    summary="Unsubscribe from one channel's mailings by the link in a message (no key)",
)
def unsubscribe_link(ctx: Ctx, token: Token) -> UnsubscribedOut:
    """The link in every e-mail and webhook message: stops that channel's mailings to that
    shopper (idempotent); a forged or altered token is refused (422)."""
    return _unsubscribe(ctx, token)


@router.post(
    "/unsubscribe",
    summary="One-click unsubscribe (RFC 8058 `List-Unsubscribe-Post`; no key)",
)
def unsubscribe_post(ctx: Ctx, token: Token) -> UnsubscribedOut:
    return _unsubscribe(ctx, token)
