"""The PostgreSQL backend: psycopg 3 behind the same ``Store``/``Conn`` seam as SQLite.

- **One schema per mall.** Every connection is opened with its ``search_path`` set to the
  mall's schema (``PgTarget.schema``) and the code never names a schema, so no query of one
  mall's core can read another's rows (docs/architecture.md "Storage").
- **The dialect seam.** Storage modules write ``?`` (or ``:name``) placeholders; ``PgConn``
  turns them into psycopg's ``%s`` / ``%(name)s`` (once per statement text, cached), binds
  ``bool`` as the 0/1 the integer columns hold, and returns rows readable by position and
  by column name, like ``sqlite3.Row``. ``NUMERIC`` results (``SUM`` of a ``BIGINT``) load
  as ``int`` when whole.
- **Transactions.** ``transaction()`` is ``SERIALIZABLE``: a rule check (a cooldown, a cap,
  "already processed?") and the write it guards behave as if the workers ran one after the
  other, on any number of hosts. A transaction that loses raises ``SerializationConflict``
  (rolled back whole); the ingest applier runs a batch again, the API answers 503 +
  Retry-After. ``read()`` is a ``REPEATABLE READ READ ONLY`` snapshot.
- **Erasure.** ``checkpoint()`` runs ``VACUUM FULL`` on the mall's tables: they are rewritten
  without the deleted rows and the old files are removed. WAL segments and backups keep old
  row images until they are recycled or expire (docs/operations.md).
- **Errors** are translated at this seam into ``cloud_core.errors`` (``StorageUnavailable``,
  ``SerializationConflict``, ``StorageIntegrityError``, ``StorageError``).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql as pg_sql
from psycopg.adapt import Loader

from cloud_core.errors import (
    SerializationConflict,
    StorageError,
    StorageIntegrityError,
    StorageUnavailable,
)
from cloud_core.store.base import Conn, Cursor, Params, Store
from cloud_core.store.migrations import migrations, postgres_ddl
from cloud_core.store.target import PgTarget

log = logging.getLogger(__name__)

_CONFLICT_STATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected


def _translate_error(exc: psycopg.Error) -> StorageError:
    if exc.sqlstate in _CONFLICT_STATES:
        return SerializationConflict(str(exc))
    if isinstance(exc, psycopg.IntegrityError):
        return StorageIntegrityError(str(exc))
    if isinstance(exc, psycopg.OperationalError | pg_errors.AdminShutdown):
        return StorageUnavailable(str(exc))
    return StorageError(f"{type(exc).__name__}: {exc}")


# --- statements ---------------------------------------------------------------------------

_TOKENS = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|--[^\n]*|\?|%|:[A-Za-z_]\w*|::")


@functools.lru_cache(maxsize=2048)
def to_psycopg(sql: str) -> str:
    """``?`` → ``%s``, ``:name`` → ``%(name)s``, ``%`` → ``%%`` (outside quotes and comments)."""

    def swap(match: re.Match[str]) -> str:
        piece = match.group(0)
        if piece == "?":
            return "%s"
        if piece == "%":
            return "%%"
        if piece.startswith(":") and piece != "::":
            return f"%({piece[1:]})s"
        return piece

    return _TOKENS.sub(swap, sql)


def _bind(params: Params) -> Params:
    if isinstance(params, Mapping):
        return {k: int(v) if isinstance(v, bool) else v for k, v in params.items()}
    return [int(v) if isinstance(v, bool) else v for v in params]


# --- rows ---------------------------------------------------------------------------------


class PgRow(tuple[Any, ...]):
    """A row by position and by column name, like ``sqlite3.Row``."""

    _index: ClassVar[dict[str, int]] = {}
    _names: ClassVar[tuple[str, ...]] = ()

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


@functools.lru_cache(maxsize=1024)
def _row_class(names: tuple[str, ...]) -> type[PgRow]:
    index = {name: i for i, name in enumerate(names)}
    return type("PgRow", (PgRow,), {"_index": index, "_names": names})


def _row_factory(cursor: Any) -> Any:
    description = cursor.description
    if description is None:
        return tuple
    cls = _row_class(tuple(column.name for column in description))
    return cls


class _WholeNumericLoader(Loader):
    """``NUMERIC`` as ``int`` when whole (``SUM`` of integers), else ``float``."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        if "." in text or "e" in text.lower() or text in {"NaN", "Infinity", "-Infinity"}:
            return float(text)
        return int(text)


