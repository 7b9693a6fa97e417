"""Request and response bodies of coupon series, their coupons and till redemptions
(``routes/coupons.py``; docs/core.md, "Coupons")."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue


def _example(**example: JsonValue) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})


class SeriesIn(BaseModel):
    model_config = _example(
        id="bean-tuesday-latte",
        owner="bean-bar",
        title="Latte -50 % on Tuesday",
        discount="50 % off one latte",
        emission_start="2026-11-23T00:00:00Z",
        emission_end="2026-12-01T00:00:00Z",
        total_cap=500,
        per_customer_cap=1,
        code_mode="unique",
        valid_day="2026-12-01",
        price_points=100,
    )
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="The series' id.")
    owner: str | None = Field(
        default=None,
        max_length=64,
        description="The business whose tills redeem it, or `mall` (any till); a tenant's key "
        "may leave it out (its own business) and may name only its own.",
    )
    title: str = Field(min_length=1, max_length=120, description="What the shopper sees.")
    discount: str = Field(min_length=1, max_length=300, description="The discount, in words.")
    emission_start: datetime = Field(description="Coupons are issued from this time…")
    emission_end: datetime = Field(description="…until this time (exclusive).")
    total_cap: int = Field(ge=1, le=10_000_000, description="The most coupons ever issued.")
    per_customer_cap: int = Field(default=1, ge=1, le=1000, description="The most per shopper.")
    code_mode: Literal["shared", "unique"] = Field(
        description="`shared`: every coupon carries `shared_code`; `unique`: a code per coupon."
    )
    shared_code: str | None = Field(
        default=None, min_length=3, max_length=32, description="The one code of a shared series."
    )
    valid_from: date | None = Field(default=None, description="First day of use (mall time).")
    valid_until: date | None = Field(default=None, description="Last day of use (mall time).")
    valid_day: date | None = Field(
        default=None, description="The one day it can be used (instead of a range)."
    )
    price_points: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="Coalition points to buy one; none: not sold.",
    )


class SeriesOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "saturday-cocoa",
                    "owner": "bean-bar",
                    "title": "Hot chocolate -20 %",
                    "discount": "-20 % on hot chocolate",
                    "emission_start": "2026-11-23T00:00:00Z",
                    "emission_end": "2026-12-01T00:00:00Z",
                    "total_cap": 500,
                    "per_customer_cap": 1,
                    "code_mode": "unique",
                    "valid_from": None,
                    "valid_until": None,
                    "valid_day": "2026-11-28",
                    "price_points": None,
                    "issued": 42,
                }
            ]
        }
    )
    id: str
    owner: str
    title: str
    discount: str
    emission_start: datetime
    emission_end: datetime
    total_cap: int
    per_customer_cap: int
    code_mode: Literal["shared", "unique"]
    valid_from: date | None
    valid_until: date | None
    valid_day: date | None
    price_points: int | None
    issued: int = Field(description="Coupons issued so far.")


class IssueIn(BaseModel):
    model_config = _example(customer="c5f0c2a9be1d34c7a8b6e0f1d", idempotency_key="campaign-7-c5f")
    customer: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The shopper; leave out for a bearer coupon (admin only).",
    )
    idempotency_key: str = Field(
        min_length=1,
        max_length=100,
        description="The same key again answers the same coupon and issues nothing.",
    )


class BuyIn(BaseModel):
    model_config = _example(customer="c5f0c2a9be1d34c7a8b6e0f1d", idempotency_key="kiosk-1-88")
    customer: str = Field(min_length=1, max_length=64, description="The shopper paying.")
    idempotency_key: str = Field(
        min_length=1, max_length=100, description="The same key again spends nothing."
    )


class CouponOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
                    "series": "saturday-cocoa",
                    "owner": "bean-bar",
                    "title": "Hot chocolate -20 %",
                    "discount": "-20 % on hot chocolate",
                    "customer": "c5f0c2a9be1d34c7a8b6e0f1d",
                    "code": "K7QX-2M9D",
                    "qr": "C1.0193a1b2.c5f0c2a9be1d34c7a8b6e0f1d.0123456789abcdef",
                    "source": "grant",
                    "points": 0,
                    "issued_at": "2026-11-23T10:00:00Z",
                    "valid_from": None,
                    "valid_until": None,
                    "valid_day": "2026-11-28",
                    "used_at": None,
                    "used_store": None,
                }
            ]
        }
    )
    id: str
    series: str
    owner: str
    title: str
    discount: str
    customer: str | None = Field(description="The shopper it is bound to; null: a bearer coupon.")
    code: str
    qr: str | None = Field(description="The signed QR payload (null if no coupon secret is set).")
    source: str = Field(description="`grant`, `points` or `coalition`.")
    points: int = Field(description="Points paid for it (0 if granted).")
    issued_at: datetime
    valid_from: date | None
    valid_until: date | None
    valid_day: date | None
    used_at: datetime | None
    used_store: str | None


class RedeemIn(BaseModel):
    model_config = _example(
        qr="C1.c0ffee.c5f0c2a9be1d34c7a8b6e0f1d.0123456789abcdef0123456789abcdef"
    )
    qr: str | None = Field(default=None, max_length=300, description="The scanned QR payload.")
    code: str | None = Field(
        default=None, max_length=64, description="A typed code (a shared code needs `customer`)."
    )
    customer: str | None = Field(
        default=None, max_length=64, description="The identified shopper, if any."
    )
