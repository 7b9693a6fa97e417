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
