"""The per-app state of the shopper's wallet and its live inbox, shared by the customer
API (``me.py``) and the web wallet (``cloud_core/wallet_web``).

``WalletState`` (one per app, ``app.state.wallet``) holds the code channel, the rate limits
(codes per phone and per client address, code checks per address; in memory per process —
the attempt counter on each code is in the database and bounds every worker together) and
the live inbox's shared "anything new?" watermark; ``inbox_stream`` is the server-sent
event stream of one shopper's inbox.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import anyio
from fastapi import HTTPException, Request, status
from fastapi.responses import StreamingResponse

from cloud_core import customers as customer_store
from cloud_core import reports, shopper_channels, shoppers
from cloud_core.api.auth import ApiContext
from cloud_core.api.deps import now
from cloud_core.api.routes import me_models as mm
from cloud_core.cards import issue_card_token
from cloud_core.errors import NotFound

log = logging.getLogger(__name__)

EVENT_STREAM = "text/event-stream"
STREAM_MAX_S = 60.0  # a stream ends after this; EventSource reconnects with Last-Event-ID
KEEPALIVE_S = 15.0


class KeyedLimiter:
    """At most ``limit`` calls per ``window_s`` per key — for keys a stranger picks (a phone
    number, a client address), so it remembers at most ``max_keys`` of them, dropping the
    least recently used: a flood of made-up phone numbers cannot grow memory without bound."""

    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float], max_keys: int = 100_000
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._clock = clock
        self._calls: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        """Count a call; None if allowed, else the seconds until one would be."""
        now = self._clock()
        with self._lock:
            calls = self._calls.pop(key, None) or deque()
            self._calls[key] = calls  # now the most recently used
            while calls and calls[0] <= now - self.window_s:
                calls.popleft()
            while len(self._calls) > self.max_keys:
                self._calls.popitem(last=False)
            if len(calls) >= self.limit:
                return calls[0] + self.window_s - now
            calls.append(now)
            return None

    def __len__(self) -> int:
        return len(self._calls)


class WalletState:
    """The per-app parts of the shopper's wallet (built by ``create_app``)."""

    def __init__(self, ctx: ApiContext) -> None:
        settings = ctx.config.wallet
        self.ctx = ctx
        self.settings = settings
        self.channel = shopper_channels.make_channel(settings)
        self.codes_per_phone = KeyedLimiter(settings.codes_per_phone, settings.window_s, ctx.clock)
        self.codes_per_ip = KeyedLimiter(settings.codes_per_ip, settings.window_s, ctx.clock)
        self.tries_per_ip = KeyedLimiter(settings.tries_per_ip, settings.window_s, ctx.clock)
        cards = ctx.config.cards
        self.card_key = cards.key() if cards is not None else None
        self.card_ttl_s = cards.ttl_s if cards is not None else 0
        self._latest = shoppers.Cursor()
        self._latest_at = -math.inf
        self._latest_lock = asyncio.Lock()

    # --- sign-in -------------------------------------------------------------------------

    @staticmethod
    def _limit(limiter: KeyedLimiter, who: str, what: str) -> None:
        wait = limiter.take(who)
        if wait is not None:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"too many {what}; try again later",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )

    def send_code(self, phone: str, client: str) -> shoppers.Challenge:
        """Make and send a code (429 past the limits; the same answer for unknown phones)."""
        ctx = self.ctx
        e164 = customer_store.normalise_phone(phone, ctx.config.default_region)
        self._limit(self.codes_per_ip, client, "sign-in codes from this address")
        self._limit(self.codes_per_phone, e164, "sign-in codes for this phone")
        moment = now(ctx)
        with ctx.store.transaction() as conn:
            shoppers.drop_expired_codes(conn, moment)
            customer = reports.customer_of_phone(conn, e164)
            challenge = shoppers.start_signin(conn, customer, moment, self.settings)
        if challenge.code is not None:
            try:
                self.channel.send(e164, challenge.code, self.settings.code_ttl_s)
            except shopper_channels.ChannelError as exc:
                raise HTTPException(
                    status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), {"Retry-After": "30"}
                ) from None
        else:
            log.info("sign-in code asked for an unregistered phone (nothing sent)")
        return challenge

    def sign_in(
        self, challenge: str, code: str, device_name: str, client: str
    ) -> tuple[shoppers.Device, str]:
        """Check the code and sign the device in (401 on a wrong code, 429 past the limit)."""
        self._limit(self.tries_per_ip, client, "sign-in attempts from this address")
        moment = now(self.ctx)
        with self.ctx.store.transaction() as conn:
            try:
                customer = shoppers.check_code(conn, challenge, code, moment, self.settings)
            except shoppers.SigninFailed as exc:
                failed = exc  # commit the counted attempt (or the voided code), then refuse
            else:
                customer_store.require_customer(conn, customer)
                return shoppers.add_device(conn, customer, device_name, moment, self.settings)
        log.info("sign-in refused: %s", failed)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(failed))

    def device(self, token: str | None) -> shoppers.Device | None:
        if not token:
            return None
        with self.ctx.store.read() as conn:
            return shoppers.device_of_token(conn, token, now(self.ctx))

    # --- the card ------------------------------------------------------------------------

    def card(self, customer: str) -> mm.CardOut:
        if self.card_key is None:
            raise NotFound("this mall has no loyalty cards (no `cards:` in the core's config)")
        moment = now(self.ctx)
        token = issue_card_token(self.card_key, customer, moment, self.card_ttl_s)
        expires = datetime.fromtimestamp(int(moment.timestamp()) + self.card_ttl_s, UTC)
        # fetch the next one well before this one ends (a till may be slow to scan)
        return mm.CardOut(
            token=token, expires_at=expires, refresh_in_s=max(5, self.card_ttl_s * 3 // 4)
        )

    # --- the live inbox ------------------------------------------------------------------

    async def latest(self) -> shoppers.Cursor:
        """The newest journal row and delivery of anyone, read at most once per poll
        interval however many shoppers are watching (then each looks at its own rows only
        when this moved)."""
        async with self._latest_lock:
            if time.monotonic() - self._latest_at >= self.settings.inbox_poll_s:
                self._latest = await anyio.to_thread.run_sync(self._read_latest)
                self._latest_at = time.monotonic()
            return self._latest

    def _read_latest(self) -> shoppers.Cursor:
        with self.ctx.store.read() as conn:
            return shoppers.latest(conn)

    def inbox_since(
        self, customer: str, after: shoppers.Cursor
    ) -> tuple[list[shoppers.InboxEntry], shoppers.Cursor, bool]:
        with self.ctx.store.read() as conn:
            return shoppers.inbox_since(conn, customer, after)

    def start_cursor(self, customer: str) -> shoppers.Cursor:
        with self.ctx.store.read() as conn:
            _entries, cursor = shoppers.inbox(conn, customer, limit=1)
        return cursor


def parse_cursor(text: str | None) -> shoppers.Cursor | None:
    """``12.3`` (journal id, delivery id) → a cursor; None if absent or malformed."""
    if not text:
        return None
    journal, _, delivery = text.partition(".")
    if not (journal.isdigit() and delivery.isdigit()) or len(text) > 40:
        return None
    return shoppers.Cursor(int(journal), int(delivery))


def entry_out(entry: shoppers.InboxEntry) -> mm.InboxEntryOut:
    return mm.InboxEntryOut(
        id=entry.id,
        kind=entry.kind,
        ts=entry.ts,
        text=entry.text,
        pocket=entry.pocket,
        points=entry.points,
        campaign=entry.campaign,
    )


def inbox_stream(
    state: WalletState, request: Request, customer: str, after: shoppers.Cursor | None
) -> StreamingResponse:
    """Server-sent events: one ``inbox`` event per new entry (its data the entry as JSON,
    its id the cursor to resume from), a comment every 15 s to keep proxies from closing
    the stream, and the end after a minute (the browser reconnects by itself)."""

    async def events() -> AsyncIterator[str]:
        cursor: shoppers.Cursor = (
            after
            if after is not None
            else await anyio.to_thread.run_sync(state.start_cursor, customer)
        )
        seen = await state.latest()
        started = last_sent = time.monotonic()
        yield f"retry: 2000\nid: {cursor.journal}.{cursor.delivery}\n\n"
        while time.monotonic() - started < STREAM_MAX_S:
            if await request.is_disconnected():
                return
            await asyncio.sleep(state.settings.inbox_poll_s)
            news = await state.latest()
            if news == seen:
                if time.monotonic() - last_sent >= KEEPALIVE_S:
                    last_sent = time.monotonic()
                    yield ": keep-alive\n\n"
                continue
            seen = news
            more = True
            while more:
                entries, cursor, more = await anyio.to_thread.run_sync(
                    state.inbox_since, customer, cursor
                )
                for n, entry in enumerate(entries, 1):  # oldest first
                    data = entry_out(entry).model_dump_json()
                    # the cursor goes with the batch's last event only: a stream cut in the
                    # middle resumes before the batch (entries have stable ids to drop repeats)
                    resume = (
                        f"id: {cursor.journal}.{cursor.delivery}\n" if n == len(entries) else ""
                    )
                    last_sent = time.monotonic()
                    yield f"{resume}event: inbox\ndata: {data}\n\n"

    return StreamingResponse(
        events(),
        media_type=EVENT_STREAM,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
