"""The MQTT consumer: decode → apply a batch in one transaction → commit → ack → receipts.

``Applier`` is the logic: it takes received messages and the database and returns what
to publish; it never touches the network. ``Consumer`` is the thin adapter around it:
paho's network thread only queues messages; one worker thread drains the queue,
applies up to ``batch_max`` messages per transaction, and only after ``COMMIT``
acknowledges each message to the broker (manual ack) and publishes the receipts the
nodes wait for and the customers' inbox notices.

Inbox notices are at least once: each is written to ``pending_notices`` (its id, topic
and payload) in the transaction of the credit that makes it, published with QoS 1 after
the commit, and deleted only once the broker has acknowledged that publish (reason code
0 or 16). On start-up and after every reconnect of the publishing connection, what is
still pending is published again, in order; a repeat carries the same notice id, so an
app can drop it.

Exactly once: each event id is inserted into ``processed_events`` in the transaction
that applies its effects, so a redelivery (a broker resend after a crash between commit
and ack, a node resending from its outbox, a second worker) is recognised, counted as a
duplicate, written nowhere, and receipted again. A message that does not decode, comes
from a node the core does not know, or names another mall is kept in ``dead_letters``
with its topic and reason, counted, and acked; it never stops the consumer.

``after_commit`` (optional, given by whoever builds the ``Consumer``) is called with the
number of batches committed so far, right after each commit and before the batch is acked
and its receipts and notices are published: the tests inject a crash there (the worst
moment) through their own launcher; production code reads no test switch.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cloud_core import ledger
from cloud_core.config import CoreConfig, StoreConfig, VisitRules
from cloud_core.customers import (
    TagResolver,
    key_generation,
    key_removals,
    load_all_keys,
    load_keys_after,
)
from cloud_core.offers import Campaign, list_campaigns
from cloud_core.parking import ParkingRules
from cloud_core.rules.visits import Notice, apply_visit, credit_notice
from cloud_core.store import Store
from cloud_core.telemetry import Point, TelemetrySink
from mallnet.errors import MqttError
from mallnet.mqtt import Inbound, MqttClient, PublishTicket, Will
from mallnet.wire import WireError, decode, encode
from mallnet.wire.payloads import (
    MAX_BATCH,
    DeviceStatus,
    FootfallBatch,
    HealthReport,
    KioskOffers,
    NodeConfig,
    OfferCard,
    ParkingBatch,
    PresenceBatch,
    PresenceEvent,
    PresenceTuning,
    Receipt,
)
from mallnet.wire.topics import (
    FOOTFALL,
    HEALTH,
    INBOX,
    KIOSK_OFFERS,
    NODE_CONFIG,
    PARKING,
    PRESENCE,
    RECEIPTS,
    STATUS,
    TopicError,
    parse_topic,
)

log = logging.getLogger(__name__)

Clock = Callable[[], float]


#: The broker's PUBACK reason codes that mean it took a publish (16: no subscribers).
PUBLISHED = (0, 16)


@dataclass(frozen=True)
class PendingNotice:
    """An inbox notice written in a committed transaction, until the broker acknowledges it."""

    seq: int
    id: str
    topic: str
    payload: bytes


@dataclass
class Outgoing:
    """What one committed batch publishes (and, while it is built, its processed rows)."""

    now_iso: str
    receipts: dict[str, list[str]] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    pending: list[PendingNotice] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    processed: dict[str, tuple[str, str, str, str, str]] = field(default_factory=dict)
    campaigns: list[Campaign] | None = None  # read once per batch, when a visit needs them


class Applier:
    """Applies decoded contract messages to the database (no network)."""

    def __init__(
        self, config: CoreConfig, store: Store, clock: Clock, resolver: TagResolver | None = None
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.tz = ZoneInfo(config.timezone)
        self.stores_by_node: dict[str, StoreConfig] = config.store_of_node()
        self.rules: dict[str, VisitRules] = {s.id: config.rules_for(s) for s in config.stores}
        self.resolver = resolver or TagResolver(
            lambda: load_all_keys(store.conn),
            clock,
            load_keys_after=lambda after: load_keys_after(store.conn, after),
        )
        self.parking = (  # car parks: docs/parking.md
            ParkingRules(config.parking, self.tz, config.mall) if config.parking else None
        )
        self.counters: Counter[str] = Counter()
        self._lock = threading.Lock()

    def apply(self, messages: Sequence[Inbound], *, published: Sequence[int] = ()) -> Outgoing:
        """Apply messages in one transaction; returns what to publish once it committed.

        ``published``: pending notices (``seq``) the broker has acknowledged since the last
        transaction, deleted in this one.
        """
        out = Outgoing(now_iso=ledger.iso(datetime.fromtimestamp(self.clock(), UTC)))
        counts: Counter[str] = Counter()
        with self.store.transaction() as conn:
            self.resolver.refresh(key_generation(conn), key_removals(conn))
            for message in messages:
                if not self._ignore_retained(conn, message, counts):
                    self._apply_one(conn, message, out, counts)
            if counts["dead_letters"]:
                self._trim_dead_letters(conn, counts)
            conn.executemany(
                "INSERT INTO processed_events (event_id, node, topic, outcome, ts)"
                " VALUES (?, ?, ?, ?, ?)",
                out.processed.values(),
            )
            out.pending = self._keep_notices(conn, out.notices, out.now_iso)
            self._forget_notices(conn, published)
        counts["batches"] += 1
        counts["messages"] += len(messages)
        with self._lock:
            self.counters.update(counts)
        return out

    def _keep_notices(
        self, conn: sqlite3.Connection, notices: Sequence[Notice], now_iso: str
    ) -> list[PendingNotice]:
        """Write notices to ``pending_notices`` (in the caller's transaction), in order."""
        kept = []
        for notice in notices:
            topic = INBOX.topic(self.config.mall, notice.customer)
            payload = encode(notice.message)
            cursor = conn.execute(
                "INSERT INTO pending_notices (id, customer_id, topic, payload, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (notice.message.id, notice.customer, topic, payload, now_iso),
            )
            seq = cursor.lastrowid
            assert seq is not None
            kept.append(PendingNotice(seq, notice.message.id, topic, payload))
        return kept

    @staticmethod
    def _forget_notices(conn: sqlite3.Connection, published: Sequence[int]) -> None:
        conn.executemany("DELETE FROM pending_notices WHERE seq = ?", [(s,) for s in published])

    def notices_published(self, published: Sequence[int]) -> None:
        """Delete pending notices the broker has acknowledged (own transaction)."""
        if published:
            with self.store.transaction() as conn:
                self._forget_notices(conn, published)

    def pending_notices(self) -> list[PendingNotice]:
        """Every notice not yet acknowledged by the broker, oldest first."""
        with self.store.read() as conn:
            return [
                PendingNotice(int(row[0]), str(row[1]), str(row[2]), bytes(row[3]))
                for row in conn.execute(
                    "SELECT seq, id, topic, payload FROM pending_notices ORDER BY seq"
                )
            ]

    def node_configs(self) -> list[tuple[str, NodeConfig]]:
        """The `NodeConfig` of every node whose store sets `node_tuning`; its revision goes up
        (persisted, so across restarts and workers) whenever the tuning changes."""
        out = []
        with self.store.transaction() as conn:
            for node, store in sorted(self.stores_by_node.items()):
                if store.node_tuning is None:
                    continue
                tuning = PresenceTuning(**store.node_tuning.model_dump())
                payload = tuning.model_dump_json(exclude_none=True)
                row = conn.execute(
                    "SELECT revision, payload FROM node_configs WHERE node = ?", (node,)
                ).fetchone()
                revision = 1 if row is None else int(row[0]) + (row[1] != payload)
                conn.execute(
                    "INSERT INTO node_configs (node, revision, payload) VALUES (?, ?, ?)"
                    " ON CONFLICT (node) DO UPDATE SET revision = excluded.revision,"
                    " payload = excluded.payload",
                    (node, revision, payload),
                )
                out.append((node, NodeConfig(revision=revision, presence=tuning)))
        return out

    def snapshot(self) -> dict[str, int]:
        """A copy of the counters (outcomes, duplicates, dead letters, batches…)."""
        with self._lock:
            return dict(self.counters)

    def kiosk_offers(self) -> KioskOffers:
        """The offers kiosks show now (active campaigns), newest deadline last."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        with self.store.read() as conn:
            active = list_campaigns(conn, active_at=now)
        cards = sorted(
            (c.card() for c in active), key=lambda card: (card.valid_until, card.campaign)
        )
        return KioskOffers(ts=now, offers=tuple(cards[:200]))

    def apply_isolating(self, messages: Sequence[Inbound]) -> Outgoing:
        """Apply messages one transaction each; one that still fails is dead-lettered
        (kind ``error``, its events receipted: the payload is kept for a replay once the
        bug is fixed) so that the rest go through and the consumer carries on."""
        merged = Outgoing(now_iso="")
        for message in messages:
            try:
                out = self.apply([message])
            except sqlite3.OperationalError:
                raise
            except Exception as exc:
                log.exception("dead-lettering a message that fails to apply: %s", message.topic)
                counts: Counter[str] = Counter()
                with self.store.transaction() as conn:
                    self._dead_letter(
                        conn, message, "error", f"{type(exc).__name__}: {exc}", counts
                    )
                    self._trim_dead_letters(conn, counts)
                with self._lock:
                    self.counters.update(counts)
                # kept in dead_letters, so the node may drop it: receipt its events
                decoded = decode(message.topic, message.payload)
                events = getattr(decoded.message, "events", ())
                merged.receipts.setdefault(decoded.topic.entity, []).extend(e.id for e in events)
                continue
            for node, ids in out.receipts.items():
                merged.receipts.setdefault(node, []).extend(ids)
            merged.notices.extend(out.notices)
            merged.pending.extend(out.pending)
            merged.points.extend(out.points)
        return merged

    def _dead_letter(
        self,
        conn: sqlite3.Connection,
        message: Inbound,
        kind: str,
        reason: str,
        counts: Counter[str],
    ) -> None:
        """Keep a rejected message, bounded: its first ``payload_max_bytes`` (all of it
        for kind ``error``) with its full size and SHA-256; a retained message already kept
        (same topic and hash, redelivered at a reconnect) is counted, not kept again. The row
        bound is applied before the transaction commits (``_trim_dead_letters``)."""
        bounds = self.config.ingest.dead_letters
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
        kept = message.payload if kind == "error" else message.payload[: bounds.payload_max_bytes]
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

    def _trim_dead_letters(self, conn: sqlite3.Connection, counts: Counter[str]) -> None:
        """Delete the oldest dead letters past ``max_rows`` (counted per node as evicted)."""
        row = conn.execute(
            "SELECT id FROM dead_letters ORDER BY id DESC LIMIT 1 OFFSET ?",
            (self.config.ingest.dead_letters.max_rows,),
        ).fetchone()
        if row is not None:
            counts["dead_letters.evicted"] += drop_dead_letters(conn, "id <= ?", row[0], "evicted")

    def _ignore_retained(
        self, conn: sqlite3.Connection, message: Inbound, counts: Counter[str]
    ) -> bool:
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

    def _apply_one(
        self, conn: sqlite3.Connection, message: Inbound, out: Outgoing, counts: Counter[str]
    ) -> None:
        try:
            decoded = decode(message.topic, message.payload)
        except WireError as exc:
            self._dead_letter(conn, message, exc.kind.value, exc.detail, counts)
            return
        topic = decoded.topic
        if topic.mall != self.config.mall:
            self._dead_letter(conn, message, "mall", f"mall {topic.mall!r} is not ours", counts)
            return
        payload = decoded.message
        if isinstance(payload, DeviceStatus):
            self._status(conn, payload, out.now_iso)
            counts["status"] += 1
            return
        node = topic.entity
        store = self.stores_by_node.get(node)
        if store is None:  # a car-park gate is no store (docs/parking.md)
            self._parking_or_unknown(
                conn, message, node=node, batch=payload, out=out, counts=counts
            )
            return
        if isinstance(payload, PresenceBatch):
            ids = out.receipts.setdefault(node, [])
            batch_ids = [event.id for event in payload.events]
            ids.extend(batch_ids)
            known = self._processed_among(conn, batch_ids)
            for event in payload.events:
                self._presence(
                    conn, node=node, store=store, event=event, out=out, counts=counts, known=known
                )
        elif isinstance(payload, FootfallBatch):
            ids = out.receipts.setdefault(node, [])
            for ff in payload.events:
                ids.append(ff.id)
                if not self._first_time(
                    conn, event_id=ff.id, node=node, topic=topic.spec.name, out=out, counts=counts
                ) or self._stale(ff.id, ff.window_start, out, counts):
                    continue
                hour = ff.window_start.strftime("%Y-%m-%dT%H:00Z")
                conn.execute(
                    "INSERT INTO footfall (node, hour, unique_tags, adverts, windows)"
                    " VALUES (?, ?, ?, ?, 1) ON CONFLICT (node, hour) DO UPDATE SET"
                    " unique_tags = unique_tags + excluded.unique_tags,"
                    " adverts = adverts + excluded.adverts, windows = windows + 1",
                    (node, hour, ff.unique_tags, ff.adverts),
                )
                out.points.append(
                    Point(
                        "footfall",
                        {"mall": self.config.mall, "node": node, "store": store.id},
                        {"unique_tags": ff.unique_tags, "adverts": ff.adverts},
                        ff.window_start,
                    )
                )
                counts["footfall"] += 1
        elif isinstance(payload, HealthReport):
            if self._first_time(
                conn, event_id=payload.id, node=node, topic=topic.spec.name, out=out, counts=counts
            ) and not self._stale(payload.id, payload.ts, out, counts):
                self._health(conn, payload, out)
                counts["health"] += 1
        else:  # subscribed topics only carry the types above
            self._dead_letter(conn, message, "unsupported", type(payload).__name__, counts)

    def _parking_or_unknown(
        self,
        conn: sqlite3.Connection,
        message: Inbound,
        *,
        node: str,
        batch: object,
        out: Outgoing,
        counts: Counter[str],
    ) -> None:
        """A gate's parking batches go to the parking rules and its heartbeats are kept like a
        store node's; anything else is dead-lettered."""
        gate = self.parking is not None and self.parking.knows(node)
        if gate and isinstance(batch, HealthReport):
            if self._first_time(
                conn, event_id=batch.id, node=node, topic="health", out=out, counts=counts
            ) and not self._stale(batch.id, batch.ts, out, counts):
                self._health(conn, batch, out)
                counts["health"] += 1
            return
        if not (gate and isinstance(batch, ParkingBatch) and self.parking):
            self._dead_letter(conn, message, "unauthorised", f"unknown node {node!r}", counts)
            return
        for event in batch.events:
            out.receipts.setdefault(node, []).append(event.id)
            if self._first_time(
                conn, event_id=event.id, node=node, topic="parking", out=out, counts=counts
            ) and not self._stale(event.id, event.ts, out, counts):
                parked = self.parking.apply(conn, node=node, event=event)
                out.notices.extend(parked.notices)
                out.points.extend(parked.telemetry)
                counts[parked.outcome] += 1
                counts["points"] += parked.points
                out.processed[event.id] = (event.id, node, "parking", parked.outcome, out.now_iso)

    def _stale(self, event_id: str, ts: datetime, out: Outgoing, counts: Counter[str]) -> bool:
        """A footfall, health or parking event older than ``max_event_age_s`` (not parking) or
        dated more than ``max_clock_skew_s`` ahead is not applied (outcome ``stale`` or
        ``future``): a stale id may be forgotten already, and counting it again must not
        happen; a future one is forged or from a node whose clock runs ahead."""
        age = self.clock() - ts.timestamp()
        node, topic = out.processed[event_id][1:3]
        if -age > self.config.ingest.max_clock_skew_s:
            outcome = "future"
        elif age > self.config.ingest.max_event_age_s and topic != "parking":
            outcome = "stale"
        else:
            return False
        out.processed[event_id] = (event_id, node, topic, outcome, out.now_iso)
        counts[f"{outcome}_{topic}"] += 1
        return True

    @staticmethod
    def _processed_among(conn: sqlite3.Connection, event_ids: Sequence[str]) -> set[str]:
        """Which of these ids were applied before (one query for a whole message)."""
        marks = ",".join("?" * len(event_ids))
        return {
            row[0]
            for row in conn.execute(
                f"SELECT event_id FROM processed_events WHERE event_id IN ({marks})",  # noqa: S608
                tuple(event_ids),
            )
        }

    def _first_time(
        self,
        conn: sqlite3.Connection,
        *,
        event_id: str,
        node: str,
        topic: str,
        out: Outgoing,
        counts: Counter[str],
        known: set[str] | None = None,
    ) -> bool:
        """Claim an event id for this batch; False (a duplicate) if it was applied before.

        The claim is written with the batch (``processed_events``, primary key on the id), in
        the same transaction as the event's effects.
        """
        if event_id in out.processed or (
            event_id in known
            if known is not None
            else conn.execute(
                "SELECT 1 FROM processed_events WHERE event_id = ?", (event_id,)
            ).fetchone()
        ):
            counts["duplicates"] += 1
            return False
        out.processed[event_id] = (event_id, node, topic, "applied", out.now_iso)
        counts["events"] += 1
        return True

    def _presence(
        self,
        conn: sqlite3.Connection,
        *,
        node: str,
        store: StoreConfig,
        event: PresenceEvent,
        out: Outgoing,
        counts: Counter[str],
        known: set[str],
    ) -> None:
        if not self._first_time(
            conn,
            event_id=event.id,
            node=node,
            topic="presence",
            out=out,
            counts=counts,
            known=known,
        ):
            return
        rules = self.rules[store.id]
        outcome: str
        ts_epoch = event.ts.timestamp()
        age = self.clock() - ts_epoch
        if -age > self.config.ingest.max_clock_skew_s:
            # dated ahead of our clock: its (future window's) id must not credit today
            outcome = "future"
        elif event.kind == "enter" and event.inside_s < rules.min_dwell_s:
            # cheap exit before resolving: the tag's later dwells and exit cover its enter
            outcome = "short"
        elif age > self.config.ingest.max_event_age_s:
            outcome = "stale"
        else:
            resolution = self.resolver.resolve(event.tag, ts_epoch)
            if resolution.customer is None:
                outcome = "replayed" if resolution.replayed else "unknown_tag"
            else:
                if out.campaigns is None:
                    out.campaigns = list_campaigns(conn)
                result = apply_visit(
                    conn,
                    customer=resolution.customer,
                    store=store,
                    rules=rules,
                    game=self.config.game,
                    tz=self.tz,
                    node=node,
                    event_id=event.id,
                    ts=event.ts,
                    inside_s=event.inside_s,
                    campaigns=out.campaigns,
                )
                outcome = result.outcome
                out.notices.extend(result.notices)
                counts["points"] += result.points
        counts[outcome] += 1
        out.processed[event.id] = (event.id, node, "presence", outcome, out.now_iso)

    def _status(self, conn: sqlite3.Connection, status: DeviceStatus, now_iso: str) -> None:
        conn.execute(
            "INSERT INTO nodes (id, state, since, software, last_seen) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET state = excluded.state, since = excluded.since,"
            " software = excluded.software, last_seen = excluded.last_seen"
            " WHERE nodes.since IS NULL OR excluded.since >= nodes.since",
            (
                status.device,
                status.state,
                ledger.iso(status.since),
                status.software,
                now_iso,
            ),
        )

    def _health(self, conn: sqlite3.Connection, report: HealthReport, out: Outgoing) -> None:
        conn.execute(
            "INSERT INTO nodes (id, last_health, last_seen) VALUES (?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET last_health = excluded.last_health,"
            " last_seen = excluded.last_seen",
            (report.node, report.model_dump_json(), ledger.iso(report.ts)),
        )
        fields: dict[str, float] = {
            "uptime_s": report.uptime_s,
            "adverts_per_s": report.adverts_per_s,
            "events_per_s": report.events_per_s,
            "outbox_depth": report.outbox_depth,
            "outbox_oldest_age_s": report.outbox_oldest_age_s,
            "outbox_dropped": report.outbox_dropped,
            "scanner_restarts": report.scanner_restarts,
        }
        if report.cpu_temp_c is not None:
            fields["cpu_temp_c"] = report.cpu_temp_c
        if report.load_1m is not None:
            fields["load_1m"] = report.load_1m
        out.points.append(
            Point("node_health", {"mall": self.config.mall, "node": report.node}, fields, report.ts)
        )

    def expire(self) -> list[PendingNotice]:
        """The expiry job: zero due lots, journal each, keep and return the inbox notices;
        and forget presence, footfall and health ids too old to matter (``processed_events``
        stays bounded)."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        # An id processed more than twice the stale age ago can go: a redelivery of that
        # event now is stale anyway and credits (or counts) nothing.
        forget_before = now - timedelta(seconds=2 * self.config.ingest.max_event_age_s)
        with self.store.transaction() as conn:
            changes = ledger.expire_due(conn, now)
            forgotten = conn.execute(
                "DELETE FROM processed_events WHERE topic IN ('presence', 'footfall', 'health')"
                " AND ts < ?",
                (ledger.iso(forget_before),),
            ).rowcount
            # a stay that ended before then can only be joined by a stale event
            conn.execute(
                "DELETE FROM presence_segments WHERE end_epoch < ?", (forget_before.timestamp(),)
            )
            notices = [
                Notice(c.customer, credit_notice(c, f"{-c.delta} points expired in {c.pocket}"))
                for c in changes
            ]
            pending = self._keep_notices(conn, notices, ledger.iso(now))
            aged = now - timedelta(seconds=self.config.ingest.dead_letters.max_age_s)
            expired_letters = drop_dead_letters(conn, "ts < ?", ledger.iso(aged), "expired")
        with self._lock:
            self.counters["expired_lots"] += len(changes)
            self.counters["forgotten_ids"] += forgotten
            self.counters["dead_letters.expired"] += expired_letters
        return pending


def node_of(topic: str) -> str:
    """The node (or kiosk) a topic names, for per-node counts; ``""`` if it names none."""
    parts = topic.split("/")
    return parts[4][:64] if len(parts) == 6 else ""


def count_for_node(conn: sqlite3.Connection, node: str, what: str, n: int = 1) -> None:
    """Add to a node's dead-letter count (``dead_letter_counts``, in the caller's transaction)."""
    conn.execute(
        "INSERT INTO dead_letter_counts (node, what, n) VALUES (?, ?, ?)"
        " ON CONFLICT (node, what) DO UPDATE SET n = n + excluded.n",
        (node, what, n),
    )


def drop_dead_letters(conn: sqlite3.Connection, where: str, arg: object, what: str) -> int:
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


def subscriptions(config: CoreConfig) -> list[tuple[str, int]]:
    """Shared subscriptions for the load the workers split (plain ones for a lone worker,
    ``ingest.shared: false``); status is retained, so plain."""
    group, mall = config.ingest.share_group, config.mall
    load = [PRESENCE, FOOTFALL, HEALTH] + ([PARKING] if config.parking else [])
    return [
        (spec.shared_filter(group, mall) if config.ingest.shared else spec.filter(mall), spec.qos)
        for spec in load
    ] + [(STATUS.filter(mall), 1)]


class Consumer:
    """Runs an ``Applier`` behind an MQTT client with manual acknowledgement.

    Receipts, inbox notices and kiosk offers go out on a second connection
    (``publisher``) when one is given: the consuming connection then carries only the
    events and their acks, so the broker's acknowledgements of what the core publishes
    never queue behind (or hold up, through TCP's Nagle and delayed-ACK timers) the
    next events.
    """

    def __init__(
        self,
        applier: Applier,
        client_factory: Callable[[Callable[[Inbound], None]], MqttClient],
        telemetry: TelemetrySink,
        *,
        publisher: MqttClient | None = None,
        batch_max: int,
        batch_wait_s: float,
        expiry_interval_s: float,
        kiosk_offers_interval_s: float = 30.0,
        offline: Will | None = None,
        after_commit: Callable[[int], None] | None = None,
    ) -> None:
        self.applier = applier
        self._after_commit = after_commit
        self._offline = offline  # the retained core status published on a clean stop
        self.telemetry = telemetry
        self._queue: queue.Queue[tuple[float, Inbound]] = queue.Queue()
        self.client = client_factory(self._received)
        self.publisher = publisher or self.client
        self._delays: deque[float] = deque(maxlen=2000)
        self._batch_max = batch_max
        self._batch_wait_s = batch_wait_s
        self._expiry_interval_s = expiry_interval_s
        self._kiosk_offers_interval_s = kiosk_offers_interval_s
        self._kiosk_offers: tuple[OfferCard, ...] | None = None
        self._next_expiry = self._next_offers = 0.0
        self._node_configs_sent = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="core-ingest", daemon=True)
        self._committed = 0
        self.acked = 0
        self.failed_batches = 0
        self.db_full = 0  # batches refused because the database or disk is full
        self.storage_problem: str | None = None  # the last database failure, until a commit
        # pending notices (seq) published on this process's connection and not yet
        # acknowledged; and those acknowledged, to delete in the next transaction
        self._notice_tickets: dict[int, PublishTicket] = {}
        self._notices_published: list[int] = []
        self._publisher_connects = 0
        self.notices_refused = 0

    def start(self) -> None:
        self._thread.start()
        if self.publisher is not self.client:
            self.publisher.start()
        self.client.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._settle_notices(deadline=time.monotonic() + min(timeout, 5.0))
        self.client.stop(farewell=self._offline)
        if self.publisher is not self.client:
            self.publisher.stop()

    def _received(self, message: Inbound) -> None:
        self._queue.put((time.monotonic(), message))

    def _take_batch(self) -> list[tuple[float, Inbound]]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self._batch_wait_s
        while len(batch) < self._batch_max:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _jobs(self) -> None:
        """The periodic jobs, on the worker thread between batches."""
        connects = self.publisher.counters.connects
        if connects != self._publisher_connects and self.publisher.connected:
            # start-up or a reconnect: publish again what is pending (a crash before the
            # broker took it, another worker's, one the broker refused)
            self._publisher_connects = connects
            try:
                self._send_notices(self.applier.pending_notices(), skip_in_flight=True)
            except sqlite3.Error:
                log.exception("pending notices could not be read; retrying")
                self._publisher_connects = 0
        self._collect_published()
        if self._notices_published and self._queue.empty():
            try:
                self.applier.notices_published(self._notices_published)
                self._notices_published.clear()
            except sqlite3.Error:
                log.exception("published notices could not be forgotten; retrying")
        if not self._node_configs_sent and self.publisher.connected:
            self._node_configs_sent = True
            try:
                self._publish_node_configs()
            except sqlite3.Error:
                log.exception("node configs could not be written; retrying")
                self._node_configs_sent = False
        now = time.monotonic()
        if now >= self._next_expiry:
            self._next_expiry = now + self._expiry_interval_s
            try:
                self._send_notices(self.applier.expire())
            except sqlite3.Error:
                log.exception("expiry job failed; retrying later")
        if self.applier.config.kiosks and now >= self._next_offers and self.publisher.connected:
            self._next_offers = now + self._kiosk_offers_interval_s
            try:
                self._publish_kiosk_offers()
            except sqlite3.Error:
                log.exception("kiosk offers could not be read; retrying later")

    def _run(self) -> None:
        self._next_expiry = self._next_offers = time.monotonic()
        while not self._stop.is_set():
            self._jobs()
            taken = self._take_batch()
            if not taken:
                continue
            batch = [message for _, message in taken]
            try:
                out = self.applier.apply(batch, published=self._notices_published)
                self._notices_published.clear()
            except sqlite3.OperationalError as exc:
                # Locked, busy or out of disk: nothing was committed and nothing acked.
                # Put the messages back and retry soon (the broker would redeliver them
                # to this session after a reconnect anyway).
                self._storage_failed(exc, taken)
                continue
            except Exception:  # a message that trips a bug must not stop the consumer
                self.failed_batches += 1
                log.exception("a batch of %d messages failed; applying them one by one", len(batch))
                try:
                    out = self.applier.apply_isolating(batch)
                except sqlite3.Error as exc:
                    self._storage_failed(exc, taken)
                    continue
            self.storage_problem = None
            self._committed += 1
            if self._after_commit is not None:
                self._after_commit(self._committed)
            for message in batch:
                self.client.ack(message)
            self.acked += len(batch)
            self._publish(out)
            self._delays.append(time.monotonic() - taken[0][0])

    def _storage_failed(self, exc: sqlite3.Error, taken: list[tuple[float, Inbound]]) -> None:
        """The database refused a batch (full, locked, I/O): nothing was committed, so
        nothing is acked; say so loudly, count it, keep the reason for ``/ready``, put the
        messages back and retry soon."""
        self.failed_batches += 1
        name = getattr(exc, "sqlite_errorname", "") or type(exc).__name__
        if name == "SQLITE_FULL":
            self.db_full += 1
        self.storage_problem = f"database write failed ({name}): {exc}"
        log.error(
            "%s; %d messages not committed and not acked, retrying",
            self.storage_problem,
            len(taken),
        )
        for item in taken:
            self._queue.put(item)
        self._stop.wait(0.5)

    def _publish(self, out: Outgoing) -> None:
        mall = self.applier.config.mall
        now = datetime.now(UTC)
        for node, all_ids in out.receipts.items():
            ids = list(dict.fromkeys(all_ids))  # a duplicate within the batch is named once
            for start in range(0, len(ids), MAX_BATCH * 4):
                receipt = Receipt(ts=now, ids=tuple(ids[start : start + MAX_BATCH * 4]))
                self.publisher.publish(RECEIPTS.topic(mall, node), encode(receipt), qos=1)
        self._send_notices(out.pending)
        if out.points:
            self.telemetry.write(out.points)

    def _publish_node_configs(self) -> None:
        """Retained presence tuning for the nodes of stores that set it (once per start)."""
        mall = self.applier.config.mall
        for node, config in self.applier.node_configs():
            self.publisher.publish(
                NODE_CONFIG.topic(mall, node), encode(config), qos=1, retain=True
            )

    def _publish_kiosk_offers(self) -> None:
        """Retained offer lists for the configured kiosks, republished when they change."""
        current = self.applier.kiosk_offers()
        if current.offers == self._kiosk_offers:
            return
        mall = self.applier.config.mall
        payload = encode(current)
        for kiosk in self.applier.config.kiosks:
            self.publisher.publish(KIOSK_OFFERS.topic(mall, kiosk), payload, qos=1, retain=True)
        self._kiosk_offers = current.offers

    def _send_notices(
        self, pending: Sequence[PendingNotice], *, skip_in_flight: bool = False
    ) -> None:
        """Publish kept notices (QoS 1), in order; each stays kept until the broker acks it.

        paho itself sends again, after a reconnect, what it had in flight; so on a reconnect
        only what has no publish in flight on this connection is sent again.
        """
        for notice in pending:
            if skip_in_flight and notice.seq in self._notice_tickets:
                continue
            self._notice_tickets[notice.seq] = self.publisher.publish(
                notice.topic, notice.payload, qos=1
            )

    def _collect_published(self) -> None:
        """Move acknowledged notice publishes to ``_notices_published`` (deleted with the
        next transaction); a refused one stays pending for the next (re)connect."""
        for seq, ticket in list(self._notice_tickets.items()):
            if not ticket.done:
                continue
            del self._notice_tickets[seq]
            reason = ticket.wait(0)
            if reason in PUBLISHED:
                self._notices_published.append(seq)
            else:
                self.notices_refused += 1
                log.warning("the broker refused an inbox notice (reason %d); kept", reason)

    def _settle_notices(self, deadline: float) -> None:
        """On stop: wait (until ``deadline``) for notices in flight, forget the acked ones."""
        for ticket in list(self._notice_tickets.values()):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.publisher.connected:
                break
            try:
                ticket.wait(remaining)
            except MqttError:
                break
        self._collect_published()
        try:
            self.applier.notices_published(self._notices_published)
            self._notices_published.clear()
        except sqlite3.Error:
            log.exception("published notices could not be forgotten; sent again at start")

    def stats(self) -> dict[str, int]:
        """Counters of this worker since it started (outcomes, duplicates, delays…)."""
        counts = self.applier.snapshot()
        counts["acked"] = self.acked
        counts["failed_batches"] = self.failed_batches
        counts["db_full"] = self.db_full
        counts["notices_in_flight"] = len(self._notice_tickets)
        counts["notices_refused"] = self.notices_refused
        counts["replays_seen"] = self.applier.resolver.replays
        delays = sorted(self._delays)
        if delays:
            counts["delay_p50_us"] = int(delays[len(delays) // 2] * 1e6)
            counts["delay_p99_us"] = int(delays[int(len(delays) * 0.99)] * 1e6)
        return counts
