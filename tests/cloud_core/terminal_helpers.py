"""Helpers for the terminal tests: a mall with a pizzeria, sellers' keys, a running API."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from cloud_core import ledger
from cloud_core.app import CoreApp
from cloud_core.store import open_store
from tests.cloud_core.api_helpers import KEYS
from tests.cloud_core.helpers import STORES, serve_api

CARD_SECRET = "card-test-secret-0123456789abcdef"
TILL_KEYS = {
    "pizza": "k-till-pizzeria-maria-0123456789",
    "pizza2": "k-till-pizzeria-ivan-0123456789",
    "bean": "k-till-bean-bar-tom-0123456789",
    "shoe": "k-till-shoe-hub-olga-0123456789",
}
PIZZERIA = {
    "id": "pizzeria-l2",
    "name": "Pizzeria Napoli",
    "business": "pizzeria",
    "zone": "level-2",
    "nodes": ["store-9"],
}
SPENDING: dict[str, Any] = {
    "hold_ttl_s": 300,
    "partners": {
        "pizzeria": {"coalition_cap_pct": 15, "cashback_pct": 10, "cashback_pocket": "store"},
        # the seeds' "Magnet": Bean Bar funds coalition cashback and pays the mall 20 %
        "bean-bar": {
            "coalition_cap_pct": 15,
            "cashback_pct": 10,
            "cashback_pocket": "coalition",
            "commission_pct": 20,
        },
    },
}


def till_keys() -> list[dict[str, str]]:
    return [
        {"name": "office", "role": "admin", "key": KEYS["admin"]},
        {"name": "atrium", "role": "kiosk", "key": KEYS["kiosk"]},
        {"name": "bean", "role": "tenant", "business": "bean-bar", "key": KEYS["bean"]},
        {"name": "pizza-tenant", "role": "tenant", "business": "pizzeria", "key": KEYS["shoe"]},
        {
            "name": "pizzeria-till-1-maria",
            "role": "terminal",
            "business": "pizzeria",
            "store": "pizzeria-l2",
            "till": "till-1",
            "seller": "maria",
            "key": TILL_KEYS["pizza"],
        },
        {
            "name": "pizzeria-till-2-ivan",
            "role": "terminal",
            "business": "pizzeria",
            "store": "pizzeria-l2",
            "till": "till-2",
            "seller": "ivan",
            "key": TILL_KEYS["pizza2"],
        },
        {
            "name": "bean-till-tom",
            "role": "terminal",
            "business": "bean-bar",
            "store": "bean-bar-l1",
            "seller": "tom",
            "key": TILL_KEYS["bean"],
        },
        {
            "name": "shoe-till-olga",
            "role": "terminal",
            "business": "shoe-hub",
            "store": "shoe-hub",
            "seller": "olga",
            "key": TILL_KEYS["shoe"],
        },
    ]


def spending_overrides(**extra: Any) -> dict[str, Any]:
    return {
        "stores": [*STORES, PIZZERIA],
        "spending": SPENDING,
        "cards": {"secret": CARD_SECRET},
        **extra,
    }


@contextlib.contextmanager
def serve_terminal(tmp_path: Path, **extra: Any) -> Iterator[tuple[httpx.Client, CoreApp]]:
    with serve_api(tmp_path, till_keys(), **spending_overrides(**extra)) as served:
        yield served


_keys = itertools.count()


def tk(till: str, key: str | None = None) -> dict[str, str]:
    """Headers of a till's write (a fresh Idempotency-Key unless given)."""
    return {"X-API-Key": TILL_KEYS[till], "Idempotency-Key": key or f"test-key-{next(_keys):06d}"}


def th(till: str) -> dict[str, str]:
    return {"X-API-Key": TILL_KEYS[till]}


def grant(app: CoreApp, customer: str, pocket: str, points: int, **kw: Any) -> None:
    """Points straight into the ledger (as a visit or the parking bonus would)."""
    store = open_store(app.config.database)
    now = datetime.fromtimestamp(app.clock(), UTC)
    try:
        with store.transaction() as conn:
            ledger.grant(
                conn,
                customer=customer,
                pocket=pocket,
                points=points,
                reason=kw.pop("reason", "parking"),
                idem_key=f"test-grant-{next(_keys)}",
                now=now,
                **kw,
            )
    finally:
        store.close()


def ledger_problems(app: CoreApp) -> list[str]:
    store = open_store(app.config.database)
    try:
        with store.read() as conn:
            return ledger.check_invariants(conn)
    finally:
        store.close()


def available(client: httpx.Client, customer: str) -> dict[str, int]:
    r = client.get(f"/customers/{customer}/wallet", headers={"X-API-Key": KEYS["admin"]})
    assert r.status_code == 200, r.text
    return {p["pocket"]: p["available"] for p in r.json()["pockets"]}


def later(app: CoreApp, seconds: float) -> None:
    app.clock.advance(seconds)  # type: ignore[attr-defined]


def day(app: CoreApp, days: int) -> datetime:
    return datetime.fromtimestamp(app.clock(), UTC) + timedelta(days=days)
