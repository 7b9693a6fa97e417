"""Time series: footfall aggregates and node health, written to an InfluxDB v2 compatible
server through influxdb-client — batched on a background thread, never blocking ingest.

Ingest hands points to ``TelemetrySink.write`` after its commit; ``InfluxSink`` only puts
them on a bounded queue (dropping and counting when the server cannot keep up) and its
thread writes them in batches. Without a server (``NullSink``) nothing leaves the core:
the same aggregates are kept in SQLite (the ``footfall`` and ``nodes`` tables, written in
the ingest transaction) and the API serves them either way.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cloud_core.config import TelemetrySettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Point:
    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, float | int]
    ts: datetime

    def line(self) -> str:
        """InfluxDB line protocol, nanosecond precision."""

        def esc(text: str) -> str:
            return (
                text.replace("\\", "\\\\")
                .replace(",", "\\,")
                .replace(" ", "\\ ")
                .replace("=", "\\=")
            )

        tags = "".join(f",{esc(k)}={esc(v)}" for k, v in sorted(self.tags.items()))
        fields = ",".join(
            f"{esc(k)}={v}i" if isinstance(v, int) else f"{esc(k)}={float(v)!r}"
            for k, v in sorted(self.fields.items())
        )
        return f"{esc(self.measurement)}{tags} {fields} {int(self.ts.timestamp() * 1e9)}"


class TelemetrySink(Protocol):
    def write(self, points: Sequence[Point]) -> None: ...

    def close(self) -> None: ...


class NullSink:
    """No time-series server: the SQLite rollups are all there is."""

    def write(self, points: Sequence[Point]) -> None:
        return None

    def close(self) -> None:
        return None


class InfluxSink:
    """Batched, non-blocking writes through influxdb-client's synchronous write API."""

    def __init__(self, settings: TelemetrySettings) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        token = ""
        if settings.token_file is not None:
            token = settings.token_file.read_text(encoding="utf-8").strip()
        self._settings = settings
        self._client = InfluxDBClient(
            url=str(settings.url).rstrip("/"), token=token, org=settings.org, timeout=10_000
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._queue: queue.Queue[Point] = queue.Queue(maxsize=settings.queue_max)
        self._stop = threading.Event()
        self.written = 0
        self.dropped = 0
        self.failed_writes = 0
        self._thread = threading.Thread(target=self._run, name="core-telemetry", daemon=True)
        self._thread.start()

    def write(self, points: Sequence[Point]) -> None:
        for point in points:
            try:
                self._queue.put_nowait(point)
            except queue.Full:
                self.dropped += 1

    def _drain(self) -> list[Point]:
        """Up to ``batch_size`` points, waiting at most ``flush_interval_s`` for them."""
        batch: list[Point] = []
        deadline = time.monotonic() + self._settings.flush_interval_s
        while len(batch) < self._settings.batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            batch = self._drain()
            if batch:
                self._send(batch)

    def _send(self, batch: list[Point]) -> None:
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError

        try:
            self._write_api.write(
                bucket=self._settings.bucket,
                org=self._settings.org,
                record=[p.line() for p in batch],
            )
            self.written += len(batch)
        except (ApiException, HTTPError, OSError) as exc:
            self.failed_writes += 1
            self.dropped += len(batch)
            log.warning("time-series write of %d points failed: %s", len(batch), exc)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(15)
        self._write_api.close()  # type: ignore[no-untyped-call]
        self._client.close()  # type: ignore[no-untyped-call]


def make_sink(settings: TelemetrySettings | None) -> TelemetrySink:
    return NullSink() if settings is None else InfluxSink(settings)
