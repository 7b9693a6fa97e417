"""The plate reader with the real OCR engine on generated frames, and voting across a pass."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from edge_node.camera.config import ReaderSettings
from edge_node.camera.errors import OcrUnavailable
from edge_node.camera.formats import fold, formats_for
from edge_node.camera.ocr import DET_MODEL, REC_MODEL, RapidOcrReader, bundled_model_dir
from edge_node.camera.reader import PlateRead, read_frame, vote
from edge_node.camera.synth import CONDITIONS, STYLES, make_sample

FORMATS = formats_for(["EU", "US", "BR"])
SETTINGS = ReaderSettings()


@pytest.fixture(scope="module")
def reader() -> Iterator[RapidOcrReader]:
    yield RapidOcrReader()


OFFLINE_PROBE = """
import socket, sys

def refuse(*args, **kwargs):
    raise OSError(f"network access attempted: {args}")

socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

from edge_node.camera.formats import formats_for
from edge_node.camera.ocr import RapidOcrReader
from edge_node.camera.reader import read_frame
from edge_node.camera.synth import make_sample

reader = RapidOcrReader()
sample = make_sample(11, "UA")
assert reader.read_lines(sample.image), "the detector read nothing"
read = read_frame(sample.image, reader, formats_for(["UA"]))
sys.stdout.write(read.plate if read else "-")
"""


def test_models_ship_in_the_wheel_and_load_without_network():
    """In a separate process whose sockets refuse to connect (nothing else is disturbed)."""
    import subprocess
    import sys

    for name in (DET_MODEL, REC_MODEL):
        assert (bundled_model_dir() / name).stat().st_size > 1_000_000
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE_PROBE],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == make_sample(11, "UA").plate
    assert "network access attempted" not in result.stderr


def test_missing_models_are_reported_not_downloaded(tmp_path):
    with pytest.raises(OcrUnavailable, match="never downloaded"):
        RapidOcrReader(model_dir=tmp_path)


def test_reads_every_style_in_every_condition(reader):
    misses = []
    for i, condition in enumerate(CONDITIONS):
        for j, style in enumerate(STYLES[i % 2 :: 2]):  # 2-3 styles per condition, all covered
            sample = make_sample(500 + 10 * i + j, style, condition)
            read = read_frame(sample.image, reader, FORMATS, SETTINGS)
            if read is None or read.plate != sample.plate:
                misses.append((style, condition, sample.plate, read))
            else:
                assert read.confidence >= SETTINGS.min_confidence
                x, y, w, h = read.box
                sx, sy, sw, sh = sample.box
                assert x < sx + sw and sx < x + w and y < sy + sh and sy < y + h
    assert len(misses) <= 1, misses


def test_an_unsure_first_look_escalates_to_a_larger_detector_input(reader):
    """A distant plate is invisible to a tiny first detector input; escalation reads it."""
    sample = make_sample(77, "BR", "far")
    tiny = ReaderSettings(det_side=160, crop_side=0, fallback=False)
    assert read_frame(sample.image, reader, FORMATS, tiny) is None
    escalating = ReaderSettings(det_side=160, crop_side=0, det_side_max=1280)
    read = read_frame(sample.image, reader, FORMATS, escalating)
    assert read is not None and read.plate == sample.plate


def test_a_frame_without_a_plate_gives_nothing(reader):
    empty = np.full((480, 640, 3), 90, np.uint8)
    assert read_frame(empty, reader, FORMATS, SETTINGS) is None


def test_a_plate_of_another_country_is_not_forced_into_the_gates_formats(reader):
    """Formats rank reads, never filter them: a BR plate at a UA gate is read as it is,
    with no country, and less sure than a plate that fits (issue 16)."""
    sample = make_sample(5, "BR", "clear", plate="ABC1D23")
    ua_only = formats_for(["UA"])
    foreign = read_frame(sample.image, reader, ua_only, SETTINGS)
    assert foreign is not None and foreign.plate == "ABC1D23" and foreign.country is None
    home = read_frame(sample.image, reader, formats_for(["BR"]), SETTINGS)
    assert home is not None and home.plate == "ABC1D23" and home.country == "BR"
    assert home.confidence > foreign.confidence


def _read(plate: str, confidence: float, country: str = "UA") -> PlateRead:
    layout = "LLDDDDLL" if country == "UA" else "LLLDLDD"
    return PlateRead(plate, confidence, (0, 0, 10, 5), country, layout, plate)


def test_vote_picks_the_plate_with_most_confidence_behind_it():
    reads = [_read("AB1234CE", 0.9), _read("AB1234CE", 0.8), _read("AB1284CE", 0.95)]
    result = vote(reads)
    assert result is not None and result.plate == "AB1234CE"
    assert 0 < result.confidence < 0.9


def test_vote_repairs_characters_across_frames():
    # Every frame has one wrong character, each in a different place.
    reads = [_read("AB7234CE", 0.9), _read("AB1294CE", 0.9), _read("AB1234CX", 0.9)]
    result = vote(reads)
    assert result is not None and result.plate == "AB1234CE"
    assert result.confidence > 0.7
    three_to_one = vote([_read("AB1234CE", 0.9)] * 3 + [_read("KA0000TT", 0.9)])
    assert three_to_one is not None and three_to_one.plate == "AB1234CE"
    assert three_to_one.confidence > 0.6


def test_vote_confidence_falls_with_disagreement():
    agree = vote([_read("AB1234CE", 0.9)] * 4)
    split = vote([_read("AB1234CE", 0.9)] * 2 + [_read("KA0000TT", 0.9)] * 2)
    assert agree is not None and split is not None
    assert agree.confidence == pytest.approx(0.9)
    assert split.confidence <= 0.5 * agree.confidence


def test_vote_of_nothing_is_nothing():
    assert vote([]) is None
    assert vote([_read("AB1234CE", 0.9)], min_reads=2) is None


def test_fold_counts_confusables_as_equal():
    assert fold("IO5626OI") == fold("10562601")


def _top_edge_spread(patch: np.ndarray) -> float:
    white = patch.min(axis=2) > 200
    w = white.shape[1]
    middle = white[:, w // 4 : 3 * w // 4]
    first = middle.argmax(axis=0)  # first white row in each column
    return float(first.max() - first.min())


@pytest.mark.parametrize("degrees", [-10, 10])
def test_a_tilted_plate_is_levelled_before_reading(reader, degrees):
    import cv2

    from edge_node.camera.localize import crop, find_candidates, levelled_crop
    from edge_node.camera.synth import render_plate

    plate = render_plate("AB1234CE", "UA", scale=2)
    canvas = np.full((480, 640, 3), 90, np.uint8)
    h, w = plate.shape[:2]
    canvas[200 : 200 + h, 200 : 200 + w] = plate
    turn = cv2.getRotationMatrix2D((200 + w / 2, 200 + h / 2), degrees, 1.0)
    tilted = np.asarray(
        cv2.warpAffine(canvas, turn, (640, 480), borderValue=(90, 90, 90)), dtype=np.uint8
    )
    (best, *_) = find_candidates(tilted)
    assert best.angle == pytest.approx(-degrees, abs=2)
    level = levelled_crop(tilted, best)
    # Levelled: the plate's top edge is one row across the middle of the crop.
    assert _top_edge_spread(level) <= 3
    assert _top_edge_spread(crop(tilted, best.box)) > 10  # as cut straight, it slopes
    read = read_frame(tilted, reader, FORMATS, SETTINGS)
    assert read is not None and read.plate == "AB1234CE"
