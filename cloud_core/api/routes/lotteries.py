"""Lotteries: announce one (its seed's SHA-256 published), draw it after entries close
(the seed, the sorted entries and the winners published), read what anyone needs to
recompute the winners (``rules/lottery.py``; ``mallnet core lottery-verify``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, Self

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from cloud_core import ledger, lotteries, offers
from cloud_core.api.auth import ApiContext
from cloud_core.api.deps import ERRORS, Admin, Ctx, Limit, Offset, Staff, UtcTime, now
from cloud_core.config import Ident
from cloud_core.errors import InvalidInput
from cloud_core.ingest.notices import NoticeOutbox
from cloud_core.rules import lottery as procedure

router = APIRouter(prefix="/lotteries", tags=["lotteries"], responses=ERRORS)


def _example(**example: JsonValue) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})


class PrizeIn(BaseModel):
    model_config = _example(title="500 points", points=500, pocket="mall")
    title: str = Field(min_length=1, max_length=120, description="What the winner gets.")
    points: int = Field(
        ge=0, le=1_000_000, description="Points credited to the winner (0: a prize in kind)."
    )
    pocket: Ident = Field(default="mall", description="`mall` or a business's pocket.")


class LotteryIn(BaseModel):
    model_config = _example(
        id="winter-draw",
        title="Winter draw",
        stores=[],
        opens_at="2026-12-01T00:00:00Z",
        closes_at="2026-12-24T00:00:00Z",
        prizes=[{"title": "1000 points", "points": 1000}, {"title": "500 points", "points": 500}],
    )
    id: Ident = Field(description="Lottery id (unique; part of every entry).")
    title: str = Field(min_length=1, max_length=120, description="Shown to shoppers.")
    campaign: Ident | None = Field(
        default=None,
        description="A campaign's lottery: its participants are the shoppers its offer was "
        "delivered to in the period. None: those with a qualifying visit in the period.",
    )
    stores: list[Ident] = Field(
        default=[], max_length=100, description="Visits at these stores only (empty: any)."
    )
    opens_at: UtcTime = Field(description="Entries from (inclusive).")
    closes_at: UtcTime = Field(description="Entries until (exclusive); drawn after this.")
    prizes: list[PrizeIn] = Field(
        min_length=1, max_length=100, description="Prize 1 first; one winner each."
    )

    @model_validator(mode="after")
    def _period(self) -> Self:
        if self.closes_at <= self.opens_at:
            raise ValueError("closes_at must be after opens_at")
        return self


class PrizeOut(BaseModel):
    model_config = _example(rank=1, title="1000 points", points=1000, pocket="mall")
    rank: int = Field(description="1 for the first prize.")
    title: str = Field(description="What the winner gets.")
    points: int = Field(description="Points (0: a prize in kind).")
    pocket: str = Field(description="The pocket the points go to.")


class WinnerOut(BaseModel):
    model_config = _example(
        rank=1,
        entry="3b5d5c3712955042212316173ccf37be800ec8e1b8a1d7f4d3a4b09d2a1e6c2f",
        title="1000 points",
        points=1000,
    )
    rank: int = Field(description="The prize won.")
    entry: str = Field(description="The winning entry: SHA-256 of `<lottery id>:<customer id>`.")
    title: str = Field(description="The prize.")
    points: int = Field(description="Points credited.")


class LotteryOut(BaseModel):
    model_config = _example(
        id="winter-draw",
        title="Winter draw",
        procedure=procedure.PROCEDURE,
        campaign=None,
        stores=[],
        opens_at="2026-12-01T00:00:00Z",
        closes_at="2026-12-24T00:00:00Z",
        prizes=[{"rank": 1, "title": "1000 points", "points": 1000, "pocket": "mall"}],
        status="announced",
        seed_sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        seed=None,
        entries=None,
        winners=[],
        drawn_at=None,
    )
    id: str = Field(description="Lottery id.")
    title: str = Field(description="Shown to shoppers.")
    procedure: str = Field(description="How the winners are computed (docs/core.md).")
    campaign: str | None = Field(description="The campaign whose participants take part.")
    stores: list[str] = Field(description="Visits at these stores count (empty: any).")
    opens_at: datetime = Field(description="Entries from.")
    closes_at: datetime = Field(description="Entries until.")
    prizes: list[PrizeOut] = Field(description="Prize 1 first.")
    status: Literal["announced", "drawn"] = Field(description="announced or drawn.")
    seed_sha256: str = Field(description="SHA-256 of the seed, published when announced.")
    seed: str | None = Field(description="The seed (64 hex digits), published once drawn.")
    entries: list[str] | None = Field(description="The sorted entries, published once drawn.")
    winners: list[WinnerOut] = Field(description="Once drawn: the winning entries by prize.")
    drawn_at: datetime | None = Field(description="When it was drawn.")


def _out(lottery: lotteries.Lottery, won: list[lotteries.Winner]) -> LotteryOut:
    drawn = lottery.status == "drawn"
    return LotteryOut(
        id=lottery.id,
        title=lottery.title,
        procedure=procedure.PROCEDURE,
        campaign=lottery.campaign,
        stores=list(lottery.stores),
        opens_at=lottery.opens_at,
        closes_at=lottery.closes_at,
        prizes=[
            PrizeOut(rank=i, title=p.title, points=p.points, pocket=p.pocket)
            for i, p in enumerate(lottery.prizes, start=1)
        ],
        status="drawn" if drawn else "announced",
        seed_sha256=lottery.seed_sha256,
        seed=lottery.seed if drawn else None,  # never before the draw
        entries=list(lottery.entries) if drawn and lottery.entries is not None else None,
        winners=[
            WinnerOut(rank=w.rank, entry=w.entry, title=w.title, points=w.points) for w in won
        ],
        drawn_at=lottery.drawn_at,
    )


def _read(ctx: ApiContext, lottery_id: str) -> LotteryOut:
    with ctx.store.read() as conn:
        return _out(lotteries.get(conn, lottery_id), lotteries.winners_of(conn, lottery_id))


@router.post("", status_code=status.HTTP_201_CREATED, summary="Announce a lottery")
def announce(body: LotteryIn, ctx: Ctx, _caller: Admin) -> LotteryOut:
    """Make the lottery's secret seed and publish its SHA-256 (`seed_sha256`): the seed is
    fixed before anyone can know who will take part, and shown only after the draw."""
    businesses = {s.business for s in ctx.config.stores}
    for prize in body.prizes:
        if prize.pocket not in ("mall", *businesses):
            raise InvalidInput(f"no pocket {prize.pocket!r}: `mall` or a business")
    unknown = set(body.stores) - set(ctx.stores)
    if unknown:
        raise InvalidInput(f"no store {sorted(unknown)[0]!r}")
    seed = lotteries.new_seed()
    with ctx.store.transaction() as conn:
        if body.campaign is not None:
            offers.get_campaign(conn, body.campaign)  # 404 if there is none
        lotteries.create(
            conn,
            lottery_id=body.id,
            title=body.title,
            campaign=body.campaign,
            stores=tuple(body.stores),
            opens_at=body.opens_at,
            closes_at=body.closes_at,
            prizes=tuple(lotteries.Prize(p.title, p.points, p.pocket) for p in body.prizes),
            seed=seed,
            seed_sha256=procedure.seed_hash(seed),
            now=now(ctx),
        )
    return _read(ctx, body.id)


@router.get("", summary="Lotteries, newest first")
def list_lotteries(
    ctx: Ctx, _caller: Staff, limit: Limit = 50, offset: Offset = 0
) -> list[LotteryOut]:
    with ctx.store.read() as conn:
        return [
            _out(lot, lotteries.winners_of(conn, lot.id))
            for lot in lotteries.list_all(conn, limit, offset)
        ]


@router.get("/{lottery_id}", summary="A lottery as published (what lottery-verify reads)")
def read_lottery(lottery_id: str, ctx: Ctx, _caller: Staff) -> LotteryOut:
    """Before the draw: the seed's SHA-256. After: the seed, the sorted entries and the
    winners, so anyone can recompute them (`mallnet core lottery-verify`)."""
    return _read(ctx, lottery_id)


@router.post("/{lottery_id}/draw", summary="Draw a lottery whose entries have closed")
def draw(lottery_id: str, ctx: Ctx, _caller: Admin) -> LotteryOut:
    """Draw once (409 before `closes_at` and once drawn): the winners by the published
    procedure, each points prize credited once with an inbox notice to the winner."""
    outbox = NoticeOutbox(ctx.config.mall, ctx.store)
    with ctx.store.transaction() as conn:
        notices = procedure.run_draw(conn, lottery_id, now(ctx))
        outbox.keep(conn, notices, ledger.iso(datetime.now(UTC)))
    return _read(ctx, lottery_id)
