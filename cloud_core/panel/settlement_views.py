"""The panel's settlement page: a period's report as each role may see it (the office every
line, a tenant its own), and the same report as CSV — read through ``settlements``, the
module the API's ``/settlements`` routes read through, so the page and the API agree."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from cloud_core import settlements
from cloud_core.api.auth import ApiContext, Principal
from cloud_core.panel import views


def period_or_current(ctx: ApiContext, period: str | None) -> str:
    """The asked period (``YYYY-MM``), or the mall's current month."""
    if period:
        return settlements.check_period(period)
    now = datetime.fromtimestamp(ctx.clock(), UTC)
    return settlements.period_of(now, ZoneInfo(ctx.config.timezone))


def report(ctx: ApiContext, who: Principal, period: str) -> settlements.Report:
    with ctx.store.read() as conn:
        rep = settlements.report(conn, period)
    return rep if views.is_admin(who) else rep.for_partner(who.business or "")


def csv_of(ctx: ApiContext, who: Principal, period: str) -> str:
    return settlements.to_csv(report(ctx, who, period))


def euros(cents: int) -> str:
    return f"{cents / 100:,.2f}".replace(",", " ")
