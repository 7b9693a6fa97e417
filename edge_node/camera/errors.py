"""The camera path's exceptions, under ``mallnet.errors.MallnetError``."""

from __future__ import annotations

from mallnet.errors import MallnetError


class CameraError(MallnetError):
    """Base of the camera path's errors: unreadable images, OCR failures."""


class OcrUnavailable(CameraError):
    """The OCR engine or its bundled model files are not installed."""


class ImageUnreadable(CameraError):
    """An image file is missing, empty, corrupt or not an image."""
