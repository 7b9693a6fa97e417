"""The shopper's web wallet: small server-rendered pages under ``/wallet`` (Jinja2), one
stylesheet and one script served from ``/wallet/static``, nothing from the internet — it
works on a mall's LAN. English, Ukrainian and Russian (``messages.py``).

It is a client of the same pieces as the shopper's API (``cloud_core/api/routes/me.py``):
sign-in by a one-time code, a device token — here kept in an HttpOnly, SameSite=Strict
cookie — the card QR (rendered here as SVG by segno, re-fetched before the token expires),
pockets with expiry dates, the inbox live through server-sent events, consent, sign-out
and erasure. Every form carries a CSRF token (before sign-in: a double-submitted random
cookie; after: derived from the session token, which a cross-site page cannot read), and
every answer a tight Content-Security-Policy: scripts, styles, images and connections only
from this origin, no inline script or style, no framing.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import jinja2
import segno
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from cloud_core import shoppers
from cloud_core.api.deps import now
from cloud_core.api.routes import me
from cloud_core.api.routes.me_state import WalletState, inbox_stream, parse_cursor
from cloud_core.errors import CoreError
from cloud_core.wallet_web.messages import LANGUAGES, MESSAGES, NAMES, pick_language

log = logging.getLogger(__name__)

PREFIX = "/wallet"
SESSION = "mw_session"
PRE = "mw_pre"
LANG = "mw_lang"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
FORM_MAX_BYTES = 4096
#: what a refused sign-in step tells the shopper, by the status the API would answer
REFUSALS = {401: "err_code", 403: "err_csrf", 422: "err_phone", 429: "err_limit", 503: "err_send"}


def _here() -> Path:
    return Path(str(files("cloud_core.wallet_web")))


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_here() / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def csrf_of_session(token: str) -> str:
    """The CSRF token of a signed-in session: only a page that can read the session (this
    origin's server) can make it."""
    return hmac.new(token.encode(), b"wallet-csrf", hashlib.sha256).hexdigest()


def qr_svg(text: str) -> bytes:
    """The QR code of ``text`` as an SVG document (black on white, quiet zone of 4)."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=8, border=4, dark="#000", light="#fff")
    return out.getvalue()


class Pages:
    """The wallet's pages around one app's ``WalletState``."""

    def __init__(self, state: WalletState) -> None:
        self.state = state
        self.ctx = state.ctx
        self.env = _environment()
        self.tz = ZoneInfo(self.ctx.config.timezone)

    # --- plumbing ------------------------------------------------------------------------

    def lang(self, request: Request) -> str:
        return pick_language(
            request.query_params.get("lang") or request.cookies.get(LANG),
            request.headers.get("accept-language"),
        )

    def secure(self, request: Request) -> bool:
        chosen = self.state.settings.cookie_secure
        return request.url.scheme == "https" if chosen is None else chosen

    def render(
        self, request: Request, template: str, status: int = 200, **values: Any
    ) -> HTMLResponse:
        lang = self.lang(request)
        html = self.env.get_template(template).render(
            lang=lang,
            t=MESSAGES[lang],
            languages=[(code, NAMES[code]) for code in LANGUAGES],
            date=self.date,
            clock=self.clock,
            **values,
        )
        response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
        if request.query_params.get("lang") in LANGUAGES:
            response.set_cookie(
                LANG,
                lang,
                max_age=365 * 86_400,
                path=PREFIX,
                samesite="strict",
                httponly=True,
                secure=self.secure(request),
            )
        return response

    def date(self, moment: datetime) -> str:
        return moment.astimezone(self.tz).date().isoformat()

    def clock(self, moment: datetime) -> str:
        return moment.astimezone(self.tz).strftime("%H:%M:%S")

    def message(
        self, request: Request, key: str | None = None, *, text: str | None = None, status: int
    ) -> HTMLResponse:
        words = MESSAGES[self.lang(request)]
        return self.render(
            request,
            "message.html",
            status,
            text=text or words[key or "error"],
            error=status >= 400,
        )

    def session(self, request: Request) -> tuple[shoppers.Device, str] | None:
        token = request.cookies.get(SESSION)
        device = self.state.device(token)
        return (device, token) if device is not None and token else None

    @staticmethod
    async def form(request: Request) -> dict[str, str]:
        """A small url-encoded form (no multipart: nothing here uploads files)."""
        body = await request.body()
        if len(body) > FORM_MAX_BYTES:
            raise HTTPException(413, "form too large")
        try:
            parsed = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
        except ValueError:  # more fields than any of these forms has
            raise HTTPException(400, "not a form of this page") from None
        return {key: values[0] for key, values in parsed.items()}

    def _set_session(self, request: Request, response: Response, token: str) -> None:
        response.set_cookie(
            SESSION,
            token,
            max_age=self.state.settings.token_ttl_days * 86_400,
            path=PREFIX,
            samesite="strict",
            httponly=True,
            secure=self.secure(request),
        )

    def _pre_cookie(self, request: Request, response: Response, value: str) -> None:
        response.set_cookie(
            PRE,
            value,
            max_age=3600,
            path=PREFIX,
            samesite="strict",
            httponly=True,
            secure=self.secure(request),
        )

    # --- pages ---------------------------------------------------------------------------

    def sign_in_page(
        self,
        request: Request,
        *,
        challenge: str | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        pre = request.cookies.get(PRE) or secrets.token_urlsafe(24)
        response = self.render(
            request, "signin.html", status, csrf=pre, challenge=challenge, error=error
        )
        self._pre_cookie(request, response, pre)
        return response

    def refused(self, request: Request, status: int, challenge: str | None = None) -> HTMLResponse:
        """The sign-in page again, saying in the shopper's language what went wrong."""
        key = REFUSALS.get(status, "error")
        words = MESSAGES[self.lang(request)]
        return self.sign_in_page(request, challenge=challenge, error=words[key], status=status)

    def check_pre_csrf(self, request: Request, form: dict[str, str]) -> bool:
        pre = request.cookies.get(PRE, "")
        return bool(pre) and hmac.compare_digest(pre, form.get("csrf", ""))

    def home(self, request: Request, device: shoppers.Device, token: str) -> HTMLResponse:
        ctx, customer = self.ctx, device.customer
        try:
            card = self.state.card(customer)
        except CoreError:
            card = None
        with ctx.store.read() as conn:
            entries, cursor = shoppers.inbox(conn, customer, limit=30)
            devices = shoppers.list_devices(conn, customer, now(ctx))
        return self.render(
            request,
            "home.html",
            me=me.me_out(ctx, customer),
            card=card,
            wallet=me.wallet_of(ctx, customer),
            inbox=entries,
            cursor=f"{cursor.journal}.{cursor.delivery}",
            offers=me.offers_of(ctx, customer),
            history=me.history_of(ctx, customer, 30, 0),
            devices=[me.device_out(d, device.id) for d in devices],
            csrf=csrf_of_session(token),
        )


def _signed_in(pages: Pages, request: Request) -> tuple[shoppers.Device, str]:
    found = pages.session(request)
    if found is None:
        raise HTTPException(401, "sign in first")
    return found


def router(state: WalletState) -> APIRouter:  # noqa: PLR0915 - one closure per page
    pages = Pages(state)
    web = APIRouter(prefix=PREFIX, include_in_schema=False)

    def guarded(
        handler: Callable[[Request, shoppers.Device, str, dict[str, str]], Response],
    ) -> Callable[[Request], Any]:
        """A signed-in form post with a valid CSRF token (else back to sign-in / 403)."""

        async def post(request: Request) -> Response:
            form = await pages.form(request)
            found = await run_in_threadpool(pages.session, request)
            if found is None:
                return RedirectResponse(f"{PREFIX}/sign-in", 303)
            device, token = found
            if not hmac.compare_digest(csrf_of_session(token), form.get("csrf", "")):
                log.info("web wallet: a form without a valid CSRF token was refused")
                return pages.message(request, "err_csrf", status=403)
            # the database (and an erasure's checkpoint) off the event loop
            return await run_in_threadpool(handler, request, device, token, form)

        return post

    @web.get("")
    def home(request: Request) -> Response:
        found = pages.session(request)
        if found is None:
            return RedirectResponse(f"{PREFIX}/sign-in", 303, headers=SECURITY_HEADERS)
        return pages.home(request, *found)

    @web.get("/sign-in")
    def sign_in_form(request: Request) -> Response:
        return pages.sign_in_page(request)

    @web.post("/sign-in")
    async def send_code(request: Request) -> Response:
        form = await pages.form(request)
        if not pages.check_pre_csrf(request, form):
            return pages.refused(request, 403)
        try:  # the database and the SMS gateway off the event loop
            challenge = await run_in_threadpool(
                state.send_code, form.get("phone", ""), me.client_of(request)
            )
        except CoreError:
            return pages.refused(request, 422)
        except HTTPException as exc:
            return pages.refused(request, exc.status_code)
        return pages.sign_in_page(request, challenge=challenge.id)

    @web.post("/verify")
    async def verify(request: Request) -> Response:
        form = await pages.form(request)
        challenge = form.get("challenge", "")
        if not pages.check_pre_csrf(request, form):
            return pages.refused(request, 403)
        name = (form.get("device_name") or "web")[:64]
        try:
            device, token = await run_in_threadpool(
                state.sign_in, challenge, form.get("code", "").strip(), name, me.client_of(request)
            )
        except HTTPException as exc:
            # a wrong guess with tries left: the same code may be typed again
            again = exc.status_code == 401 and "tries left" in str(exc.detail)
            return pages.refused(request, exc.status_code, challenge if again else None)
        response = RedirectResponse(PREFIX, 303, headers=SECURITY_HEADERS)
        pages._set_session(request, response, token)
        response.delete_cookie(PRE, path=PREFIX)
        log.info("web wallet: device %s signed in", device.id)
        return response

    @web.get("/card.svg")
    def card_svg(request: Request) -> Response:
        device, _token = _signed_in(pages, request)
        card = state.card(device.customer)
        return Response(qr_svg(card.token), media_type="image/svg+xml", headers=SECURITY_HEADERS)

    @web.get("/balances")
    def balances(request: Request) -> Response:
        device, _token = _signed_in(pages, request)
        lang = pages.lang(request)
        html = pages.env.get_template("_balances.html").render(
            t=MESSAGES[lang], wallet=me.wallet_of(pages.ctx, device.customer), date=pages.date
        )
        return HTMLResponse(html, headers=SECURITY_HEADERS)

    @web.get("/events")
    def events(request: Request) -> Response:
        device, _token = _signed_in(pages, request)
        resume = parse_cursor(request.headers.get("last-event-id")) or parse_cursor(
            request.query_params.get("after")
        )
        return inbox_stream(state, request, device.customer, resume)

    def consent(
        request: Request, device: shoppers.Device, _t: str, form: dict[str, str]
    ) -> Response:
        me.set_consent(pages.ctx, device.customer, form.get("offers") == "yes")
        return RedirectResponse(PREFIX, 303, headers=SECURITY_HEADERS)

    def sign_out(
        request: Request, device: shoppers.Device, _t: str, _f: dict[str, str]
    ) -> Response:
        with pages.ctx.store.transaction() as conn:
            shoppers.revoke_device(conn, device.customer, device.id)
        response = RedirectResponse(f"{PREFIX}/sign-in", 303, headers=SECURITY_HEADERS)
        response.delete_cookie(SESSION, path=PREFIX)
        return response

    def erase(request: Request, device: shoppers.Device, _t: str, form: dict[str, str]) -> Response:
        if form.get("confirm") != "yes":
            return RedirectResponse(PREFIX, 303, headers=SECURITY_HEADERS)
        me.erase(pages.ctx, device.customer)
        response = pages.message(request, "erased", status=200)
        response.delete_cookie(SESSION, path=PREFIX)
        return response

    web.add_api_route("/consent", guarded(consent), methods=["POST"])
    web.add_api_route("/sign-out", guarded(sign_out), methods=["POST"])
    web.add_api_route("/erase", guarded(erase), methods=["POST"])
    return web


def mount(app: FastAPI, state: WalletState) -> None:
    """Serve the web wallet's pages and files on ``app``."""
    app.include_router(router(state))
    app.mount(f"{PREFIX}/static", StaticFiles(directory=_here() / "static"), name="wallet-static")
