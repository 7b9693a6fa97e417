"""QR frames and videos for the kiosk's tests and bench, made here with segno and OpenCV."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import segno


def qr_frame(text: str, size: tuple[int, int] = (640, 480), scale: int = 6) -> np.ndarray:
    """A BGR frame of ``size`` (W × H) with the QR code of ``text`` on a grey background."""
    buffer = io.BytesIO()
    segno.make_qr(text).save(buffer, kind="png", scale=scale, border=4)
    code = cv2.imdecode(np.frombuffer(buffer.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert code is not None
    width, height = size
    frame = np.full((height, width), 150, np.uint8)
    y, x = (height - code.shape[0]) // 2, (width - code.shape[1]) // 2
    frame[y : y + code.shape[0], x : x + code.shape[1]] = code
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


def blank_frame(size: tuple[int, int] = (640, 480)) -> np.ndarray:
    width, height = size
    return np.full((height, width, 3), 150, np.uint8)


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    """An MJPEG AVI of these frames (OpenCV writes and reads it without extra codecs)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened(), "OpenCV cannot write MJPEG here"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path
