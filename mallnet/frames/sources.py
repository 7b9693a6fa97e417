"""Frame sources behind one seam: files, OpenCV (USB, RTSP) and picamera2.

A ``FrameSource`` hands out ``Frame`` objects (a BGR ``uint8`` array and a
timestamp in seconds) and reports its ``health``. Consumers (the parking
gate, the kiosk's scanner) take frames, never a camera handle, so they run
the same on a Pi camera, a USB webcam, an RTSP stream or a folder of JPEGs.

Device modules are imported lazily: ``picamera2`` only when a Pi camera is
opened, ``cv2`` only when a source needs it.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, cast

import numpy as np
import numpy.typing as npt

from mallnet.errors import FrameError
from mallnet.frames.config import CameraConfig, FileCamera, OpenCVCamera, Picamera2Camera

log = logging.getLogger(__name__)

Image8 = npt.NDArray[np.uint8]
Clock = Callable[[], float]
Sleep = Callable[[float], None]
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


@dataclass(frozen=True)
class Frame:
    """One image from a source. ``image`` is BGR ``uint8`` (H × W × 3)."""

    image: Image8
    ts: float  # seconds: the source clock for live cameras, media time for files
    index: int  # 0, 1, 2 … per source


@dataclass(frozen=True)
class SourceHealth:
    """What a source reports for the node's health message."""

    ok: bool  # delivering frames now
    frames: int  # frames delivered so far
    reconnects: int  # times the camera was reopened after a loss
    failures: int  # failed opens and reads, and unreadable files
    last_error: str | None
    next_retry_s: float | None  # seconds until the next reopen attempt, while lost


