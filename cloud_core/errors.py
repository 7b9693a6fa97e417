"""The cloud core's exception hierarchy (one tree, rooted in ``MallnetError``)."""

from __future__ import annotations

from mallnet.errors import MallnetError


class CoreError(MallnetError):
    """Base of every error the cloud core raises on purpose."""


class NotFound(CoreError):
    """A customer, campaign, store or pocket that does not exist."""


class Conflict(CoreError):
    """A write that clashes with existing data (a phone or beacon key already registered)."""


class InvalidInput(CoreError):
    """Input that is well-formed JSON but makes no sense (a bad phone number, a bad key)."""


class InsufficientPoints(CoreError):
    """A spend larger than the pocket's unexpired balance; nothing was written."""


class CardTokenError(CoreError):
    """A loyalty-card QR token that is forged, altered, expired or malformed."""
