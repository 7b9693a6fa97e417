"""The typed dependencies and shared bits of every router: the request context (``Ctx``),
the caller and the roles a route admits (``Caller``, ``Admin``, ``AdminOrTenant``,
``AdminOrKiosk``, ``Staff``), query types (``UtcTime``, ``Limit``, ``Offset``, ``Since``,
``Until``) and the documented error responses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request, Security, status
from fastapi.security import APIKeyHeader
from pydantic import AfterValidator, AwareDatetime

from cloud_core.api import models as m
from cloud_core.api.auth import ApiContext, Principal, Role


async def get_context(request: Request) -> ApiContext:
    # async: no blocking work, so FastAPI runs it in the event loop instead of handing it to
    # a worker thread (each hand-off costs a thread switch per request; see bench/pool_claims.py)
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(get_context)]


API_KEY = APIKeyHeader(
    name="X-API-Key",
    scheme_name="ApiKey",
    description="Your API key (one per role and holder; see docs/core.md).",
    auto_error=False,
)


def principal_of(ctx: ApiContext, x_api_key: str | None) -> Principal:
    """The holder of a presented key (401 without one or for an unknown one)."""
    if not x_api_key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing X-API-Key header", {"WWW-Authenticate": "ApiKey"}
        )
    principal = ctx.keys.lookup(x_api_key)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "unknown API key", {"WWW-Authenticate": "ApiKey"}
        )
    return principal


async def get_principal(
    ctx: Ctx, x_api_key: Annotated[str | None, Security(API_KEY)] = None
) -> Principal:
    return principal_of(ctx, x_api_key)


Caller = Annotated[Principal, Depends(get_principal)]


def admit(caller: Principal, *roles: Role) -> Principal:
    """``caller`` if its role is one of these (403 otherwise)."""
    if caller.role not in roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {caller.role!r} may not do this")
    return caller


def allow(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that admits only these roles (403 otherwise)."""

    async def check(caller: Caller) -> Principal:
        return admit(caller, *roles)

    return check


async def get_scraper(
    ctx: Ctx, request: Request, x_api_key: Annotated[str | None, Security(API_KEY)] = None
) -> Principal:
    """The caller of ``/metrics`` (roles ``metrics`` and ``admin``): its key in
    ``X-API-Key`` or, what every Prometheus can send, ``Authorization: Bearer <key>``."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    key = x_api_key or (token.strip() if scheme.lower() == "bearer" else None)
    return admit(principal_of(ctx, key), "admin", "metrics")


Admin = Annotated[Principal, Depends(allow("admin"))]
Scraper = Annotated[Principal, Depends(get_scraper)]
AdminOrTenant = Annotated[Principal, Depends(allow("admin", "tenant"))]
AdminOrKiosk = Annotated[Principal, Depends(allow("admin", "kiosk"))]
Staff = Annotated[Principal, Depends(allow("admin", "tenant", "kiosk"))]


def own_business(caller: Principal, business: str) -> None:
    """A tenant may touch only its own business (403 otherwise)."""
    if caller.role == "tenant" and caller.business != business:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not your business")


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range") from None


UtcTime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Most rows in this page.")]
Offset = Annotated[
    int,
    Query(ge=0, le=10_000_000, description="Rows to skip: the next page starts at offset + limit."),
]
Since = Annotated[
    UtcTime | None, Query(description="Only from this time on (inclusive; with a UTC offset).")
]
Until = Annotated[
    UtcTime | None, Query(description="Only before this time (exclusive; with a UTC offset).")
]

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": m.Problem, "description": "Bad request."},
    401: {"model": m.Problem, "description": "Missing or unknown API key."},
    403: {"model": m.Problem, "description": "Your role or business may not do this."},
    404: {"model": m.Problem, "description": "No such thing."},
    409: {"model": m.Problem, "description": "Conflicts with existing data."},
}
#: Calls that look a phone number up are rate-limited per key (api.phone_lookups).
RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {"model": m.Problem, "description": "Too many phone-number lookups; see Retry-After."},
}


def now(ctx: ApiContext) -> datetime:
    """The API's clock (injected: the tests move it)."""
    return datetime.fromtimestamp(ctx.clock(), UTC)
