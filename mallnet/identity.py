"""Rotating shopper identities: the maths shared by beacons, nodes and the core.

A shopper's beacon never broadcasts a fixed id. From a per-shopper secret (the
*beacon key*, 32 random bytes held by the app or programmed into a tag, and by
the core) and the current time window it derives an ephemeral id::

    window = floor(unix_time / WINDOW_S)
    eid    = HMAC-SHA256(key, b"mallnet/eid/v1" || window as 8 bytes big-endian)[:16]

The iBeacon UUID is the mall program's 4-byte prefix followed by eid[0:12];
major is eid[12:14] and minor eid[14:16]. A node forwards those 16 bytes as the
32-hex-digit *tag id* and never learns who the shopper is; the core, which
holds the keys, precomputes the ids of the current window and its neighbours.

128 bits per window make collisions among 100 000 live shoppers negligible
(about 1.5e-29), where 32 bits (major+minor alone) would collide with ~69 %
probability. An id is accepted only for event times inside its window widened
by ``SKEW_S`` on both sides, so a recorded id replayed later credits nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from mallnet.errors import MallnetError

WINDOW_S = 600
"""Length of one rotation window in seconds (10 minutes)."""
SKEW_S = 120
"""Clock skew tolerated between a beacon and the core, in seconds."""
PREFIX_BYTES = 4
"""Bytes of the iBeacon UUID that identify the mall program (fixed, not secret)."""
EID_BYTES = 16
KEY_BYTES = 32
_LABEL = b"mallnet/eid/v1"


class IdentityError(MallnetError, ValueError):
    """A malformed beacon key or program prefix."""


def new_beacon_key() -> str:
    """A fresh per-shopper beacon key, as 64 hex digits."""
    return secrets.token_hex(KEY_BYTES)


def parse_key(key_hex: str) -> bytes:
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:
        raise IdentityError("beacon key must be hex") from None
    if len(key) != KEY_BYTES:
        raise IdentityError(f"beacon key must be {KEY_BYTES} bytes, got {len(key)}")
    return key


def parse_prefix(prefix_hex: str) -> bytes:
    try:
        prefix = bytes.fromhex(prefix_hex.replace("-", ""))
    except ValueError:
        raise IdentityError("program prefix must be hex") from None
    if len(prefix) != PREFIX_BYTES:
        raise IdentityError(f"program prefix must be {PREFIX_BYTES} bytes, got {len(prefix)}")
    return prefix


def window_of(unix_time: float) -> int:
    """The rotation window a moment falls in."""
    return int(unix_time // WINDOW_S)


def ephemeral_id(key: bytes, window: int) -> bytes:
    """The 16-byte ephemeral id of a key in a window."""
    mac = hmac.new(key, _LABEL + window.to_bytes(8, "big", signed=False), hashlib.sha256)
    return mac.digest()[:EID_BYTES]


def tag_id(key: bytes, window: int) -> str:
    """The ephemeral id as the node forwards it (32 hex digits)."""
    return ephemeral_id(key, window).hex()


@dataclass(frozen=True)
class BeaconFrame:
    """What a shopper's beacon advertises in one window."""

    uuid: uuid.UUID
    major: int
    minor: int


def beacon_frame(prefix: bytes, key: bytes, window: int) -> BeaconFrame:
    """The iBeacon UUID, major and minor a beacon sends in a window."""
    eid = ephemeral_id(key, window)
    return BeaconFrame(
        uuid=uuid.UUID(bytes=prefix + eid[:12]),
        major=int.from_bytes(eid[12:14], "big"),
        minor=int.from_bytes(eid[14:16], "big"),
    )


def tag_of_frame(beacon_uuid: uuid.UUID, major: int, minor: int) -> str:
    """The tag id a node forwards for a received frame (the bytes after the prefix)."""
    return (
        beacon_uuid.bytes[PREFIX_BYTES:] + major.to_bytes(2, "big") + minor.to_bytes(2, "big")
    ).hex()


def windows_accepting(unix_time: float, skew_s: float = SKEW_S) -> range:
    """Windows whose ids are valid for an event at ``unix_time`` (skew on both sides)."""
    return range(window_of(unix_time - skew_s), window_of(unix_time + skew_s) + 1)
