"""Plate localisation with image morphology, on generated gate frames."""

from __future__ import annotations

import numpy as np
import pytest

from edge_node.camera.localize import crop, find_candidates, iou
from edge_node.camera.synth import CONDITIONS, STYLES, make_sample


@pytest.mark.parametrize("condition", CONDITIONS)
def test_the_plate_is_among_the_first_candidates_in_every_condition(condition):
    for i, style in enumerate(STYLES):
        sample = make_sample(7_000 + i, style, condition)
        candidates = find_candidates(sample.image)
        overlaps = [iou(c.box, sample.box) for c in candidates]
        assert max(overlaps, default=0) > 0.3, (style, condition, sample.box, candidates)


def test_blank_and_flat_frames_give_no_candidates():
    assert find_candidates(np.zeros((720, 1280, 3), np.uint8)) == []
    assert find_candidates(np.full((480, 640), 200, np.uint8)) == []


def test_candidates_are_ranked_and_bounded():
    sample = make_sample(42, "US", "clear")
    candidates = find_candidates(sample.image)
    assert 1 <= len(candidates) <= 3
    scores = [c.score for c in candidates]
    assert scores == sorted(scores, reverse=True)


def test_crop_pads_and_clips_to_the_frame():
    image = np.zeros((100, 200, 3), np.uint8)
    assert crop(image, (10, 10, 50, 20)).shape == (30, 58, 3)
    assert crop(image, (180, 90, 50, 20)).shape == (15, 24, 3)


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(1 / 3)
