"""Reading the plate of one frame, and one confident plate from the frames of a pass.

``read_frame`` runs in stages, each measured on real photographs
(``bench/anpr.py``, docs/parking.md "Reading a plate"):

1. **Detect** text lines with the OCR engine's detector at a small input
   (``det_side``, 640 px on the longer side by default).
2. **Recognise** the tallest lines from crops cut out of the *full-resolution*
   frame (never from the shrunken detector input), in one batch.
3. **Group** boxes into candidates: each line alone, neighbours on one row
   (``TN`` ``02`` ``BL``), and two stacked rows of one plate (``KA-09 MA`` over
   ``2662``).
4. **Rank** every candidate (``ranking.score_text``: scene text and plate furniture
   refused, formats as a preference, look-alike fixes at a cost) times its height
   against the tallest text in view: a state name or slogan is smaller than the
   registration.
5. **Escalate** only when unsure: if the best score is below ``accept``, detect
   again at ``det_side_max`` (small, distant plates) and keep the better read.
6. **Abstain** below ``min_confidence``: "unknown car" rather than a wrong one.

``vote`` turns the reads of one vehicle pass into one: the plate with the most
confidence behind it, refined character by character among reads of the same
layout.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

from edge_node.camera.config import ReaderSettings
from edge_node.camera.formats import PlateFormat
from edge_node.camera.localize import Box, LocalizerSettings
from edge_node.camera.ocr import Quad, TextReader
from edge_node.camera.ranking import Scored, score_text

log = logging.getLogger(__name__)

Image8 = npt.NDArray[np.uint8]
ROW_JOIN = 0.97  # a candidate joined from boxes on one row
STACK_JOIN = 0.9  # a candidate joined from two stacked rows
HEIGHT_POWER = 0.5  # how much a line shorter than the tallest text costs
MIN_LINE_PX = 8  # lines shorter than this (in frame pixels) are not read
SURE = 0.9  # a read this sure skips the second look in its plate crop
DEFAULT_SETTINGS = ReaderSettings()
DEFAULT_LOCALIZER = LocalizerSettings()


@dataclass(frozen=True)
class PlateRead:
    """One frame's (or one pass's) best plate."""

    plate: str
    confidence: float
    box: Box
    country: str | None  # the gate format it fits; None when it fits none
    layout: str  # the plate's classes, e.g. "LLDDDDLL"
    raw: str  # what the OCR engine said
    fixes: int = 0


@dataclass(frozen=True)
class Line:
    """One detected, recognised text line."""

    text: str
    score: float
    box: Box  # axis-aligned, frame pixels
    height: float  # the quad's own height (tilt-independent)


def _quad_size(quad: Quad) -> tuple[float, float]:
    top = float(np.linalg.norm(quad[1] - quad[0]))
    bottom = float(np.linalg.norm(quad[2] - quad[3]))
    left = float(np.linalg.norm(quad[3] - quad[0]))
    right = float(np.linalg.norm(quad[2] - quad[1]))
    return max(top, bottom), max(left, right)


def line_crop(image: Image8, quad: Quad, pad: float = 0.12) -> Image8:
    """The quad's text, warped level, from the full-resolution frame, with a small margin."""
    w, h = _quad_size(quad)
    centre = quad.mean(axis=0)
    grown = centre + (quad - centre) * np.array([1 + pad * h / max(w, 1.0), 1 + pad], np.float32)
    out_w, out_h = max(8, round(w * (1 + pad * h / max(w, 1.0)))), max(8, round(h * (1 + pad)))
    target = np.array([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]], np.float32)
    matrix = cv2.getPerspectiveTransform(grown.astype(np.float32), target)
    warped = cv2.warpPerspective(
        image, matrix, (out_w, out_h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    return cast(Image8, warped)


def _box(quad: Quad) -> Box:
    x0, y0 = quad.min(axis=0)
    x1, y1 = quad.max(axis=0)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def _union(boxes: Sequence[Box]) -> Box:
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return x0, y0, x1 - x0, y1 - y0


def detect_lines(image: Image8, reader: TextReader, det_side: int, max_lines: int) -> list[Line]:
    """Stages 1–2: the tallest text lines of ``image``, read from full-resolution crops."""
    quads = []
    for quad in reader.detect(image, det_side):
        w, h = _quad_size(quad)
        if h >= MIN_LINE_PX and w >= 0.6 * h:
            quads.append((h, w, quad))
    quads.sort(key=lambda q: q[0], reverse=True)
    kept = quads[:max_lines]
    texts = reader.recognise([line_crop(image, quad) for _, _, quad in kept])
    return [
        Line(text, score, _box(quad), h)
        for (h, _, quad), (text, score) in zip(kept, texts, strict=True)
    ]


def _same_row(a: Line, b: Line) -> bool:
    ay, by = a.box[1] + a.box[3] / 2, b.box[1] + b.box[3] / 2
    small, big = sorted((a.height, b.height))
    return abs(ay - by) <= 0.5 * big and small >= 0.6 * big


def _groups(lines: Sequence[Line]) -> list[tuple[list[Line], float]]:
    """Stage 3: candidates as lists of lines (in reading order) with the cost of joining them."""
    groups: list[tuple[list[Line], float]] = [([ln], 1.0) for ln in lines]
    # Rows: chains of boxes left to right with gaps under 1.5 box heights.
    by_x = sorted(lines, key=lambda ln: ln.box[0])
    for i, first in enumerate(by_x):
        row = [first]
        for nxt in by_x[i + 1 :]:
            last = row[-1]
            gap = nxt.box[0] - (last.box[0] + last.box[2])
            if _same_row(last, nxt) and -0.3 * last.height <= gap <= 1.5 * max(
                last.height, nxt.height
            ):
                row.append(nxt)
                groups.append((list(row), ROW_JOIN))
    # Stacks: a line directly above another, overlapping it sideways (two-row plates). Centres,
    # not box edges: a tilted plate's axis-aligned boxes overlap.
    for top in lines:
        for bottom in lines:
            if top is bottom:
                continue
            tx, ty, tw, th = top.box
            bx, by, bw, bh = bottom.box
            rise = (by + bh / 2) - (ty + th / 2)
            overlap = min(tx + tw, bx + bw) - max(tx, bx)
            if (
                0.5 * max(top.height, bottom.height) <= rise <= 1.8 * max(top.height, bottom.height)
                and overlap >= 0.3 * min(tw, bw)
                and 0.3 <= top.height / bottom.height <= 1.6
            ):
                groups.append(([top, bottom], STACK_JOIN))
    return groups


def rank_lines(
    lines: Sequence[Line], formats: Sequence[PlateFormat], settings: ReaderSettings
) -> PlateRead | None:
    """Stage 4: the best-scoring candidate among ``lines``, whatever its score."""
    if not lines:
        return None
    tallest = max(ln.height for ln in lines)
    best: tuple[float, Scored, list[Line]] | None = None
    for group, join in _groups(lines):
        raw = " ".join(ln.text for ln in group)
        scored = score_text(raw, min(ln.score for ln in group), formats, settings.max_fixes)
        if scored is None:
            continue
        height = max(ln.height for ln in group)
        score = scored.score * join * (height / tallest) ** HEIGHT_POWER
        log.debug("candidate %r → %s (%.3f)", raw, scored.plate, score)
        if best is None or score > best[0]:
            best = (score, scored, group)
    if best is None:
        return None
    score, scored, group = best
    return PlateRead(
        plate=scored.plate,
        confidence=round(max(0.0, min(1.0, score)), 4),
        box=_union([ln.box for ln in group]),
        country=scored.country,
        layout=scored.layout,
        raw=" ".join(ln.text for ln in group),
        fixes=scored.fixes,
    )


def reread_plate(
    image: Image8,
    first: PlateRead,
    reader: TextReader,
    formats: Sequence[PlateFormat],
    settings: ReaderSettings,
) -> PlateRead:
    """Stage 5: look again inside the plate's own crop, at a detector input of its own.

    The crop reaches a line height around the read (a second row above or below, the
    characters a frame-wide detection missed at the ends), is detected at
    ``settings.crop_side`` (upscaled: small text gets large) and its lines ranked on their
    own, so a state name or slogan is measured against this plate's registration, not the
    frame's largest text. The crop's read replaces the first when it is surer, or when it
    holds the first read and more (the characters the first look dropped).
    """
    x, y, w, h = first.box
    line_h = max(8, min(h, w))
    ih, iw = image.shape[:2]
    x0, y0 = max(0, x - line_h), max(0, y - line_h)
    x1, y1 = min(iw, x + w + line_h), min(ih, y + h + line_h)
    crop = image[y0:y1, x0:x1]
    if crop.size == 0:
        return first
    lines = detect_lines(crop, reader, settings.crop_side, settings.max_lines)
    again = rank_lines(lines, formats, settings)
    if again is None:
        return first
    gx, gy, gw, gh = again.box
    again = PlateRead(
        again.plate,
        again.confidence,
        (gx + x0, gy + y0, gw, gh),
        again.country,
        again.layout,
        again.raw,
        again.fixes,
    )
    if _overlap(again.box, first.box) < 0.5 or (
        len(again.plate) < len(first.plate) and again.plate in first.plate
    ):
        return first  # other text in the crop, or a part of what was read
    longer = len(again.plate) > len(first.plate) and first.plate in again.plate
    if longer and again.confidence >= settings.min_confidence:
        return again
    return again if again.confidence > first.confidence else first


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    smaller = min(a[2] * a[3], b[2] * b[3])
    return ix * iy / smaller if smaller else 0.0


def read_frame(
    image: Image8,
    reader: TextReader,
    formats: Sequence[PlateFormat],
    settings: ReaderSettings = DEFAULT_SETTINGS,
    *,
    localizer: LocalizerSettings = DEFAULT_LOCALIZER,
) -> PlateRead | None:
    """The most plate-like read of ``image`` (BGR), or None when none is sure enough.

    ``formats`` rank candidates (earlier ones win ties); a read that fits none of
    them can still be returned (``country`` None). ``localizer`` is accepted for
    callers of the older morphology-first reader and no longer used here.
    """
    del localizer
    sides = [settings.det_side]
    if settings.fallback and settings.det_side_max > settings.det_side:
        sides.append(settings.det_side_max)
    best: PlateRead | None = None
    for side in sides:
        lines = detect_lines(image, reader, side, settings.max_lines)
        found = rank_lines(lines, formats, settings)
        log.debug("detector at %d px: %d lines → %s", side, len(lines), found)
        if found is not None and settings.crop_side and found.confidence < SURE:
            found = reread_plate(image, found, reader, formats, settings)
        if found is not None and (best is None or found.confidence > best.confidence):
            best = found
        if best is not None and best.confidence >= settings.accept:
            break
    if best is None or best.confidence < settings.min_confidence:
        return None
    return best


def vote(reads: Sequence[PlateRead], min_reads: int = 1) -> PlateRead | None:
    """One read from the frames of one vehicle pass.

    The plate with the largest summed confidence wins; among reads of the same
    country and layout, each character is then chosen by confidence-weighted
    majority (so three frames with one wrong character each still agree).
    The result's confidence is the mean confidence of the reads that back it,
    scaled by the mean per-character agreement and by the share of votes its
    layout got.
    """
    if len(reads) < min_reads or not reads:
        return None
    weight: dict[str, float] = defaultdict(float)
    for read in reads:
        weight[read.plate] += read.confidence
    total = sum(weight.values())
    if total <= 0:
        return None
    winner = max(reads, key=lambda r: (weight[r.plate], r.confidence))
    same = [r for r in reads if r.country == winner.country and r.layout == winner.layout]
    chars = []
    agreement = []
    for i in range(len(winner.plate)):
        votes: dict[str, float] = defaultdict(float)
        for r in same:
            votes[r.plate[i]] += r.confidence
        char, w = max(votes.items(), key=lambda kv: (kv[1], kv[0] == winner.plate[i]))
        chars.append(char)
        agreement.append(w / sum(votes.values()))
    plate = "".join(chars)
    backing = [r for r in same if r.plate == plate] or same
    mean_conf = sum(r.confidence for r in backing) / len(backing)
    share = sum(r.confidence for r in same) / total  # reads of other layouts count against
    confidence = round(mean_conf * (sum(agreement) / len(agreement)) * share, 4)
    best_box = max(backing, key=lambda r: r.confidence).box
    return PlateRead(
        plate=plate,
        confidence=confidence,
        box=best_box,
        country=winner.country,
        layout=winner.layout,
        raw=winner.raw,
        fixes=min(r.fixes for r in backing),
    )
