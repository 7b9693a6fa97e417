"""Helpers for the shopper's wallet tests: a core API with loyalty cards on, a shopper with
points, and the sign-in code read where the development channel puts it (the log)."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from cloud_core import customers, ledger
from cloud_core.store import open_store
from tests.cloud_core.api_helpers import KEYS
from tests.cloud_core.helpers import START, serve_api
from tests.conftest import wait_until

CARD_SECRET = "wallet-test-card-secret-0123456789"
ANN = "+44 7911 123456"
BOB = "+44 7911 123901"
T0 = datetime.fromtimestamp(START, UTC)
API_KEYS = [
    {"name": "office", "role": "admin", "key": KEYS["admin"]},
    {"name": "atrium", "role": "kiosk", "key": KEYS["kiosk"]},
]


class CodeCatcher(logging.Handler):
    """Reads the codes the development channel writes to the log."""

    PATTERN = re.compile(r"sign-in code for (\S+): (\d{6})")

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.codes: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        found = self.PATTERN.search(record.getMessage())
        if found:
            with self._lock:
                self.codes.append((found.group(1), found.group(2)))

    def last(self, count: int = 1) -> str:
        wait_until(lambda: len(self.codes) >= count, what="the sign-in code in the log")
        with self._lock:
            return self.codes[-1][1]


@contextlib.contextmanager
def catch_codes() -> Iterator[CodeCatcher]:
    catcher = CodeCatcher()
    logger = logging.getLogger("cloud_core.shopper_channels")
    logger.addHandler(catcher)
    try:
        yield catcher
    finally:
        logger.removeHandler(catcher)


@contextlib.contextmanager
def wallet_api(tmp_path: Path, **overrides: Any) -> Iterator[tuple[httpx.Client, Any]]:
    """The core's API with loyalty cards on (``wallet=`` adds wallet settings)."""
    overrides.setdefault("cards", {"secret": CARD_SECRET, "ttl_s": 120})
    with serve_api(tmp_path, API_KEYS, **overrides) as served:
        yield served


def add_shopper(database: Path, phone: str, points: int = 0, pocket: str = "mall") -> str:
    store = open_store(database)
    try:
        with store.transaction() as conn:
            customer, _ = customers.register_customer(conn, phone, default_region="GB", now=T0)
            if points:
                ledger.grant(
                    conn,
                    customer=customer,
                    pocket=pocket,
                    points=points,
                    reason="parking",
                    idem_key=f"seed-{customer}",
                    now=T0,
                    expires_at=T0 + timedelta(days=30),
                    text=f"+{points} points: North car park",
                )
    finally:
        store.close()
    return customer


def sign_in(client: httpx.Client, codes: CodeCatcher, phone: str, device: str = "phone") -> str:
    """Sign in through the API; the device's bearer token."""
    before = len(codes.codes)
    r = client.post("/auth/code", json={"phone": phone})
    assert r.status_code == 202, r.text
    code = codes.last(before + 1)
    r = client.post(
        "/auth/token",
        json={"challenge": r.json()["challenge"], "code": code, "device_name": device},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
