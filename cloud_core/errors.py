"""The cloud core's exception hierarchy (one tree, rooted in ``MallnetError``)."""

from __future__ import annotations

from mallnet.errors import MallnetError


class CoreError(MallnetError):
    """Base of every error the cloud core raises on purpose. ``problem``, when set, names
    the kind in the API's RFC 9457 answers (``type: urn:mallnet:problem:<problem>``)."""

    problem: str | None = None


class NotFound(CoreError):
    """A customer, campaign, store or pocket that does not exist."""


class Conflict(CoreError):
    """A write that clashes with existing data (a phone or beacon key already registered)."""


class InvalidInput(CoreError):
    """Input that is well-formed JSON but makes no sense (a bad phone number, a bad key)."""


class InsufficientPoints(CoreError):
    """A spend larger than the pocket's unexpired balance; nothing was written."""

    problem = "insufficient-points"


class PoolExhausted(Conflict):
    """A promo-code pool with no unclaimed code left; nothing was written."""

    problem = "promo-codes-exhausted"


class CodeAlreadyUsed(Conflict):
    """A promo code a partner has already marked used."""

    problem = "promo-code-used"


class PayloadTooLarge(CoreError):
    """A request body past its size bound (413); nothing was read past the bound."""

    problem = "payload-too-large"
