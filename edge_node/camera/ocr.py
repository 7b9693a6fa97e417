"""The OCR engine behind a small seam.

``TextReader`` is all the plate reader needs: read one text line from a tight
crop, or find and read the text lines of a larger image. ``RapidOcrReader``
adapts ``rapidocr`` 3.x (PP-OCRv6 small, ONNX Runtime) and points it at the
model files inside its wheel by path, so it can never fall back to
downloading them; models load lazily (the detector only when it is used).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edge_node.camera.errors import CameraError, OcrUnavailable

log = logging.getLogger(__name__)

Image8 = npt.NDArray[np.uint8]
Box = tuple[int, int, int, int]

DET_MODEL = "PP-OCRv6_det_small.onnx"
REC_MODEL = "PP-OCRv6_rec_small.onnx"


@dataclass(frozen=True)
class TextLine:
    """One recognised line: its text, the engine's score (0–1) and its box in the input."""

    text: str
    score: float
    box: Box


class TextReader(Protocol):
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
