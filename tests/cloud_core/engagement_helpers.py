"""Helpers for the mailing tests: shoppers with visits and purchases, a local
webhook endpoint (an HTTP server that fails as often as told), an SMTP server (aiosmtpd)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from cloud_core import customers, ledger, shoppers
from cloud_core.store import DatabaseTarget, open_store
from mallnet.broker import free_port
from tests.cloud_core.api_helpers import KEYS
from tests.cloud_core.helpers import START

WEBHOOK_SECRET = "webhook-test-secret-0123456789abcdef"
MAILING_SECRET = "mailing-test-secret-0123456789abcdef"
T0 = datetime.fromtimestamp(START, UTC)

ENGAGEMENT_KEYS = [
    {"name": "office", "role": "admin", "key": KEYS["admin"]},
    {"name": "atrium", "role": "kiosk", "key": KEYS["kiosk"]},
    {"name": "bean", "role": "tenant", "business": "bean-bar", "key": KEYS["bean"]},
    {"name": "shoe", "role": "tenant", "business": "shoe-hub", "key": KEYS["shoe"]},
]

_ids = itertools.count()


def seed(
    database: DatabaseTarget,
    phone: str,
    *,
    email: str | None = None,
    consent: bool = True,
    visits: tuple[tuple[str, str, float], ...] = (),
    purchases: tuple[tuple[str, str, float], ...] = (),
) -> str:
    """A shopper with consent, visits and purchases ((store, business, epoch) each)."""
    store = open_store(database)
    try:
        with store.transaction() as conn:
            customer, _ = customers.register_customer(
                conn, phone, default_region="GB", email=email, now=T0
            )
            shoppers.set_offers_consent(conn, customer, consent, T0)
            for where, business, epoch in visits:
                at = datetime.fromtimestamp(epoch, UTC)
                conn.execute(
                    "INSERT INTO visits (event_id, customer_id, store, business, node, ts,"
                    " ts_epoch, day, points) VALUES (?, ?, ?, ?, 'store-1', ?, ?, ?, 10)",
                    (
                        f"e-{next(_ids)}",
                        customer,
                        where,
                        business,
                        ledger.iso(at),
                        epoch,
                        at.date().isoformat(),
                    ),
                )
            for where, business, epoch in purchases:
                at = datetime.fromtimestamp(epoch, UTC)
                conn.execute(
                    "INSERT INTO purchases (id, customer_id, business, store, till, seller,"
                    " receipt, amount_cents, cashback_points, status, ts)"
                    " VALUES (?, ?, ?, ?, 'till-1', 'tom', ?, 1000, 0, 'registered', ?)",
                    (
                        f"p-{next(_ids)}",
                        customer,
                        business,
                        where,
                        f"r-{next(_ids)}",
                        ledger.iso(at),
                    ),
                )
    finally:
        store.close()
    return customer


@dataclass
class WebhookServer:
    """A chatbot's endpoint: answers 500 to the first ``fail`` requests, then 200."""

    fail: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)  # every request, in order
    delivered: list[dict[str, Any]] = field(default_factory=list)  # the ones answered 200
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"


@contextlib.contextmanager
def webhook_server(fail: int = 0) -> Iterator[WebhookServer]:
    state = WebhookServer(fail=fail)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            record = {
                "body": json.loads(body),
                "raw": body,
                "signature": self.headers["X-Mallnet-Signature"],
                "key": self.headers["Idempotency-Key"],
            }
            with state.lock:
                state.requests.append(record)
                ok = len(state.requests) > state.fail
                if ok:
                    state.delivered.append(record)
            self.send_response(200 if ok else 500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def signed(record: dict[str, Any]) -> bool:
    mac = hmac.new(WEBHOOK_SECRET.encode(), record["raw"], hashlib.sha256).hexdigest()
    return bool(record["signature"] == f"sha256={mac}")


class MailSink:
    """aiosmtpd's handler: keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[MailSink, int]]:
    sink = MailSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def mailing_settings(**extra: Any) -> dict[str, Any]:
    return {
        "secret": MAILING_SECRET,
        "public_url": "http://mall.example",
        "retry": {"max_attempts": 5, "base_s": 10, "max_s": 600},
        "poll_s": 0.05,
        **extra,
    }
