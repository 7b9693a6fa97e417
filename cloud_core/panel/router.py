"""The control panel's routes under ``/panel`` (long: the one router module of the panel —
login, pages, campaign forms and JSON data endpoints — kept together as one place to read).

Pages are rendered on the server (Jinja2, autoescaped); htmx refreshes each page's live part
by fetching the same page again and swapping that part, and ``panel.js`` draws the charts
(uPlot) from the ``/panel/data/...`` endpoints. Every response under ``/panel`` carries a
Content-Security-Policy that admits only this server's own scripts and styles (no inline
script, nothing from another origin). Forms post a per-session CSRF token and are refused
from another origin. What each role sees is decided in ``views.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import jinja2
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud_core import ledger, offers, promo_codes, promo_csv
from cloud_core.api import models as m
from cloud_core.api.auth import ApiContext, Principal
from cloud_core.errors import CoreError, InvalidInput
from cloud_core.panel import i18n, promo_views, settlement_views, views
from cloud_core.panel.sessions import COOKIE, MAX_AGE_S, Session, Sessions, csrf_ok

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
PREFIX = "/panel"
MAX_FORM_BYTES = 64 * 1024
MAX_UPLOAD_FORM_BYTES = 4 * 1024 * 1024 + MAX_FORM_BYTES  # a promo-code CSV and its form
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
LANG_COOKIE = "mallnet_panel_lang"


@dataclass(frozen=True)
class Section:
    """A nav entry. ``needs_api``: shown only once the API has a route under that prefix
    (the feature exists); ``needs_config``: only when that section of the core's config is
    set; ``roles``: who sees it."""

    key: str
    path: str
    roles: frozenset[str]
    needs_api: str | None = None
    needs_config: str | None = None


BOTH = frozenset({"admin", "tenant"})
OFFICE = frozenset({"admin"})
SECTIONS: tuple[Section, ...] = (
    Section("nav.overview", "/", BOTH),
    Section("nav.feed", "/feed", BOTH),
    Section("nav.campaigns", "/campaigns", BOTH),
    Section("nav.nodes", "/nodes", BOTH),
    Section("nav.mailings", "/mailings", BOTH, needs_config="mailings"),
    Section("nav.parking", "/parking", OFFICE),
    Section("nav.dead_letters", "/dead-letters", OFFICE),
    # places kept for features built elsewhere: their entries appear when their API does
    Section("nav.promo_codes", "/promo-codes", BOTH, needs_api="/promo-codes"),
    Section("nav.settlement", "/settlement", BOTH, needs_api="/settlement"),
)


class PanelState:
    def __init__(self, ctx: ApiContext, app: FastAPI) -> None:
        self.ctx = ctx
        self.app = app
        self.sessions = Sessions(ctx.clock)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )

    def sections(self, who: Principal) -> list[Section]:
        # the API's own document: FastAPI keeps included routers nested in ``app.routes``
        paths = set(self.app.openapi().get("paths", {}))
        return [
            s
            for s in SECTIONS
            if who.role in s.roles
            and (s.needs_api is None or any(p.startswith(s.needs_api) for p in paths))
            and (s.needs_config is None or getattr(self.ctx.config, s.needs_config) is not None)
        ]


def _state(request: Request) -> PanelState:
    state: PanelState = request.app.state.panel
    return state


def _lang(request: Request) -> str:
    return i18n.pick(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def _session(request: Request) -> Session | None:
    return _state(request).sessions.get(request.cookies.get(COOKIE))


def _render(
    request: Request,
    template: str,
    session: Session | None,
    status: int = 200,
    **values: Any,
) -> HTMLResponse:
    state = _state(request)
    lang = _lang(request)
    who = session.principal if session else None
    html = state.env.get_template(template).render(
        t=lambda key: i18n.translate(lang, key),
        lang=lang,
        languages=i18n.LANGUAGES,
        labels=i18n.LABELS,
        who=who,
        csrf=session.csrf if session else "",
        sections=state.sections(who) if who else [],
        here=request.url.path,
        prefix=PREFIX,
        mall=state.ctx.config.mall,
        **values,
    )
    return HTMLResponse(html, status_code=status)


def _to_login(request: Request | None = None) -> Response:
    """To the sign-in page; an htmx refresh whose session has ended asks htmx to load it as
    a whole page (``HX-Redirect``) rather than swap the sign-in form into a live part."""
    if request is not None and request.headers.get("hx-request") == "true":
        return Response(status_code=200, headers={"HX-Redirect": f"{PREFIX}/login"})
    return RedirectResponse(f"{PREFIX}/login", status_code=303)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


async def _form(request: Request) -> dict[str, list[str]] | None:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return None
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=200)


def _one(form: dict[str, list[str]], name: str) -> str:
    return (form.get(name) or [""])[0].strip()


router = APIRouter(prefix=PREFIX, include_in_schema=False)

Page = Callable[[Request, Session], Response]


def page(*, office: bool = False) -> Callable[[Page], Callable[[Request], Response]]:
    """A page for a signed-in admin or tenant (``office``: admin only, else 403)."""

    def wrap(render: Page) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            session = _session(request)
            if session is None:
                return _to_login(request)
            if office and not views.is_admin(session.principal):
                return _render(request, "error.html", session, 403, message="error.forbidden")
            return render(request, session)

        handler.__name__ = render.__name__
        return handler

    return wrap


def data(*, office: bool = False) -> Callable[[Callable[[ApiContext, Principal], Any]], Any]:
    """A JSON data endpoint for the charts: 401 without a session, 403 (office) for a tenant."""

    def wrap(build: Callable[[ApiContext, Principal], Any]) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            session = _session(request)
            if session is None:
                return JSONResponse({"detail": "sign in first"}, status_code=401)
            if office and not views.is_admin(session.principal):
                return JSONResponse({"detail": "not for your role"}, status_code=403)
            return JSONResponse(build(_state(request).ctx, session.principal))

        handler.__name__ = build.__name__
        return handler

    return wrap


# --- login -------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request) -> Response:
    if _session(request) is not None:
        return RedirectResponse(f"{PREFIX}/", status_code=303)
    return _render(request, "login.html", None, error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    state = _state(request)
    form = await _form(request)
    if form is None or not _same_origin(request):
        return _render(request, "login.html", None, 400, error="error.csrf")
    client = request.client.host if request.client else "?"
    if state.sessions.logins.take(client) is not None:
        log.warning("panel: too many sign-in attempts from %s", client)
        return _render(request, "login.html", None, 429, error="login.too_many")
    principal = state.ctx.keys.lookup(_one(form, "key"))
    if principal is None:
        log.info("panel: sign-in with an unknown key from %s", client)
        return _render(request, "login.html", None, 401, error="login.bad_key")
    if principal.role not in ("admin", "tenant"):
        return _render(request, "login.html", None, 403, error="login.bad_role")
    sid = state.sessions.open(principal)
    log.info("panel: %s (%s) signed in", principal.name, principal.role)
    response = RedirectResponse(f"{PREFIX}/", status_code=303)
    response.set_cookie(
        COOKIE,
        sid,
        max_age=int(MAX_AGE_S),
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = _session(request)
    form = await _form(request)
    if session is not None and form is not None and csrf_ok(session, _one(form, "csrf")):
        _state(request).sessions.close(request.cookies.get(COOKIE))
    response = _to_login()
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


@router.get("/lang/{code}")
def set_language(request: Request, code: str, next: str = PREFIX + "/") -> Response:
    target = next if next.startswith(PREFIX + "/") and "//" not in next else PREFIX + "/"
    response = RedirectResponse(target, status_code=303)
    if code in i18n.LANGUAGES:
        response.set_cookie(
            LANG_COOKIE, code, max_age=365 * 86400, path=PREFIX, httponly=True, samesite="lax"
        )
    return response


# --- pages -------------------------------------------------------------------------------


@router.get("/")
@page()
def overview(request: Request, session: Session) -> Response:
    ctx = _state(request).ctx
    series = views.footfall_series(ctx, session.principal)
    days = views.store_days(ctx, session.principal, series)
    return _render(request, "overview.html", session, stores=days)


@router.get("/feed")
@page()
def feed_page(request: Request, session: Session) -> Response:
    return _render(
        request, "feed.html", session, feed=views.feed(_state(request).ctx, session.principal)
    )


@router.get("/nodes")
@page()
def nodes_page(request: Request, session: Session) -> Response:
    found = views.nodes(_state(request).ctx, session.principal)
    alerts = [n for n in found if n["alert"]]
    return _render(request, "nodes.html", session, nodes=found, alerts=alerts)


@router.get("/parking")
@page(office=True)
def parking_page(request: Request, session: Session) -> Response:
    return _render(request, "parking.html", session, parking=views.parking(_state(request).ctx))


@router.get("/dead-letters")
@page(office=True)
def dead_letters_page(request: Request, session: Session) -> Response:
    return _render(
        request, "dead_letters.html", session, rows=views.dead_letters(_state(request).ctx)
    )


@router.get("/promo-codes")
@page()
def promo_codes_page(request: Request, session: Session) -> Response:
    """Pools with their stock, their latest uploads (live progress and report), an upload
    form for the admin (``cloud_core/panel/promo_views.py``)."""
    pools = promo_views.pools(_state(request).ctx, session.principal)
    return _render(request, "promo_codes.html", session, pools=pools, error=None)


@router.get("/promo-codes/{pool_id}/print")
@page()
def promo_codes_print(request: Request, session: Session) -> Response:
    ctx = _state(request).ctx
    pool = promo_views.own_pool(ctx, session.principal, request.path_params["pool_id"])
    if pool is None:
        return _render(request, "error.html", session, 404, message="error.not_found")
    with ctx.store.read() as conn:
        rows = promo_codes.printable_codes(conn, pool.id, include_used=True)
    now = datetime.fromtimestamp(ctx.clock(), UTC)
    return HTMLResponse(promo_codes.printable_page(pool, rows, now))


@router.post("/promo-codes/upload")
async def promo_codes_upload(request: Request) -> Response:
    """The admin's CSV upload (multipart): checked as ``POST /promo-codes/pools/{id}/uploads``
    checks it, then judged in the background; the page shows its progress."""
    state = _state(request)
    session = _session(request)
    if session is None:
        return _to_login()
    if not views.is_admin(session.principal):
        return _render(request, "error.html", session, 403, message="error.forbidden")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > MAX_UPLOAD_FORM_BYTES:
            return _render(request, "error.html", session, 413, message="error.too_large")
    fields = promo_views.multipart_fields(request.headers.get("content-type", ""), bytes(body))
    if (
        fields is None
        or not _same_origin(request)
        or not csrf_ok(session, fields.get("csrf", b"").decode("utf-8", "replace"))
    ):
        return _render(request, "error.html", session, 403, message="error.csrf")
    ctx = state.ctx
    pool_id = fields.get("pool", b"").decode("utf-8", "replace")
    data = fields.get("file", b"")

    def start() -> promo_codes.Upload:
        total = promo_csv.check_envelope(data)
        with ctx.store.transaction() as conn:
            return promo_codes.start_upload(
                conn, pool_id, total, datetime.fromtimestamp(ctx.clock(), UTC)
            )

    try:
        upload = await run_in_threadpool(start)
    except CoreError as exc:
        log.info("panel: upload to pool %s refused: %s", pool_id, exc)
        pools = await run_in_threadpool(promo_views.pools, ctx, session.principal)
        return _render(request, "promo_codes.html", session, 422, pools=pools, error=str(exc))
    log.info("panel: %s uploads %d rows to pool %s", session.principal.name, upload.total, pool_id)
    return RedirectResponse(
        f"{PREFIX}/promo-codes",
        status_code=303,
        background=BackgroundTask(
            promo_codes.run_upload,
            ctx.store,
            upload,
            data,
            lambda: datetime.fromtimestamp(ctx.clock(), UTC),
        ),
    )


@router.get("/settlement")
@page()
def settlement_page(request: Request, session: Session) -> Response:
    """A month's settlement report (``?period=YYYY-MM``, default this month): the office's
    every line, a tenant's own (``panel/settlement_views.py``)."""
    ctx = _state(request).ctx
    try:
        period = settlement_views.period_or_current(ctx, request.query_params.get("period"))
    except InvalidInput:
        return _render(request, "error.html", session, 400, message="error.not_found")
    rep = settlement_views.report(ctx, session.principal, period)
    return _render(request, "settlement.html", session, rep=rep, euros=settlement_views.euros)


