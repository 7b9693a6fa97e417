"""Request and response bodies of the promo-code pools and the gift showcase
(``routes/promo_codes.py``), each with an OpenAPI example."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

from cloud_core.config import Ident

RequestKey = str


def _example(**example: JsonValue) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})


class PoolIn(BaseModel):
    model_config = _example(
        id="bean-free-latte",
        business="bean-bar",
        title="A free latte",
        description="Say the code at the till.",
        valid_from="2026-11-23T00:00:00Z",
        valid_until="2026-12-31T00:00:00Z",
        low_stock=20,
        per_customer=1,
    )
    id: Ident = Field(description="The pool's id (lower case, digits, - and _).")
    business: Ident = Field(description="The partner business whose codes these are.")
    title: str = Field(min_length=1, max_length=120, description="What the code gets you.")
    description: str = Field(default="", max_length=2000, description="Terms, how to use it.")
    valid_from: AwareDatetime = Field(description="Codes may be claimed from (with an offset).")
    valid_until: AwareDatetime = Field(description="…and claimed and used until (exclusive).")
    low_stock: int = Field(
        default=10, ge=0, le=1_000_000, description="Alert when this many codes or fewer are left."
    )
    per_customer: int = Field(
        default=1, ge=1, le=1000, description="Most codes of this pool one shopper may hold."
    )


class StockOut(BaseModel):
    model_config = _example(total=500, claimed=480, used=300, free=20, low=True)
    total: int = Field(description="Codes uploaded.")
    claimed: int = Field(description="Codes given to shoppers.")
    used: int = Field(description="Codes the partner marked used.")
    free: int = Field(description="Codes left to give.")
    low: bool = Field(description="True while `free` is at or below the pool's `low_stock`.")


class PoolOut(BaseModel):
    model_config = _example(
        id="bean-free-latte",
        business="bean-bar",
        title="A free latte",
        description="Say the code at the till.",
        valid_from="2026-11-23T00:00:00Z",
        valid_until="2026-12-31T00:00:00Z",
        low_stock=20,
        per_customer=1,
        stock={"total": 500, "claimed": 480, "used": 300, "free": 20, "low": True},
        gift=None,
    )
    id: str
    business: str
    title: str
    description: str
    valid_from: datetime
    valid_until: datetime
    low_stock: int
    per_customer: int
    stock: StockOut
    gift: str | None = Field(description="The gift this pool backs (its codes are sold), if any.")


class ProblemRow(BaseModel):
    model_config = _example(line=7, kind="bad", code="", reason="no code in the first column")
    line: int = Field(description="The file's line number (1 is the first line).")
    kind: Literal["bad", "duplicate_in_file", "duplicate_in_pool"]
    code: str = Field(description="The code on that line (empty for a bad row).")
    reason: str


class UploadOut(BaseModel):
    model_config = _example(
        id="u3f9a0c1b2d4e5f60",
        pool="bean-free-latte",
        state="done",
        total=502,
        done=502,
        added=498,
        duplicates_in_file=1,
        duplicates_in_pool=2,
        bad=1,
        problems=[{"line": 7, "kind": "bad", "code": "", "reason": "no code in the first column"}],
        detail="",
        created_at="2026-11-23T10:15:30Z",
        finished_at="2026-11-23T10:15:31Z",
    )
    id: str
    pool: str
    state: Literal["running", "done", "failed"]
    total: int = Field(description="Data rows in the file.")
    done: int = Field(description="Rows judged so far.")
    added: int = Field(description="New codes added to the pool.")
    duplicates_in_file: int = Field(description="Rows repeating an earlier row of the file.")
    duplicates_in_pool: int = Field(description="Codes the pool held already.")
    bad: int = Field(description="Rows that are not a code.")
    problems: list[ProblemRow] = Field(description="The first 100 bad and duplicate rows.")
    detail: str = Field(description="Why a failed upload stopped.")
    created_at: datetime
    finished_at: datetime | None


class ClaimIn(BaseModel):
    model_config = _example(customer="c5f0c2a9be1d34c7a8b6e0f1d", request_key="kiosk-1-000123")
    customer: str = Field(min_length=1, max_length=64, description="The shopper.")
    request_key: RequestKey | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Repeating a claim with the same key gives the same code.",
    )


class ClaimOut(BaseModel):
    model_config = _example(
        outcome="claimed",
        pool="bean-free-latte",
        code="LATTE-7F3K",
        claimed_at="2026-11-23T10:15:30Z",
        left=19,
    )
    outcome: Literal["claimed", "already_claimed"] = Field(
        description="`already_claimed`: the shopper's code given before (same key, or the "
        "per-customer cap reached)."
    )
    pool: str
    code: str
    claimed_at: datetime
    left: int = Field(description="Codes left in the pool.")


class UseIn(BaseModel):
    model_config = _example(code="LATTE-7F3K", request_key="till-2-000045")
    code: str = Field(min_length=1, max_length=64, description="The code the shopper showed.")
    request_key: RequestKey | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Repeating the same request with this key is answered again (not a 409).",
    )


class UseOut(BaseModel):
    model_config = _example(
        outcome="used", pool="bean-free-latte", code="LATTE-7F3K", used_at="2026-11-23T12:00:00Z"
    )
    outcome: Literal["used", "duplicate"]
    pool: str
    code: str
    used_at: datetime


class HeldCodeOut(BaseModel):
    model_config = _example(
        pool="bean-free-latte",
        business="bean-bar",
        title="A free latte",
        code="LATTE-7F3K",
        claimed_at="2026-11-23T10:15:30Z",
        used_at=None,
        valid_until="2026-12-31T00:00:00Z",
    )
    pool: str
    business: str
    title: str
    code: str
    claimed_at: datetime
    used_at: datetime | None
    valid_until: datetime


class GiftIn(BaseModel):
    model_config = _example(
        id="latte-for-200",
        pool="bean-free-latte",
        title="A free latte at Bean Bar",
        description="Any size.",
        points=200,
    )
    id: Ident = Field(description="The gift's id.")
    pool: Ident = Field(description="The pool whose codes this gift gives (one gift per pool).")
    title: str = Field(min_length=1, max_length=120)
    description: str = Field(default="", max_length=2000)
    points: int = Field(gt=0, le=10_000_000, description="Its price in coalition points.")


class GiftOut(BaseModel):
    model_config = _example(
        id="latte-for-200",
        pool="bean-free-latte",
        business="bean-bar",
        title="A free latte at Bean Bar",
        description="Any size.",
        points=200,
        left=20,
        valid_until="2026-12-31T00:00:00Z",
    )
    id: str
    pool: str
    business: str
    title: str
    description: str
    points: int
    left: int = Field(description="Codes left (0: sold out).")
    valid_until: datetime


class PurchaseIn(BaseModel):
    model_config = _example(customer="c5f0c2a9be1d34c7a8b6e0f1d", idempotency_key="kiosk-1-77")
    customer: str = Field(min_length=1, max_length=64, description="The shopper paying.")
    idempotency_key: str = Field(
        min_length=1,
        max_length=100,
        description="The same key again answers the same purchase and spends nothing.",
    )


class PurchaseOut(BaseModel):
    model_config = _example(
        outcome="bought",
        id="01936c1e-8a9b-7c3d-9e4f-0a1b2c3d4e5f",
        gift="latte-for-200",
        code="LATTE-7F3K",
        points=200,
        available=340,
        ts="2026-11-23T10:15:30Z",
    )
    outcome: Literal["bought", "duplicate"]
    id: str
    gift: str
    code: str
    points: int = Field(description="Coalition points spent.")
    available: int = Field(description="Coalition points left to spend.")
    ts: datetime
