"""The seam between radios (or recordings) and the logic: ``BeaconSource`` and ``Advert``.

A source yields ``Advert`` values; nothing downstream knows whether they came
from BlueZ, a recorded trace or a simulator. The JSONL trace format (one advert
per line) is shared by ``mallnet edge record`` (writes it from a live scanner),
``mallnet edge simulate`` and the replay source::

    {"t": 1763870000.125, "addr": "C4:7C:8D:6A:11:02", "rssi": -67,
     "mfr": "4c000215f7a3e1c2...c5", "tx": null}

``t`` is Unix time in seconds, ``mfr`` the manufacturer data as hex *including*
the 2-byte little-endian company id (``4c00`` for Apple), ``tx`` the advertised
TX power or ``null``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Advert:
    """One received advertisement."""

    t: float
    address: str
    rssi: int
    mfr: bytes
    tx_power: int | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "t": round(self.t, 3),
                "addr": self.address,
                "rssi": self.rssi,
                "mfr": self.mfr.hex(),
                "tx": self.tx_power,
            },
            separators=(",", ":"),
        )


MAX_TIME = 253_402_300_799.0  # 9999-12-31T23:59:59Z: later times are not dates


class TraceFormatError(ValueError):
    """One JSONL line that is not an advert."""


def advert_from_json(line: str) -> Advert:
    """Parse one trace line; raises ``TraceFormatError`` with the reason."""
    try:
        data: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TraceFormatError(f"not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise TraceFormatError("not a JSON object")
    try:
        t = data["t"]
        addr = data["addr"]
        rssi = data["rssi"]
        mfr_hex = data["mfr"]
        tx = data.get("tx")
    except KeyError as exc:
        raise TraceFormatError(f"missing field {exc.args[0]!r}") from None
    if not isinstance(t, int | float) or isinstance(t, bool):
        raise TraceFormatError("t must be a number")
    if not (math.isfinite(t) and 0 <= t <= MAX_TIME):
        raise TraceFormatError("t must be a Unix time between 1970 and 9999")
    if not isinstance(addr, str) or not isinstance(mfr_hex, str):
        raise TraceFormatError("addr and mfr must be strings")
    if not isinstance(rssi, int) or isinstance(rssi, bool) or not -127 <= rssi <= 20:
        raise TraceFormatError("rssi must be an integer in [-127, 20]")
    if tx is not None and (not isinstance(tx, int) or isinstance(tx, bool)):
        raise TraceFormatError("tx must be an integer or null")
    try:
        mfr = bytes.fromhex(mfr_hex)
    except ValueError:
        raise TraceFormatError("mfr is not hex") from None
    return Advert(float(t), addr, rssi, mfr, tx)


@dataclass
class SourceStats:
    """Counters every source keeps (reported in the heartbeat)."""

    adverts: int = 0
    scanner_restarts: int = 0
    adapter_resets: int = 0
    bad_lines: int = 0
    extra: dict[str, int] = field(default_factory=dict)
    #: ``time.monotonic()`` of the source's last sign of life (an advert, a scanner watchdog
    #: turn) or until when it legitimately waits (a replay's gap); the node's systemd watchdog
    #: stops pinging when this falls too far behind (``health.stall_s``).
    beat: float = field(default_factory=time.monotonic)


@runtime_checkable
class BeaconSource(Protocol):
    """Anything that yields adverts: a live scanner, a replayed trace."""

    stats: SourceStats

    def adverts(self) -> AsyncIterator[Advert]:
        """Yield adverts until the source ends (a trace) or the task is cancelled."""
        ...

    def now(self) -> float:
        """The source's current time (Unix seconds); a replay's virtual clock."""
        ...
