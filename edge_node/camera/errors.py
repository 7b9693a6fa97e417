"""The camera path's exceptions, under ``edge_node.errors.EdgeError``."""

from __future__ import annotations

from edge_node.errors import EdgeError


class CameraError(EdgeError):
    """Base of the camera path's errors: unreadable images, OCR failures."""


class OcrUnavailable(CameraError):
    """The OCR engine or its bundled model files are not installed."""
