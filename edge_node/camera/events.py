"""Plate reads → parking events in the outbox; plate crops kept locally for a while.

A voted ``PlateRead`` becomes a v1 ``ParkingEvent`` (entry or exit, gate,
plate, confidence, country) written to the node's durable outbox, the same
outbox and receipts as presence events. The plate crop never goes on the
wire: ``CropStore`` keeps it on the node's disk, named by the event id (so a
dispute about an event can be settled at the gate), and deletes it after the
configured retention.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge_node.camera.errors import CameraError
from edge_node.camera.localize import crop
from edge_node.camera.reader import PlateRead
from edge_node.outbox import Outbox, Stored
from mallnet.wire.payloads import ParkingEvent
from mallnet.wire.topics import PARKING

log = logging.getLogger(__name__)

Image8 = npt.NDArray[np.uint8]


class CropStore:
    """Plate crops as ``<unix time>-<event id>.jpg`` files, pruned after ``retention_s``."""

    def __init__(self, folder: Path, retention_s: float) -> None:
        self.folder = folder
        self.retention_s = retention_s
        if retention_s > 0:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CameraError(f"cannot create crop folder {folder}: {exc.strerror}") from exc

    def save(self, event_id: str, image: Image8, now: float) -> Path | None:
        if self.retention_s <= 0 or image.size == 0:
            return None
        path = self.folder / f"{int(now)}-{event_id}.jpg"
        if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90]):
            log.warning("could not write plate crop %s", path)
            return None
        return path

    def prune(self, now: float) -> int:
        """Delete crops older than the retention; returns how many."""
        removed = 0
        if not self.folder.is_dir():
            return 0
        for path in self.folder.glob("*-*.jpg"):
            stamp = path.name.split("-", 1)[0]
            if stamp.isdigit() and now - int(stamp) > self.retention_s:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def find(self, event_id: str) -> Path | None:
        return next(iter(self.folder.glob(f"*-{event_id}.jpg")), None)


class ParkingRecorder:
    """Writes parking events for voted reads; keeps their crops."""

    def __init__(self, outbox: Outbox, crops: CropStore | None, wall: Callable[[], float]) -> None:
        self.outbox = outbox
        self.crops = crops
        self.wall = wall
        self.events = 0

    def record(self, gate: str, direction: str, read: PlateRead, frame: Image8 | None) -> Stored:
        now = self.wall()
        ts = datetime.fromtimestamp(now, UTC)

        def build(event_id: str, seq: int) -> str:
            return ParkingEvent(
                id=event_id,
                seq=seq,
                ts=ts,
                kind="entry" if direction == "entry" else "exit",
                gate=gate,
                plate=read.plate,
                confidence=read.confidence,
                country=read.country,
            ).model_dump_json(exclude_none=True)

        stored = self.outbox.append(PARKING.leaf, build, now)
        self.events += 1
        # Plates are personal data: only debug logs name them.
        log.info(
            "%s at %s (confidence %.2f) → event %s", direction, gate, read.confidence, stored.id
        )
        log.debug("event %s is plate %s", stored.id, read.plate)
        if self.crops is not None and frame is not None:
            self.crops.save(stored.id, crop(frame, read.box, 0.1, 0.3), now)
        return stored
