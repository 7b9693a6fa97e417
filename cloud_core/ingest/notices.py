"""The pending-notice outbox: inbox notices, at least once.

Each notice is written to ``pending_notices`` (its id, topic and payload) in the
transaction of the credit that makes it, published with QoS 1 after the commit (by the
``Consumer``), and deleted only once the broker has acknowledged that publish (reason code
0 or 16). On start-up and after every reconnect of the publishing connection, what is
still pending is published again, in order; a repeat carries the same notice id, so an
app can drop it. Notices kept by the API's writes (a till's redemption, a refund) are
picked up by the ingest worker's poll of what is new (``pending(after=…)``), a few times a
second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cloud_core.rules.common import Notice
from cloud_core.store import Conn, Store
from mallnet.wire import encode
from mallnet.wire.topics import INBOX


@dataclass(frozen=True)
class PendingNotice:
    """An inbox notice written in a committed transaction, until the broker acknowledges it."""

    seq: int
    id: str
    topic: str
    payload: bytes


class NoticeOutbox:
    """``pending_notices`` of one mall: keep (in the caller's transaction), list, forget."""

    def __init__(self, mall: str, store: Store) -> None:
        self.mall = mall
        self.store = store

    def keep(self, conn: Conn, notices: Sequence[Notice], now_iso: str) -> list[PendingNotice]:
        """Write notices to ``pending_notices`` (in the caller's transaction), in order."""
        kept = []
        for notice in notices:
            topic = INBOX.topic(self.mall, notice.customer)
            payload = encode(notice.message)
            (seq,) = conn.execute(
                "INSERT INTO pending_notices (id, customer_id, topic, payload, created_at)"
                " VALUES (?, ?, ?, ?, ?) RETURNING seq",
                (notice.message.id, notice.customer, topic, payload, now_iso),
            ).fetchone()
            kept.append(PendingNotice(seq, notice.message.id, topic, payload))
        return kept

    @staticmethod
    def forget(conn: Conn, published: Sequence[int]) -> None:
        """Delete acknowledged notices (``seq``), in the caller's transaction."""
        conn.executemany("DELETE FROM pending_notices WHERE seq = ?", [(s,) for s in published])

    def published(self, published: Sequence[int]) -> None:
        """Delete pending notices the broker has acknowledged (own transaction)."""
        if published:
            with self.store.transaction() as conn:
                self.forget(conn, published)

    def pending(self, after: int = 0) -> list[PendingNotice]:
        """Every notice not yet acknowledged by the broker (past ``seq`` ``after``), oldest
        first."""
        with self.store.read() as conn:
            return [
                PendingNotice(int(row[0]), str(row[1]), str(row[2]), bytes(row[3]))
                for row in conn.execute(
                    "SELECT seq, id, topic, payload FROM pending_notices WHERE seq > ?"
                    " ORDER BY seq",
                    (after,),
                )
            ]
