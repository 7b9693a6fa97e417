"""Store QR check-ins: the code at a store's door, its self-refreshing screen, and a scan.

A scan is a pay-per-visit visit of the store (``rules/store_qr.py``), credited in the
API's transaction under the same cooldown and daily cap as a beacon visit; its inbox
notices are kept in the outbox with it and published by the ingest worker. The routes
answer 404 while the core runs without a ``store_qr`` config.

Who calls the scan: the shopper's identity is the ``customer`` in the body, sent by a
kiosk-scoped or admin key (the shopper's app or web wallet calling through the mall's
backend). When a customer API with its own authentication exists, it calls
``scan_store_qr`` below with the authenticated customer id: that is the one seam.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import segno
from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from cloud_core import customers, ledger, store_qr
from cloud_core.api.auth import ApiContext
from cloud_core.api.deps import ERRORS, AdminOrKiosk, AdminOrTenant, Ctx, now, own_business
from cloud_core.config import StoreConfig
from cloud_core.errors import NotFound
from cloud_core.ingest.notices import NoticeOutbox
from cloud_core.rules.store_qr import apply_scan
from cloud_core.schemes_config import StoreQrSettings
from mallnet.ids import new_event_id

router = APIRouter(tags=["store QR check-ins"], responses=ERRORS)


def _example(**example: JsonValue) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})


class StoreQrScanIn(BaseModel):
    model_config = _example(
        customer="c5f0c2a9be1d34c7a8b6e0f1", code="mq1.shoe-hub.29643840.3q2-7w9Xz0aBcDeFgHiJkL"
    )
    customer: str = Field(
        min_length=1, max_length=64, description="The shopper who scanned (their customer id)."
    )
    code: str = Field(min_length=1, max_length=200, description="The scanned QR text.")


class StoreQrScanOut(BaseModel):
    model_config = _example(outcome="credited", store="shoe-hub", points=10)
    outcome: Literal["credited", "cooldown", "capped"] = Field(
        description="credited: a visit with points; cooldown: this store already counted a "
        "visit (by beacon, kiosk or QR) within its cooldown; capped: a visit, but the "
        "business's daily cap left fewer points (maybe 0)."
    )
    store: str = Field(description="The store whose code it was.")
    points: int = Field(description="Visit points credited to the store's business pocket.")


class StoreQrOut(BaseModel):
    model_config = _example(
        store="shoe-hub",
        code="mq1.shoe-hub.29643840.3q2-7w9Xz0aBcDeFgHiJkL",
        valid_from="2026-11-23T10:00:00Z",
        expires_at="2026-11-23T10:02:00Z",
        screen_path="/stores/shoe-hub/qr-screen?screen=Zp2c1dQm6Xq0r3sT5uV7wA",
    )
    store: str = Field(description="The store.")
    code: str = Field(description="The current code (what the QR encodes).")
    valid_from: datetime = Field(description="Start of the code's window.")
    expires_at: datetime = Field(description="When the code stops being accepted (with grace).")
    screen_path: str = Field(
        description="The self-refreshing screen page of this store (HTML, no key header "
        "needed: its `screen` parameter lets it show this store's code only)."
    )


def _settings(ctx: ApiContext) -> StoreQrSettings:
    settings = ctx.config.store_qr
    if settings is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "store QR check-ins are not configured")
    return settings


def _store(ctx: ApiContext, store: str) -> StoreConfig:
    found = ctx.stores.get(store)
    if found is None:
        raise NotFound(f"no store {store!r}")
    return found


def _code(ctx: ApiContext, settings: StoreQrSettings, store: str) -> store_qr.StoreCode:
    return store_qr.code_for(
        settings.key(),
        ctx.config.mall,
        store,
        now(ctx),
        window_s=settings.window_s,
        grace_windows=settings.grace_windows,
    )


def scan_store_qr(ctx: ApiContext, customer: str, code: str) -> StoreQrScanOut:
    """Check a scanned code and credit the visit (the seam any shopper-facing caller uses)."""
    settings = _settings(ctx)
    moment = now(ctx)
    store_id = store_qr.verify_code(
        settings.key(),
        ctx.config.mall,
        code,
        moment,
        window_s=settings.window_s,
        grace_windows=settings.grace_windows,
    )
    store = ctx.stores.get(store_id)
    if store is None:  # signed by us, for a store since removed from the config
        raise store_qr.StoreQrRefused("this store QR code names a store the mall no longer has")
    outbox = NoticeOutbox(ctx.config.mall, ctx.store)
    with ctx.store.transaction() as conn:
        customers.require_customer(conn, customer)
        result = apply_scan(
            conn,
            customer=customer,
            store=store,
            rules=ctx.config.rules_for(store),
            game=ctx.config.game,
            tz=ZoneInfo(ctx.config.timezone),
            code=code.strip(),
            event_id=new_event_id(),
            ts=moment,
        )
        if result.outcome == "replayed":
            raise store_qr.StoreQrReplayed("this shopper has already scanned this store QR code")
        outbox.keep(conn, result.notices, ledger.iso(datetime.now(UTC)))
    return StoreQrScanOut(outcome=result.outcome, store=store.id, points=result.points)


@router.post("/checkins/store-qr", summary="A shopper scanned a store's QR code")
def scan(body: StoreQrScanIn, ctx: Ctx, _caller: AdminOrKiosk) -> StoreQrScanOut:
    """Credit a pay-per-visit visit of the store whose signed, current code the shopper
    scanned: one visit per cooldown whichever way it arrives (beacon, kiosk or QR), the
    same daily cap. Forged, altered, expired and malformed codes are refused (422,
    `urn:mallnet:problem:store-qr-refused`); the same code scanned twice by one shopper is
    refused (409, `urn:mallnet:problem:store-qr-replayed`)."""
    return scan_store_qr(ctx, body.customer, body.code)


@router.get("/stores/{store}/qr", summary="The current QR code of a store's door")
def current_code(store: str, ctx: Ctx, caller: AdminOrTenant) -> StoreQrOut:
    """The code a screen at the door shows now, and the URL path of that screen (a tenant
    sees only its own stores)."""
    settings = _settings(ctx)
    found = _store(ctx, store)
    own_business(caller, found.business)
    current = _code(ctx, settings, found.id)
    key = store_qr.screen_key(settings.key(), ctx.config.mall, found.id)
    return StoreQrOut(
        store=found.id,
        code=current.code,
        valid_from=current.valid_from,
        expires_at=current.expires_at,
        screen_path=f"/stores/{found.id}/qr-screen?screen={key}",
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{refresh}">
<title>{name} — scan to check in</title>
<style>
body {{ font-family: sans-serif; text-align: center; margin: 2rem; }}
h1 {{ font-size: 2.2rem; margin: 0 0 1rem; }}
.qr svg {{ width: min(80vw, 70vh); height: auto; }}
p {{ font-size: 1.3rem; color: #333; }}
</style></head>
<body>
<h1>{name}</h1>
<div class="qr" data-code="{code}">{svg}</div>
<p>Scan with the mall app to check in and collect your visit points.</p>
<p><small>This code changes every {window} s.</small></p>
</body></html>
"""


@router.get(
    "/stores/{store}/qr-screen",
    include_in_schema=False,  # an HTML page for a screen at the door (docs/core.md)
    response_class=HTMLResponse,
)
def screen(
    store: str,
    ctx: Ctx,
    screen_key: Annotated[str, Query(alias="screen", max_length=64)] = "",
) -> HTMLResponse:
    """The store's current code as a page that refreshes itself (no script, no CDN)."""
    settings = _settings(ctx)
    found = _store(ctx, store)
    key = settings.key()
    if not store_qr.screen_key_ok(key, ctx.config.mall, found.id, screen_key):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong or missing screen key")
    current = _code(ctx, settings, found.id)
    remaining = (current.valid_from.timestamp() + settings.window_s) - now(ctx).timestamp()
    svg = segno.make(current.code, error="m").svg_inline(scale=8, border=4)
    page = _PAGE.format(
        refresh=max(1, min(settings.window_s, int(remaining) + 1)),
        name=html.escape(found.name),
        code=html.escape(current.code),
        svg=svg,
        window=settings.window_s,
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})
