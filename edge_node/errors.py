"""The edge node's exception hierarchy (all subclass ``mallnet.errors.MallnetError``)."""

from __future__ import annotations

from mallnet.errors import MallnetError


class EdgeError(MallnetError):
    """Base of every error raised by ``edge_node``."""


class SourceError(EdgeError):
    """A beacon source could not start, or its input is unusable."""


class OutboxError(EdgeError):
    """The outbox database could not be opened or written."""
