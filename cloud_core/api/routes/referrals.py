"""Referrals: a shopper's code, and a new shopper joining with one (``rules/referral.py``).

The referrer is rewarded later, once, on the new shopper's first qualifying visit (the
ingest worker's or the API's transaction that records it). Routes answer 404 while
``referrals.enabled`` is false.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from cloud_core import customers, referrals
from cloud_core.api.auth import ApiContext
from cloud_core.api.deps import ERRORS, AdminOrKiosk, Ctx, now
from cloud_core.rules import referral
from cloud_core.schemes_config import ReferralSettings

router = APIRouter(tags=["referrals"], responses=ERRORS)


def _example(**example: JsonValue) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})


class ReferralCodeOut(BaseModel):
    model_config = _example(
        customer="c5f0c2a9be1d34c7a8b6e0f1", code="K7QMZ2XA", joined=3, rewarded=2
    )
    customer: str = Field(description="The shopper whose code it is.")
    code: str = Field(description="Their referral code (8 letters and digits; never changes).")
    joined: int = Field(description="New shoppers who joined with it.")
    rewarded: int = Field(description="Of those, how many made their first visit (paid).")


class ReferralIn(BaseModel):
    model_config = _example(customer="c0a1b2c3d4e5f60718293a4b", code="K7QMZ2XA")
    customer: str = Field(
        min_length=1, max_length=64, description="The new shopper (just registered)."
    )
    code: str = Field(min_length=4, max_length=32, description="The referral code they gave.")


class ReferralOut(BaseModel):
    model_config = _example(customer="c0a1b2c3d4e5f60718293a4b", status="pending")
    customer: str = Field(description="The new shopper.")
    status: Literal["pending"] = Field(
        description="pending: the referrer is rewarded on the new shopper's first visit."
    )


def _settings(ctx: ApiContext) -> ReferralSettings:
    settings = ctx.config.referrals
    if not settings.enabled:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "referrals are not enabled")
    return settings


@router.post("/customers/{customer}/referral-code", summary="A shopper's referral code")
def referral_code(customer: str, ctx: Ctx, _caller: AdminOrKiosk) -> ReferralCodeOut:
    """The shopper's code (made on the first call, the same ever after) and how many new
    shoppers joined with it."""
    _settings(ctx)
    with ctx.store.transaction() as conn:
        customers.require_customer(conn, customer)
        code = referrals.code_of(conn, customer, now(ctx))
        tally = referrals.tally(conn, customer)
    return ReferralCodeOut(
        customer=customer, code=code, joined=tally.joined, rewarded=tally.rewarded
    )


@router.post(
    "/referrals", status_code=status.HTTP_201_CREATED, summary="A new shopper joins with a code"
)
def join(body: ReferralIn, ctx: Ctx, _caller: AdminOrKiosk) -> ReferralOut:
    """Right after registering, a new shopper gives a friend's code. Refused: a code nobody
    has (404), the shopper's own code, a second code, and a shopper who is not new —
    registered more than `referrals.new_within_s` ago or with a visit or credit already
    (409). Nothing is paid now: the referrer's points come with the new shopper's first
    qualifying visit, once."""
    settings = _settings(ctx)
    with ctx.store.transaction() as conn:
        referral.join(conn, referee=body.customer, code=body.code, now=now(ctx), settings=settings)
    return ReferralOut(customer=body.customer, status="pending")
