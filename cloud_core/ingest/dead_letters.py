"""Dead letters: rejected messages kept (bounded) with their topic and reason, counted per node.

A message that does not decode, comes from a node the core does not know, or names
another mall is kept in ``dead_letters`` with its topic and reason, counted, and acked;
it never stops the consumer. A retained message on an event topic is counted and acked,
never applied nor kept (``ignore_retained``). Per-node counts live in
``dead_letter_counts``; the rows are bounded by count (``trim``, in the batch's
transaction) and by age (``drop``, from the expiry job).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from cloud_core import ledger
from cloud_core.config import DeadLetterSettings
from cloud_core.store import Conn
from mallnet.mqtt import Inbound
from mallnet.wire.topics import TopicError, parse_topic

log = logging.getLogger(__name__)


def node_of(topic: str) -> str:
    """The node (or kiosk) a topic names, for per-node counts; ``""`` if it names none."""
    parts = topic.split("/")
    return parts[4][:64] if len(parts) == 6 else ""


def count_for_node(conn: Conn, node: str, what: str, n: int = 1) -> None:
    """Add to a node's dead-letter count (``dead_letter_counts``, in the caller's transaction)."""
    conn.execute(
        "INSERT INTO dead_letter_counts (node, what, n) VALUES (?, ?, ?)"
        " ON CONFLICT (node, what) DO UPDATE SET n = dead_letter_counts.n + excluded.n",
        (node, what, n),
    )


def drop(conn: Conn, where: str, arg: object, what: str) -> int:
    """Delete dead letters matching ``where`` (a fixed SQL condition), counted per node."""
    dropped = conn.execute(
        f"SELECT node, COUNT(*) FROM dead_letters WHERE {where} GROUP BY node",  # noqa: S608
        (arg,),
    ).fetchall()
    if not dropped:
        return 0
    conn.execute(f"DELETE FROM dead_letters WHERE {where}", (arg,))  # noqa: S608
    for node, n in dropped:
        count_for_node(conn, node, what, n)
    return sum(n for _, n in dropped)


def ignore_retained(conn: Conn, message: Inbound, counts: Counter[str]) -> bool:
    """A retained message on an event topic (presence, footfall, health, parking) is
    junk or a misconfigured node: a replay of it at every reconnect must credit and
    keep nothing. It is counted (per node) and acked, never applied or dead-lettered."""
    if not message.retain:
        return False
    try:
        spec = parse_topic(message.topic).spec
    except TopicError:
        return False
    if spec.retained:
        return False
    log.warning("ignoring a retained message on event topic %s", message.topic)
    counts["retained_ignored"] += 1
    count_for_node(conn, node_of(message.topic), "retained_ignored")
    return True


class DeadLetters:
    """Keeps rejected messages within ``DeadLetterSettings`` (in the caller's transaction)."""

    def __init__(self, bounds: DeadLetterSettings, clock: Callable[[], float]) -> None:
        self.bounds = bounds
        self.clock = clock

    def keep(
        self,
        conn: Conn,
        message: Inbound,
        kind: str,
        reason: str,
        counts: Counter[str],
    ) -> None:
        """Keep a rejected message, bounded: its first ``payload_max_bytes`` (all of it
        for kind ``error``) with its full size and SHA-256; a retained message already kept
        (same topic and hash, redelivered at a reconnect) is counted, not kept again. The row
        bound is applied before the transaction commits (``trim``)."""
        node = node_of(message.topic)
        digest = hashlib.sha256(message.payload).hexdigest()
        if (
            message.retain
            and conn.execute(
                "SELECT 1 FROM dead_letters WHERE topic = ? AND sha256 = ?",
                (message.topic, digest),
            ).fetchone()
        ):
            counts["dead_letters.repeat"] += 1
            count_for_node(conn, node, "repeat")
            return
        size = len(message.payload)
        # one that decoded and tripped a bug (``error``) is a contract batch, bounded by its
        # schema: kept whole, for a replay once the bug is fixed
        kept = (
            message.payload if kind == "error" else message.payload[: self.bounds.payload_max_bytes]
        )
        log.warning(
            "dead letter from %s (%s, %d bytes): %s", message.topic, kind, size, reason[:200]
        )
        conn.execute(
            "INSERT INTO dead_letters (ts, topic, kind, reason, payload, node, size, sha256)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                ledger.iso(datetime.fromtimestamp(self.clock(), UTC)),
                message.topic,
                kind,
                reason[:2000],
                kept,
                node,
                size,
                digest,
            ),
        )
        counts["dead_letters"] += 1
        counts[f"dead_letters.{kind}"] += 1
        count_for_node(conn, node, "kept")
        if len(kept) < size:
            counts["dead_letters.truncated"] += 1
            count_for_node(conn, node, "truncated")
            count_for_node(conn, node, "truncated_bytes", size - len(kept))

    def trim(self, conn: Conn, counts: Counter[str]) -> None:
        """Delete the oldest dead letters past ``max_rows`` (counted per node as evicted)."""
        row = conn.execute(
            "SELECT id FROM dead_letters ORDER BY id DESC LIMIT 1 OFFSET ?",
            (self.bounds.max_rows,),
        ).fetchone()
        if row is not None:
            counts["dead_letters.evicted"] += drop(conn, "id <= ?", row[0], "evicted")
