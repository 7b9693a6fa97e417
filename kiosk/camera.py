"""The camera thread: frames from a shared ``FrameSource`` to pyzbar, debounced, off the UI thread.

``Debouncer`` is pure (a code seen again within ``debounce_s`` of its last
sighting is dropped, so a receipt held in front of the camera is read once);
``ScanThread`` reads frames (picamera2, OpenCV or a file: ``mallnet.frames``),
converts them to grey, decodes QR codes only, and hands each new code to
``on_code`` — the composition root points that at the UI thread
(``Clock.schedule_once``), so decoding never blocks the screen. Decoding is
capped at ``max_fps``; the thread counts frames and decode time for the bench
and for health.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import cast

from mallnet.errors import FrameError
from mallnet.frames.sources import FrameSource, Image8

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class Debouncer:
    """Lets a code through once; again only after ``debounce_s`` without seeing it."""

    def __init__(self, debounce_s: float, clock: Clock) -> None:
        self._debounce_s = debounce_s
        self._clock = clock
        self._last_seen: dict[str, float] = {}

    def accept(self, code: str) -> bool:
        now = self._clock()
        last = self._last_seen.get(code)
        self._last_seen[code] = now  # holding it in view keeps it quiet
        if len(self._last_seen) > 256:  # bound memory: forget codes not seen for a while
            cutoff = now - self._debounce_s
            self._last_seen = {k: t for k, t in self._last_seen.items() if t >= cutoff}
        return last is None or now - last >= self._debounce_s


class ScanThread:
    """Reads frames and reports new QR codes until stopped or the source ends."""

    def __init__(
        self,
        source: FrameSource,
        on_code: Callable[[str], None],
        *,
        debounce_s: float = 5.0,
        max_fps: float = 10.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._source = source
        self._on_code = on_code
        self._debouncer = Debouncer(debounce_s, clock)
        self._min_interval = 1.0 / max_fps
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.frames = 0
        self.codes = 0
        self.decode_s = 0.0
        self.finished = threading.Event()
        self.progress_at = time.monotonic()  # the last frame (the systemd watchdog's check)

    def problem(self, stall_s: float) -> str | None:
        """Why scanning is broken (the thread died, the camera delivers nothing), or None."""
        if self.finished.is_set():
            return None if self._source.finished else "the camera thread stopped"
        age = time.monotonic() - self.progress_at
        return f"the camera delivered no frame for {age:.0f} s" if age > stall_s else None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kiosk-camera", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._source.close()

    def _run(self) -> None:
        import cv2

        from kiosk.scanner import scan_qr

        try:
            while not self._stop.is_set() and not self._source.finished:
                started = self._clock()
                try:
                    frame = self._source.read()
                except FrameError as exc:
                    log.warning("camera: %s", exc)
                    frame = None
                if frame is None:
                    self._stop.wait(0.01)
                    continue
                self.progress_at = time.monotonic()
                gray = cast(Image8, cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY))
                before = self._clock()
                texts = scan_qr(gray)
                self.decode_s += self._clock() - before
                self.frames += 1
                for text in texts:
                    if self._debouncer.accept(text):
                        self.codes += 1
                        self._on_code(text)
                spare = self._min_interval - (self._clock() - started)
                if spare > 0:
                    self._stop.wait(spare)
        except Exception:  # a bug here must not take the screen down; say so loudly
            log.exception("the camera thread failed; scanning stopped")
        finally:
            self.finished.set()
