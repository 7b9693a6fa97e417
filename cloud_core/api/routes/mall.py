"""The mall: its stores, edge nodes, and the offers kiosks show."""

from __future__ import annotations

import json

from fastapi import APIRouter

from cloud_core import offers, reports
from cloud_core.api import models as m
from cloud_core.api.auth import ApiContext, Principal
from cloud_core.api.deps import (
    ERRORS,
    AdminOrKiosk,
    Caller,
    Ctx,
    Staff,
    now,
)
from cloud_core.ledger import from_iso

router = APIRouter(tags=["stores and nodes"], responses=ERRORS)


def _visible_stores(ctx: ApiContext, caller: Principal) -> list[m.StoreOut]:
    return [
        m.StoreOut(id=s.id, name=s.name, business=s.business, zone=s.zone, nodes=list(s.nodes))
        for s in ctx.config.stores
        if caller.role != "tenant" or s.business == caller.business
    ]


@router.get("/stores", summary="The mall's stores")
def list_stores(ctx: Ctx, caller: Staff) -> list[m.StoreOut]:
    """Tenants see their own stores only."""
    return _visible_stores(ctx, caller)


@router.get("/nodes", summary="Edge nodes and their last status and health")
def list_nodes(ctx: Ctx, caller: Caller) -> list[m.NodeOut]:
    """Admins see every node, tenants their stores' nodes, a node key itself."""
    store_of = ctx.config.store_of_node()
    with ctx.store.read() as conn:
        rows = reports.nodes(conn)
    ids = sorted(set(store_of) | set(rows))
    out = []
    for node in ids:
        store = store_of.get(node)
        if caller.role == "tenant" and (store is None or store.business != caller.business):
            continue
        if caller.role == "node" and node != caller.node:
            continue
        if caller.role in ("kiosk", "metrics"):  # /metrics has what a scraper needs
            continue
        row = rows.get(node)
        out.append(
            m.NodeOut(
                id=node,
                store=store.id if store else None,
                state=row["state"] if row else None,
                since=from_iso(row["since"]) if row and row["since"] else None,
                software=row["software"] if row else None,
                last_seen=from_iso(row["last_seen"]) if row and row["last_seen"] else None,
                health=json.loads(row["last_health"]) if row and row["last_health"] else None,
            )
        )
    return out


@router.get("/kiosk/offers", summary="Offers a kiosk shows now")
def kiosk_offers(ctx: Ctx, _caller: AdminOrKiosk) -> list[m.OfferOut]:
    with ctx.store.read() as conn:
        active = offers.list_campaigns(conn, active_at=now(ctx))
    return [m.OfferOut(**c.card().model_dump()) for c in active]
