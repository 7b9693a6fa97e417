"""The store node's composition root: config → beacon source, pipeline, uplink.

The only place that builds the beacon source (bleak or a replay) and wires it
to the logic and to the node's ``Uplink`` (outbox, publisher, MQTT, heartbeats
— the same as a gate node's). Runs one asyncio loop: a task consumes the
source; the loop itself ticks the presence engine once a second, applies
pushed node configs, and turns the uplink whenever a receipt or a reconnect
arrives (and at least every 0.2 s). All SQLite access happens on this loop's
thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import signal
import time
from collections.abc import Callable
from typing import Any

from edge_node.ble.config import EdgeConfig, ReplaySourceSettings
from edge_node.ble.ibeacon import IBeaconParser
from edge_node.ble.pipeline import Pipeline
from edge_node.ble.presence import PresenceEngine
from edge_node.ble.sources import BeaconSource
from edge_node.health import Snapshot
from edge_node.uplink import Uplink
from mallnet.mqtt import Inbound
from mallnet.systemd import Notifier, Watchdog, stalled
from mallnet.wire import WireError, decode
from mallnet.wire.payloads import NodeConfig
from mallnet.wire.topics import NODE_CONFIG

log = logging.getLogger(__name__)

PUMP_INTERVAL_S = 0.2


def build_source(config: EdgeConfig) -> BeaconSource:
    settings = config.source
    if isinstance(settings, ReplaySourceSettings):
        from edge_node.ble.replay import ReplaySource

        return ReplaySource(settings.path, speed=settings.speed)
    from edge_node.ble.bleak_source import BleakSource

    return BleakSource(settings, retry_first_start=True)  # an adapter may come up late


class EdgeApp:
    """One running store node."""

    def __init__(
        self,
        config: EdgeConfig,
        *,
        source: BeaconSource | None = None,
        wall: Callable[[], float] = time.time,
        notifier: Notifier | None = None,
    ) -> None:
        """``notifier``: systemd's (``Notifier.from_environment()`` at the command line);
        the loop then says READY and pings the watchdog while it and the scan are healthy."""
        self.config = config
        self.wall = wall
        self.node = config.node.id
        self.mall = config.node.mall
        self.source = source or build_source(config)
        self.uplink = Uplink(
            config.node,
            config.mqtt,
            config.outbox,
            config.health,
            snapshot=self._heartbeat_snapshot,
            handlers={NODE_CONFIG.topic(self.mall, self.node): self._on_node_config},
            wall=wall,
        )
        self.outbox = self.uplink.outbox
        self.publisher = self.uplink.publisher
        self.client = self.uplink.client
        self.engine = PresenceEngine(config.presence, config.footfall)
        self.pipeline = Pipeline(
            IBeaconParser(config.ibeacon.prefix_bytes), self.engine, self.outbox, wall=wall
        )
        self.config_revision = -1
        self.rejected_configs = 0  # malformed or invalid NodeConfig pushes, logged and ignored
        self._node_configs: queue.SimpleQueue[NodeConfig] = queue.SimpleQueue()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested = False
        self._source_ended = False
        self.publisher.wakeup = self._wakeup
        self.watchdog = Watchdog(notifier or Notifier(None), [self._scan_check()])

    # -- MQTT (network thread) ------------------------------------------------------

    def _wakeup(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(wake.set)

    def _on_node_config(self, message: Inbound) -> None:
        try:
            decoded = decode(message.topic, message.payload)
        except WireError as exc:
            self.rejected_configs += 1
            log.warning("rejected node config: %s", exc)
            return
        if isinstance(decoded.message, NodeConfig):
            self._node_configs.put(decoded.message)
            self._wakeup()

    def _apply_node_configs(self) -> None:
        while True:
            try:
                pushed = self._node_configs.get_nowait()
            except queue.Empty:
                return
            if pushed.revision <= self.config_revision:
                log.info(
                    "ignored node config revision %d (have %d)",
                    pushed.revision,
                    self.config_revision,
                )
                continue
            try:
                tuned = self.config.presence.tuned(pushed.presence)
            except ValueError as exc:
                self.rejected_configs += 1
                log.warning("node config revision %d rejected: %s", pushed.revision, exc)
                continue
            self.engine.apply(tuned)
            self.config_revision = pushed.revision
            log.info("applied node config revision %d", pushed.revision)

    # -- the loop -------------------------------------------------------------------

    def _scan_check(self) -> Callable[[], str | None]:
        """The BLE scan (or replay) is making progress, unless it has legitimately ended."""
        scan = stalled(
            "the beacon scan", lambda: self.source.stats.beat, self.config.health.stall_s
        )
        return lambda: None if self._source_ended else scan()

    def request_stop(self) -> None:
        self._stop_requested = True
        self._wakeup()

    def snapshot(self) -> Snapshot:
        now = self.wall()
        return Snapshot(
            now=now,
            adverts=self.pipeline.adverts,
            events=self.pipeline.events,
            outbox_depth=self.outbox.depth,
            outbox_oldest_age_s=self.outbox.oldest_age(now),
            outbox_dropped=self.outbox.dropped,
            scanner_restarts=self.source.stats.scanner_restarts,
            adapter_resets=self.source.stats.adapter_resets,
        )

    def counters(self) -> dict[str, Any]:
        """Everything the node counts, for logs and diagnostics."""
        parser = self.pipeline.parser
        return {
            "adverts": self.pipeline.adverts,
            "program_frames": parser.accepted,
            "rejected": {k.value: v for k, v in parser.rejected.items() if v},
            "events": self.pipeline.events,
            "invalid_events": self.pipeline.invalid,
            "tracked_tags": self.engine.tracked,
            "config_revision": self.config_revision,
            "rejected_configs": self.rejected_configs,
            "source": {
                "scanner_restarts": self.source.stats.scanner_restarts,
                "adapter_resets": self.source.stats.adapter_resets,
                "bad_lines": self.source.stats.bad_lines,
                **self.source.stats.extra,
            },
            "publisher": dict(vars(self.publisher.stats)),
            "outbox": {"depth": self.outbox.depth, "dropped": self.outbox.dropped},
        }

    def _heartbeat_snapshot(self) -> Snapshot:
        log.debug("counters: %s", self.counters())
        return self.snapshot()

    async def _consume(self) -> None:
        async for advert in self.source.adverts():
            self.pipeline.feed(advert)
            if self.outbox.depth and self._wake is not None and not self._wake.is_set():
                self._wake.set()

    def _source_end(self) -> float | None:
        """Flush the engine when the source runs out; returns the drain deadline."""
        settings = self.config.source
        self.pipeline.flush(self.source.now())
        if isinstance(settings, ReplaySourceSettings) and settings.at_end == "exit":
            log.info("trace replayed; draining %d events", self.outbox.depth)
            return time.monotonic() + settings.drain_timeout_s
        log.info("source ended; idling")
        return None

    async def run(self) -> int:
        """Run until stopped (SIGTERM/SIGINT) or, for a replay with ``at_end: exit``, drained."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.add_signal_handler(sig, self.request_stop)
        self.uplink.start()
        consumer = asyncio.create_task(self._consume())
        self.watchdog.ready(f"store node {self.node} scanning")
        ended = False
        drain_deadline: float | None = None
        next_tick = time.monotonic()
        code = 0
        try:
            while not self._stop_requested:
                if consumer.done() and not ended:
                    ended = True
                    exc = consumer.exception()
                    if exc is not None:
                        raise exc
                    self._source_ended = True
                    drain_deadline = self._source_end()
                self._apply_node_configs()
                mono = time.monotonic()
                self.watchdog.tick(mono)
                if mono >= next_tick:
                    next_tick = mono + 1.0
                    self.pipeline.tick(self.source.now())
                drained = self.uplink.turn(mono, drain_deadline)
                if drained is not None:
                    code = drained
                    break
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), PUMP_INTERVAL_S)
        finally:
            self.watchdog.stopping()
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await consumer
            self.uplink.stop()
            self._loop = None
        return code
