"""The shopper's own API: sign in by a one-time code (``/auth``), then ``/me/...`` with the
device's token — each call sees only the signed-in shopper's data.

Sign-in, rate limits, the card and the live inbox are in ``me_state.py`` (``WalletState``);
the web wallet (``cloud_core/wallet_web``) uses the same pieces with a cookie instead of the
bearer header.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Security, status
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cloud_core import customers as customer_store
from cloud_core import ledger, shoppers
from cloud_core.api import models as m
from cloud_core.api.auth import ApiContext
from cloud_core.api.deps import Ctx, Limit, Offset, now
from cloud_core.api.routes import me_models as mm
from cloud_core.api.routes.me_state import (
    EVENT_STREAM,
    WalletState,
    entry_out,
    inbox_stream,
    parse_cursor,
)
from cloud_core.ledger import from_iso
from cloud_core.shopper_channels import mask_phone

log = logging.getLogger(__name__)

# --- dependencies ----------------------------------------------------------------------


def get_wallet(request: Request) -> WalletState:
    state: WalletState = request.app.state.wallet
    return state


Wallet = Annotated[WalletState, Depends(get_wallet)]

BEARER = HTTPBearer(
    scheme_name="CustomerToken",
    description="A shopper's device token from `POST /auth/token` (docs/core.md, 'Sign-in').",
    auto_error=False,
)


def get_device(
    state: Wallet,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
) -> shoppers.Device:
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "sign in first (Authorization: Bearer <token>)",
            {"WWW-Authenticate": "Bearer"},
        )
    device = state.device(credentials.credentials)
    if device is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "unknown, expired or signed-out token; sign in again",
            {"WWW-Authenticate": "Bearer"},
        )
    return device


Me = Annotated[shoppers.Device, Depends(get_device)]


def client_of(request: Request) -> str:
    return request.client.host if request.client is not None else "?"


# --- routes ----------------------------------------------------------------------------

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": m.Problem, "description": "Not signed in, or the token is not valid."},
}
auth = APIRouter(prefix="/auth", tags=["shopper sign-in"])
router = APIRouter(prefix="/me", tags=["shopper"], responses=ERRORS)


@auth.post(
    "/code",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a one-time sign-in code to a shopper's phone",
    responses={
        429: {"model": m.Problem, "description": "Too many codes; see Retry-After."},
        503: {"model": m.Problem, "description": "The channel (SMS gateway) failed; retry."},
    },
)
def send_code(body: mm.CodeIn, state: Wallet, request: Request) -> mm.CodeOut:
    """The code goes through the mall's channel (`wallet.channel`); the answer is the same
    whether or not the phone has a wallet. Limited per phone and per client address."""
    challenge = state.send_code(body.phone, client_of(request))
    return mm.CodeOut(
        challenge=challenge.id, expires_at=challenge.expires_at, channel=state.channel.name
    )


@auth.post(
    "/token",
    status_code=status.HTTP_201_CREATED,
    summary="Exchange the code for a device token",
    responses={
        401: {"model": m.Problem, "description": "Unknown, expired, used or wrong code."},
        429: {"model": m.Problem, "description": "Too many attempts; see Retry-After."},
    },
)
def sign_in(body: mm.TokenIn, state: Wallet, request: Request) -> mm.TokenOut:
    """A right code signs this device in (the token is shown once); a code takes
    `wallet.code_attempts` wrong guesses, then it is void."""
    device, token = state.sign_in(body.challenge, body.code, body.device_name, client_of(request))
    return mm.TokenOut(token=token, device=device_out(device, device.id))


def device_out(device: shoppers.Device, current: str) -> mm.DeviceOut:
    return mm.DeviceOut(
        id=device.id,
        name=device.name,
        created_at=device.created_at,
        expires_at=device.expires_at,
        current=device.id == current,
    )


def me_out(ctx: ApiContext, customer: str) -> mm.MeOut:
    with ctx.store.read() as conn:
        row = customer_store.require_customer(conn, customer)
        consent = shoppers.offers_consent(conn, customer)
    return mm.MeOut(
        id=customer,
        phone=mask_phone(str(row["phone"])),
        created_at=from_iso(row["created_at"]),
        offers_consent=consent,
    )


@router.get("", summary="Who is signed in")
def read_me(ctx: Ctx, me: Me) -> mm.MeOut:
    return me_out(ctx, me.customer)


def wallet_of(ctx: ApiContext, customer: str) -> mm.MyWalletOut:
    moment = now(ctx)
    with ctx.store.read() as conn:
        pockets = ledger.balances(conn, customer, moment)
        lots = shoppers.open_lots(conn, customer, moment)
    return mm.MyWalletOut(
        pockets=[
            mm.MyPocketOut(
                pocket=p.pocket,
                balance=p.balance,
                available=p.available,
                next_expiry=p.next_expiry,
                expiring=[
                    mm.ExpiryOut(points=lot.points, expires_at=lot.expires_at)
                    for lot in lots.get(p.pocket, [])
                ],
            )
            for p in pockets
            if p.balance > 0
        ]
    )


@router.get("/wallet", summary="Your points per pocket, with their expiry dates")
def my_wallet(ctx: Ctx, me: Me) -> mm.MyWalletOut:
    return wallet_of(ctx, me.customer)


def history_of(ctx: ApiContext, customer: str, limit: int, offset: int) -> list[m.JournalEntry]:
    with ctx.store.read() as conn:
        rows = ledger.history(conn, customer, None, limit, offset=offset)
    return [
        m.JournalEntry(
            id=r["id"],
            ts=from_iso(r["ts"]),
            pocket=r["pocket"],
            delta=r["delta"],
            kind=r["kind"],
            reason=r["reason"],
            text=r["text"],
        )
        for r in rows
    ]


@router.get("/history", summary="Your points history (newest first)")
def my_history(ctx: Ctx, me: Me, limit: Limit = 50, offset: Offset = 0) -> list[m.JournalEntry]:
    return history_of(ctx, me.customer, limit, offset)


def inbox_of(ctx: ApiContext, customer: str, limit: int) -> list[mm.InboxEntryOut]:
    with ctx.store.read() as conn:
        entries, _cursor = shoppers.inbox(conn, customer, limit=limit)
    return [entry_out(e) for e in entries]


@router.get("/inbox", summary="Your inbox: credits, spends, expiries and offers (newest first)")
def my_inbox(
    ctx: Ctx, me: Me, limit: Annotated[int, Query(ge=1, le=200, description="Most entries.")] = 50
) -> list[mm.InboxEntryOut]:
    return inbox_of(ctx, me.customer, limit)


@router.get(
    "/inbox/events",
    summary="Your inbox, live (server-sent events)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "`text/event-stream`: an `inbox` event per new entry (data: an "
            "InboxEntryOut as JSON; id: the cursor to resume from, sent back by the browser "
            "as Last-Event-ID). The stream ends after a minute; reconnect.",
            "content": {
                EVENT_STREAM: {
                    "schema": {"type": "string"},
                    "example": "retry: 2000\nid: 11.3\n\nid: 12.3\nevent: inbox\ndata: "
                    '{"id": "j12", "kind": "credit", "ts": "2026-11-23T10:16:30Z", "text": '
                    '"+500 points: North car park", "pocket": "mall", "points": 500, '
                    '"campaign": null}\n\n',
                }
            },
        }
    },
)
def my_inbox_events(
    state: Wallet,
    me: Me,
    request: Request,
    after: Annotated[
        str | None,
        Query(max_length=40, description="Resume after this cursor (`journal.delivery`)."),
    ] = None,
) -> StreamingResponse:
    resume = parse_cursor(request.headers.get("last-event-id")) or parse_cursor(after)
    return inbox_stream(state, request, me.customer, resume)


def offers_of(ctx: ApiContext, customer: str) -> list[mm.MyOfferOut]:
    with ctx.store.read() as conn:
        found = shoppers.offers_for(conn, customer, now(ctx))
    return [
        mm.MyOfferOut(
            campaign=o.campaign.id,
            business=o.campaign.business,
            title=o.campaign.title,
            text=o.campaign.text,
            valid_until=o.campaign.ends_at,
            received=o.received,
        )
        for o in found
    ]


@router.get("/offers", summary="The mall's running offers, marked if sent to you")
def my_offers(ctx: Ctx, me: Me) -> list[mm.MyOfferOut]:
    return offers_of(ctx, me.customer)


@router.get(
    "/card",
    summary="Your loyalty card: the signed, short-lived token a till scans",
    responses={404: {"model": m.Problem, "description": "The mall has no loyalty cards."}},
)
def my_card(state: Wallet, me: Me) -> mm.CardOut:
    """Show it as a QR code and fetch a new one after `refresh_in_s` (a till refuses it once
    it has expired). It holds your opaque id, never your phone number."""
    return state.card(me.customer)


@router.get("/consent", summary="Your consent to personal offers")
def my_consent(ctx: Ctx, me: Me) -> mm.ConsentOut:
    with ctx.store.read() as conn:
        return mm.ConsentOut(offers=shoppers.offers_consent(conn, me.customer))


def set_consent(ctx: ApiContext, customer: str, offers: bool) -> None:
    with ctx.store.transaction() as conn:
        shoppers.set_offers_consent(conn, customer, offers, now(ctx))
    log.info("a shopper changed their consent to personal offers: %s", offers)


@router.put("/consent", summary="Change your consent to personal offers")
def change_consent(body: mm.ConsentIn, ctx: Ctx, me: Me) -> mm.ConsentOut:
    """No: no offer is delivered to you any more (visits and parking still earn points)."""
    set_consent(ctx, me.customer, body.offers)
    return mm.ConsentOut(offers=body.offers)


@router.get("/devices", summary="Your signed-in devices")
def my_devices(ctx: Ctx, me: Me) -> list[mm.DeviceOut]:
    with ctx.store.read() as conn:
        devices = shoppers.list_devices(conn, me.customer, now(ctx))
    return [device_out(d, me.id) for d in devices]


@router.delete(
    "/devices/{device}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Sign a device out (your current one too)",
    responses={404: {"model": m.Problem, "description": "No such device of yours."}},
)
def sign_out(device: str, ctx: Ctx, me: Me) -> None:
    with ctx.store.transaction() as conn:
        shoppers.revoke_device(conn, me.customer, device)


def erase(ctx: ApiContext, customer: str) -> dict[str, int]:
    """Erase the shopper as ``DELETE /customers/{id}`` does: secure delete, then the WAL
    checkpointed so no copy is left in the files."""
    with ctx.store.transaction() as conn:
        removed = customer_store.erase_customer(conn, customer)
    ctx.store.checkpoint()
    log.info("a shopper erased their wallet from the wallet (%d rows)", sum(removed.values()))
    return removed


@router.delete("", summary="Erase yourself: your wallet, points and personal data")
def erase_me(ctx: Ctx, me: Me) -> mm.ErasedMeOut:
    """Everything the core keeps about you goes, from the tables and from the files; your
    points too (nobody can come back for them). Every device is signed out."""
    return mm.ErasedMeOut(erased=True, removed=erase(ctx, me.customer))
