"""Statistics: visits per store and day, footfall per node and hour."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from cloud_core import reports
from cloud_core.api import models as m
from cloud_core.api.deps import (
    ERRORS,
    AdminOrTenant,
    Ctx,
    Limit,
    Offset,
    Since,
    Until,
)

router = APIRouter(prefix="/stats", tags=["statistics"], responses=ERRORS)


@router.get("/visits", summary="Visits per store and day")
def visit_stats(
    ctx: Ctx,
    caller: AdminOrTenant,
    day: Annotated[
        str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$", description="Local day.")
    ] = None,
    store: Annotated[str | None, Query(description="One store.")] = None,
) -> list[m.VisitStats]:
    """Tenants see their own stores only."""
    business = (caller.business or "") if caller.role == "tenant" else None
    with ctx.store.read() as conn:
        rows = reports.visit_stats(conn, business=business, day=day, store=store)
    return [
        m.VisitStats(
            store=r["store"],
            day=r["day"],
            visits=r["visits"],
            customers=r["customers"],
            points=r["points"],
        )
        for r in rows
    ]


def _hour(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:00Z")


@router.get("/footfall", summary="Footfall per node and hour (SQLite rollups)")
def footfall_stats(
    ctx: Ctx,
    caller: AdminOrTenant,
    *,
    node: Annotated[str | None, Query(max_length=64, description="One node.")] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> list[m.FootfallStats]:
    """By hour, then node; tenants see their stores' nodes only. `since`/`until` select the
    hours that overlap that range."""
    own = None
    if caller.role == "tenant":
        own = sorted(
            n
            for n, store in ctx.config.store_of_node().items()
            if store.business == caller.business
        )
    with ctx.store.read() as conn:
        rows = reports.footfall(
            conn,
            among=own,
            node=node,
            from_hour=None if since is None else _hour(since),
            # hours that start before it
            until=None if until is None else until.strftime("%Y-%m-%dT%H:%MZ"),
            limit=limit,
            offset=offset,
        )
    return [
        m.FootfallStats(
            node=r["node"],
            hour=r["hour"],
            unique_tags=r["unique_tags"],
            adverts=r["adverts"],
            windows=r["windows"],
        )
        for r in rows
    ]
