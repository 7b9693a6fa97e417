"""Event ids made at the source: UUIDv7 (RFC 9562), sortable by creation time.

Python 3.11 has no ``uuid.uuid7``; this generator follows RFC 9562 section 6.2,
method 1: a 12-bit counter in ``rand_a`` keeps ids from one generator strictly
increasing even within one millisecond or when the wall clock steps back.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable


class UuidV7Factory:
    """Makes strictly increasing UUIDv7 strings. Thread-safe."""

    def __init__(self, clock_ms: Callable[[], int] | None = None) -> None:
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._lock = threading.Lock()
        self._last_ms = -1
        self._counter = 0

    def __call__(self) -> str:
        with self._lock:
            now = self._clock_ms()
            if now > self._last_ms:
                self._last_ms = now
                self._counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave headroom
            else:
                self._counter += 1
                if self._counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                    self._last_ms += 1
                    self._counter = 0
            ms = self._last_ms
            counter = self._counter
        rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (ms & ((1 << 48) - 1)) << 80
        value |= 0x7 << 76
        value |= counter << 64
        value |= 0b10 << 62
        value |= rand_b
        return str(uuid.UUID(int=value))


new_event_id = UuidV7Factory()
"""The process-wide default generator (stateless apart from ordering)."""


def uuid7_time_ms(event_id: str) -> int:
    """The Unix time in milliseconds encoded in a UUIDv7 string."""
    return uuid.UUID(event_id).int >> 80
