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


class Forbidden(CoreError):
    """A caller whose role may use the route but not on this record (another business's)."""


class InsufficientPoints(CoreError):
    """A spend larger than the pocket's unexpired balance; nothing was written."""

    problem = "insufficient-points"


class CardTokenError(CoreError):
    """A loyalty-card QR token that is forged, altered, expired or malformed."""

    problem = "card-token"


class CapExceeded(Conflict):
    """More coalition points than the partner's share of the receipt allows."""

    problem = "cap-exceeded"


class HoldExpired(Conflict):
    """A redemption hold that was neither committed nor released in time (points returned)."""

    problem = "hold-expired"


class HoldClosed(Conflict):
    """A redemption hold already committed, released or refunded."""

    problem = "hold-closed"


class UnknownReceipt(NotFound):
    """A receipt number this store has never registered a purchase or redemption for."""

    problem = "unknown-receipt"


class IdempotencyConflict(Conflict):
    """An Idempotency-Key used before with another request body."""

    problem = "idempotency-key-reused"


class PeriodClosed(Conflict):
    """A settlement period that is closed (frozen) or cannot be closed yet."""

    problem = "period-closed"


class StorageError(CoreError):
    """The PostgreSQL backend refused a statement (``cloud_core.store.DatabaseError`` also
    covers SQLite's own ``sqlite3.Error``)."""


class StorageUnavailable(StorageError):
    """The database cannot be used now (connection lost, server shutting down, a lock or
    serialization conflict): nothing was committed; retry later."""


class SerializationConflict(StorageUnavailable):
    """A SERIALIZABLE transaction lost to a concurrent one (or a deadlock): rolled back
    whole, safe to run again."""


class StorageIntegrityError(StorageError):
    """A constraint (unique key, check, foreign key) refused a write."""


class PoolExhausted(Conflict):
    """A promo-code pool with no unclaimed code left; nothing was written."""

    problem = "promo-codes-exhausted"


class CodeAlreadyUsed(Conflict):
    """A promo code a partner has already marked used."""

    problem = "promo-code-used"


class PayloadTooLarge(CoreError):
    """A request body past its size bound (413); nothing was read past the bound."""

    problem = "payload-too-large"
