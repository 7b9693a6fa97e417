"""The HTTP API (FastAPI). ``create_app`` is the factory; there is no module-level app."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from cloud_core.api import parking as parking_routes
from cloud_core.api import routes
from cloud_core.api.auth import ApiContext
from cloud_core.errors import Conflict, CoreError, InsufficientPoints, InvalidInput, NotFound
from mallnet import __version__

log = logging.getLogger(__name__)

_STATUS: tuple[tuple[type[CoreError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (InsufficientPoints, 409),
    (InvalidInput, 422),
)


def create_app(ctx: ApiContext) -> FastAPI:
    """Build the API around one context (config, database, keys, clock)."""
    app = FastAPI(
        title="mallnet cloud core",
        version=__version__,
        summary="Customers, wallets, stores, campaigns and statistics of one mall.",
        description=(
            "Every call but `/health` needs an `X-API-Key` header. Roles: `admin` (the mall "
            "office), `tenant` (one business: its own stores, campaigns, pocket and statistics), "
            "`kiosk` (register customers, attach beacon keys, wallets, offers) and `node`."
        ),
    )
    app.state.ctx = ctx

    @app.middleware("http")
    async def _count_refusals(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if 400 <= response.status_code < 500:
            ctx.refused[response.status_code] += 1
            log.info("API %s %s → %d", request.method, request.url.path, response.status_code)
        return response

    @app.exception_handler(CoreError)
    async def _core_error(_request: Request, exc: CoreError) -> JSONResponse:
        code = next((c for kind, c in _STATUS if isinstance(exc, kind)), 400)
        log.info("API refused a request (%d): %s", code, exc)
        return JSONResponse({"detail": str(exc)}, status_code=code)

    @app.get("/health", tags=["operations"], summary="Liveness (no key needed)")
    def health() -> dict[str, str]:
        return {"status": "ok", "mall": ctx.config.mall}

    last_problems: list[list[str]] = [[]]

    @app.get(
        "/ready",
        tags=["operations"],
        summary="Readiness (no key needed): 503 with the reasons while ingest is not "
        "connected to the broker or the database cannot be written",
        responses={503: {"description": "Not ready; `reasons` says why."}},
    )
    def ready() -> JSONResponse:
        problems = ctx.ready()
        if problems != last_problems[0]:  # log changes, not every probe
            last_problems[0] = problems
            if problems:
                log.warning("not ready: %s", "; ".join(problems))
            else:
                log.info("ready")
        if problems:
            return JSONResponse(
                {"status": "not ready", "mall": ctx.config.mall, "reasons": problems},
                status_code=503,
            )
        return JSONResponse({"status": "ready", "mall": ctx.config.mall, "reasons": []})

    for router in (
        routes.customers,
        routes.wallets,
        routes.mall,
        routes.campaigns,
        routes.stats,
        routes.admin,
        parking_routes.router,  # docs/parking.md
    ):
        app.include_router(router)
    return app
