"""The node's composition root: config → source, pipeline, outbox, MQTT, health.

The only place that builds adapters (bleak, paho) and wires them to the logic.
Runs one asyncio loop: a task consumes the source; the loop itself ticks the
presence engine once a second, pumps the publisher whenever a receipt or a
reconnect arrives (and at least every 0.2 s), and sends a heartbeat every
``health.interval_s``. All SQLite access happens on this loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from edge_node.ble.ibeacon import IBeaconParser
from edge_node.ble.pipeline import Pipeline
from edge_node.ble.presence import PresenceEngine
from edge_node.ble.sources import BeaconSource
from edge_node.config import EdgeConfig, ReplaySourceSettings
from edge_node.health import HealthMonitor, Snapshot
from edge_node.outbox import Outbox
from edge_node.publisher import Publisher, drain_exit_code
from mallnet import __version__
from mallnet.ids import new_event_id
from mallnet.mqtt import Inbound, MqttClient, Will
from mallnet.wire import WireError, decode, encode
from mallnet.wire.payloads import DeviceStatus, NodeConfig
from mallnet.wire.topics import HEALTH, NODE_CONFIG, RECEIPTS, STATUS

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
    ) -> None:
        self.config = config
        self.wall = wall
        self.node = config.node.id
        self.mall = config.node.mall
        self.source = source or build_source(config)
        self.outbox = Outbox(config.outbox.path, max_events=config.outbox.max_events)
        self.engine = PresenceEngine(config.presence, config.footfall)
        self.pipeline = Pipeline(
            IBeaconParser(config.ibeacon.prefix_bytes), self.engine, self.outbox, wall=wall
        )
        self.publisher = Publisher(
            self.outbox,
            self.mall,
            self.node,
            batch_size=config.outbox.batch_size,
            max_inflight=config.outbox.max_inflight,
            max_inflight_batches=config.outbox.max_inflight_batches,
            receipt_timeout_s=config.outbox.receipt_timeout_s,
        )
        self.health = HealthMonitor(self.node, wall(), config.health.thermal_zone)
        self.config_revision = -1
        self.rejected_configs = 0  # malformed or invalid NodeConfig pushes, logged and ignored
        self._node_configs: queue.SimpleQueue[NodeConfig] = queue.SimpleQueue()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested = False
        since = datetime.fromtimestamp(wall(), UTC)
        self._offline = Will(
            STATUS.topic(self.mall, self.node),
            encode(
                DeviceStatus(state="offline", device=self.node, since=since, software=__version__)
            ),
        )
        online = Will(
            STATUS.topic(self.mall, self.node),
            encode(
                DeviceStatus(state="online", device=self.node, since=since, software=__version__)
            ),
        )
        self.client = MqttClient(
            config.mqtt,
            self.node,
            subscriptions=[
                (RECEIPTS.topic(self.mall, self.node), 1),
                (NODE_CONFIG.topic(self.mall, self.node), 1),
            ],
            on_message=self._on_message,
            will=self._offline,
            birth=online,
            persistent_session=True,
            on_connected=self.publisher.on_connected,
        )
        self.publisher.transport = self.client
        self.publisher.wakeup = self._wakeup

    # -- MQTT (network thread) ------------------------------------------------------

    def _wakeup(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(wake.set)

    def _on_message(self, message: Inbound) -> None:
        if message.topic.endswith("/" + NODE_CONFIG.leaf):
            try:
                decoded = decode(message.topic, message.payload)
            except WireError as exc:
                self.rejected_configs += 1
                log.warning("rejected node config: %s", exc)
                return
            if isinstance(decoded.message, NodeConfig):
                self._node_configs.put(decoded.message)
                self._wakeup()
            return
        self.publisher.on_message(message)

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

    def _heartbeat(self) -> None:
        log.debug("counters: %s", self.counters())
        report = self.health.report(self.snapshot(), new_event_id(), self.outbox.next_health_seq())
        self.client.publish(HEALTH.topic(self.mall, self.node), encode(report), qos=HEALTH.qos)

    async def _consume(self) -> None:
        async for advert in self.source.adverts():
            self.pipeline.feed(advert)
            if self.outbox.depth and self._wake is not None and not self._wake.is_set():
                self._wake.set()

    def _source_ended(self) -> float | None:
        """Flush the engine when the source runs out; returns the drain deadline."""
        settings = self.config.source
        self.pipeline.flush(self.source.now())
        if isinstance(settings, ReplaySourceSettings) and settings.at_end == "exit":
            log.info("trace replayed; draining %d events", self.outbox.depth)
            return time.monotonic() + settings.drain_timeout_s
        log.info("source ended; idling")
        return None

    def _last_heartbeat(self) -> None:
        if self.client.connected:
            self._heartbeat()

    async def run(self) -> int:
        """Run until stopped (SIGTERM/SIGINT) or, for a replay with ``at_end: exit``, drained."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.add_signal_handler(sig, self.request_stop)
        self.client.start()
        consumer = asyncio.create_task(self._consume())
        ended = False
        drain_deadline: float | None = None
        next_tick = next_health = time.monotonic()
        code = 0
        try:
            while not self._stop_requested:
                if consumer.done() and not ended:
                    ended = True
                    exc = consumer.exception()
                    if exc is not None:
                        raise exc
                    drain_deadline = self._source_ended()
                self._apply_node_configs()
                mono = time.monotonic()
                if mono >= next_tick:
                    next_tick = mono + 1.0
                    self.pipeline.tick(self.source.now())
                if mono >= next_health and self.client.connected:
                    next_health = mono + self.config.health.interval_s
                    self._heartbeat()
                self.publisher.pump(self.wall())
                drained = drain_exit_code(
                    self.outbox.depth, mono, drain_deadline, self._last_heartbeat
                )
                if drained is not None:
                    code = drained
                    break
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), PUMP_INTERVAL_S)
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await consumer
            self.client.stop(farewell=self._offline)
            self.outbox.close()
            self._loop = None
        return code
