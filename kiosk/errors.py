"""The kiosk's exception hierarchy."""

from __future__ import annotations

from mallnet.errors import MallnetError


class KioskError(MallnetError):
    """Base of every error raised by ``kiosk``."""


class ImageError(KioskError):
    """An image that cannot be read (missing, corrupt, not an image)."""


class ScannerUnavailableError(KioskError):
    """The QR/barcode decoder cannot run here: the system's libzbar is missing or unloadable."""


class QueueError(KioskError):
    """The on-disk check-in queue cannot be opened or written."""
