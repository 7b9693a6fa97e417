"""A test-side stand-in for the core: commit event ids to SQLite, then receipt them.

It does what the contract asks of the core (docs/architecture.md, "Nothing lost,
nothing counted twice"): decode, apply each event id at most once in a committed
SQLite transaction, acknowledge the MQTT message only after the commit, then
publish the receipt on the node's receipts topic.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from mallnet.config import MqttSettings
from mallnet.mqtt import Inbound, MqttClient
from mallnet.wire import WireError, decode, encode
from mallnet.wire.payloads import FootfallBatch, PresenceBatch, Receipt
from mallnet.wire.topics import FOOTFALL, PRESENCE, RECEIPTS


class CoreStub:
    def __init__(self, db_path: Path, settings: MqttSettings, mall: str, client_id: str = "core"):
        self.mall = mall
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(db_path), check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS events (n INTEGER PRIMARY KEY AUTOINCREMENT,"
            " id TEXT UNIQUE NOT NULL, node TEXT NOT NULL, seq INTEGER NOT NULL,"
            " leaf TEXT NOT NULL, payload TEXT NOT NULL)"
        )
        self._db.commit()
        self.deliveries = 0
        self.duplicates = 0
        self.rejected = 0
        self.receipts_sent = 0
        self.cond = threading.Condition()
        self.client = MqttClient(
            settings,
            client_id,
            subscriptions=[(PRESENCE.filter(mall), 1), (FOOTFALL.filter(mall), 1)],
            on_message=self._on_message,
            manual_ack=True,
            persistent_session=True,
        )

    def start(self, timeout: float = 10) -> None:
        self.client.start()
        assert self.client.wait_subscribed(timeout), "core stub could not connect and subscribe"

    def stop(self) -> None:
        self.client.stop()

    def close(self) -> None:
        self._db.close()

    def _on_message(self, message: Inbound) -> None:
        try:
            decoded = decode(message.topic, message.payload)
        except WireError:
            with self.cond:
                self.rejected += 1
            self.client.ack(message)
            return
        batch = decoded.message
        assert isinstance(batch, PresenceBatch | FootfallBatch)
        leaf = decoded.topic.spec.leaf
        with self._lock:
            dup = 0
            for event in batch.events:
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO events(id, node, seq, leaf, payload) VALUES (?,?,?,?,?)",
                    (event.id, batch.node, event.seq, leaf, event.model_dump_json()),
                )
                dup += 1 - cur.rowcount
            self._db.commit()
        self.client.ack(message)
        receipt = Receipt(ts=datetime.now(UTC), ids=tuple(e.id for e in batch.events))
        self.client.publish(RECEIPTS.topic(self.mall, batch.node), encode(receipt))
        with self.cond:
            self.deliveries += 1
            self.duplicates += dup
            self.receipts_sent += 1
            self.cond.notify_all()

    def rows(self, node: str | None = None) -> list[tuple[str, str, int, str]]:
        """(id, node, seq, leaf) in first-arrival order."""
        with self._lock:
            query = "SELECT id, node, seq, leaf FROM events"
            args: tuple[str, ...] = ()
            if node is not None:
                query += " WHERE node=?"
                args = (node,)
            return list(self._db.execute(query + " ORDER BY n", args))

    def count(self) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT count(*) FROM events").fetchone()
            return int(n)
