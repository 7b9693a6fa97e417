"""The OCR engine behind a small seam.

``TextReader`` is all the plate reader needs: find text lines in an image at a
chosen detector input size (``detect``), recognise a batch of line crops
(``recognise``), and the two together (``read_line``, ``read_lines``).
``RapidOcrReader`` adapts ``rapidocr`` 3.x (PP-OCRv6 small, ONNX Runtime) and
points it at the model files inside its wheel by path, so it can never fall
back to downloading them; models load lazily (the detector only when it is
used). ``detect`` sizes the detector's input itself (up or down), so the
reader can try a small input first and a larger one only when unsure, while
the recogniser always reads crops cut from the full-resolution frame.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, cast

import cv2
import numpy as np
import numpy.typing as npt

from edge_node.camera.errors import CameraError, OcrUnavailable

log = logging.getLogger(__name__)

Image8 = npt.NDArray[np.uint8]
Box = tuple[int, int, int, int]
Quad = npt.NDArray[np.float32]  # 4×2 corner points, clockwise from top-left, in image pixels

DET_MODEL = "PP-OCRv6_det_small.onnx"
REC_MODEL = "PP-OCRv6_rec_small.onnx"


@dataclass(frozen=True)
class TextLine:
    """One recognised line: its text, the engine's score (0–1) and its box in the input."""

    text: str
    score: float
    box: Box


def detector_canvas(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The detector's input for an image: one of three fixed shapes per ``max_side``.

    The image is scaled to fit and the rest left black. Fixed shapes keep ONNX
    Runtime's memory arena from growing with every new frame size (varied sizes
    took a benchmark process past 650 MB; bench/anpr.py).
    """
    side = max(32, round(max_side / 32) * 32)
    short = max(32, round(side * 9 / 16 / 32) * 32)
    mid = max(32, round(side * 3 / 4 / 32) * 32)
    aspect = width / max(1, height)
    if aspect >= 1.5:
        return side, short
    if aspect >= 1.0:
        return side, mid
    return mid, side


def _bgr(image: Image8) -> Image8:
    return cast(Image8, cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)) if image.ndim == 2 else image


class TextReader(Protocol):
    def detect(self, image: Image8, max_side: int) -> list[Quad]:
        """Text line quadrilaterals of ``image``, found at a detector input whose longer side is
        ``max_side`` (the image is scaled up or down to it), in ``image``'s own pixels."""
        ...

    def recognise(self, crops: Sequence[Image8]) -> list[tuple[str, float]]:
        """The text and score (0–1) of each single-line crop."""
        ...

    def read_line(self, image: Image8) -> TextLine:
        """Recognise the single text line that fills ``image``."""
        ...

    def read_lines(self, image: Image8) -> list[TextLine]:
        """Detect and recognise every text line of ``image``."""
        ...


def bundled_model_dir() -> Path:
    """The folder of ONNX models shipped inside the ``rapidocr`` wheel."""
    try:
        root = resources.files("rapidocr") / "models"
    except ModuleNotFoundError as exc:
        raise OcrUnavailable("rapidocr is not installed (install the `camera` extra)") from exc
    return Path(str(root))


