"""Motion gating and vehicle passes: an idle gate never reads, a pass gives one plate."""

from __future__ import annotations

import numpy as np
import pytest

from edge_node.camera.config import PassSettings
from edge_node.camera.errors import CameraError, OcrUnavailable
from edge_node.camera.formats import formats_for
from edge_node.camera.gate import GateLane, MotionGate, MotionSettings, roi_pixels
from edge_node.camera.ocr import RapidOcrReader
from edge_node.camera.reader import PlateRead, read_frame
from edge_node.camera.synth import make_sample


def _idle(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frame = np.full((720, 1280, 3), 110, np.uint8)
    frame[430:] = 70
    for y in rng.integers(0, 720, 10):
        frame[int(y) : int(y) + 3] = rng.integers(30, 200)
    return frame


def _jitter(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = rng.integers(-3, 4, frame.shape, dtype=np.int16)
    out: np.ndarray = np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return out


def test_motion_gate_ignores_noise_and_sees_a_car():
    rng = np.random.default_rng(1)
    gate = MotionGate()
    idle = _idle()
    assert gate.update(idle) is False  # the first frame only sets the background
    assert not any(gate.update(_jitter(idle, rng)) for _ in range(20))
    car = make_sample(3, "US").image
    assert gate.update(car) is True
    assert gate.last_changed > 0.1


def test_motion_outside_the_roi_is_ignored():
    gate = MotionGate(MotionSettings(roi=(0.0, 0.0, 0.5, 0.5)))
    frame = _idle()
    gate.update(frame)
    changed = frame.copy()
    changed[400:, 700:] = 255  # bottom right: outside the ROI
    assert gate.update(changed) is False
    changed[:300, :500] = 0  # top left: inside
    assert gate.update(changed) is True


def test_a_car_that_stops_is_no_longer_motion():
    gate = MotionGate()
    gate.update(_idle())
    car = make_sample(4, "UA").image
    assert [gate.update(car) for _ in range(3)] == [True, False, False]


def test_roi_pixels_are_clipped():
    assert roi_pixels((720, 1280, 3), (0.25, 0.5, 0.5, 0.5)) == (320, 360, 640, 360)
    assert roi_pixels((100, 100), (0.9, 0.9, 0.5, 0.5)) == (90, 90, 10, 10)


def _fixed_reads(plates: list[str | None]):
    """The plate-reader seam fed from a list (one entry per frame it is called for)."""
    calls: list[str | None] = []

    def read(_image: np.ndarray) -> PlateRead | None:
        plate = plates[len(calls)] if len(calls) < len(plates) else None
        calls.append(plate)
        if plate is None:
            return None
        return PlateRead(plate, 0.95, (1, 2, 3, 4), "UA", "LLDDDDLL", plate)

    return read, calls


def _drive(lane: GateLane, frames: list[np.ndarray], start: float = 0.0, fps: float = 10.0):
    out = []
    for i, frame in enumerate(frames):
        result = lane.process(frame, start + i / fps)
        if result is not None:
            out.append((start + i / fps, result.plate))
    return out


def test_idle_frames_never_reach_the_reader():
    read, calls = _fixed_reads([])
    lane = GateLane(read)
    rng = np.random.default_rng(2)
    idle = _idle()
    assert _drive(lane, [_jitter(idle, rng) for _ in range(50)]) == []
    assert calls == []
    assert lane.stats.gated == 50
    assert lane.stats.reads == 0


def _plate_when(frame: np.ndarray, plate: str):
    """The plate-reader seam: ``plate`` for that very frame, nothing for any other."""
    calls: list[bool] = []

    def read(image: np.ndarray) -> PlateRead | None:
        calls.append(image is frame)
        if image is not frame:
            return None
        return PlateRead(plate, 0.95, (1, 2, 3, 4), "UA", "LLDDDDLL", plate)

    return read, calls


def test_one_plate_per_pass_early_when_reads_agree_and_no_repeat():
    idle, car = _idle(), make_sample(9, "UA").image
    read, calls = _plate_when(car, "AB1234CE")
    lane = GateLane(read, passes=PassSettings(hold_s=1.0, early_votes=3, repeat_s=60))
    frames = [idle] * 5 + [car] * 30 + [idle] * 20 + [car] * 30
    found = _drive(lane, frames)
    assert [plate for _, plate in found] == ["AB1234CE"]
    assert found[0][0] == pytest.approx(0.7)  # the 3rd agreeing read
    # Pass 1: 3 reads, then one recheck 0.5 s later, closed 1 s after the car stopped
    # (the 25 later frames of the parked car cost nothing). The car leaving: 11 reads
    # of empty road (motion, then 1 s hold). The car back within repeat_s: 3 reads and a
    # recheck, and no second report.
    assert calls.count(True) == 4 + 4
    assert calls.count(False) == 11
    assert lane.stats.reads == len(calls)
    assert lane.stats.plates == 1
    assert lane.stats.frames == len(frames)


def test_a_car_right_behind_the_last_one_is_read_too():
    idle = _idle()
    first = make_sample(9, "UA", plate="AB1234CE").image
    second = make_sample(10, "UA", plate="KA0001TT").image
    plates = {id(first): "AB1234CE", id(second): "KA0001TT"}

    def read(image: np.ndarray) -> PlateRead | None:
        plate = plates.get(id(image))
        return None if plate is None else PlateRead(plate, 0.95, (0, 0, 1, 1), "UA", "L", plate)

    lane = GateLane(read, passes=PassSettings(hold_s=1.0, early_votes=3))  # rechecks every 0.5 s
    # The second car pulls up while the first pass is still open (continuous motion).
    frames = [idle] * 2 + [first] * 4 + [second] * 12 + [idle] * 12
    assert [plate for _, plate in _drive(lane, frames)] == ["AB1234CE", "KA0001TT"]


def test_a_pass_without_agreement_is_voted_when_it_ends():
    read, _ = _fixed_reads(["AB1234CE", "AB1234CE"])
    lane = GateLane(read, passes=PassSettings(hold_s=0.5, early_votes=3))
    idle, car = _idle(), make_sample(9, "UA").image
    found = _drive(lane, [idle] * 3 + [car] * 10 + [idle] * 3)
    assert found == [(pytest.approx(0.9), "AB1234CE")]  # 0.6 s after the last motion
    assert lane.flush(10.0) is None


def test_a_frame_the_reader_fails_on_is_counted_and_the_pass_goes_on():
    """An OCR failure on one frame (the engine raising on odd input) never stops the gate."""
    idle, car = _idle(), make_sample(9, "UA").image
    good, _ = _plate_when(car, "AB1234CE")
    calls = 0

    def flaky(image: np.ndarray) -> PlateRead | None:
        nonlocal calls
        calls += 1
        if calls % 2:
            raise CameraError("OCR failed on a 3x1 crop")
        read: PlateRead | None = good(image)
        return read

    lane = GateLane(flaky, passes=PassSettings(hold_s=1.0, early_votes=3))
    found = _drive(lane, [idle] * 2 + [car] * 10 + [idle] * 15)
    assert [plate for _, plate in found] == ["AB1234CE"]
    assert lane.stats.errors == (calls + 1) // 2 >= 3 and lane.stats.plates == 1

    def gone(_image: np.ndarray) -> PlateRead | None:
        raise OcrUnavailable("rapidocr is not installed")

    with pytest.raises(OcrUnavailable):  # no engine at all is not a bad frame
        _drive(GateLane(gone), [idle, car])


def test_flush_closes_an_open_pass():
    read, _ = _fixed_reads(["KA0001TT"])
    lane = GateLane(read)
    _drive(lane, [_idle(), make_sample(1, "UA").image])
    result = lane.flush(1.0)
    assert result is not None and result.plate == "KA0001TT"


def test_a_whole_pass_with_the_real_reader():
    reader = RapidOcrReader()
    formats = formats_for(["US"])
    lane = GateLane(lambda image: read_frame(image, reader, formats))
    idle = _idle(3)
    passing = [make_sample(60 + i, "US", "clear", plate="7ABC123").image for i in range(3)]
    found = _drive(lane, [idle] * 3 + passing + [idle] * 12)
    assert [plate for _, plate in found] == ["7ABC123"]
    assert lane.stats.reads <= 3 + 11
