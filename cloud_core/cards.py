"""The shopper's loyalty-card QR token: signed, short-lived, never the phone number.

The shopper's app (or web wallet) shows a QR code holding a token; a seller's terminal
scans it and the core turns it back into the customer id. A token is

    mc1.<customer id>.<expiry, unix seconds>.<signature>

where the signature is HMAC-SHA256 over the version, customer id and expiry under the
mall's card secret (``cards.secret_file``, loaded like the parking secrets), truncated to
128 bits and base64url-encoded. The customer id is the core's random id (``c`` + 24 hex
digits), not personal data; the phone number never appears. A token lives ``ttl_s``
seconds (two minutes by default), so a photo of someone's screen is useless soon after.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime

from cloud_core.errors import CardTokenError

VERSION = "mc1"
MAX_TTL_S = 86_400
_TOKEN = re.compile(r"^mc1\.([a-z0-9][a-z0-9_-]{0,63})\.(\d{1,12})\.([A-Za-z0-9_-]{22})$")


def _signature(key: bytes, customer_id: str, expires: int) -> str:
    mac = hmac.new(key, f"{VERSION}|{customer_id}|{expires}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:16]).decode().rstrip("=")


def issue_card_token(key: bytes, customer_id: str, now: datetime, ttl_s: int = 120) -> str:
    """A token naming ``customer_id``, valid for ``ttl_s`` seconds from ``now``."""
    if not key:
        raise CardTokenError("no card key")
    if not 0 < ttl_s <= MAX_TTL_S:
        raise CardTokenError(f"ttl_s must be in 1..{MAX_TTL_S}, got {ttl_s}")
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", customer_id):
        raise CardTokenError("not a customer id")
    expires = int(now.timestamp()) + ttl_s
    return f"{VERSION}.{customer_id}.{expires}.{_signature(key, customer_id, expires)}"


def verify_card_token(key: bytes, token: str, now: datetime) -> str:
    """The customer id a token names; ``CardTokenError`` if it is forged, altered, expired
    or malformed (the message says which, never echoing the token)."""
    if not key:
        raise CardTokenError("no card key")
    found = _TOKEN.match(token.strip()) if isinstance(token, str) else None
    if found is None:
        raise CardTokenError("malformed card token")
    customer_id, expires_text, signature = found.groups()
    expires = int(expires_text)
    if not hmac.compare_digest(_signature(key, customer_id, expires), signature):
        raise CardTokenError("card token signature does not match")
    if now.timestamp() >= expires:
        raise CardTokenError("card token expired; ask the shopper to refresh the card")
    if expires - now.timestamp() > MAX_TTL_S:
        raise CardTokenError("card token expires too far ahead")
    return customer_id
