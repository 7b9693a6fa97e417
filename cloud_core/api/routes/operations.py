"""Operations: dead letters, ingest totals and the Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from cloud_core import reports
from cloud_core.api import models as m
from cloud_core.api.deps import (
    ERRORS,
    Admin,
    Ctx,
    Scraper,
)
from cloud_core.errors import NotFound
from cloud_core.ledger import from_iso
from cloud_core.metrics import CONTENT_TYPE, exposition
from cloud_core.store import Row

router = APIRouter(tags=["operations"], responses=ERRORS)


def _dead_letter_out(row: Row, preview: int | None) -> m.DeadLetterOut:
    kept = bytes(row["payload"])
    shown = kept if preview is None else kept[:preview]
    return m.DeadLetterOut(
        id=row["id"],
        ts=from_iso(row["ts"]),
        node=row["node"],
        topic=row["topic"],
        kind=row["kind"],
        reason=row["reason"],
        size=row["size"],
        sha256=row["sha256"],
        kept=len(kept),
        payload=shown.decode("utf-8", "replace"),
    )


@router.get("/dead-letters", summary="Messages ingest rejected (newest first, bounded)")
def dead_letters(
    ctx: Ctx,
    _caller: Admin,
    limit: Annotated[int, Query(ge=1, le=200, description="Most rows in this page.")] = 50,
    before_id: Annotated[
        int | None,
        Query(
            ge=1,
            le=2**62,
            description="Only rows older than this id (the next page: the last id of this one).",
        ),
    ] = None,
    node: Annotated[str | None, Query(max_length=64, description="Only this node's.")] = None,
    preview: Annotated[int, Query(ge=0, le=1024, description="Payload bytes shown per row.")] = 256,
) -> list[m.DeadLetterOut]:
    """At most 200 rows of at most 1 KiB of payload each; `GET /dead-letters/{id}` shows
    all that was kept of one."""
    with ctx.store.read() as conn:
        rows = reports.dead_letters(conn, before_id=before_id, node=node, limit=limit)
    return [_dead_letter_out(r, preview) for r in rows]


@router.get("/dead-letters/{dead_letter_id}", summary="One dead letter with its kept payload")
def dead_letter(
    dead_letter_id: Annotated[int, Path(ge=1, le=2**62)], ctx: Ctx, _caller: Admin
) -> m.DeadLetterOut:
    """The payload as kept (its first `ingest.dead_letters.payload_max_bytes`)."""
    with ctx.store.read() as conn:
        row = reports.dead_letter(conn, dead_letter_id)
    if row is None:
        raise NotFound(f"no dead letter {dead_letter_id}")
    return _dead_letter_out(row, None)


@router.get("/ingest/stats", summary="Processed events by outcome, dead letters per node")
def ingest_stats(ctx: Ctx, _caller: Admin) -> m.IngestStats:
    with ctx.store.read() as conn:
        totals = reports.ingest_totals(conn)
    outcomes, dead, by_node = totals.outcomes, totals.dead_letters, totals.dead_letters_by_node
    refused = {str(code): n for code, n in sorted(ctx.refused.items())}
    return m.IngestStats(
        outcomes=outcomes, dead_letters=dead, dead_letters_by_node=by_node, api_refused=refused
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics (roles metrics and admin)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
)
def metrics(ctx: Ctx, _caller: Scraper) -> Response:
    """The text exposition format 0.0.4 (docs/core.md lists the metrics). The key goes in
    `X-API-Key` or, as Prometheus sends it (`authorization: credentials_file`), in
    `Authorization: Bearer <key>`. An API running apart from ingest (`--only api`) has the
    database's metrics only; a worker's counters come from a process running both."""
    return Response(exposition(ctx.metrics), media_type=CONTENT_TYPE)
