"""A parking gate node's composition root: cameras → lanes → parking events → outbox → MQTT.

The only place that builds the camera sources, the OCR engine and the MQTT
client and wires them to the logic. One thread: each turn reads a frame from
every lane's source, feeds its ``GateLane``, records voted reads as parking
events, and pumps the store node's ``Publisher`` (the same outbox, batching,
receipts and go-back-N republishing as presence events). Heartbeats carry
``camera_ok``; old plate crops are pruned every minute.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType

from edge_node.camera.config import GateConfig, LaneSettings
from edge_node.camera.events import CropStore, ParkingRecorder
from edge_node.camera.formats import formats_for
from edge_node.camera.gate import GateLane, MotionSettings, cut_roi
from edge_node.camera.ocr import RapidOcrReader, TextReader
from edge_node.camera.reader import PlateRead, read_frame
from edge_node.health import HealthMonitor, Snapshot
from edge_node.outbox import Outbox
from edge_node.publisher import Publisher, drain_exit_code
from mallnet import __version__
from mallnet.errors import FrameError
from mallnet.frames.sources import FrameSource, Image8, open_source
from mallnet.ids import new_event_id
from mallnet.mqtt import MqttClient, Will
from mallnet.wire import encode
from mallnet.wire.payloads import DeviceStatus
from mallnet.wire.topics import HEALTH, RECEIPTS, STATUS

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 60.0
IDLE_SLEEP_S = 0.05


@dataclass
class Lane:
    settings: LaneSettings
    source: FrameSource
    lane: GateLane
    last_frame: Image8 | None = None
    last_ts: float = 0.0
    ended: bool = False
    bad_frames: int = 0  # frames the source could not hand over (logged, counted, skipped)


def lane_reader(
    settings: LaneSettings, reader: TextReader, config: GateConfig
) -> Callable[[Image8], PlateRead | None]:
    """The plate reader for one lane: only its region of interest, boxes in frame pixels."""
    formats = formats_for(settings.countries)

    def read(image: Image8) -> PlateRead | None:
        region, (ox, oy) = cut_roi(image, settings.roi)
        found = read_frame(region, reader, formats, config.reader)
        if found is None:
            return None
        x, y, w, h = found.box
        return PlateRead(
            found.plate,
            found.confidence,
            (x + ox, y + oy, w, h),
            found.country,
            found.layout,
            found.raw,
            found.fixes,
        )

    return read


class GateApp:
    """One running gate node."""

    def __init__(
        self,
        config: GateConfig,
        *,
        reader: TextReader | None = None,
        sources: list[FrameSource] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.wall = wall
        self.node = config.node.id
        self.mall = config.node.mall
        self.outbox = Outbox(config.outbox.path, max_events=config.outbox.max_events)
        self.publisher = Publisher(
            self.outbox,
            self.mall,
            self.node,
            batch_size=config.outbox.batch_size,
            max_inflight=config.outbox.max_inflight,
            max_inflight_batches=config.outbox.max_inflight_batches,
            receipt_timeout_s=config.outbox.receipt_timeout_s,
        )
        self.reader = reader or RapidOcrReader(threads=config.reader.threads)
        crops = config.crops
        store = CropStore(crops.dir, crops.retention_h * 3600) if crops is not None else None
        self.crops = store
        self.recorder = ParkingRecorder(self.outbox, store, wall)
        passes = config.passes
        self.lanes: list[Lane] = []
        for i, settings in enumerate(config.lanes):
            source = (
                sources[i]
                if sources is not None
                else open_source(settings.camera, max_sleep_s=IDLE_SLEEP_S * 4)
            )
            gate_lane = GateLane(
                lane_reader(settings, self.reader, config),
                MotionSettings(roi=settings.roi, min_changed=passes.motion_threshold),
                passes,
            )
            self.lanes.append(Lane(settings, source, gate_lane))
        self.health = HealthMonitor(self.node, wall(), config.health.thermal_zone)
        self._stop = False
        since = datetime.fromtimestamp(wall(), UTC)
        status = STATUS.topic(self.mall, self.node)

        def status_will(state: str) -> Will:
            message = DeviceStatus(
                state=state,  # type: ignore[arg-type]
                device=self.node,
                since=since,
                software=__version__,
            )
            return Will(status, encode(message))

        self._offline = status_will("offline")
        self.client = MqttClient(
            config.mqtt,
            self.node,
            subscriptions=[(RECEIPTS.topic(self.mall, self.node), 1)],
            on_message=self.publisher.on_message,
            will=self._offline,
            birth=status_will("online"),
            persistent_session=True,
            on_connected=self.publisher.on_connected,
        )
        self.publisher.transport = self.client

    # -- the loop -------------------------------------------------------------------

    def request_stop(self, *_args: object) -> None:
        self._stop = True

    def step(self) -> int:
        """Read one frame per live lane and act on it; returns frames processed."""
        processed = 0
        for lane in self.lanes:
            if lane.ended:
                continue
            try:
                frame = lane.source.read()
            except FrameError as exc:  # e.g. a camera delivering an unsupported pixel format
                lane.bad_frames += 1
                log.warning(
                    "%s: bad frame skipped (%d so far): %s",
                    lane.settings.gate,
                    lane.bad_frames,
                    exc,
                )
                continue
            if frame is None:
                if lane.source.finished:
                    lane.ended = True
                    self._emit(lane, lane.lane.flush(lane.last_ts))
                continue
            processed += 1
            lane.last_frame = frame.image
            lane.last_ts = frame.ts
            self._emit(lane, lane.lane.process(frame.image, frame.ts))
        return processed

    def _emit(self, lane: Lane, read: PlateRead | None) -> None:
        if read is not None:
            self.recorder.record(lane.settings.gate, lane.settings.direction, read, lane.last_frame)

    @property
    def ended(self) -> bool:
        return all(lane.ended for lane in self.lanes)

    def snapshot(self) -> Snapshot:
        now = self.wall()
        return Snapshot(
            now=now,
            adverts=sum(lane.lane.stats.frames for lane in self.lanes),
            events=self.recorder.events,
            outbox_depth=self.outbox.depth,
            outbox_oldest_age_s=self.outbox.oldest_age(now),
            outbox_dropped=self.outbox.dropped,
            scanner_restarts=sum(lane.source.health().reconnects for lane in self.lanes),
            adapter_resets=0,
        )

    def camera_ok(self) -> bool:
        return all(lane.ended or lane.source.health().ok for lane in self.lanes)

    def heartbeat(self) -> None:
        report = self.health.report(self.snapshot(), new_event_id(), self.outbox.next_health_seq())
        report = report.model_copy(update={"camera_ok": self.camera_ok()})
        self.client.publish(HEALTH.topic(self.mall, self.node), encode(report), qos=HEALTH.qos)

    def _last_heartbeat(self) -> None:
        if self.client.connected:
            self.heartbeat()

    def run(self) -> int:
        """Run until stopped (SIGTERM/SIGINT) or, with ``at_end: exit``, until drained."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        self.client.start()
        next_health = next_prune = time.monotonic()
        drain_deadline: float | None = None
        code = 0
        try:
            while not self._stop:
                busy = self.step()
                mono = time.monotonic()
                if self.ended and drain_deadline is None and self.config.at_end == "exit":
                    log.info("all cameras ended; draining %d events", self.outbox.depth)
                    drain_deadline = mono + self.config.drain_timeout_s
                if mono >= next_health and self.client.connected:
                    next_health = mono + self.config.health.interval_s
                    self.heartbeat()
                if self.crops is not None and mono >= next_prune:
                    next_prune = mono + PRUNE_INTERVAL_S
                    self.crops.prune(self.wall())
                self.publisher.pump(self.wall())
                drained = drain_exit_code(
                    self.outbox.depth, mono, drain_deadline, self._last_heartbeat
                )
                if drained is not None:
                    code = drained
                    break
                if not busy:
                    time.sleep(IDLE_SLEEP_S)
        finally:
            for lane in self.lanes:
                lane.source.close()
            self.client.stop(farewell=self._offline)
            self.outbox.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.request_stop()
