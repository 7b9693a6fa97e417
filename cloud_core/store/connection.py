"""The core's SQLite connection (the default backend; PostgreSQL: ``postgres.py``): WAL,
write transactions, migrations under a file lock.

Every write runs in ``Store.transaction()``, which starts with ``BEGIN IMMEDIATE``:
the write lock is taken before the first read, so a rule check (a cooldown, a cap)
and the write it guards see the same state even when several core workers share
one database file. ``busy_timeout`` makes a worker wait for the lock instead of
failing. ``migrate`` applies the one registry in ``cloud_core.store.migrations``.

Personal data must be erasable from the disk, not only from the tables: every
connection sets ``secure_delete`` (deleted content is overwritten with zeros, in the
database and in the pages it writes to the WAL), and ``checkpoint`` copies the WAL into
the database and truncates it, so no old page image holding erased values is left
(``customers.erase_customer``'s callers run it after the erasure commits).
"""

from __future__ import annotations

import fcntl
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from cloud_core.store.base import Conn, Store
from cloud_core.store.migrations import migrations

log = logging.getLogger(__name__)


class SqliteStore(Store):
    """One connection to the core's SQLite database. Use one per thread."""

    dialect = "sqlite"

    def __init__(self, path: Path, *, busy_timeout_ms: int = 30_000) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.raw = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
        )
        self.raw.row_factory = sqlite3.Row
        self.raw.execute("PRAGMA journal_mode=WAL")
        self.raw.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        self.raw.execute("PRAGMA synchronous=NORMAL")
        self.raw.execute("PRAGMA foreign_keys=ON")
        self.raw.execute("PRAGMA secure_delete=ON")
        self.conn: Conn = self.raw
        self.db = sqlite_utils.Database(self.raw)
        self._lock = threading.RLock()

    def migrate(self) -> None:
        """Apply pending migrations; a file lock keeps concurrent workers from racing."""
        lock_path = self.path.with_name(self.path.name + ".migrate-lock")
        with lock_path.open("a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                sqlite_set = migrations.for_sqlite()
                pending = [m.name for m in sqlite_set.pending(self.db)]
                if pending:
                    log.info("applying migrations %s to %s", pending, self.path)
                sqlite_set.apply(self.db)
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    @contextmanager
    def transaction(self) -> Iterator[Conn]:
        """A write transaction (``BEGIN IMMEDIATE``): committed on success, else rolled back."""
        with self._lock:
            self.raw.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                if self.raw.in_transaction:  # SQLite may have rolled back already (disk full)
                    self.raw.execute("ROLLBACK")
                raise
            try:
                self.raw.execute("COMMIT")
            except sqlite3.Error:  # e.g. the disk is full: nothing is committed
                if self.raw.in_transaction:
                    self.raw.execute("ROLLBACK")
                raise

    @contextmanager
    def read(self) -> Iterator[Conn]:
        """A consistent read snapshot (``BEGIN DEFERRED``)."""
        with self._lock:
            self.raw.execute("BEGIN")
            try:
                yield self.conn
            finally:
                self.raw.execute("ROLLBACK")

    def checkpoint(self) -> bool:
        """Copy the WAL into the database file and truncate it (outside any transaction);
        False if a reader kept part of it (then it is copied at a later checkpoint)."""
        with self._lock:
            busy, _log, _copied = self.raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            log.warning("WAL checkpoint of %s incomplete: a reader is still active", self.path)
        return not busy

    def close(self) -> None:
        self.raw.close()
