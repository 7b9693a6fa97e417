"""Goods accounts ("5 coffees"): prepaid items of one business, counted in a pocket of their
own (``spending.goods``: its id, business and item name). A till of that business sells
items into it and takes them out, one ledger lot or draw each (reason ``goods``), so the
ledger's guarantees hold: never negative, soonest-expiring first, every change journalled
and notified."""

from __future__ import annotations

from datetime import datetime, timedelta

from cloud_core import ledger
from cloud_core.errors import NotFound
from cloud_core.holds import Till
from cloud_core.spending_config import GoodsConfig, SpendingSettings
from cloud_core.store import Conn


def goods_at(settings: SpendingSettings, till: Till, goods_id: str) -> GoodsConfig:
    goods = settings.goods_of(goods_id)
    if goods is None or goods.business != till.business:
        raise NotFound(f"no goods account {goods_id!r} at this business")
    return goods


def sell(
    conn: Conn,
    goods: GoodsConfig,
    *,
    customer: str,
    count: int,
    key: str,
    now: datetime,
) -> list[ledger.Change]:
    result = ledger.grant(
        conn,
        customer=customer,
        pocket=goods.id,
        points=count,
        reason="goods",
        idem_key=f"goods-sell:{key}",
        now=now,
        expires_at=now + timedelta(days=goods.expiry_days),
        text=f"+{count} × {goods.name}",
    )
    return [result.change] if result.change is not None else []


def use(
    conn: Conn,
    goods: GoodsConfig,
    *,
    customer: str,
    count: int,
    key: str,
    now: datetime,
) -> list[ledger.Change]:
    drawn = ledger.draw(
        conn,
        customer=customer,
        pocket=goods.id,
        points=count,
        idem_key=f"goods-use:{key}",
        now=now,
        reason="goods",
        text=f"-{count} × {goods.name}",
    )
    return [d.change for d in drawn]
