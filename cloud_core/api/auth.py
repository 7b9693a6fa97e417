"""API keys per role: the keys file, the key ring, rate limits, the request context.

The typed FastAPI dependencies every router uses are in ``deps.py``.

Keys live in a YAML file (``api.keys_file``, mode 0600) or in an environment variable
(``api.keys_env``) holding the same YAML; the core stores and compares only SHA-256
digests. Roles:

* ``admin`` — the mall office: everything;
* ``tenant`` — one business: its stores, nodes, campaigns, statistics and its own
  points pocket, never another business's;
* ``kiosk`` — a self-service screen: registers customers and finds the one who just
  identified by phone (id, masked phone and wallet only: no e-mail, no plates; phone
  lookups rate-limited per key), shows wallets and offers; never mints beacon keys;
* ``terminal`` — one seller at one till of a tenant's store (the seeds' "registrars and
  sellers": the key is the seller's login at that till): identifies shoppers by card token
  or phone (rate-limited), quotes, reserves/commits/releases redemptions, registers and
  refunds purchases at that store only; every action is recorded with the seller;
* ``node`` — an edge node: reads its own node record;
* ``metrics`` — a Prometheus scraper: ``GET /metrics`` only.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Self
from zoneinfo import ZoneInfo

from fastapi import HTTPException, status
from prometheus_client import CollectorRegistry
from pydantic import Field, SecretStr, model_validator

from cloud_core.config import ApiSettings, CoreConfig, Ident, StoreConfig
from cloud_core.metrics import registry_for
from cloud_core.store import Store
from mallnet.config import ConfigModel, parse_yaml, read_text_file, validate_data
from mallnet.errors import ConfigError

Role = Literal["admin", "tenant", "kiosk", "terminal", "node", "metrics"]


class ApiKeyEntry(ConfigModel):
    name: str = Field(min_length=1, max_length=64, description="Who holds the key (for logs).")
    role: Role = Field(description="What the key may do.")
    business: Ident | None = Field(default=None, description="The tenant's business (tenants).")
    node: Ident | None = Field(default=None, description="The node's id (node keys).")
    store: Ident | None = Field(
        default=None, description="The store of a terminal's till (terminal keys)."
    )
    till: Ident | None = Field(
        default=None, description="The till (terminal keys; default: the store)."
    )
    seller: Ident | None = Field(
        default=None, description="The seller who logs in with this key (terminal keys)."
    )
    key: SecretStr | None = Field(default=None, description="The key itself (development).")
    key_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="SHA-256 hex of the key (preferred)."
    )

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError("give exactly one of key and key_sha256")
        if self.key is not None and len(self.key.get_secret_value()) < 16:
            raise ValueError("a key must have at least 16 characters")
        if self.role == "tenant" and self.business is None:
            raise ValueError("a tenant key needs its business")
        if self.role == "node" and self.node is None:
            raise ValueError("a node key needs its node")
        if self.role == "terminal" and None in (self.business, self.store, self.seller):
            raise ValueError("a terminal key needs its business, store and seller")
        return self

    def digest(self) -> str:
        if self.key_sha256 is not None:
            return self.key_sha256
        assert self.key is not None
        return hashlib.sha256(self.key.get_secret_value().encode()).hexdigest()


class ApiKeysFile(ConfigModel):
    keys: tuple[ApiKeyEntry, ...] = Field(description="Every API key.")


def load_api_keys(settings: ApiSettings) -> ApiKeysFile:
    """The API keys from the environment variable (if set) or the file; ``ConfigError``."""
    if settings.keys_env and os.environ.get(settings.keys_env):
        text, source = os.environ[settings.keys_env], f"${settings.keys_env}"
    elif settings.keys_file is not None:
        text = read_text_file(settings.keys_file, "API keys")
        source = str(settings.keys_file)
    else:
        raise ConfigError("no API keys: set api.keys_file or api.keys_env")
    data, lines = parse_yaml(text, source)
    return validate_data(data, ApiKeysFile, source, lines)


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    business: str | None = None
    node: str | None = None
    store: str | None = None
    till: str | None = None
    seller: str | None = None


class KeyRing:
    def __init__(self, keys: ApiKeysFile) -> None:
        self._by_digest = {
            entry.digest(): Principal(
                entry.name,
                entry.role,
                entry.business,
                entry.node,
                entry.store,
                entry.till or entry.store,
                entry.seller,
            )
            for entry in keys.keys
        }

    def lookup(self, presented: str) -> Principal | None:
        digest = hashlib.sha256(presented.encode()).hexdigest()
        for known, principal in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None


class RateLimiter:
    """At most ``limit`` calls per ``window_s`` per caller (a sliding window on the injected
    clock); memory is bounded by the number of API keys."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, who: str) -> float | None:
        """Count a call; None if allowed, else the seconds until the next one would be."""
        now = self._clock()
        with self._lock:
            calls = self._calls.setdefault(who, deque())
            while calls and calls[0] <= now - self.window_s:
                calls.popleft()
            if len(calls) >= self.limit:
                return calls[0] + self.window_s - now
            calls.append(now)
            return None


@dataclass
class ApiContext:
    """What the routers need, built once by the app factory (no module-level state)."""

    config: CoreConfig
    store: Store
    keys: KeyRing
    clock: Callable[[], float]
    refused: Counter[int] = field(default_factory=Counter)  # 4xx answers by status
    # why the process is not ready (cloud_core/readiness.py); empty when it is
    ready: Callable[[], list[str]] = field(default=lambda: [])
    phone_lookups: RateLimiter = field(init=False)
    # the key of the shoppers' card QR tokens (cards.secret_file), None if not configured
    card_key: bytes | None = field(init=False)
    tz: ZoneInfo = field(init=False)
    # what GET /metrics exposes (cloud_core/metrics.py); one registry per app
    metrics: CollectorRegistry = field(init=False)

    def __post_init__(self) -> None:
        api = self.config.api
        self.phone_lookups = RateLimiter(api.phone_lookups, api.phone_lookup_window_s, self.clock)
        self.card_key = self.config.cards.key() if self.config.cards is not None else None
        self.tz = ZoneInfo(self.config.timezone)
        self.metrics = registry_for(self.store, self.config.database, self.clock, self.refused)

    def limit_phone_lookups(self, caller: Principal) -> None:
        """429 with Retry-After once the caller's key has used up its phone lookups."""
        wait = self.phone_lookups.take(caller.name + "\0" + caller.role)
        if wait is not None:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                "too many phone-number lookups with this key; try again later",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )

    @property
    def stores(self) -> dict[str, StoreConfig]:
        return {store.id: store for store in self.config.stores}
