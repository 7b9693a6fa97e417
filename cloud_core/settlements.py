"""Mutual settlements: who owes whom when coalition points are spent at another partner.

When a hold is committed at business B, each coalition lot it drew from has a funder F
(the mall for parking, visit and game points; a tenant for its coalition cashback). For
F != B the journal of settlements gets one entry: F owes B the points' value (one point =
one cent), and a tenant funder also owes the mall its commission (``commission_pct``). A
refund writes the exact negatives. Entries belong to the mall's local month of their time
(``period``, ``2026-11``); a report sums them per pair and per partner; closing a past
period stores its report, which is what it answers from then on.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from cloud_core import ledger
from cloud_core.errors import InvalidInput, PeriodClosed
from cloud_core.ledger import COALITION
from cloud_core.store import Conn


def period_of(moment: datetime, tz: ZoneInfo) -> str:
    """The settlement period (local month) of a moment."""
    return moment.astimezone(tz).strftime("%Y-%m")


def check_period(period: str) -> str:
    if len(period) != 7 or period[4] != "-" or not (period[:4] + period[5:]).isdigit():
        raise InvalidInput(f"a period is a month, YYYY-MM; got {period!r}")
    if not 1 <= int(period[5:]) <= 12:
        raise InvalidInput(f"no month {period[5:]!r}")
    return period


def record(
    conn: Conn,
    *,
    now: datetime,
    tz: ZoneInfo,
    payer: str,
    payee: str,
    amount_cents: int,
    commission_cents: int,
    kind: str,
    hold_id: str,
    store: str,
    receipt: str,
) -> None:
    conn.execute(
        "INSERT INTO settlement_entries (id, ts, period, payer, payee, amount_cents,"
        " commission_cents, kind, hold_id, store, receipt)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            "s" + secrets.token_hex(12),
            ledger.iso(now),
            period_of(now, tz),
            payer,
            payee,
            amount_cents,
            commission_cents,
            kind,
            hold_id,
            store,
            receipt,
        ),
    )


def reverse_hold(conn: Conn, *, hold_id: str, now: datetime, tz: ZoneInfo) -> int:
    """Write the exact negatives of a hold's redemption entries (a refund); how many."""
    rows = conn.execute(
        "SELECT payer, payee, amount_cents, commission_cents, store, receipt"
        " FROM settlement_entries WHERE hold_id = ? AND kind = 'redemption'",
        (hold_id,),
    ).fetchall()
    for row in rows:
        record(
            conn,
            now=now,
            tz=tz,
            payer=row["payer"],
            payee=row["payee"],
            amount_cents=-int(row["amount_cents"]),
            commission_cents=-int(row["commission_cents"]),
            kind="refund",
            hold_id=hold_id,
            store=row["store"],
            receipt=row["receipt"],
        )
    return len(rows)


@dataclass(frozen=True)
class Line:
    payer: str
    payee: str
    amount_cents: int
    commission_cents: int
    entries: int


@dataclass(frozen=True)
class PartnerSum:
    partner: str
    receivable_cents: int  # owed to it: points others funded, spent here (+ commissions: mall)
    payable_cents: int  # it owes: its points spent elsewhere, and its commissions
    net_cents: int  # receivable - payable: positive means it is owed money


@dataclass(frozen=True)
class Report:
    period: str
    closed: bool
    closed_at: str | None
    lines: tuple[Line, ...]
    partners: tuple[PartnerSum, ...]
    total_cents: int
    commission_cents: int

    def for_partner(self, partner: str) -> Report:
        """What one tenant may see: its own lines and row."""
        lines = tuple(x for x in self.lines if partner in (x.payer, x.payee))
        return Report(
            self.period,
            self.closed,
            self.closed_at,
            lines,
            tuple(p for p in self.partners if p.partner == partner),
            sum(x.amount_cents for x in lines),
            sum(x.commission_cents for x in lines),
        )


def _compute(conn: Conn, period: str) -> Report:
    rows = conn.execute(
        "SELECT payer, payee, SUM(amount_cents) AS amount, SUM(commission_cents) AS commission,"
        " COUNT(*) AS n FROM settlement_entries WHERE period = ?"
        " GROUP BY payer, payee ORDER BY payer, payee",
        (period,),
    ).fetchall()
    lines = tuple(
        Line(r["payer"], r["payee"], int(r["amount"]), int(r["commission"]), int(r["n"]))
        for r in rows
    )
    receivable: dict[str, int] = {}
    payable: dict[str, int] = {}
    for x in lines:
        receivable[x.payee] = receivable.get(x.payee, 0) + x.amount_cents
        payable[x.payer] = payable.get(x.payer, 0) + x.amount_cents + x.commission_cents
        receivable[COALITION] = receivable.get(COALITION, 0) + x.commission_cents
    partners = tuple(
        PartnerSum(
            p, receivable.get(p, 0), payable.get(p, 0), receivable.get(p, 0) - payable.get(p, 0)
        )
        for p in sorted(set(receivable) | set(payable))
    )
    return Report(
        period,
        False,
        None,
        lines,
        partners,
        sum(x.amount_cents for x in lines),
        sum(x.commission_cents for x in lines),
    )


def report(conn: Conn, period: str) -> Report:
    """The period's report: frozen if it was closed, else summed from the entries now."""
    check_period(period)
    row = conn.execute(
        "SELECT closed_at, report FROM settlement_periods WHERE period = ?", (period,)
    ).fetchone()
    if row is None:
        return _compute(conn, period)
    data = json.loads(row["report"])
    return Report(
        period=period,
        closed=True,
        closed_at=row["closed_at"],
        lines=tuple(Line(**x) for x in data["lines"]),
        partners=tuple(PartnerSum(**x) for x in data["partners"]),
        total_cents=int(data["total_cents"]),
        commission_cents=int(data["commission_cents"]),
    )


def close(conn: Conn, period: str, *, now: datetime, tz: ZoneInfo, by: str) -> Report:
    """Freeze a past period's report (``PeriodClosed`` if it is already closed or not over)."""
    check_period(period)
    if period >= period_of(now, tz):
        raise PeriodClosed(f"period {period} is not over yet; it can be closed from next month")
    current = _compute(conn, period)
    data = {
        "lines": [asdict(x) for x in current.lines],
        "partners": [asdict(p) for p in current.partners],
        "total_cents": current.total_cents,
        "commission_cents": current.commission_cents,
    }
    inserted = conn.execute(
        "INSERT INTO settlement_periods (period, closed_at, closed_by, report)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (period) DO NOTHING",
        (period, ledger.iso(now), by, json.dumps(data, sort_keys=True)),
    ).rowcount
    if inserted != 1:
        raise PeriodClosed(f"period {period} is already closed")
    return report(conn, period)


def to_csv(rep: Report) -> str:
    """One line per payer and payee: what the payer owes the payee and the mall."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["period", "payer", "payee", "amount_cents", "commission_cents", "entries"])
    for x in rep.lines:
        writer.writerow(
            [rep.period, x.payer, x.payee, x.amount_cents, x.commission_cents, x.entries]
        )
    writer.writerow([rep.period, "TOTAL", "", rep.total_cents, rep.commission_cents, ""])
    return out.getvalue()
