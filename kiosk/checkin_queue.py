"""The kiosk's on-disk check-in queue: every check-in is in SQLite before it is sent.

A check-in is written with the id and ``seq`` it was made with (ids at the
source, UUIDv7), in one transaction that also advances the persisted sequence
counter, so a restart neither loses a check-in nor changes its id. When the
broker acknowledges its batch (PUBACK) it is marked sent (``sent_at``); it
leaves the queue only when the core's receipt names it (the core committed it),
and one sent but not receipted in time is sent again with the same id, which
the core's idempotent consumer ignores (docs/kiosk.md, "Offline"). The queue
is bounded (``max_rows``): beyond it the oldest rows are dropped and counted,
never silently.

Rows may hold a phone number (``phone:`` tokens typed while the core was
unreachable): ``secure_delete`` overwrites deleted rows, so a sent check-in
leaves nothing readable in the file. WAL with ``synchronous=FULL``; one lock
serialises the UI thread (adding) and the sender thread (sending).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from kiosk.errors import QueueError
from mallnet.ids import new_event_id
from mallnet.wire.payloads import CheckinEvent

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkins (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    ts TEXT NOT NULL,
    token TEXT NOT NULL,
    store TEXT,
    sent_at REAL
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('next_seq', 0), ('dropped', 0);
"""


class CheckinQueue:
    """Check-ins waiting to be sent, oldest first."""

    def __init__(
        self,
        path: Path,
        *,
        max_rows: int = 100_000,
        make_id: Callable[[], str] = new_event_id,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.path = path
        self.max_rows = max_rows
        self._make_id = make_id
        self._now = now
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(checkins)")}
            if "sent_at" not in columns:  # a queue file from before receipts
                self._db.execute("ALTER TABLE checkins ADD COLUMN sent_at REAL")
        except (sqlite3.Error, OSError) as exc:
            raise QueueError(f"cannot open the check-in queue {path}: {exc}") from exc

    def add(self, token: str, store: str | None) -> CheckinEvent:
        """Make a check-in (new id, next seq, now) and store it; returns the event."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                (seq,) = self._db.execute(
                    "SELECT value FROM meta WHERE name = 'next_seq'"
                ).fetchone()
                event = CheckinEvent(
                    id=self._make_id(), seq=seq, ts=self._now(), token=token, store=store
                )
                self._db.execute(
                    "INSERT INTO checkins (seq, id, ts, token, store) VALUES (?, ?, ?, ?, ?)",
                    (seq, event.id, event.ts.isoformat(), token, store),
                )
                self._db.execute("UPDATE meta SET value = ? WHERE name = 'next_seq'", (seq + 1,))
                self._trim()
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise QueueError(f"cannot store a check-in in {self.path}: {exc}") from exc
        return event

    def _trim(self) -> None:
        (count,) = self._db.execute("SELECT COUNT(*) FROM checkins").fetchone()
        excess = count - self.max_rows
        if excess > 0:
            self._db.execute(
                "DELETE FROM checkins WHERE seq IN (SELECT seq FROM checkins ORDER BY seq LIMIT ?)",
                (excess,),
            )
            self._db.execute("UPDATE meta SET value = value + ? WHERE name = 'dropped'", (excess,))
            log.error("check-in queue full: dropped the %d oldest check-ins", excess)

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # nothing was begun
            self._db.execute("ROLLBACK")

    def oldest(self, limit: int, *, resend_before: float | None = None) -> list[CheckinEvent]:
        """Up to ``limit`` waiting check-ins, oldest first, exactly as they were made; with
        ``resend_before`` (epoch seconds) only those never sent or sent before it."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id, ts, token, store FROM checkins"
                " WHERE ? IS NULL OR sent_at IS NULL OR sent_at < ? ORDER BY seq LIMIT ?",
                (resend_before, resend_before, limit),
            ).fetchall()
        return [
            CheckinEvent(
                id=event_id, seq=seq, ts=datetime.fromisoformat(ts), token=token, store=store
            )
            for seq, event_id, ts, token, store in rows
        ]

    def mark_sent(self, ids: Iterable[str], at: float) -> None:
        """Note that the broker took these check-ins at ``at`` (epoch seconds)."""
        ids = list(ids)
        with self._lock:
            try:
                self._db.executemany(
                    "UPDATE checkins SET sent_at = ? WHERE id = ?", [(at, i) for i in ids]
                )
            except sqlite3.Error as exc:
                raise QueueError(f"cannot update the check-in queue {self.path}: {exc}") from exc

    def remove(self, ids: Iterable[str]) -> set[str]:
        """Forget check-ins the core has receipted; returns those that were still here."""
        ids = list(ids)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                gone = {
                    i
                    for i in ids
                    if self._db.execute("DELETE FROM checkins WHERE id = ?", (i,)).rowcount
                }
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise QueueError(f"cannot update the check-in queue {self.path}: {exc}") from exc
        return gone

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM checkins").fetchone()
        return int(count)

    @property
    def dropped(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT value FROM meta WHERE name = 'dropped'").fetchone()
        return int(count)

    def close(self) -> None:
        with self._lock:
            self._db.close()
