"""The HTTP API (FastAPI). ``create_app`` is the factory; there is no module-level app.

Every 4xx and 5xx answer is one shape, an RFC 9457 problem (``application/problem+json``:
``type, title, status, detail, instance``, plus ``errors`` for a 422), and the OpenAPI
document declares exactly that. ``/docs`` and ``/redoc`` load their scripts from this
server (the files of the ``fastapi-offline`` package), so they work on a mall LAN without
internet.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from http import HTTPStatus
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud_core.api.auth import ApiContext
from cloud_core.api.models import FieldProblem, Problem
from cloud_core.api.routes import ROUTERS
from cloud_core.api.routes.me_state import WalletState
from cloud_core.errors import (
    CardTokenError,
    Conflict,
    CoreError,
    Forbidden,
    InsufficientPoints,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
)
from cloud_core.panel.router import mount as mount_panel
from cloud_core.store import OperationalError as DB_UNAVAILABLE
from cloud_core.wallet_web import mount as mount_wallet
from mallnet import __version__

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
ASSETS = "/docs-assets"

_STATUS: tuple[tuple[type[CoreError], int], ...] = (
    (NotFound, 404),
    (Forbidden, 403),
    (Conflict, 409),
    (InsufficientPoints, 409),
    (InvalidInput, 422),
    (CardTokenError, 422),
    (PayloadTooLarge, 413),
)


def problem(
    request: Request,
    status: int,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    reasons: list[str] | None = None,
    headers: Mapping[str, str] | None = None,
    kind: str | None = None,
) -> JSONResponse:
    """An RFC 9457 problem response (``kind``: its ``type`` is ``urn:mallnet:problem:<kind>``)."""
    body = Problem(
        type=f"urn:mallnet:problem:{kind}" if kind else "about:blank",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=[FieldProblem.model_validate(e) for e in errors] if errors else None,
        reasons=reasons,
    ).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _field_problems(exc: RequestValidationError) -> list[dict[str, Any]]:
    # never echo the input back (it may be large or personal): where, what and the kind only
    return [
        {
            "loc": [str(p) if not isinstance(p, int) else p for p in e["loc"]],
            "msg": e["msg"],
            "type": e["type"],
        }
        for e in jsonable_encoder(exc.errors())
    ]


def _add_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(CoreError)
    async def _core_error(request: Request, exc: CoreError) -> JSONResponse:
        code = next((c for kind, c in _STATUS if isinstance(exc, kind)), 400)
        log.info("API refused a request (%d): %s", code, exc)
        return problem(request, code, str(exc), kind=exc.problem)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(request, exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_problems(exc)
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:5])
        return problem(request, 422, detail or "invalid request", errors=errors)

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        log.error("API request %s failed in the database: %s", request.url.path, exc)
        return problem(
            request, 503, "the database cannot be used now; retry", headers={"Retry-After": "5"}
        )

    for unavailable in DB_UNAVAILABLE:  # locked, lost, or a serialization conflict
        app.add_exception_handler(unavailable, _database)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("API request %s failed", request.url.path, exc_info=exc)
        return problem(request, 500, "internal error (logged)")


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def declare_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Make the OpenAPI document say what the handlers do: every 4xx/5xx is a Problem in
    ``application/problem+json``; every operation may answer 500 (and 503 when the
    database is unusable), one with parameters or a body 422, one with a body 400."""
    for operations in schema.get("paths", {}).values():
        for op in operations.values():
            responses = op.setdefault("responses", {})
            if op.get("requestBody"):
                responses.setdefault("400", {"description": "A body that cannot be parsed."})
            if op.get("parameters") or op.get("requestBody"):
                responses.setdefault("422", {"description": "Invalid parameters or body."})
            responses.setdefault("500", {"description": "A bug (logged)."})
            responses.setdefault("503", {"description": "The database cannot be used now."})
            for code, response in responses.items():
                if code[0] in "45":
                    response["content"] = _problem_content()
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def _docs_assets() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def _add_docs(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=_docs_assets()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} — Swagger UI",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            # no badge from the public validator: nothing on the page leaves the mall's LAN
            swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} — ReDoc",
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon.png",
            with_google_fonts=False,
        )


class RefusalCounter:
    """Counts (and logs) this API's 4xx answers. A plain ASGI middleware: it only watches
    the response's start, with none of the per-request task and stream ``@app.middleware``
    adds (measured by bench/pool_claims.py)."""

    def __init__(self, app: ASGIApp, refused: Counter[int]) -> None:
        self.app = app
        self.refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
                self.refused[message["status"]] += 1
                log.info("API %s %s → %d", scope["method"], scope["path"], message["status"])
            await send(message)

        await self.app(scope, receive, watch)


def create_app(ctx: ApiContext) -> FastAPI:
    """Build the API around one context (config, database, keys, clock)."""
    app = FastAPI(
        title="mallnet cloud core",
        version=__version__,
        summary="Customers, wallets, stores, campaigns and statistics of one mall.",
        description=(
            "Every call but `/health` and `/ready` needs an `X-API-Key` header (Authorize). "
            "Roles: `admin` (the mall office), `tenant` (one business: its own stores, "
            "campaigns, pocket and statistics), `kiosk` (register customers, find the one who "
            "identified by phone with rate limits, wallets, offers; no e-mail, plates or beacon "
            "keys) and `node`. Shoppers sign in with a one-time code (`/auth`) and call `/me` "
            "with their device's token (`Authorization: Bearer`). Every error is an RFC 9457 "
            "problem (`application/problem+json`). "
            "Lists take `limit` and `offset`."
        ),
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx

    app.add_middleware(RefusalCounter, refused=ctx.refused)

    _add_problem_handlers(app)
    _add_docs(app)
    mount_panel(app, ctx)  # the web control panel under /panel (cloud_core/panel)

    @app.get("/health", tags=["operations"], summary="Liveness (no key needed)")
    def health() -> dict[str, str]:
        return {"status": "ok", "mall": ctx.config.mall}

    last_problems: list[list[str]] = [[]]

    @app.get(
        "/ready",
        tags=["operations"],
        summary="Readiness (no key needed): 503 with the reasons while ingest is not "
        "connected to the broker or the database cannot be written (e.g. disk full)",
        responses={503: {"description": "Not ready; `reasons` says why."}},
    )
    def ready(request: Request) -> Response:
        problems = ctx.ready()
        if problems != last_problems[0]:  # log changes, not every probe
            last_problems[0] = problems
            if problems:
                log.warning("not ready: %s", "; ".join(problems))
            else:
                log.info("ready")
        if problems:
            return problem(
                request, 503, "; ".join(problems), reasons=problems, headers={"Retry-After": "5"}
            )
        return JSONResponse({"status": "ready", "mall": ctx.config.mall, "reasons": []})

    for router in ROUTERS:
        app.include_router(router)
    app.state.wallet = WalletState(ctx)  # the shopper's own API and web wallet (/me, /wallet)
    mount_wallet(app, app.state.wallet)

    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = declare_problems(base_openapi())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