def as_bgr(image: npt.NDArray[Any]) -> Image8:
    """Grey, BGRA or BGR input as a contiguous BGR ``uint8`` array."""
    import cv2

    if image.dtype != np.uint8:
        raise FrameError(f"frames must be uint8, got {image.dtype}")
    if image.ndim == 2:
        return cast(Image8, cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    if image.ndim == 3 and image.shape[2] == 4:
        return cast(Image8, cv2.cvtColor(image, cv2.COLOR_BGRA2BGR))
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    raise FrameError(f"unsupported frame shape {image.shape}")


def load_image(path: Path | str) -> Image8:
    """Read an image file as BGR; ``FrameError`` if it is missing, empty or corrupt."""
    import cv2

    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise FrameError(f"cannot read {path}: {exc.strerror or exc}") from None
    if data.size == 0:
        raise FrameError(f"{path} is empty")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise FrameError(f"{path} is not a readable image (corrupt or unsupported format)")
    return as_bgr(image)


class FrameSource(ABC):
    """A stream of frames. ``read`` returns None when no frame is available now;
    ``finished`` becomes true when the stream has ended for good (end of a file)."""

    finished: bool = False

    @abstractmethod
    def read(self) -> Frame | None:
        """The next frame, or None (check ``finished`` to tell a pause from the end)."""

    @abstractmethod
    def health(self) -> SourceHealth:
        """Current state for health reports."""

    def close(self) -> None:  # noqa: B027 - most sources have nothing to release
        """Release the device or file."""

    def __iter__(self) -> Iterator[Frame]:
        while not self.finished:
            frame = self.read()
            if frame is not None:
                yield frame

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` the sources use (a seam for other backends)."""

    def isOpened(self) -> bool: ...
    def read(self) -> tuple[bool, Any]: ...
    def release(self) -> None: ...
    def set(self, prop: int, value: float) -> bool: ...
    def get(self, prop: int) -> float: ...


def _cv2_capture(device: int | str, timeout_s: float | None = None) -> Capture:
    import cv2

    if timeout_s is None:
        capture: Capture = cv2.VideoCapture(device)
        return capture
    ms = int(timeout_s * 1000)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
    capture = cv2.VideoCapture(device, cv2.CAP_ANY, params)
    return capture


class FileSource(FrameSource):
    """Frames from a folder of images (sorted by name), one image, or a video file."""

    def __init__(self, config: FileCamera, capture_factory: Callable[[str], Capture] | None = None):
        self._config = config
        self._factory = capture_factory or _cv2_capture
        self._images: list[Path] | None = None
        self._capture: Capture | None = None
        self._position = 0
        self._frames = 0
        self._failures = 0
        self._last_error: str | None = None
        self._time_offset = 0.0
        path = config.path
        if path.is_dir():
            self._images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._images:
                raise FrameError(f"{path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            if not path.is_file():
                raise FrameError(f"{path} does not exist")
            self._images = [path]
        else:
            self._open_video()

    def _open_video(self) -> None:
        if not self._config.path.is_file():
            raise FrameError(f"{self._config.path} does not exist")
        capture = self._factory(str(self._config.path))
        if not capture.isOpened():
            raise FrameError(f"{self._config.path} is not a readable video")
        self._capture = capture

    def read(self) -> Frame | None:
        if self.finished:
            return None
        if self._images is not None:
            return self._read_image()
        return self._read_video()

    def _read_image(self) -> Frame | None:
        assert self._images is not None
        if self._position >= len(self._images):
            if not self._config.loop:
                self.finished = True
                return None
            self._time_offset += len(self._images) / self._config.fps
            self._position = 0
        path = self._images[self._position]
        index = self._position
        self._position += 1
        try:
            image = load_image(path)
        except FrameError as exc:
            self._failures += 1
            self._last_error = str(exc)
            log.warning("skipping %s", exc)
            if self._failures >= len(self._images) and self._frames == 0:
                self.finished = True
            return None
        frame = Frame(image, self._time_offset + index / self._config.fps, self._frames)
        self._frames += 1
        return frame

    def _read_video(self) -> Frame | None:
        import cv2

        assert self._capture is not None
        ok, image = self._capture.read()
        if not ok or image is None:
            if self._config.loop and self._frames > 0:
                self._capture.release()
                self._time_offset += self._position / self._config.fps
                self._position = 0
                self._open_video()
                return None
            self.finished = True
            return None
        msec = self._capture.get(cv2.CAP_PROP_POS_MSEC)
        fps = self._capture.get(cv2.CAP_PROP_FPS) or self._config.fps
        ts = msec / 1000 if msec > 0 else self._position / fps
        self._position += 1
        frame = Frame(as_bgr(image), self._time_offset + ts, self._frames)
        self._frames += 1
        return frame

    def health(self) -> SourceHealth:
        return SourceHealth(
            ok=not self.finished or self._frames > 0,
            frames=self._frames,
            reconnects=0,
            failures=self._failures,
            last_error=self._last_error,
            next_retry_s=None,
        )

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        self.finished = True


class OpenCVSource(FrameSource):
    """A USB camera or network stream; reopened with doubling backoff when it disappears.

    ``read`` never raises for a lost camera: it returns None, counts the
    failure, and after ``read_failures`` failed reads in a row closes the
    capture and retries opening it after ``reconnect_min_s``, doubling up to
    ``reconnect_max_s``. While waiting it sleeps (``sleep``, injectable) for
    at most the remaining delay — and at most ``max_sleep_s`` per call, so a
    loop that also publishes and sends heartbeats keeps turning — and a loop
    around ``read`` does not spin.
    """

    def __init__(
        self,
        config: OpenCVCamera,
        capture_factory: Callable[[int | str], Capture] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        max_sleep_s: float | None = None,
    ) -> None:
        self._config = config
        self._max_sleep = max_sleep_s
        self._factory = capture_factory or (lambda d: _cv2_capture(d, config.timeout_s))
        self._clock = clock
        self._sleep = sleep
        self._capture: Capture | None = None
        self._delay = config.reconnect_min_s
        self._next_attempt = clock()
        self._ever_opened = False
        self._bad_reads = 0
        self._frames = 0
        self._failures = 0
        self._reconnects = 0
        self._last_error: str | None = None

    def _try_open(self) -> bool:
        import cv2

        capture = self._factory(self._config.device)
        if not capture.isOpened():
            capture.release()
            self._fail(f"cannot open camera {self._config.device!r}")
            return False
        for prop, value in (
            (cv2.CAP_PROP_FRAME_WIDTH, self._config.width),
            (cv2.CAP_PROP_FRAME_HEIGHT, self._config.height),
            (cv2.CAP_PROP_FPS, self._config.fps),
        ):
            if value is not None:
                capture.set(prop, float(value))
        if self._ever_opened:
            self._reconnects += 1
            log.info("camera %r reopened (reconnect %d)", self._config.device, self._reconnects)
        self._ever_opened = True
        self._capture = capture
        self._bad_reads = 0
        return True

    def _fail(self, message: str) -> None:
        self._failures += 1
        self._last_error = message
        self._next_attempt = self._clock() + self._delay
        log.warning("%s; retrying in %.1f s", message, self._delay)
        self._delay = min(self._delay * 2, self._config.reconnect_max_s)

    def read(self) -> Frame | None:
        if self.finished:
            return None
        if self._capture is None:
            wait = self._next_attempt - self._clock()
            if wait > 0:
                self._sleep(wait if self._max_sleep is None else min(wait, self._max_sleep))
                return None
            if not self._try_open():
                return None
        assert self._capture is not None
        ok, image = self._capture.read()
        if not ok or image is None:
            self._bad_reads += 1
            if self._bad_reads >= self._config.read_failures:
                self._capture.release()
                self._capture = None
                self._fail(f"camera {self._config.device!r} stopped delivering frames")
            return None
        self._bad_reads = 0
        self._delay = self._config.reconnect_min_s
        self._last_error = None
        frame = Frame(as_bgr(image), self._clock(), self._frames)
        self._frames += 1
        return frame

    def health(self) -> SourceHealth:
        lost = self._capture is None
        return SourceHealth(
            ok=not lost and self._bad_reads == 0 and not self.finished,
            frames=self._frames,
            reconnects=self._reconnects,
            failures=self._failures,
            last_error=self._last_error,
            next_retry_s=max(0.0, self._next_attempt - self._clock()) if lost else None,
        )

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        self.finished = True


class Picamera2Source(FrameSource):  # pragma: no cover - needs a Pi (tests: --camera)
    """A Raspberry Pi camera module. ``picamera2`` is imported here, only on a Pi."""

    def __init__(self, config: Picamera2Camera, clock: Clock = time.monotonic) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise FrameError(f"picamera2 is not available here: {exc}") from exc
        self._clock = clock
        self._frames = 0
        self._failures = 0
        self._last_error: str | None = None
        try:
            self._camera = Picamera2(config.camera_index)
            # "RGB888" is laid out B, G, R in memory: OpenCV's order.
            video = self._camera.create_video_configuration(
                main={"size": (config.width, config.height), "format": "RGB888"}
            )
            self._camera.configure(video)
            self._camera.start()
        except Exception as exc:  # libcamera raises RuntimeError and friends
            raise FrameError(f"cannot start Pi camera {config.camera_index}: {exc}") from exc

    def read(self) -> Frame | None:
        try:
            image = self._camera.capture_array("main")
        except Exception as exc:
            self._failures += 1
            self._last_error = f"capture failed: {exc}"
            log.warning("%s", self._last_error)
            return None
        frame = Frame(as_bgr(image), self._clock(), self._frames)
        self._frames += 1
        return frame

    def health(self) -> SourceHealth:
        return SourceHealth(
            ok=self._last_error is None,
            frames=self._frames,
            reconnects=0,
            failures=self._failures,
            last_error=self._last_error,
            next_retry_s=None,
        )

    def close(self) -> None:
        self._camera.stop()
        self._camera.close()
        self.finished = True


def open_source(
    config: CameraConfig,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    max_sleep_s: float | None = None,
) -> FrameSource:
    """The composition root's one call: a source for any camera config."""
    if isinstance(config, FileCamera):
        return FileSource(config)
    if isinstance(config, OpenCVCamera):
        return OpenCVSource(config, clock=clock, sleep=sleep, max_sleep_s=max_sleep_s)
    return Picamera2Source(config, clock=clock)
