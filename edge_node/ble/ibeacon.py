"""iBeacon frames from Apple manufacturer data: a pure parser with counted rejections.

The manufacturer-specific AD payload of an iBeacon is 25 bytes::

    4c 00        company id 0x004C (Apple), little-endian
    02 15        type 0x02 (iBeacon), length 0x15 (21 bytes follow)
    16 bytes     proximity UUID  (mallnet: 4-byte program prefix + 12 bytes of ephemeral id)
    2 bytes      major, big-endian
    2 bytes      minor, big-endian
    1 byte       measured power: RSSI at 1 m, signed dBm

``parse_ibeacon`` never raises: anything else yields a ``Reject`` saying why.
``IBeaconParser`` wraps it with counters and the mall program's prefix filter and
turns a frame into the *tag id* the node forwards (``mallnet.identity.tag_of_frame``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

APPLE_COMPANY_ID = 0x004C
IBEACON_TYPE = 0x02
IBEACON_LENGTH = 0x15
FRAME_BYTES = 25
_HEADER = bytes((0x4C, 0x00, IBEACON_TYPE, IBEACON_LENGTH))


class Reject(StrEnum):
    """Why a manufacturer-data payload is not a mallnet iBeacon frame."""

    EMPTY = "empty"  # nothing at all
    TRUNCATED = "truncated"  # shorter than the header or than its length byte says
    NOT_APPLE = "not_apple"  # another company id
    NOT_IBEACON = "not_ibeacon"  # Apple, but another type (AirDrop, Nearby, Find My, ...)
    BAD_LENGTH = "bad_length"  # iBeacon type with a length byte other than 0x15
    TRAILING = "trailing"  # bytes after the 21-byte body
    NOT_BYTES = "not_bytes"  # not a bytes-like value at all
    OTHER_PROGRAM = "other_program"  # a valid iBeacon of another UUID prefix (parser only)


@dataclass(frozen=True, slots=True)
class IBeacon:
    """One decoded iBeacon frame."""

    uuid: uuid.UUID
    major: int
    minor: int
    measured_power: int  # dBm at 1 m


def parse_ibeacon(data: object) -> IBeacon | Reject:
    """Decode Apple manufacturer data (including the 2-byte company id); never raises."""
    if not isinstance(data, bytes | bytearray | memoryview):
        return Reject.NOT_BYTES
    raw = bytes(data)
    if len(raw) == FRAME_BYTES and raw[:4] == _HEADER:
        return _decode(raw)
    return _classify(raw)


def _decode(raw: bytes) -> IBeacon:
    power = raw[24]
    return IBeacon(
        uuid=uuid.UUID(bytes=raw[4:20]),
        major=(raw[20] << 8) | raw[21],
        minor=(raw[22] << 8) | raw[23],
        measured_power=power - 256 if power > 127 else power,
    )


def _classify(raw: bytes) -> Reject:
    if not raw:
        return Reject.EMPTY
    if len(raw) < 2:
        return Reject.TRUNCATED
    if raw[0] | (raw[1] << 8) != APPLE_COMPANY_ID:
        return Reject.NOT_APPLE
    if len(raw) < 4:
        return Reject.TRUNCATED
    if raw[2] != IBEACON_TYPE:
        return Reject.NOT_IBEACON
    if raw[3] != IBEACON_LENGTH:
        return Reject.BAD_LENGTH
    if len(raw) < FRAME_BYTES:
        return Reject.TRUNCATED
    return Reject.TRAILING


@dataclass(frozen=True, slots=True)
class Sighting:
    """A program frame reduced to what presence needs: the tag id and measured power."""

    tag: str
    measured_power: int


@dataclass
class IBeaconParser:
    """Filters frames by the program prefix and counts everything it turns away."""

    prefix: bytes
    accepted: int = 0
    rejected: dict[Reject, int] = field(default_factory=lambda: dict.fromkeys(Reject, 0))

    def __post_init__(self) -> None:
        if len(self.prefix) != 4:
            raise ValueError("program prefix must be 4 bytes")
        self._head = _HEADER + self.prefix

    def sighting(self, data: object) -> Sighting | None:
        """The tag id and measured power of a program frame, else ``None`` (counted)."""
        # Fast path: one slice comparison covers company, type, length and prefix.
        if type(data) is bytes and len(data) == FRAME_BYTES and data[:8] == self._head:
            self.accepted += 1
            power = data[24]
            return Sighting(data[8:24].hex(), power - 256 if power > 127 else power)
        frame = parse_ibeacon(data)
        if isinstance(frame, Reject):
            self.rejected[frame] += 1
            return None
        if frame.uuid.bytes[:4] != self.prefix:
            self.rejected[Reject.OTHER_PROGRAM] += 1
            return None
        # Reached only for bytearray/memoryview input; same result as the fast path.
        self.accepted += 1
        return Sighting(
            frame.uuid.bytes[4:].hex() + f"{frame.major:04x}{frame.minor:04x}", frame.measured_power
        )

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def build_frame(beacon_uuid: uuid.UUID, major: int, minor: int, measured_power: int) -> bytes:
    """The manufacturer data (with company id) a beacon sends; for simulators and tests."""
    return (
        _HEADER
        + beacon_uuid.bytes
        + major.to_bytes(2, "big")
        + minor.to_bytes(2, "big")
        + (measured_power & 0xFF).to_bytes(1, "big")
    )
