"""A gate lane over time: motion gating, vehicle passes, one voted read per pass.

``MotionGate`` compares a tiny grey copy of the region of interest with the
previous frame's (well under a millisecond a frame), so an idle gate never
wakes the plate reader. ``GateLane`` feeds the frames of a pass (from
the first motion until ``hold_s`` after the last) to a plate reader and, when
the pass ends or enough reads agree, votes them into one ``PlateRead``; the
same plate seen again within ``repeat_s`` (a car inching forward) is not
reported twice. Both take frames and timestamps, never devices.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

from edge_node.camera.config import PassSettings
from edge_node.camera.errors import CameraError, OcrUnavailable
from edge_node.camera.reader import PlateRead, vote

log = logging.getLogger(__name__)

Image8 = npt.NDArray[np.uint8]
Roi = tuple[float, float, float, float]  # x, y, w, h as fractions of the frame
FULL_FRAME: Roi = (0.0, 0.0, 1.0, 1.0)
RECHECK_S = 0.5  # after a pass's plate is out, still read this often while moving


def roi_pixels(shape: tuple[int, ...], roi: Roi) -> tuple[int, int, int, int]:
    """The region of interest in pixels (x, y, w, h), at least 1×1."""
    h, w = shape[:2]
    x0, y0 = round(roi[0] * w), round(roi[1] * h)
    x1, y1 = round((roi[0] + roi[2]) * w), round((roi[1] + roi[3]) * h)
    x0, y0 = min(max(0, x0), w - 1), min(max(0, y0), h - 1)
    return x0, y0, max(1, min(w, x1) - x0), max(1, min(h, y1) - y0)


def cut_roi(image: Image8, roi: Roi) -> tuple[Image8, tuple[int, int]]:
    """The region of interest and its offset in the frame."""
    x, y, w, h = roi_pixels(image.shape, roi)
    return image[y : y + h, x : x + w], (x, y)


@dataclass(frozen=True)
class MotionSettings:
    roi: Roi = FULL_FRAME
    work_width: int = 96  # the ROI is compared at this width
    pixel_delta: int = 18  # grey levels a pixel must change by to count
    min_changed: float = 0.01  # fraction of changed pixels that means motion


class MotionGate:
    """Cheap frame differencing over the region of interest.

    Each frame's ROI is shrunk to ``work_width`` pixels wide, greyed and
    blurred, and compared with the previous one: motion is a fraction of
    pixels that changed by more than ``pixel_delta``. A car that stops (at a
    barrier, or parked in view) stops being motion, so it stops costing OCR.
    """

    def __init__(self, settings: MotionSettings | None = None) -> None:
        self.settings = settings or MotionSettings()
        self._previous: Image8 | None = None
        self.last_changed = 0.0

    def _small(self, image: Image8) -> Image8:
        region, _ = cut_roi(image, self.settings.roi)
        h, w = region.shape[:2]
        width = min(self.settings.work_width, w)
        height = max(1, round(h * width / w))
        # Linear to twice the size, then area: ~16 source pixels per output pixel
        # (noise averages out) at a fraction of a full-frame area resize's cost.
        double = cv2.resize(region, (width * 2, height * 2), interpolation=cv2.INTER_LINEAR)
        small = cv2.resize(double, (width, height), interpolation=cv2.INTER_AREA)
        if small.ndim == 3:
            small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        return cast(Image8, cv2.GaussianBlur(small, (3, 3), 0))

    def update(self, image: Image8) -> bool:
        """True when the region of interest changed since the previous frame."""
        small = self._small(image)
        previous, self._previous = self._previous, small
        if previous is None or previous.shape != small.shape:
            self.last_changed = 0.0
            return False
        diff = cv2.absdiff(small, previous)
        changed = float(np.count_nonzero(diff > self.settings.pixel_delta)) / diff.size
        self.last_changed = changed
        return bool(changed >= self.settings.min_changed)


@dataclass
class LaneStats:
    frames: int = 0
    gated: int = 0  # frames skipped by motion gating (no OCR)
    reads: int = 0  # frames that went to the plate reader
    plates: int = 0  # passes that produced a plate
    rejected: int = 0  # passes whose vote was too weak
    errors: int = 0  # frames the plate reader failed on (logged, counted, skipped)


@dataclass
class _Pass:
    started: float
    last_motion: float
    reads: list[PlateRead] = field(default_factory=list)
    emitted: bool = False
    plate: str | None = None  # what was emitted
    last_read: float = float("-inf")


class GateLane:
    """Frames in, at most one ``PlateRead`` per vehicle pass out."""

    def __init__(
        self,
        read: Callable[[Image8], PlateRead | None],
        motion: MotionSettings | None = None,
        passes: PassSettings | None = None,
    ) -> None:
        self._read = read
        self.gate = MotionGate(motion)
        self.settings = passes or PassSettings()
        self.stats = LaneStats()
        self._pass: _Pass | None = None
        self._recent: dict[str, float] = {}

    def process(self, image: Image8, ts: float) -> PlateRead | None:
        """Feed one frame taken at ``ts`` (seconds); returns a plate when a pass yields one."""
        self.stats.frames += 1
        moving = self.gate.update(image)
        current = self._pass
        if current is None:
            if not moving:
                self.stats.gated += 1
                return None
            current = self._pass = _Pass(started=ts, last_motion=ts)
        elif moving:
            current.last_motion = ts
        if ts - current.last_motion > self.settings.hold_s or ts - current.started > (
            self.settings.max_pass_s
        ):
            self._pass = None
            self.stats.gated += 1
            return None if current.emitted else self._finish(current, ts)
        if current.emitted:
            return self._recheck(current, image, ts)
        return self._read_into(current, image, ts)

    def _read_into(self, current: _Pass, image: Image8, ts: float) -> PlateRead | None:
        self.stats.reads += 1
        current.last_read = ts
        read = self._safe_read(image)
        if read is not None:
            current.reads.append(read)
            agreeing = [
                r
                for r in current.reads
                if r.plate == read.plate and r.confidence >= self.settings.early_confidence
            ]
            if len(agreeing) >= self.settings.early_votes:
                current.emitted = True
                current.plate = read.plate
                return self._finish(current, ts)
        return None

    def _safe_read(self, image: Image8) -> PlateRead | None:
        """The reader's plate, or None when it fails on this frame (the lane carries on)."""
        try:
            return self._read(image)
        except OcrUnavailable:
            raise  # no engine at all: nothing to carry on with
        except CameraError as exc:
            self.stats.errors += 1
            log.warning("plate reader failed on a frame (%d so far): %s", self.stats.errors, exc)
            return None

    def _recheck(self, current: _Pass, image: Image8, ts: float) -> PlateRead | None:
        """After the plate is out, read now and then: the next car may follow at once."""
        if ts - current.last_read < RECHECK_S:
            self.stats.gated += 1
            return None
        self.stats.reads += 1
        current.last_read = ts
        read = self._safe_read(image)
        if read is None or read.plate == current.plate:
            return None
        if read.confidence < self.settings.early_confidence:
            return None
        follower = self._pass = _Pass(started=ts, last_motion=ts, reads=[read], last_read=ts)
        if self.settings.early_votes <= 1:
            follower.emitted = True
            follower.plate = read.plate
            return self._finish(follower, ts)
        return None

    def flush(self, ts: float) -> PlateRead | None:
        """Close an open pass (end of a file, shutdown)."""
        current, self._pass = self._pass, None
        if current is None or current.emitted:
            return None
        return self._finish(current, ts)

    def _finish(self, current: _Pass, ts: float) -> PlateRead | None:
        result = vote(current.reads)
        if result is None or result.confidence < self.settings.min_confidence:
            if current.reads:
                self.stats.rejected += 1
                log.info("pass with %d reads gave no confident plate", len(current.reads))
            return None
        self._recent = {p: t for p, t in self._recent.items() if ts - t <= self.settings.repeat_s}
        if result.plate in self._recent:
            log.debug(
                "%s seen %.1f s ago; same vehicle", result.plate, ts - self._recent[result.plate]
            )
            self._recent[result.plate] = ts
            return None
        self._recent[result.plate] = ts
        self.stats.plates += 1
        return result
