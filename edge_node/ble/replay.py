"""Replay a recorded JSONL trace at real or accelerated speed.

The clock and the sleep are injected, so tests can replay without waiting and
the app can replay a capture at ``speed`` times real time. ``speed = 0`` replays
as fast as the consumer takes adverts. The source's ``now()`` is trace time: a
replayed hour produces the same events whatever the speed. Bad lines are
logged, counted and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from edge_node.ble.sources import Advert, SourceStats, TraceFormatError, advert_from_json
from edge_node.errors import SourceError

log = logging.getLogger(__name__)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TraceFormatError("not UTF-8") from None


class ReplaySource:
    """A ``BeaconSource`` reading a JSONL trace."""

    def __init__(
        self,
        path: Path,
        *,
        speed: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if speed < 0:
            raise SourceError("replay speed must be >= 0")
        self.path = path
        self.speed = speed
        self.stats = SourceStats()
        self._clock = clock
        self._sleep = sleep
        self._trace_now: float | None = None
        self._anchor: tuple[float, float] | None = None  # (trace time, clock time)
        self.finished = False

    def now(self) -> float:
        if self._trace_now is None:
            return time.time()
        if self._anchor is None or self.speed == 0 or self.finished:
            return self._trace_now
        trace_t, clock_t = self._anchor
        return max(self._trace_now, trace_t + (self._clock() - clock_t) * self.speed)

    async def adverts(self) -> AsyncIterator[Advert]:
        try:
            handle = self.path.open("rb")  # decoded per line: one bad byte spoils one line
        except OSError as exc:
            raise SourceError(f"cannot read trace {self.path}: {exc.strerror}") from None
        with handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    advert = advert_from_json(_text(raw))
                except TraceFormatError as exc:
                    self.stats.bad_lines += 1
                    log.warning("%s:%d: skipped: %s", self.path, number, exc)
                    continue
                await self._wait_until(advert.t)
                self._trace_now = max(self._trace_now or advert.t, advert.t)
                self.stats.adverts += 1
                self.stats.beat = time.monotonic()
                yield advert
        self.finished = True

    async def _wait_until(self, trace_t: float) -> None:
        if self._anchor is None:
            self._anchor = (trace_t, self._clock())
            return
        if self.speed == 0:
            await self._sleep(0)  # let other tasks run
            return
        anchor_trace, anchor_clock = self._anchor
        due = anchor_clock + (trace_t - anchor_trace) / self.speed
        delay = due - self._clock()
        self.stats.beat = time.monotonic() + max(0.0, delay)  # a gap in the trace is no stall
        await self._sleep(max(0.0, delay))
