"""QR frames for trying a kiosk without a shopper: ``mallnet kiosk synth-frames``.

A folder of 640×480 PNG frames — a few empty ones, then a QR code (OpenCV's own
encoder, so no extra package) held in front of the camera, then empty again — that a
``camera: {type: file}`` kiosk reads as a shopper showing their app (``mallnet:customer:<id>``)
or a store's poster (``mallnet:store:<id>``). The demo uses it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kiosk.errors import KioskError

SIZE = (640, 480)
GREY = 150


def qr_image(text: str, scale: int = 6, border: int = 4) -> Any:  # a numpy BGR array
    """A BGR frame of ``SIZE`` with the QR code of ``text`` in the middle."""
    import cv2
    import numpy as np

    code = cv2.QRCodeEncoder.create().encode(text)
    if code is None or code.size == 0:
        raise KioskError(f"cannot encode {len(text)} characters as a QR code")
    code = cv2.resize(code, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    code = cv2.copyMakeBorder(code, *(border * scale,) * 4, cv2.BORDER_CONSTANT, value=255)
    width, height = SIZE
    if code.shape[0] > height or code.shape[1] > width:
        raise KioskError("the QR code does not fit a 640×480 frame; use a shorter text")
    frame = np.full((height, width), GREY, np.uint8)
    y, x = (height - code.shape[0]) // 2, (width - code.shape[1]) // 2
    frame[y : y + code.shape[0], x : x + code.shape[1]] = code
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


def write_frames(out: Path, text: str, *, blank: int = 5, shown: int = 10) -> list[Path]:
    """Write ``blank`` empty frames, ``shown`` frames with the code, ``blank`` empty ones."""
    import cv2
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    empty = np.full((SIZE[1], SIZE[0], 3), GREY, np.uint8)
    code = qr_image(text)
    frames = [empty] * blank + [code] * shown + [empty] * blank
    paths = []
    for index, frame in enumerate(frames):
        path = out / f"frame-{index:04d}.png"
        if not cv2.imwrite(str(path), frame):
            raise KioskError(f"cannot write {path}")
        paths.append(path)
    return paths
