"""The core's database: a SQLite file (``connection``, the default) or a PostgreSQL schema
(``postgres``), behind one seam (``base``), with every migration in one registry
(``migrations``). ``from cloud_core.store import Conn, Store, open_store`` is the way in.

``Conn`` is the type storage and rule functions take for "a connection inside a
transaction". Write SQL that both backends run (see docs/architecture.md "Storage"):
``?`` placeholders, ``INSERT ... ON CONFLICT``, ``RETURNING``, rows read by column name,
times computed in Python, no SQLite-only functions.
"""

from __future__ import annotations

from pathlib import Path

from cloud_core.store.base import (
    Conn,
    Cursor,
    DatabaseError,
    IntegrityError,
    OperationalError,
    Row,
    SerializationConflict,
    Store,
    retrying,
)
from cloud_core.store.connection import SqliteStore
from cloud_core.store.target import DatabaseTarget, PgTarget


def connect_store(target: DatabaseTarget) -> Store:
    """A connection to the database at ``target`` (a SQLite path or a ``PgTarget``)."""
    if isinstance(target, PgTarget):
        from cloud_core.store.postgres import PgStore  # psycopg only when it is used

        return PgStore(target)
    return SqliteStore(Path(target))


def open_store(target: DatabaseTarget) -> Store:
    """Open (creating and migrating as needed) the database at ``target``."""
    store = connect_store(target)
    store.migrate()
    return store


__all__ = [
    "Conn",
    "Cursor",
    "DatabaseError",
    "DatabaseTarget",
    "IntegrityError",
    "OperationalError",
    "PgTarget",
    "Row",
    "SerializationConflict",
    "SqliteStore",
    "Store",
    "connect_store",
    "open_store",
    "retrying",
]
