"""What a scanned QR code means, and the check-in tokens the kiosk sends (pure functions).

QR codes the kiosk understands:

* ``mallnet:customer:<id>`` — the shopper's app identifies them;
* ``mallnet:store:<id>`` — a store's poster QR, for a pay-per-visit check-in;
* anything else, scanned on the receipt screen, is a receipt's QR text.

The wire contract's ``CheckinEvent`` carries one ``token`` (≤ 512 characters)
and an optional ``store``; the kiosk fills ``token`` as documented in
docs/kiosk.md ("Check-in tokens"):

* ``customer:<id>`` — a shopper identified at this kiosk (by phone through the
  core's API, or by their app's QR), with ``store`` the store they check in at
  (a scanned store QR) or the kiosk's own store;
* ``phone:<E.164>`` — a phone number typed while the core was unreachable (the
  core resolves it later; the queued row is deleted once the core receipts it);
* ``receipt:<id>:<text>`` — a receipt QR scanned for shopper ``<id>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mallnet.wire.topics import ID_PATTERN

TOKEN_MAX = 512
APP_PREFIX = "mallnet:customer:"
STORE_PREFIX = "mallnet:store:"
CUSTOMER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_STORE_RE = re.compile(ID_PATTERN)

Kind = Literal["customer", "store", "other"]


@dataclass(frozen=True)
class ScannedCode:
    """A QR code's meaning: ``value`` is the customer id, the store id or the raw text."""

    kind: Kind
    value: str


def classify(text: str) -> ScannedCode:
    """What a QR code's text names. Malformed mallnet codes count as ``other``."""
    stripped = text.strip()
    if stripped.startswith(APP_PREFIX):
        customer = stripped[len(APP_PREFIX) :]
        if CUSTOMER_ID_RE.fullmatch(customer):
            return ScannedCode("customer", customer)
    elif stripped.startswith(STORE_PREFIX):
        store = stripped[len(STORE_PREFIX) :]
        if _STORE_RE.fullmatch(store):
            return ScannedCode("store", store)
    return ScannedCode("other", stripped)


def customer_token(customer: str) -> str:
    return f"customer:{customer}"


def phone_token(e164: str) -> str:
    return f"phone:{e164}"


def receipt_token(customer: str, text: str) -> str | None:
    """The token for a receipt, or None if the receipt's text is too long to carry."""
    token = f"receipt:{customer}:{text}"
    return token if len(text) > 0 and len(token) <= TOKEN_MAX else None