@router.get("/settlement.csv")
@page()
def settlement_csv(request: Request, session: Session) -> Response:
    """The same report as CSV (what ``GET /settlements/{period}/csv`` answers)."""
    ctx = _state(request).ctx
    try:
        period = settlement_views.period_or_current(ctx, request.query_params.get("period"))
    except InvalidInput:
        return _render(request, "error.html", session, 400, message="error.not_found")
    text = settlement_views.csv_of(ctx, session.principal, period)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="settlement-{period}.csv"'},
    )


# --- campaigns ---------------------------------------------------------------------------


def _local(ctx: ApiContext, moment: datetime) -> str:
    """For a datetime-local input: the mall's local time, to the minute."""
    return moment.astimezone(ZoneInfo(ctx.config.timezone)).strftime("%Y-%m-%dT%H:%M")


def _campaign_form(
    request: Request,
    session: Session,
    campaign: offers.Campaign | None,
    *,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    ctx = _state(request).ctx
    now = datetime.fromtimestamp(ctx.clock(), UTC)
    typed = values or {}
    if campaign is None:
        values = {
            "id": "",
            "business": views.businesses(ctx, session.principal)[0],
            "title": "",
            "text": "",
            "starts_at": _local(ctx, now),
            "ends_at": _local(ctx, now + timedelta(days=7)),
            "stores": [],
            "zones": "",
            "segment": "all",
            "cap_count": 1,
            "cap_period_h": "",
            "bonus_points": 0,
        }
    else:
        period = campaign.cap_period_s
        values = {
            "id": campaign.id,
            "business": campaign.business,
            "title": campaign.title,
            "text": campaign.text,
            "starts_at": _local(ctx, campaign.starts_at),
            "ends_at": _local(ctx, campaign.ends_at),
            "stores": list(campaign.stores),
            "zones": ", ".join(campaign.zones),
            "segment": campaign.segment,
            "cap_count": campaign.cap_count,
            "cap_period_h": "" if period is None else f"{period / 3600:g}",
            "bonus_points": campaign.bonus_points,
        }
    values.update(typed)  # what the user typed wins over the stored values
    return _render(
        request,
        "campaign.html",
        session,
        status,
        campaign=campaign,
        values=values,
        error=error,
        notice=notice,
        businesses=views.businesses(ctx, session.principal),
        stores=views.stores(ctx, session.principal),
        segments=list(offers.SEGMENTS),
        deliveries=views.deliveries(ctx, campaign) if campaign else [],
    )


@router.get("/mailings")
@page()
def mailings_page(request: Request, session: Session) -> Response:
    found = views.mailings_with_status(_state(request).ctx, session.principal)
    return _render(request, "mailings.html", session, mailings=found)


@router.get("/campaigns")
@page()
def campaigns_page(request: Request, session: Session) -> Response:
    found = views.campaigns(_state(request).ctx, session.principal)
    return _render(request, "campaigns.html", session, campaigns=found)


@router.get("/campaigns/new")
@page()
def new_campaign(request: Request, session: Session) -> Response:
    return _campaign_form(request, session, None)


@router.get("/campaigns/{campaign_id}")
@page()
def edit_campaign(request: Request, session: Session) -> Response:
    ctx = _state(request).ctx
    campaign = views.own_campaign(ctx, session.principal, request.path_params["campaign_id"])
    if campaign is None:
        return _render(request, "error.html", session, 404, message="error.not_found")
    notice = {"saved": "saved"}.get(request.query_params.get("done", ""))
    return _campaign_form(request, session, campaign, notice=notice)


def _parse_campaign(ctx: ApiContext, form: dict[str, list[str]], campaign_id: str) -> m.CampaignIn:
    """The form as the API's own model (the same checks as ``POST /campaigns``)."""
    zone = ZoneInfo(ctx.config.timezone)

    def local(name: str) -> datetime | str:
        text = _one(form, name)
        try:
            return datetime.fromisoformat(text).replace(tzinfo=zone)
        except ValueError:
            return text  # the model refuses it with its own message

    period = _one(form, "cap_period_h")
    return m.CampaignIn.model_validate(
        {
            "id": campaign_id,
            "business": _one(form, "business") or None,
            "title": _one(form, "title"),
            "text": _one(form, "text"),
            "starts_at": local("starts_at"),
            "ends_at": local("ends_at"),
            "stores": [s for s in form.get("stores", []) if s],
            "zones": [z.strip() for z in _one(form, "zones").split(",") if z.strip()],
            "segment": _one(form, "segment") or "all",
            "cap_count": _one(form, "cap_count") or 1,
            "cap_period_s": float(period) * 3600 if period else None,
            "bonus_points": _one(form, "bonus_points") or 0,
        }
    )


def _save(
    ctx: ApiContext, who: Principal, body: m.CampaignIn, existing: offers.Campaign | None
) -> offers.Campaign:
    if existing is not None:
        business: str | None = existing.business
    else:
        business = body.business if views.is_admin(who) else who.business
    if business is None or business not in views.businesses(ctx, who):
        raise InvalidInput(f"no business {business!r}")
    places: dict[str, offers.Place] = dict(ctx.stores)
    if business == ledger.COALITION:
        parks = ctx.config.parking.car_parks if ctx.config.parking else ()
        places.update({park.id: offers.CarParkPlace.of(park) for park in parks})
    campaign = offers.Campaign(
        id=body.id, business=business, title=body.title, text=body.text,
        image_url=body.image_url, starts_at=body.starts_at.astimezone(UTC),
        ends_at=body.ends_at.astimezone(UTC), stores=tuple(body.stores),
        zones=tuple(body.zones), segment=body.segment, cap_count=body.cap_count,
        cap_period_s=body.cap_period_s, bonus_points=body.bonus_points,
    )  # fmt: skip
    now = datetime.fromtimestamp(ctx.clock(), UTC)
    with ctx.store.transaction() as conn:
        if existing is None:
            return offers.create_campaign(conn, campaign, places, now)
        return offers.update_campaign(conn, campaign, places)


async def _submit(request: Request, campaign_id: str | None) -> Response:
    state = _state(request)
    session = _session(request)
    if session is None:
        return _to_login()
    form = await _form(request)
    if form is None or not _same_origin(request) or not csrf_ok(session, _one(form, "csrf")):
        return _render(request, "error.html", session, 403, message="error.csrf")
    who = session.principal
    existing = None
    if campaign_id is not None:
        existing = await run_in_threadpool(views.own_campaign, state.ctx, who, campaign_id)
        if existing is None:
            return _render(request, "error.html", session, 404, message="error.not_found")
    values = {k: v[0] if k != "stores" else v for k, v in form.items()}
    values.setdefault("stores", [])
    try:
        body = _parse_campaign(state.ctx, form, campaign_id or _one(form, "id"))
        saved = await run_in_threadpool(_save, state.ctx, who, body, existing)
    except (ValidationError, ValueError, CoreError) as exc:
        problem = (
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
            if isinstance(exc, ValidationError)
            else str(exc)
        )
        log.info("panel: campaign not saved for %s: %s", who.name, problem)
        return _campaign_form(request, session, existing, status=422, error=problem, values=values)
    log.info("panel: %s saved campaign %s", who.name, saved.id)
    return RedirectResponse(f"{PREFIX}/campaigns/{saved.id}?done=saved", status_code=303)


@router.post("/campaigns")
async def create_campaign(request: Request) -> Response:
    return await _submit(request, None)


@router.post("/campaigns/{campaign_id}")
async def update_campaign(request: Request, campaign_id: str) -> Response:
    return await _submit(request, campaign_id)


@router.post("/campaigns/{campaign_id}/delete")
async def delete_campaign(request: Request, campaign_id: str) -> Response:
    state = _state(request)
    session = _session(request)
    if session is None:
        return _to_login()
    form = await _form(request)
    if form is None or not _same_origin(request) or not csrf_ok(session, _one(form, "csrf")):
        return _render(request, "error.html", session, 403, message="error.csrf")
    campaign = await run_in_threadpool(
        views.own_campaign, state.ctx, session.principal, campaign_id
    )
    if campaign is None:
        return _render(request, "error.html", session, 404, message="error.not_found")

    def delete() -> None:
        with state.ctx.store.transaction() as conn:
            offers.delete_campaign(conn, campaign_id)

    await run_in_threadpool(delete)
    log.info("panel: %s deleted campaign %s", session.principal.name, campaign_id)
    return RedirectResponse(f"{PREFIX}/campaigns", status_code=303)


# --- data endpoints (JSON, same scopes as the pages) --------------------------------------


router.add_api_route("/data/footfall", data()(views.footfall_series), methods=["GET"])
router.add_api_route("/data/feed", data()(views.feed), methods=["GET"])
router.add_api_route("/data/nodes", data()(views.nodes), methods=["GET"])
router.add_api_route(
    "/data/parking", data(office=True)(lambda ctx, _who: views.parking(ctx)), methods=["GET"]
)
router.add_api_route(
    "/data/campaigns",
    data()(
        lambda ctx, who: [
            {"id": c.id, "business": c.business, "title": c.title, "deliveries": n}
            for c, n in views.campaigns(ctx, who)
        ]
    ),
    methods=["GET"],
)


class PanelHeaders:
    """The panel's security headers on every response under ``/panel`` (a plain ASGI
    middleware: it only adds headers to the response's start)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return

        async def add(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CSP
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"  # "no-referrer" makes Origin null
                headers["X-Frame-Options"] = "DENY"
                if not path.startswith(f"{PREFIX}/static/"):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, add)


def mount(app: FastAPI, ctx: ApiContext) -> None:
    """Serve the panel from this app: its routes, static files and security headers."""
    app.state.panel = PanelState(ctx, app)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="panel-static")

    app.add_middleware(PanelHeaders)

    @app.get(PREFIX, include_in_schema=False)
    def _root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    app.include_router(router)
