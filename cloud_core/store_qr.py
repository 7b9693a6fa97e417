"""Store QR codes: signed, rotating codes at the doors of stores with no beacon node.

A code names a store and a time window and is signed with the mall's store QR secret
(``store_qr.secret_file``):

    mq1.<store>.<window>.<signature>

``window`` is ``floor(unix time / store_qr.window_s)``; the signature is HMAC-SHA256 over
``mq1|<mall>|<store>|<window>`` under the secret, its first 16 bytes base64url-encoded
(22 characters). A screen at the door shows the current window's code and refreshes
itself (``GET /stores/{store}/qr-screen``); a code is accepted during its own window and
``grace_windows`` after it, so a photo of it stops working within minutes. ``verify_code``
refuses forged, altered, expired, not-yet-valid and malformed codes (``StoreQrRefused``,
saying which, never echoing the code).

The scans (``store_qr_scans``) are this module's rows: one per shopper and code, so the
same code scanned twice by one shopper is refused (``record_scan`` answers False); rows
older than a day are deleted as new scans come in (a code is long dead by then).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cloud_core import ledger
from cloud_core.errors import Conflict, InvalidInput
from cloud_core.store import Conn

VERSION = "mq1"
_CODE = re.compile(r"^mq1\.([a-z0-9][a-z0-9_-]{0,63})\.(\d{1,12})\.([A-Za-z0-9_-]{22})$")
KEEP_SCANS_S = 86_400


class StoreQrRefused(InvalidInput):
    """A store QR code that is forged, altered, expired, not yet valid or malformed."""

    problem = "store-qr-refused"


class StoreQrReplayed(Conflict):
    """A store QR code the same shopper has scanned before."""

    problem = "store-qr-replayed"


@dataclass(frozen=True)
class StoreCode:
    """The code of one store and window, and until when it is accepted."""

    store: str
    window: int
    code: str
    valid_from: datetime
    expires_at: datetime


def _signature(key: bytes, mall: str, store: str, window: int) -> str:
    mac = hmac.new(key, f"{VERSION}|{mall}|{store}|{window}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:16]).decode().rstrip("=")


def window_of(epoch: float, window_s: int) -> int:
    return int(epoch // window_s)


def code_for(
    key: bytes, mall: str, store: str, now: datetime, *, window_s: int, grace_windows: int
) -> StoreCode:
    """The code a screen at ``store``'s door shows at ``now``."""
    window = window_of(now.timestamp(), window_s)
    code = f"{VERSION}.{store}.{window}.{_signature(key, mall, store, window)}"
    start = datetime.fromtimestamp(window * window_s, UTC)
    return StoreCode(
        store=store,
        window=window,
        code=code,
        valid_from=start,
        expires_at=start + timedelta(seconds=window_s * (1 + grace_windows)),
    )


def verify_code(
    key: bytes, mall: str, code: str, now: datetime, *, window_s: int, grace_windows: int
) -> str:
    """The store a scanned code names; ``StoreQrRefused`` if it must not count."""
    found = _CODE.match(code.strip())
    if found is None:
        raise StoreQrRefused("not a store QR code (malformed)")
    store, window_text, signature = found.groups()
    window = int(window_text)
    if not hmac.compare_digest(_signature(key, mall, store, window), signature):
        raise StoreQrRefused("store QR signature does not match (forged or altered code)")
    current = window_of(now.timestamp(), window_s)
    if window > current:
        raise StoreQrRefused("store QR code is not valid yet")
    if window < current - grace_windows:
        raise StoreQrRefused("store QR code expired; scan the code on the store's screen again")
    return store


def screen_key(key: bytes, mall: str, store: str) -> str:
    """The key in a store screen's URL: it shows only that store's current code (what
    anyone at the door sees anyway); change the secret to revoke every screen URL."""
    mac = hmac.new(key, f"{VERSION}-screen|{mall}|{store}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:16]).decode().rstrip("=")


def screen_key_ok(key: bytes, mall: str, store: str, presented: str) -> bool:
    return hmac.compare_digest(screen_key(key, mall, store), presented)


# --- scans ---------------------------------------------------------------------------------


def record_scan(
    conn: Conn, *, customer: str, code: str, store: str, event_id: str, now: datetime
) -> bool:
    """Record that ``customer`` scanned ``code``; False (nothing written) if they did before."""
    epoch = now.timestamp()
    conn.execute("DELETE FROM store_qr_scans WHERE ts_epoch < ?", (epoch - KEEP_SCANS_S,))
    row = conn.execute(
        "INSERT INTO store_qr_scans (customer_id, code, store, event_id, ts, ts_epoch, outcome)"
        " VALUES (?, ?, ?, ?, ?, ?, 'scanned') ON CONFLICT (customer_id, code) DO NOTHING"
        " RETURNING event_id",
        (customer, code, store, event_id, ledger.iso(now), epoch),
    ).fetchone()
    return row is not None


def set_outcome(conn: Conn, event_id: str, outcome: str) -> None:
    conn.execute("UPDATE store_qr_scans SET outcome = ? WHERE event_id = ?", (outcome, event_id))


def erase(conn: Conn, customer: str) -> int:
    """Delete a customer's scans (erasure); the number of rows."""
    return conn.execute("DELETE FROM store_qr_scans WHERE customer_id = ?", (customer,)).rowcount
