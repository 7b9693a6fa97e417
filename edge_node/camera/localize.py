"""Finding plate-like regions in a frame with cheap image morphology (a few ms).

A plate is a bright, roughly 2:1 to 6:1 rectangle full of dark vertical
strokes. The frame is shrunk to a working width, contrast-normalised (night
frames), and dark strokes on light ground are lifted with a black-hat filter;
their horizontal gradient is smeared into blobs whose bounding rectangles are
the candidates, ranked by stroke density. OCR then reads only the best few
crops, which costs a fraction of reading the whole frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

Image8 = npt.NDArray[np.uint8]
Box = tuple[int, int, int, int]  # x, y, w, h in frame pixels


@dataclass(frozen=True)
class Candidate:
    """A region that may hold a plate, in frame coordinates, with a plausibility score."""

    box: Box
    score: float
    angle: float  # degrees to rotate the crop by to level the text
    rect: tuple[float, float, float, float] | None = None  # levelled centre x, y and w, h


@dataclass(frozen=True)
class LocalizerSettings:
    work_width: int = 640
    min_aspect: float = 1.8
    max_aspect: float = 8.0
    min_width_frac: float = 0.04  # of the working width
    max_width_frac: float = 0.6
    max_candidates: int = 3


def to_gray(image: Image8) -> Image8:
    if image.ndim == 2:
        return image
    return cast(Image8, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))


def find_candidates(image: Image8, settings: LocalizerSettings | None = None) -> list[Candidate]:
    """Plate-like regions of ``image`` (BGR or grey), best first."""
    s = settings or LocalizerSettings()
    gray = to_gray(image)
    h, w = gray.shape[:2]
    scale = min(1.0, s.work_width / w)
    size = (round(w * scale), round(h * scale))
    small = cast(Image8, cv2.resize(gray, size, interpolation=cv2.INTER_AREA))
    small = cast(Image8, cv2.normalize(small, small.copy(), 0, 255, cv2.NORM_MINMAX))
    sw = small.shape[1]
    stroke_h = max(9, sw // 40) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (stroke_h * 2 + 1, stroke_h))
    blackhat = cv2.morphologyEx(small, cv2.MORPH_BLACKHAT, kernel)
    grad = np.abs(cv2.Sobel(blackhat, cv2.CV_32F, 1, 0, ksize=3))
    grad_max = float(grad.max())
    if grad_max <= 0:
        return []
    edges = (grad * (255.0 / grad_max)).astype(np.uint8)
    edges = cast(Image8, cv2.GaussianBlur(edges, (5, 5), 0))
    smear = cv2.getStructuringElement(cv2.MORPH_RECT, (max(9, sw // 45), 3))
    closed = cv2.morphologyEx(edges, cv2.MORPH_CLOSE, smear)
    _, mask = cv2.threshold(closed, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=1)
    mask = cv2.dilate(
        mask, cv2.getStructuringElement(cv2.MORPH_RECT, (max(9, sw // 50), 5)), iterations=2
    )
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    found: list[Candidate] = []
    for contour in contours:
        (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
        if rw < rh:
            rw, rh, angle = rh, rw, angle - 90
        if angle < -45:
            angle += 180
        if angle > 45:
            angle -= 180
        if rh <= 0 or not s.min_aspect <= rw / rh <= s.max_aspect:
            continue
        if not s.min_width_frac * sw <= rw <= s.max_width_frac * sw or abs(angle) > 25:
            continue
        x, y, bw, bh = cv2.boundingRect(contour)
        region = blackhat[y : y + bh, x : x + bw]
        patch = small[y : y + bh, x : x + bw]
        density = float(np.count_nonzero(region > 40)) / max(1, region.size)
        contrast = float(np.percentile(patch, 90)) - float(np.percentile(patch, 10))
        fill = cv2.contourArea(contour) / max(1.0, rw * rh)
        score = density * contrast * fill
        inv = 1.0 / scale
        found.append(
            Candidate(
                (round(x * inv), round(y * inv), round(bw * inv), round(bh * inv)),
                score,
                float(angle),
                (cx * inv, cy * inv, rw * inv, rh * inv),
            )
        )
    found.extend(_joined_pairs(found, s, sw / scale))
    found.sort(key=lambda c: c.score, reverse=True)
    return found[: s.max_candidates]


def _joined_pairs(found: list[Candidate], s: LocalizerSettings, frame_w: float) -> list[Candidate]:
    """Side-by-side blobs on one row, as one candidate: a glare or mud spot in the middle
    of a plate splits its strokes into two blobs, and each alone reads half a plate."""
    joined = []
    for i, a in enumerate(found):
        for b in found[i + 1 :]:
            left, right = (a, b) if a.box[0] <= b.box[0] else (b, a)
            lx, ly, lw, lh = left.box
            rx, ry, rw, rh = right.box
            overlap = min(ly + lh, ry + rh) - max(ly, ry)
            gap = rx - (lx + lw)
            height = max(lh, rh)
            if overlap < 0.5 * min(lh, rh) or gap > 1.5 * height or gap < -0.5 * min(lw, rw):
                continue
            x0, y0 = min(lx, rx), min(ly, ry)
            x1, y1 = max(lx + lw, rx + rw), max(ly + lh, ry + rh)
            w, h = x1 - x0, y1 - y0
            if not s.min_aspect <= w / max(1, h) <= s.max_aspect or w > s.max_width_frac * frame_w:
                continue
            score = (a.score + b.score) * 0.75
            joined.append(Candidate((x0, y0, w, h), score, (a.angle + b.angle) / 2))
    return joined


def crop(image: Image8, box: Box, pad_x: float = 0.08, pad_y: float = 0.25) -> Image8:
    """The region ``box`` with a margin, clipped to the frame."""
    x, y, w, h = box
    ih, iw = image.shape[:2]
    dx, dy = round(w * pad_x), round(h * pad_y)
    x0, y0 = max(0, x - dx), max(0, y - dy)
    x1, y1 = min(iw, x + w + dx), min(ih, y + h + dy)
    out: Image8 = image[y0:y1, x0:x1]
    return out


def levelled_crop(
    image: Image8, candidate: Candidate, pad_x: float = 0.08, pad_y: float = 0.25
) -> Image8:
    """The candidate's region rotated level (from its minimum-area rectangle), with a margin.

    Candidates tilted by less than 2° (and joined pairs, which have no rectangle) are
    cut straight, as ``crop`` does.
    """
    if candidate.rect is None or abs(candidate.angle) < 2:
        return crop(image, candidate.box, pad_x, pad_y)
    cx, cy, w, h = candidate.rect
    out_w = round(w * (1 + 2 * pad_x))
    out_h = round(h * (1 + 2 * pad_y))
    matrix = cv2.getRotationMatrix2D((cx, cy), candidate.angle, 1.0)
    matrix[0, 2] += out_w / 2 - cx
    matrix[1, 2] += out_h / 2 - cy
    out = cv2.warpAffine(image, matrix, (out_w, out_h), borderMode=cv2.BORDER_REPLICATE)
    return cast(Image8, out)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union else 0.0
