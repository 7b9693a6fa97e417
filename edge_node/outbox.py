"""The durable outbox: every event is in SQLite before it is published.

An event is written (with its id, its per-node ``seq`` and its JSON payload) in
one transaction that also advances the persisted sequence counter, so ``seq``
is monotonic across restarts and ``kill -9``. It stays until a core receipt
names its id. ``sent_at`` marks what was published and when, so the publisher
can republish everything unreceipted, in seq order, after a reconnect or a
receipt timeout. The table is bounded (``max_events``): beyond it the oldest
events are dropped, counted in ``meta`` and reported in the heartbeat.

WAL journal, ``synchronous=FULL``: a committed event survives a process crash
and a power cut. The outbox is used from one thread at a time (the app's loop).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from edge_node.errors import OutboxError
from mallnet.ids import new_event_id

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Stored:
    """One waiting event."""

    seq: int
    id: str
    leaf: str  # the contract topic leaf: presence, footfall, parking
    payload: str  # the event's JSON (one element of a batch's ``events``)
    created: float
    sent_at: float | None


class Outbox:
    """SQLite outbox with a persisted sequence counter and an oldest-first bound."""

    def __init__(
        self,
        path: Path,
        *,
        max_events: int = 200_000,
        make_id: Callable[[], str] = new_event_id,
    ) -> None:
        self.path = path
        self.max_events = max_events
        self._make_id = make_id
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Built on one thread and run on another (the app loop); never used concurrently.
            self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self.db = sqlite_utils.Database(self._conn)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open outbox {path}: {exc}") from exc
        self._depth = self._count()
        self._dropped = self.meta("dropped")

    def _migrate(self) -> None:
        db = self.db
        if "meta" not in db.table_names():
            db.table("meta").create({"key": str, "value": int}, pk="key", if_not_exists=True)
        if "events" not in db.table_names():
            db.table("events").create(
                {
                    "seq": int,
                    "id": str,
                    "leaf": str,
                    "payload": str,
                    "created": float,
                    "sent_at": float,
                },
                pk="seq",
                not_null={"id", "leaf", "payload", "created"},
                if_not_exists=True,
            )
            db.table("events").create_index(["id"], unique=True, if_not_exists=True)
        for key, value in (("next_seq", 1), ("dropped", 0), ("health_seq", 1)):
            self._conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (key, value))
        self._conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,)
        )

    def close(self) -> None:
        self._conn.close()

    # -- writing --------------------------------------------------------------------

    def append(self, leaf: str, build: Callable[[str, int], str], now: float) -> Stored:
        """Store one event: ``build(id, seq)`` returns its JSON; durable when this returns."""
        return self.append_many([(leaf, build)], now)[0]

    def append_many(
        self, items: Sequence[tuple[str, Callable[[str, int], str]]], now: float
    ) -> list[Stored]:
        """Store several events in one transaction (one fsync); all or none are written."""
        conn = self._conn
        stored: list[Stored] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                (seq,) = conn.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
                for leaf, build in items:
                    event_id = self._make_id()
                    payload = build(event_id, seq)
                    conn.execute(
                        "INSERT INTO events(seq, id, leaf, payload, created, sent_at)"
                        " VALUES (?, ?, ?, ?, ?, NULL)",
                        (seq, event_id, leaf, payload, now),
                    )
                    stored.append(Stored(seq, event_id, leaf, payload, now, None))
                    seq += 1
                conn.execute("UPDATE meta SET value=? WHERE key='next_seq'", (seq,))
                dropped = self._bound(len(stored))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot write outbox {self.path}: {exc}") from exc
        self._depth += len(stored) - dropped
        self._dropped += dropped
        return stored

    def _bound(self, added: int) -> int:
        excess = self._depth + added - self.max_events
        if excess <= 0:
            return 0
        cur = self._conn.execute(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?)",
            (excess,),
        )
        dropped = cur.rowcount
        self._conn.execute("UPDATE meta SET value = value + ? WHERE key='dropped'", (dropped,))
        log.warning("outbox full (%d events): dropped the %d oldest", self.max_events, dropped)
        return int(dropped)

    def next_health_seq(self) -> int:
        """A persisted, monotonic sequence for heartbeats (not kept in the outbox)."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        (seq,) = conn.execute("SELECT value FROM meta WHERE key='health_seq'").fetchone()
        conn.execute("UPDATE meta SET value=? WHERE key='health_seq'", (seq + 1,))
        conn.execute("COMMIT")
        return int(seq)

    # -- publishing -----------------------------------------------------------------

    def unsent(self, limit: int) -> list[Stored]:
        """Events never published (or reset for republishing), oldest first."""
        rows = self._conn.execute(
            "SELECT seq, id, leaf, payload, created, sent_at FROM events"
            " WHERE sent_at IS NULL ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [Stored(*row) for row in rows]

    def mark_sent(self, seqs: Sequence[int], at: float) -> None:
        self._conn.executemany("UPDATE events SET sent_at=? WHERE seq=?", [(at, s) for s in seqs])

    def reset_sent(self) -> int:
        """Mark every waiting event unsent, so all are republished in seq order."""
        cur = self._conn.execute("UPDATE events SET sent_at=NULL WHERE sent_at IS NOT NULL")
        return int(cur.rowcount)

    def inflight(self) -> int:
        (count,) = self._conn.execute(
            "SELECT count(*) FROM events WHERE sent_at IS NOT NULL"
        ).fetchone()
        return int(count)

    def oldest_sent_at(self) -> float | None:
        row = self._conn.execute(
            "SELECT sent_at FROM events WHERE sent_at IS NOT NULL ORDER BY seq LIMIT 1"
        ).fetchone()
        return None if row is None else float(row[0])

    def receipt(self, ids: Iterable[str]) -> int:
        """Remove events the core has committed; returns how many were waiting."""
        removed = 0
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for event_id in ids:
                removed += conn.execute("DELETE FROM events WHERE id=?", (event_id,)).rowcount
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._depth -= removed
        return removed

    # -- reporting ------------------------------------------------------------------

    def _count(self) -> int:
        (count,) = self._conn.execute("SELECT count(*) FROM events").fetchone()
        return int(count)

    @property
    def depth(self) -> int:
        return self._depth

    def oldest_age(self, now: float) -> float:
        row = self._conn.execute("SELECT created FROM events ORDER BY seq LIMIT 1").fetchone()
        return 0.0 if row is None else max(0.0, now - float(row[0]))

    def meta(self, key: str) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return 0 if row is None else int(row[0])

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def last_seq(self) -> int:
        return self.meta("next_seq") - 1


def outbox_report(path: Path, now: float) -> dict[str, float | int]:
    """What a node's outbox holds, read-only (``mallnet edge outbox``; a rolling update waits
    for ``pending`` 0). Never creates or changes the file a running service owns."""
    if not path.exists():
        raise OutboxError(f"no outbox at {path}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            (pending,) = conn.execute("SELECT count(*) FROM events").fetchone()
            oldest = conn.execute("SELECT created FROM events ORDER BY seq LIMIT 1").fetchone()
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise OutboxError(f"cannot read outbox {path}: {exc}") from exc
    return {
        "pending": int(pending),
        "oldest_age_s": 0.0 if oldest is None else round(max(0.0, now - float(oldest[0])), 3),
        "last_seq": int(meta.get("next_seq", 1)) - 1,
        "dropped": int(meta.get("dropped", 0)),
    }
