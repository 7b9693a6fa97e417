"""The heartbeat: rates, outbox depth and age, scanner restarts, CPU temperature and load."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mallnet.wire.payloads import HealthReport


def read_cpu_temp(path: Path) -> float | None:
    """SoC temperature in °C from a thermal zone file (millidegrees); None if absent."""
    try:
        return round(int(path.read_text(encoding="ascii").strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def read_load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


@dataclass
class Snapshot:
    """The counters the heartbeat is computed from."""

    now: float
    adverts: int
    events: int
    outbox_depth: int
    outbox_oldest_age_s: float
    outbox_dropped: int
    scanner_restarts: int
    adapter_resets: int


class HealthMonitor:
    """Turns successive counter snapshots into ``HealthReport`` payloads."""

    def __init__(self, node: str, started: float, thermal_zone: Path) -> None:
        self.node = node
        self.started = started
        self.thermal_zone = thermal_zone
        self._last: Snapshot | None = None

    def report(self, snap: Snapshot, event_id: str, seq: int) -> HealthReport:
        last = self._last
        self._last = snap
        span = snap.now - last.now if last is not None else snap.now - self.started
        span = max(span, 1e-6)
        adverts = snap.adverts - (last.adverts if last else 0)
        events = snap.events - (last.events if last else 0)
        return HealthReport(
            id=event_id,
            seq=seq,
            ts=datetime.fromtimestamp(snap.now, UTC),
            node=self.node,
            uptime_s=round(max(0.0, snap.now - self.started), 1),
            adverts_per_s=round(max(0, adverts) / span, 2),
            events_per_s=round(max(0, events) / span, 3),
            outbox_depth=snap.outbox_depth,
            outbox_oldest_age_s=round(snap.outbox_oldest_age_s, 1),
            outbox_dropped=snap.outbox_dropped,
            scanner_restarts=snap.scanner_restarts,
            adapter_resets=snap.adapter_resets,
            cpu_temp_c=read_cpu_temp(self.thermal_zone),
            load_1m=read_load(),
        )