class PgCursor:
    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        try:
            return self._cursor.fetchone()
        except psycopg.ProgrammingError:  # no result (a statement that returns no rows)
            return None

    def fetchall(self) -> list[Any]:
        try:
            return self._cursor.fetchall()
        except psycopg.ProgrammingError:
            return []

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class PgConn:
    """psycopg's connection in ``Conn``'s shape (``?`` placeholders, rows by name)."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Params = (), /) -> Cursor:
        try:
            cursor = self.raw.execute(to_psycopg(sql), _bind(parameters))
        except psycopg.Error as exc:
            raise _translate_error(exc) from exc
        return PgCursor(cursor)

    def executemany(self, sql: str, parameters: Iterable[Params], /) -> Cursor:
        rows = [_bind(p) for p in parameters]
        cursor = self.raw.cursor()
        try:
            if rows:
                cursor.executemany(to_psycopg(sql), rows)
        except psycopg.Error as exc:
            raise _translate_error(exc) from exc
        return PgCursor(cursor)


def _connect(target: PgTarget, *, connect_timeout: int = 10) -> psycopg.Connection[Any]:
    try:
        raw: psycopg.Connection[Any] = psycopg.connect(
            target.url,
            autocommit=True,
            row_factory=_row_factory,
            connect_timeout=connect_timeout,
            options=f"-c search_path={target.schema}",
            application_name="mallnet-core",
        )
    except psycopg.Error as exc:
        raise StorageUnavailable(f"cannot connect to {target}: {exc}") from exc
    raw.adapters.register_loader("numeric", _WholeNumericLoader)
    return raw


# --- the store ----------------------------------------------------------------------------


class PgSchema:
    """``migrations.Schema`` on a PostgreSQL connection (inside the migration's transaction)."""

    dialect: Literal["sqlite", "postgres"] = "postgres"

    def __init__(self, conn: PgConn) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.conn.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    def executescript(self, ddl: str) -> None:
        try:
            self.conn.raw.execute(postgres_ddl(ddl).encode())  # no parameters: one round trip
        except psycopg.Error as exc:
            raise _translate_error(exc) from exc


class PgStore(Store):
    """One connection to the mall's schema in a PostgreSQL database. Use one per thread."""

    dialect = "postgres"

    def __init__(self, target: PgTarget) -> None:
        self.target = target
        self.raw = _connect(target)
        self.conn: Conn = PgConn(self.raw)
        self._pg = PgConn(self.raw)
        self._lock = threading.RLock()

    def migrate(self) -> None:
        """Create the mall's schema and apply pending migrations, each in its own transaction
        with its record; an advisory lock per schema keeps concurrent workers from racing."""
        key = zlib.crc32(f"mallnet-migrate:{self.target.schema}".encode())
        with self._lock:
            self._pg.execute("SELECT pg_advisory_lock(?)", (key,))
            try:
                self._migrate()
            finally:
                self._pg.execute("SELECT pg_advisory_unlock(?)", (key,))

    def _migrate(self) -> None:
        exists = self._pg.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = ?", (self.target.schema,)
        ).fetchone()
        if not exists:  # else a role owning only its schema may not CREATE in the database
            schema = pg_sql.Identifier(self.target.schema)
            try:
                self.raw.execute(pg_sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
            except psycopg.Error as exc:
                raise _translate_error(exc) from exc
        self._pg.execute(
            "CREATE TABLE IF NOT EXISTS _migrations (migration_set TEXT NOT NULL,"
            " name TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (migration_set, name))"
        )
        applied = {
            row["name"]
            for row in self._pg.execute(
                "SELECT name FROM _migrations WHERE migration_set = ?", (migrations.name,)
            ).fetchall()
        }
        pending = [(n, fn) for n, fn in migrations.entries if n not in applied]
        if pending:
            log.info("applying migrations %s to %s", [n for n, _ in pending], self.target)
        for name, fn in pending:
            with self._begin("BEGIN") as conn:
                fn(PgSchema(self._pg))
                conn.execute(
                    "INSERT INTO _migrations (migration_set, name, applied_at) VALUES (?, ?, ?)",
                    (migrations.name, name, datetime.now(UTC).isoformat()),
                )

    @contextmanager
    def _begin(self, begin: str) -> Iterator[Conn]:
        with self._lock:
            self._pg.execute(begin)
            try:
                yield self.conn
            except BaseException:
                self._rollback()
                raise
            try:
                self._pg.execute("COMMIT")
            except StorageError:
                self._rollback()
                raise

    def _rollback(self) -> None:
        if self.raw.closed:
            return
        try:
            if self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                self.raw.execute("ROLLBACK")
        except psycopg.Error:
            log.warning("rollback failed on %s", self.target, exc_info=True)

    def transaction(self) -> Any:
        """A ``SERIALIZABLE`` write transaction (``SerializationConflict`` if it loses)."""
        return self._begin("BEGIN ISOLATION LEVEL SERIALIZABLE")

    def read(self) -> Any:
        """A consistent read-only snapshot."""
        return self._begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def checkpoint(self) -> bool:
        """``VACUUM FULL`` every table of the mall's schema: rewritten without deleted rows
        (the old files are removed). Locks each table while it is rewritten."""
        with self._lock:
            tables = [
                row[0]
                for row in self._pg.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = ? ORDER BY tablename",
                    (self.target.schema,),
                ).fetchall()
            ]
            for table in tables:
                try:
                    self.raw.execute(pg_sql.SQL("VACUUM FULL {}").format(pg_sql.Identifier(table)))
                except psycopg.Error as exc:
                    log.warning("VACUUM FULL %s failed: %s", table, exc)
                    return False
        return True

    def close(self) -> None:
        self.raw.close()


def database_problem(target: PgTarget) -> str | None:
    """Why the mall's PostgreSQL schema cannot take a write now, or None."""
    try:
        raw = _connect(target, connect_timeout=2)
    except StorageUnavailable as exc:
        return f"the database cannot be reached: {exc}"
    try:
        row = raw.execute(
            "SELECT pg_is_in_recovery(), has_schema_privilege(%s, 'USAGE')", (target.schema,)
        ).fetchone()
    except psycopg.Error as exc:
        return f"the database cannot be used: {exc}"
    finally:
        raw.close()
    if row is None or row[0]:
        return "the database is a read-only replica"
    if not row[1]:
        return f"schema {target.schema} cannot be used"
    return None
