"""A parking gate node's composition root: cameras → lanes → parking events → uplink.

The only place that builds the camera sources and the OCR engine and wires
them to the logic and to the node's ``Uplink`` (the store node's own: outbox,
batching, receipts, go-back-N republishing, status and heartbeats). One
thread: each turn reads a frame from every lane's source, feeds its
``GateLane``, records voted reads as parking events, and turns the uplink.
Heartbeats carry ``camera_ok``; old plate crops are pruned every minute.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from edge_node.camera.config import GateConfig, LaneSettings
from edge_node.camera.events import CropStore, ParkingRecorder
from edge_node.camera.formats import formats_for
from edge_node.camera.gate import GateLane, MotionSettings, cut_roi
from edge_node.camera.ocr import RapidOcrReader, TextReader
from edge_node.camera.reader import PlateRead, read_frame
from edge_node.health import Snapshot
from edge_node.uplink import Uplink
from mallnet.errors import FrameError
from mallnet.frames.sources import FrameSource, Image8, open_source
from mallnet.systemd import Notifier, Watchdog

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
    progress_at: float = field(default_factory=time.monotonic)  # its last frame (monotonic)


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
        notifier: Notifier | None = None,
    ) -> None:
        """``notifier``: systemd's (``Notifier.from_environment()`` at the command line);
        the loop then says READY and pings the watchdog while every camera delivers frames."""
        self.config = config
        self.wall = wall
        self.node = config.node.id
        self.mall = config.node.mall
        self.uplink = Uplink(
            config.node,
            config.mqtt,
            config.outbox,
            config.health,
            snapshot=self.snapshot,
            health_extra=lambda: {"camera_ok": self.camera_ok()},
            wall=wall,
        )
        self.outbox = self.uplink.outbox
        self.publisher = self.uplink.publisher
        self.client = self.uplink.client
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
        self._stop = False
        self.watchdog = Watchdog(notifier or Notifier(None), [self._cameras_check])

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
            lane.progress_at = time.monotonic()
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

    def _cameras_check(self) -> str | None:
        """A camera that delivered no frame for ``health.stall_s`` (hung, or lost for good)."""
        limit, now = self.config.health.stall_s, time.monotonic()
        stuck = [
            f"camera {lane.settings.gate} delivered no frame for {now - lane.progress_at:.0f} s"
            for lane in self.lanes
            if not lane.ended and now - lane.progress_at > limit
        ]
        return "; ".join(stuck) or None

    def camera_ok(self) -> bool:
        return all(lane.ended or lane.source.health().ok for lane in self.lanes)

    def run(self) -> int:
        """Run until stopped (SIGTERM/SIGINT) or, with ``at_end: exit``, until drained."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        self.uplink.start()
        next_prune = time.monotonic()
        drain_deadline: float | None = None
        code = 0
        lanes = ", ".join(lane.settings.gate for lane in self.lanes)
        self.watchdog.ready(f"gate node {self.node} reading {lanes}")
        try:
            while not self._stop:
                busy = self.step()
                mono = time.monotonic()
                self.watchdog.tick(mono)
                if self.ended and drain_deadline is None and self.config.at_end == "exit":
                    log.info("all cameras ended; draining %d events", self.outbox.depth)
                    drain_deadline = mono + self.config.drain_timeout_s
                if self.crops is not None and mono >= next_prune:
                    next_prune = mono + PRUNE_INTERVAL_S
                    self.crops.prune(self.wall())
                drained = self.uplink.turn(mono, drain_deadline)
                if drained is not None:
                    code = drained
                    break
                if not busy:
                    time.sleep(IDLE_SLEEP_S)
        finally:
            self.watchdog.stopping()
            for lane in self.lanes:
                lane.source.close()
            self.uplink.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.request_stop()
