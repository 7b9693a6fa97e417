"""Mutual settlements: who owes whom per period (JSON and CSV), and closing a period."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from cloud_core import settlements
from cloud_core.api import terminal_models as t
from cloud_core.api.deps import ERRORS, Admin, AdminOrTenant, Ctx, now
from cloud_core.api.models import Problem
from cloud_core.api.till import expire_holds

router = APIRouter(prefix="/settlements", tags=["settlements"], responses=ERRORS)

Period = Annotated[
    str,
    Path(
        pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
        description="The month, `YYYY-MM` (the mall's time zone).",
        examples=["2026-11"],
    ),
]


def _out(rep: settlements.Report) -> t.SettlementReportOut:
    return t.SettlementReportOut(
        period=rep.period,
        closed=rep.closed,
        closed_at=rep.closed_at,
        lines=[t.SettlementLine(**x.__dict__) for x in rep.lines],
        partners=[t.SettlementPartner(**p.__dict__) for p in rep.partners],
        total_cents=rep.total_cents,
        commission_cents=rep.commission_cents,
    )


def _report(ctx: Ctx, caller: AdminOrTenant, period: str) -> settlements.Report:
    expire_holds(ctx, now(ctx))
    with ctx.store.read() as conn:
        rep = settlements.report(conn, period)
    if caller.role == "tenant":
        rep = rep.for_partner(caller.business or "")
    return rep


@router.get("/{period}", summary="Settlement report of a period")
def report(period: Period, ctx: Ctx, caller: AdminOrTenant) -> t.SettlementReportOut:
    """Per payer and payee what coalition points funded by the payer (a tenant's coalition
    cashback, or the mall's own points) and spent at the payee are worth, with the mall's
    commission; per partner the balance. Sums equal the settlement journal to the cent. A
    tenant sees its own lines only. A closed period answers its frozen report."""
    return _out(_report(ctx, caller, period))


@router.get(
    "/{period}/csv",
    summary="Settlement report of a period as CSV",
    response_class=Response,
    responses={
        200: {
            "content": {
                "text/csv": {
                    "example": "period,payer,payee,amount_cents,"
                    "commission_cents,entries\n2026-11,mall,pizzeria,600,0,1\n"
                }
            },
            "description": "One line per payer and payee, then TOTAL.",
        }
    },
)
def report_csv(period: Period, ctx: Ctx, caller: AdminOrTenant) -> Response:
    rep = _report(ctx, caller, period)
    return Response(
        settlements.to_csv(rep),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="settlements-{period}.csv"'},
    )


@router.post(
    "/{period}/close",
    summary="Close (freeze) a past period",
    responses={409: {"model": Problem, "description": "Already closed, or not over yet."}},
)
def close(period: Period, ctx: Ctx, caller: Admin) -> t.SettlementReportOut:
    """Stores the period's report; from then on it is what the period answers. Only a
    month that is over can be closed (`urn:mallnet:problem:period-closed` otherwise)."""
    moment = now(ctx)
    expire_holds(ctx, moment)
    with ctx.store.transaction() as conn:
        rep = settlements.close(conn, period, now=moment, tz=ctx.tz, by=caller.name)
    return _out(rep)
