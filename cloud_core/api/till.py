"""What the till's routes share (``routes/terminal.py``, ``routes/settlements.py``): the
caller's till, idempotent writes with their inbox notices, expiring due holds first, and the
conversions of domain records to response bodies. No SQL: the storage modules do that."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from fastapi import HTTPException, status
from pydantic import BaseModel

from cloud_core import holds, idempotency, ledger, purchases
from cloud_core.api import terminal_models as t
from cloud_core.api.auth import ApiContext, Principal
from cloud_core.api.deps import now
from cloud_core.holds import Till
from cloud_core.ingest.notices import NoticeOutbox
from cloud_core.rules.common import Notice
from cloud_core.rules.credit import change_notice
from cloud_core.store import Conn

M = TypeVar("M", bound=BaseModel)


def till_of(ctx: ApiContext, caller: Principal) -> Till:
    """The caller's till; 403 if its key names a store that is not its business's."""
    store = ctx.stores.get(caller.store or "")
    if store is None or store.business != caller.business or caller.seller is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this key's store is not its business's")
    return Till(store.business, store.id, caller.till or store.id, caller.seller)


def _notices(changes: Sequence[ledger.Change]) -> list[Notice]:
    """One inbox notice per customer, pocket and reason (a hold may draw from many lots)."""
    summed: dict[tuple[str, str, str], list[ledger.Change]] = defaultdict(list)
    for change in changes:
        summed[(change.customer, change.pocket, change.reason)].append(change)
    out = []
    for (customer, _pocket, _reason), group in summed.items():
        total = sum(c.delta for c in group)
        if total == 0:
            continue
        first = group[0]
        merged = ledger.Change(customer, first.pocket, total, first.reason, first.text, first.ts)
        out.append(Notice(customer, change_notice(merged, first.text)))
    return out


def keep_notices(
    ctx: ApiContext, conn: Conn, changes: Sequence[ledger.Change], at: datetime
) -> None:
    if changes:
        NoticeOutbox(ctx.config.mall, ctx.store).keep(conn, _notices(changes), ledger.iso(at))


def expire_holds(ctx: ApiContext, moment: datetime) -> None:
    """Give back the points of holds past their time (also done by the expiry job)."""
    with ctx.store.read() as conn:
        due = holds.any_due(conn, moment)
    if due:
        with ctx.store.transaction() as conn:
            keep_notices(ctx, conn, holds.expire_due(conn, moment), moment)


def idempotent_write(
    ctx: ApiContext,
    caller: Principal,
    *,
    key: str,
    operation: str,
    body: str,
    out: type[M],
    run: Callable[[Conn, datetime], tuple[M, Sequence[ledger.Change]]],
) -> M:
    moment = now(ctx)
    expire_holds(ctx, moment)
    scope = f"{caller.role}:{caller.name}:{operation}:{key}"
    digest = idempotency.body_hash(operation, body)
    with ctx.store.transaction() as conn:
        stored = idempotency.recall(conn, scope, digest)
        if stored is not None:
            return out.model_validate_json(stored)
        result, changes = run(conn, moment)
        keep_notices(ctx, conn, changes, moment)
        idempotency.remember(
            conn, scope, digest, status=200, response=result.model_dump_json(), now=moment
        )
    return result


def hold_out(hold: holds.Hold) -> t.HoldOut:
    return t.HoldOut(
        id=hold.id,
        customer=hold.customer,
        store=hold.store,
        receipt=hold.receipt,
        status=hold.status,
        points=hold.points,
        store_points=hold.store_points,
        coalition_points=hold.coalition_points,
        gift_cents=hold.gift_points,
        created_at=hold.created_at,
        expires_at=hold.expires_at,
        seller=hold.seller,
        closed_by=hold.closed_by,
    )


def purchase_out(p: purchases.Purchase) -> t.PurchaseOut:
    return t.PurchaseOut(
        id=p.id,
        customer=p.customer,
        store=p.store,
        receipt=p.receipt,
        amount_cents=p.amount_cents,
        cashback_points=p.cashback_points,
        cashback_pocket=p.cashback_pocket,
        status=p.status,
        ts=p.ts,
        seller=p.seller,
    )
