"""Reading the plate of one frame, and one confident plate from the frames of a pass.

``read_frame`` localises plate-like regions (``localize``), reads each crop as
one text line, fits the text to the gate's national formats (``formats``) and
keeps the best; only when no crop yields a valid plate does it fall back to
the OCR engine's own text detector on the (downscaled) frame. ``vote`` turns
the reads of one vehicle pass into one: the plate with the most confidence
behind it, refined character by character among reads of the same layout.
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
from edge_node.camera.formats import FormatMatch, PlateFormat, match_format
from edge_node.camera.localize import Box, LocalizerSettings, find_candidates, levelled_crop
from edge_node.camera.ocr import TextLine, TextReader

log = logging.getLogger(__name__)

Image8 = npt.NDArray[np.uint8]
FIX_PENALTY = 0.9  # confidence kept per fixed character
STRONG_FIX_PENALTY = 0.97  # … per fix between near-identical glyphs (O/0, I/1)
DROP_PENALTY = 0.97  # per character dropped around the plate
FALLBACK_WIDTH = 640  # the frame is downscaled to this width before the fallback detector
DEFAULT_SETTINGS = ReaderSettings()
DEFAULT_LOCALIZER = LocalizerSettings()


@dataclass(frozen=True)
class PlateRead:
    """One frame's (or one pass's) best plate."""

    plate: str
    confidence: float
    box: Box
    country: str
    layout: str  # the format's pattern, e.g. "LLDDDDLL"
    raw: str  # what the OCR engine said
    fixes: int = 0


def _to_read(line: TextLine, fitted: FormatMatch, box: Box) -> PlateRead:
    weak = fitted.fixes - fitted.strong_fixes
    confidence = (
        line.score
        * FIX_PENALTY**weak
        * STRONG_FIX_PENALTY**fitted.strong_fixes
        * DROP_PENALTY**fitted.dropped
    )
    return PlateRead(
        plate=fitted.plate,
        confidence=round(max(0.0, min(1.0, confidence)), 4),
        box=box,
        country=fitted.fmt.country,
        layout=fitted.fmt.pattern,
        raw=line.text,
        fixes=fitted.fixes,
    )


def _joined(lines: Sequence[TextLine]) -> TextLine | None:
    """The plate's main line: the tallest boxes, left to right (drops state names, bands)."""
    if not lines:
        return None
    tallest = max(line.box[3] for line in lines)
    main = sorted((ln for ln in lines if ln.box[3] >= 0.6 * tallest), key=lambda ln: ln.box[0])
    x0 = min(ln.box[0] for ln in main)
    y0 = min(ln.box[1] for ln in main)
    x1 = max(ln.box[0] + ln.box[2] for ln in main)
    y1 = max(ln.box[1] + ln.box[3] for ln in main)
    score = min(ln.score for ln in main)
    return TextLine(" ".join(ln.text for ln in main), score, (x0, y0, x1 - x0, y1 - y0))


def read_frame(
    image: Image8,
    reader: TextReader,
    formats: Sequence[PlateFormat],
    settings: ReaderSettings = DEFAULT_SETTINGS,
    *,
    localizer: LocalizerSettings = DEFAULT_LOCALIZER,
) -> PlateRead | None:
    """The best plate in ``image`` (BGR) valid in one of ``formats`` (priority order), or None."""
    best: PlateRead | None = None
    for candidate in find_candidates(image, localizer):
        patch = levelled_crop(image, candidate)
        read = _read_patch(patch, candidate.box, reader, formats, settings)
        if read is None:
            continue
        if best is None or read.confidence > best.confidence:
            best = read
        if best.confidence >= settings.accept:
            break
    if settings.fallback and (best is None or best.confidence < settings.min_confidence):
        best = _read_with_detector(image, reader, formats, settings) or best
    if best is None or best.confidence < settings.min_confidence:
        return None
    return best


def _read_patch(
    patch: Image8,
    box: Box,
    reader: TextReader,
    formats: Sequence[PlateFormat],
    settings: ReaderSettings,
) -> PlateRead | None:
    """Read a candidate crop as one line; if that is unsure, look again line by line.

    The second look runs the text detector on the small crop, so a band's
    country code, a state name or a frame edge becomes a separate box that
    ``_joined`` leaves out.
    """
    line = reader.read_line(patch)
    fitted = match_format(line.text, formats, settings.max_fixes)
    log.debug("candidate %s: %r (%.2f) → %s", box, line.text, line.score, fitted)
    read = _to_read(line, fitted, box) if fitted is not None else None
    if read is not None and read.confidence >= settings.accept:
        return read
    joined = _joined(reader.read_lines(patch))
    if joined is None:
        return read
    second = match_format(joined.text, formats, settings.max_fixes)
    log.debug("second look %s: %r (%.2f) → %s", box, joined.text, joined.score, second)
    if second is None:
        return read
    again = _to_read(joined, second, box)
    return again if read is None or again.confidence > read.confidence else read


def _rows(lines: Sequence[TextLine]) -> list[list[TextLine]]:
    rows: list[list[TextLine]] = []
    for line in sorted(lines, key=lambda ln: ln.box[1] + ln.box[3] / 2):
        centre = line.box[1] + line.box[3] / 2
        if rows:
            last = rows[-1][-1]
            if abs(centre - (last.box[1] + last.box[3] / 2)) <= 0.5 * max(line.box[3], last.box[3]):
                rows[-1].append(line)
                continue
        rows.append([line])
    return rows


def _read_with_detector(
    image: Image8,
    reader: TextReader,
    formats: Sequence[PlateFormat],
    settings: ReaderSettings,
    fallback_width: int = FALLBACK_WIDTH,
) -> PlateRead | None:
    h, w = image.shape[:2]
    scale = min(1.0, fallback_width / w)
    size = (round(w * scale), round(h * scale))
    small = image if scale == 1.0 else cast(Image8, cv2.resize(image, size))
    best: PlateRead | None = None
    lines = reader.read_lines(small)
    # A plate's text may come back as several boxes ("TM 5230" + "AA"): also try each row
    # of boxes (vertical centres within half a box height) joined left to right.
    groups: list[list[TextLine]] = [[ln] for ln in lines]
    groups.extend(row for row in _rows(lines) if len(row) > 1)
    for group in groups:
        line = _joined(group)
        if line is None:
            continue
        fitted = match_format(line.text, formats, settings.max_fixes)
        if fitted is None:
            continue
        inv = 1.0 / scale
        x, y, bw, bh = line.box
        box = (round(x * inv), round(y * inv), round(bw * inv), round(bh * inv))
        read = _to_read(line, fitted, box)
        if best is None or read.confidence > best.confidence:
            best = read
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
