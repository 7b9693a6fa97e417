"""Frame sources: files, folders, videos, and an OpenCV camera that disappears and comes back."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from mallnet.errors import FrameError
from mallnet.frames.config import CameraConfig, FileCamera, OpenCVCamera, Picamera2Camera
from mallnet.frames.sources import (
    FileSource,
    OpenCVSource,
    as_bgr,
    load_image,
    open_source,
)

CAMERA = TypeAdapter(CameraConfig)


class FakeClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _image(value: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    img = np.zeros((*size, 3), np.uint8)
    img[:, :, 0] = value
    img[: size[0] // 2, :, 2] = 255 - value
    return img


def _video(path: Path, frames: int, fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(_image(i * 30 % 256))
    writer.release()
    return path


def test_camera_config_picks_the_model_by_type() -> None:
    assert isinstance(CAMERA.validate_python({"type": "file", "path": "x.mp4"}), FileCamera)
    cam = CAMERA.validate_python({"type": "opencv", "device": "rtsp://cam/1"})
    assert isinstance(cam, OpenCVCamera)
    assert cam.device == "rtsp://cam/1"
    usb = CAMERA.validate_python({"type": "opencv", "device": 0})
    assert isinstance(usb, OpenCVCamera)
    assert usb.device == 0
    assert isinstance(CAMERA.validate_python({"type": "picamera2"}), Picamera2Camera)
    with pytest.raises(ValidationError):
        CAMERA.validate_python({"type": "webcam"})
    with pytest.raises(ValidationError):
        CAMERA.validate_python({"type": "file", "path": "x", "colour": "red"})
    with pytest.raises(ValidationError, match="reconnect_max_s"):
        CAMERA.validate_python(
            {"type": "opencv", "device": 0, "reconnect_min_s": 5, "reconnect_max_s": 1}
        )


def test_every_camera_field_is_described() -> None:
    for model in (FileCamera, OpenCVCamera, Picamera2Camera):
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"


def test_load_image_reads_png_and_reports_bad_files(tmp_path: Path) -> None:
    good = tmp_path / "a.png"
    cv2.imwrite(str(good), _image(100))
    img = load_image(good)
    assert img.shape == (48, 64, 3)
    assert img.dtype == np.uint8
    assert int(img[40, 10, 0]) == 100
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(good.read_bytes()[:40])
    for name, message in [
        ("empty.jpg", "is empty"),
        ("junk.jpg", "not a readable image"),
        ("cut.png", "not a readable image"),
        ("missing.png", "cannot read"),
    ]:
        with pytest.raises(FrameError, match=message):
            load_image(tmp_path / name)


def test_as_bgr_accepts_grey_and_bgra_and_refuses_floats() -> None:
    assert as_bgr(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert as_bgr(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)
    with pytest.raises(FrameError):
        as_bgr(np.zeros((4, 5, 3), np.float32))


def test_folder_source_yields_sorted_images_and_skips_corrupt_ones(tmp_path: Path) -> None:
    for i in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), _image(i * 50))
    (tmp_path / "f1b.jpg").write_bytes(b"broken")
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_source(FileCamera(type="file", path=tmp_path, fps=5))
    frames = list(source)
    assert [int(f.image[40, 0, 0]) for f in frames] == [0, 50, 100]
    assert [f.index for f in frames] == [0, 1, 2]
    assert [f.ts for f in frames] == [0.0, 0.2, 0.6]  # the broken file keeps its time slot
    health = source.health()
    assert health.frames == 3
    assert health.failures == 1
    assert health.last_error is not None and "f1b.jpg" in health.last_error
    assert source.read() is None and source.finished


def test_folder_source_loops_with_growing_timestamps(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "only.png"), _image(7))
    source = FileSource(FileCamera(type="file", path=tmp_path, fps=2, loop=True))
    stamps = [next(iter(source)).ts for _ in range(3)]
    assert stamps == [0.0, 0.5, 1.0]


def test_file_source_refuses_empty_folders_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FrameError, match="holds no images"):
        FileSource(FileCamera(type="file", path=tmp_path))
    with pytest.raises(FrameError, match="does not exist"):
        FileSource(FileCamera(type="file", path=tmp_path / "gone.mp4"))
    (tmp_path / "fake.avi").write_bytes(b"not a video")
    with pytest.raises(FrameError, match="not a readable video"):
        FileSource(FileCamera(type="file", path=tmp_path / "fake.avi"))


def test_video_source_reads_every_frame_with_media_time(tmp_path: Path) -> None:
    path = _video(tmp_path / "gate.avi", 6, fps=10)
    with open_source(FileCamera(type="file", path=path)) as source:
        frames = list(source)
    assert len(frames) == 6
    assert frames[0].image.shape == (48, 64, 3)
    stamps = [f.ts for f in frames]
    assert stamps == sorted(stamps)
    assert stamps[-1] == pytest.approx(0.5, abs=0.11)


def test_opencv_source_backs_off_until_the_camera_appears_then_reconnects(
    tmp_path: Path,
) -> None:
    """A real cv2.VideoCapture on a stream that is missing, appears, ends (is lost), and returns."""
    stream = tmp_path / "cam.avi"
    clock = FakeClock()
    config = OpenCVCamera(
        type="opencv",
        device=str(stream),
        reconnect_min_s=0.5,
        reconnect_max_s=2.0,
        read_failures=2,
    )
    source = OpenCVSource(config, clock=clock, sleep=clock.sleep)
    # Missing: failed opens, with the delay doubling to its ceiling; never a busy loop.
    for _ in range(7):
        assert source.read() is None
    health = source.health()
    assert not health.ok
    assert health.frames == 0
    assert health.failures == 4
    assert health.last_error is not None and "cannot open" in health.last_error
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert health.next_retry_s == pytest.approx(2.0)
    # The camera appears: the next due attempt opens it and frames flow.
    _video(stream, 3)
    assert source.read() is None  # sleeps out the remaining delay
    assert clock.sleeps[-1] == pytest.approx(2.0)
    frames = [f for f in (source.read() for _ in range(3)) if f is not None]
    assert len(frames) == 3
    assert source.health().ok
    assert frames[-1].ts == clock.now
    # The stream ends (the camera is unplugged): two failed reads mean lost.
    assert source.read() is None
    assert source.read() is None
    lost = source.health()
    assert not lost.ok
    assert lost.last_error is not None and "stopped delivering" in lost.last_error
    assert lost.next_retry_s == pytest.approx(0.5)  # a good frame reset the backoff
    # It comes back: counted as a reconnect in health.
    while source.read() is None:
        assert clock.now < 1100, "never reconnected"
    assert source.health().reconnects == 1
    assert source.health().ok
    source.close()
    assert source.read() is None


def test_opencv_source_sleeps_in_short_slices_when_asked(tmp_path: Path) -> None:
    clock = FakeClock()
    config = OpenCVCamera(type="opencv", device=str(tmp_path / "gone.avi"), reconnect_min_s=5)
    source = OpenCVSource(config, clock=clock, sleep=clock.sleep, max_sleep_s=0.2)
    for _ in range(4):
        assert source.read() is None
    assert clock.sleeps == [0.2, 0.2, 0.2]
    assert source.health().next_retry_s == pytest.approx(5 - 0.6)


@pytest.mark.camera
def test_real_camera_delivers_frames(request: pytest.FixtureRequest) -> None:
    """Opt-in: `pytest --camera 0` (OpenCV index or URL) or `--camera picamera2` on a Pi."""
    device = request.config.getoption("--camera")
    config: CameraConfig
    if device == "picamera2":
        config = Picamera2Camera(type="picamera2")
    else:
        config = OpenCVCamera(type="opencv", device=int(device) if device.isdigit() else device)
    with open_source(config) as source:
        frames = []
        for _ in range(200):
            frame = source.read()
            if frame is not None:
                frames.append(frame)
            if len(frames) == 3:
                break
    assert len(frames) == 3
    assert frames[0].image.ndim == 3 and frames[0].image.shape[2] == 3
    assert source.health().frames == 3
