"""What storage code sees of a database, whichever backend holds it.

``Conn`` is a connection inside a transaction: ``execute(sql, params)`` with ``?`` (or
``:name``) placeholders, returning a cursor whose rows read by position and by column name.
``sqlite3.Connection`` is one as it is; the PostgreSQL backend wraps psycopg's
(``cloud_core/store/postgres.py``). ``Store`` hands out transactions on one connection.
"""

from __future__ import annotations

import random
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from cloud_core.errors import (
    SerializationConflict,
    StorageError,
    StorageIntegrityError,
    StorageUnavailable,
)

Params = Sequence[Any] | Mapping[str, Any]


class Row(Protocol):
    """A result row: by position (``row[0]``, unpacking) and by column name (``row["id"]``)."""

    def __getitem__(self, key: int | str, /) -> Any: ...
    def __iter__(self) -> Iterator[Any]: ...
    def __len__(self) -> int: ...
    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """A connection inside a transaction (``Store.transaction()`` / ``Store.read()``)."""

    def execute(self, sql: str, parameters: Params = ..., /) -> Cursor: ...
    def executemany(self, sql: str, parameters: Iterable[Params], /) -> Cursor: ...


# What callers catch, whichever backend raised it (``except store.OperationalError``).
DatabaseError: tuple[type[Exception], ...] = (sqlite3.Error, StorageError)
OperationalError: tuple[type[Exception], ...] = (sqlite3.OperationalError, StorageUnavailable)
IntegrityError: tuple[type[Exception], ...] = (sqlite3.IntegrityError, StorageIntegrityError)

__all__ = [
    "Conn",
    "Cursor",
    "DatabaseError",
    "IntegrityError",
    "OperationalError",
    "Row",
    "SerializationConflict",
    "Store",
    "retrying",
]


T = TypeVar("T")

#: How often ``retrying`` runs a transaction that lost a serialization conflict.
CONFLICT_ATTEMPTS = 8


def retrying(work: Callable[[], T], retried: Callable[[], None] = lambda: None) -> T:
    """Run ``work`` (a whole transaction) again while it loses a serialization conflict
    (PostgreSQL; rolled back whole, so safe to repeat), a few times, with jitter."""
    for attempt in range(1, CONFLICT_ATTEMPTS):
        try:
            return work()
        except SerializationConflict:
            retried()
            time.sleep(random.uniform(0, 0.005 * attempt))  # de-synchronise the workers
    return work()


class Store(ABC):
    """One connection to the core's database. Use one per thread."""

    #: ``sqlite`` or ``postgres``
    dialect: str
    conn: Conn

    @abstractmethod
    def migrate(self) -> None:
        """Apply pending migrations (concurrent workers do not race)."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Conn]:
        """A write transaction in which a rule check and the write it guards see the same
        state, whatever other workers do: committed on success, else rolled back."""

    @abstractmethod
    def read(self) -> AbstractContextManager[Conn]:
        """A consistent read-only snapshot."""

    @abstractmethod
    def checkpoint(self) -> bool:
        """After an erasure: make deleted rows leave the database files (outside any
        transaction); False if part of it must wait."""

    @abstractmethod
    def close(self) -> None: ...