class RapidOcrReader:
    """``TextReader`` over rapidocr 3.x on one ONNX Runtime thread by default.

    ``det_max_side`` caps the detector's input size (the frame is shrunk to
    fit); ``None`` keeps rapidocr's out-of-the-box sizing, which the
    benchmark uses as its whole-frame baseline.
    """

    def __init__(
        self,
        threads: int = 1,
        det_max_side: int | None = 640,
        model_dir: Path | None = None,
    ) -> None:
        directory = model_dir or bundled_model_dir()
        det, rec = directory / DET_MODEL, directory / REC_MODEL
        missing = [str(p) for p in (det, rec) if not p.is_file()]
        if missing:
            raise OcrUnavailable(f"OCR model files missing (never downloaded): {missing}")
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:
            raise OcrUnavailable(f"cannot import rapidocr: {exc}") from exc
        params: dict[str, Any] = {
            "Global.log_level": "warning",
            "Global.use_cls": False,
            "Global.text_score": 0.3,
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            # ONNX Runtime's own arena reuses its buffers across frames of varying size; without
            # it malloc fragmentation lifts peak RSS by ~80 MB (bench/anpr.py, docs/benchmarks.md).
            "EngineConfig.onnxruntime.enable_cpu_mem_arena": True,
            "Det.model_path": str(det),
            "Rec.model_path": str(rec),
        }
        if det_max_side is not None:  # None keeps rapidocr's own (upscale to ≥ 736 px)
            params |= {"Det.limit_type": "max", "Det.limit_side_len": det_max_side}
        self._engine = RapidOCR(params=params)
        # rapidocr logs through its own handler on the root of its tree; keep it quiet.
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)

    def detect(self, image: Image8, max_side: int) -> list[Quad]:
        h, w = image.shape[:2]
        canvas_w, canvas_h = detector_canvas(w, h, max_side)
        scale = min(canvas_w / w, canvas_h / h)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        resized = np.zeros((canvas_h, canvas_w, 3), np.uint8)
        resized[: size[1], : size[0]] = cv2.resize(_bgr(image), size, interpolation=interp)
        try:
            det = self._engine._load_det_model()  # type: ignore[no-untyped-call]
            det.limit_type, det.limit_side_len = "max", 1 << 16  # our size, unchanged
            out = det(resized)
        except Exception as exc:  # the engine raises bare Exceptions on bad input
            raise CameraError(f"text detection failed on a {w}x{h} image: {exc}") from exc
        boxes = getattr(out, "boxes", None)
        if boxes is None:
            return []
        sx, sy = w / size[0], h / size[1]  # the image sits top-left in the canvas
        quads = []
        for quad in boxes:
            pts = np.asarray(quad, dtype=np.float32).reshape(4, 2)
            pts[:, 0] *= sx
            pts[:, 1] *= sy
            quads.append(pts)
        return quads

    def recognise(self, crops: Sequence[Image8]) -> list[tuple[str, float]]:
        if not crops:
            return []
        try:
            from rapidocr.ch_ppocr_rec.typings import TextRecInput

            rec = self._engine._load_rec_model()  # type: ignore[no-untyped-call]
            out = rec(TextRecInput(img=list(crops)))
        except Exception as exc:
            raise CameraError(f"OCR failed on {len(crops)} crops: {exc}") from exc
        return [(str(t), float(s)) for t, s in zip(out.txts, out.scores, strict=True)]

    def read_line(self, image: Image8) -> TextLine:
        h, w = image.shape[:2]
        try:
            out = self._engine(image, use_det=False, use_cls=False, use_rec=True)
        except Exception as exc:  # the engine raises bare Exceptions on bad input
            raise CameraError(f"OCR failed on a {w}x{h} crop: {exc}") from exc
        txts = getattr(out, "txts", None) or ("",)
        scores = getattr(out, "scores", None) or (0.0,)
        return TextLine(str(txts[0]), float(scores[0]), (0, 0, w, h))

    def read_lines(self, image: Image8) -> list[TextLine]:
        try:
            out = self._engine(image, use_det=True, use_cls=False, use_rec=True)
        except Exception as exc:
            raise CameraError(
                f"OCR failed on a {image.shape[1]}x{image.shape[0]} image: {exc}"
            ) from exc
        boxes = getattr(out, "boxes", None)
        if boxes is None:
            return []
        txts: Any = getattr(out, "txts", None) or ()
        scores: Any = getattr(out, "scores", None) or ()
        lines = []
        for quad, text, score in zip(boxes, txts, scores, strict=False):
            pts = np.asarray(quad, dtype=np.float32)
            x0, y0 = pts.min(axis=0)
            x1, y1 = pts.max(axis=0)
            box = (int(x0), int(y0), int(x1 - x0), int(y1 - y0))
            lines.append(TextLine(str(text), float(score), box))
        return lines
