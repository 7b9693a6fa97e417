"""QR and barcode reading for the kiosk: a pure function of an image.

The kiosk's camera hands frames to ``scan``; ``mallnet kiosk scan`` runs the
same function on image files so staff can check a printed code or a camera's
placement. pyzbar wraps the system's libzbar (apt ``libzbar0``); it is loaded on
first use, and a machine without it gets ``ScannerUnavailableError``, not an
``ImportError`` from deep inside ctypes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from kiosk.errors import ImageError, ScannerUnavailableError

MAX_PIXELS = 40_000_000  # refuse decompression bombs before decoding


@dataclass(frozen=True)
class Code:
    """One decoded code: its symbology, text and bounding box in pixels."""

    kind: str
    text: str
    box: tuple[int, int, int, int]


@cache
def _zbar() -> ModuleType:
    try:
        from pyzbar import pyzbar
    except (ImportError, OSError) as exc:  # pyzbar raises ImportError when libzbar is absent
        raise ScannerUnavailableError(
            f"cannot load the zbar library ({exc}): install the libzbar0 package"
        ) from None
    module: ModuleType = pyzbar
    return module


def check_available() -> None:
    """Load libzbar now; raises ``ScannerUnavailableError`` when it cannot be loaded."""
    _zbar()


def scan(image: Image.Image) -> list[Code]:
    """Every QR code and barcode in an image, top-left first.

    Raises ``ScannerUnavailableError`` when libzbar cannot be loaded."""
    pyzbar = _zbar()
    gray = image.convert("L")
    codes = [
        Code(
            kind=str(found.type),
            text=found.data.decode("utf-8", errors="replace"),
            box=(found.rect.left, found.rect.top, found.rect.width, found.rect.height),
        )
        for found in pyzbar.decode(gray)
    ]
    return sorted(codes, key=lambda c: (c.box[1], c.box[0]))


def scan_qr(gray: npt.NDArray[np.uint8]) -> list[str]:
    """The texts of the QR codes (only QR: no barcodes) in a greyscale frame (H × W uint8).

    Raises ``ScannerUnavailableError`` when libzbar cannot be loaded."""
    pyzbar = _zbar()
    found = pyzbar.decode(gray, symbols=[pyzbar.ZBarSymbol.QRCODE])
    return [f.data.decode("utf-8", errors="replace") for f in found]


def load_image(path: Path) -> Image.Image:
    """Open an image file fully; raises ``ImageError`` with the reason."""
    try:
        with Image.open(path) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise ImageError(f"{path}: {opened.width}x{opened.height} is too large")
            opened.load()
            return opened.copy()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{path}: not a readable image ({exc.__class__.__name__})") from None
