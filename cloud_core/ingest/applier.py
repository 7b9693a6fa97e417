"""One transaction per batch: decode, exactly-once claims, dead letters, dispatch.

``Applier`` is the logic: it takes received messages and the database and returns what
to publish; it never touches the network (``consumer.py`` does). Per batch, in one
transaction: each message is decoded (or dead-lettered, ``dead_letters.py``), each event
id claimed, and the event dispatched by its type — presence to the visit rules, parking
to the parking rules, footfall, health and status to their rows (``nodes.py``); the
inbox notices the rules make go into the outbox (``notices.py``) in the same transaction.

Exactly once: each event id is inserted into ``processed_events`` in the transaction
that applies its effects, so a redelivery (a broker resend after a crash between commit
and ack, a node resending from its outbox, a second worker) is recognised, counted as a
duplicate, written nowhere, and receipted again.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
from cloud_core.ingest import dead_letters
from cloud_core.ingest.dead_letters import DeadLetters
from cloud_core.ingest.jobs import Jobs
from cloud_core.ingest.kiosks import apply_checkins
from cloud_core.ingest.nodes import record_footfall, record_health, record_status
from cloud_core.ingest.notices import NoticeOutbox, PendingNotice
from cloud_core.offers import Campaign, list_campaigns
from cloud_core.rules.common import Notice
from cloud_core.rules.parking import ParkingRules
from cloud_core.rules.visits import apply_visit
from cloud_core.store import Conn, OperationalError, Store, retrying
from cloud_core.telemetry import Point
from mallnet.mqtt import Inbound
from mallnet.wire import WireError, decode
from mallnet.wire.payloads import (
    CheckinBatch,
    DeviceStatus,
    FootfallBatch,
    HealthReport,
    ParkingBatch,
    PresenceBatch,
    PresenceEvent,
)
from mallnet.wire.topics import CHECKINS

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass
class Outgoing:
    """What one committed batch publishes (and, while it is built, its processed rows)."""

    now_iso: str
    receipts: dict[str, list[str]] = field(default_factory=dict)
    kiosk_receipts: dict[str, list[str]] = field(default_factory=dict)  # kiosk → ids
    notices: list[Notice] = field(default_factory=list)
    pending: list[PendingNotice] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    processed: dict[str, tuple[str, str, str, str, str]] = field(default_factory=dict)
    event_times: list[float] = field(default_factory=list)  # first event's ts per message
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
        self.stores: dict[str, StoreConfig] = {s.id: s for s in config.stores}
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
        self.dead_letters = DeadLetters(config.ingest.dead_letters, clock)
        self.outbox = NoticeOutbox(config.mall, store)
        self.jobs = Jobs(config, store, clock, self.outbox, self.record)

    def apply(self, messages: Sequence[Inbound], *, published: Sequence[int] = ()) -> Outgoing:
        """Apply messages in one transaction; returns what to publish once it committed.

        ``published``: pending notices (``seq``) the broker has acknowledged since the last
        transaction, deleted in this one. On PostgreSQL a transaction that loses to another
        worker's (rolled back whole) is run again, a few times (``store.retrying``).
        """
        retried = lambda: self.record(Counter(conflict_retries=1))  # noqa: E731
        return retrying(lambda: self._apply_once(messages, published), retried)

    def _apply_once(self, messages: Sequence[Inbound], published: Sequence[int]) -> Outgoing:
        out = Outgoing(now_iso=ledger.iso(datetime.fromtimestamp(self.clock(), UTC)))
        counts: Counter[str] = Counter()
        with self.store.transaction() as conn:
            self.resolver.refresh(key_generation(conn), key_removals(conn))
            for message in messages:
                if not dead_letters.ignore_retained(conn, message, counts):
                    self._apply_one(conn, message, out, counts)
            if counts["dead_letters"]:
                self.dead_letters.trim(conn, counts)
            conn.executemany(
                "INSERT INTO processed_events (event_id, node, topic, outcome, ts)"
                " VALUES (?, ?, ?, ?, ?)",
                out.processed.values(),
            )
            out.pending = self.outbox.keep(conn, out.notices, out.now_iso)
            self.outbox.forget(conn, published)
        counts["batches"] += 1
        counts["messages"] += len(messages)
        self.record(counts)
        return out

    def record(self, counts: Counter[str]) -> None:
        """Add to this worker's counters (thread-safe; the jobs add theirs too)."""
        with self._lock:
            self.counters.update(counts)

    def snapshot(self) -> dict[str, int]:
        """A copy of the counters (outcomes, duplicates, dead letters, batches…)."""
        with self._lock:
            return dict(self.counters)

    def apply_isolating(self, messages: Sequence[Inbound]) -> Outgoing:
        """Apply messages one transaction each; one that still fails is dead-lettered
        (kind ``error``, its events receipted: the payload is kept for a replay once the
        bug is fixed) so that the rest go through and the consumer carries on."""
        merged = Outgoing(now_iso="")
        for message in messages:
            try:
                out = self.apply([message])
            except OperationalError:
                raise
            except Exception as exc:
                log.exception("dead-lettering a message that fails to apply: %s", message.topic)
                counts: Counter[str] = Counter()
                with self.store.transaction() as conn:
                    self.dead_letters.keep(
                        conn, message, "error", f"{type(exc).__name__}: {exc}", counts
                    )
                    self.dead_letters.trim(conn, counts)
                self.record(counts)
                # kept in dead_letters, so the node may drop it: receipt its events
                decoded = decode(message.topic, message.payload)
                events = getattr(decoded.message, "events", ())
                to = merged.kiosk_receipts if decoded.topic.spec is CHECKINS else merged.receipts
                to.setdefault(decoded.topic.entity, []).extend(e.id for e in events)
                continue
            for node, ids in out.receipts.items():
                merged.receipts.setdefault(node, []).extend(ids)
            for kiosk, ids in out.kiosk_receipts.items():
                merged.kiosk_receipts.setdefault(kiosk, []).extend(ids)
            merged.notices.extend(out.notices)
            merged.pending.extend(out.pending)
            merged.points.extend(out.points)
            merged.event_times.extend(out.event_times)
        return merged

    def _apply_one(self, conn: Conn, message: Inbound, out: Outgoing, counts: Counter[str]) -> None:
        try:
            decoded = decode(message.topic, message.payload)
        except WireError as exc:
            self.dead_letters.keep(conn, message, exc.kind.value, exc.detail, counts)
            return
        topic = decoded.topic
        if topic.mall != self.config.mall:
            self.dead_letters.keep(
                conn, message, "mall", f"mall {topic.mall!r} is not ours", counts
            )
            return
        payload = decoded.message
        out.event_times.extend(_event_time(payload))  # for the delay histogram
        if isinstance(payload, DeviceStatus):
            record_status(conn, payload, out.now_iso)
            counts["status"] += 1
            return
        node = topic.entity
        store = self.stores_by_node.get(node)
        if store is None:  # a car-park gate or a kiosk is no store (docs/parking.md)
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
                if not self.first_time(
                    conn, event_id=ff.id, node=node, topic=topic.spec.name, out=out, counts=counts
                ) or self.stale(ff.id, ff.window_start, out, counts):
                    continue
                out.points.append(record_footfall(conn, self.config.mall, node, store.id, ff))
                counts["footfall"] += 1
        elif isinstance(payload, HealthReport):
            if self.first_time(
                conn, event_id=payload.id, node=node, topic=topic.spec.name, out=out, counts=counts
            ) and not self.stale(payload.id, payload.ts, out, counts):
                out.points.append(record_health(conn, self.config.mall, payload))
                counts["health"] += 1
        else:  # subscribed topics only carry the types above
            self.dead_letters.keep(conn, message, "unsupported", type(payload).__name__, counts)

    def _parking_or_unknown(
        self,
        conn: Conn,
        message: Inbound,
        *,
        node: str,
        batch: object,
        out: Outgoing,
        counts: Counter[str],
    ) -> None:
        """A gate's parking batches go to the parking rules and its heartbeats are kept like a
        store node's; a kiosk's check-ins go to ``kiosks.py``; anything else is dead-lettered."""
        if isinstance(batch, CheckinBatch):
            apply_checkins(self, conn, message, kiosk=node, batch=batch, out=out, counts=counts)
            return
        gate = self.parking is not None and self.parking.knows(node)
        if gate and isinstance(batch, HealthReport):
            if self.first_time(
                conn, event_id=batch.id, node=node, topic="health", out=out, counts=counts
            ) and not self.stale(batch.id, batch.ts, out, counts):
                out.points.append(record_health(conn, self.config.mall, batch))
                counts["health"] += 1
            return
        if not (gate and isinstance(batch, ParkingBatch) and self.parking):
            self.dead_letters.keep(conn, message, "unauthorised", f"unknown node {node!r}", counts)
            return
        for event in batch.events:
            out.receipts.setdefault(node, []).append(event.id)
            if self.first_time(
                conn, event_id=event.id, node=node, topic="parking", out=out, counts=counts
            ) and not self.stale(event.id, event.ts, out, counts):
                parked = self.parking.apply(conn, node=node, event=event)
                out.notices.extend(parked.notices)
                out.points.extend(parked.telemetry)
                counts[parked.outcome] += 1
                counts["points"] += parked.points
                out.processed[event.id] = (event.id, node, "parking", parked.outcome, out.now_iso)

    def stale(self, event_id: str, ts: datetime, out: Outgoing, counts: Counter[str]) -> bool:
        """A footfall, health, parking or check-in event older than ``max_event_age_s`` (not
        parking, not check-ins: a kiosk's queue may hold them for days) or dated more than
        ``max_clock_skew_s`` ahead is not applied (outcome ``stale`` or ``future``): a stale
        id may be forgotten already, and counting it again must not happen; a future one is
        forged or from a node whose clock runs ahead."""
        age = self.clock() - ts.timestamp()
        node, topic = out.processed[event_id][1:3]
        if -age > self.config.ingest.max_clock_skew_s:
            outcome = "future"
        elif age > self.config.ingest.max_event_age_s and topic not in ("parking", "checkins"):
            outcome = "stale"
        else:
            return False
        out.processed[event_id] = (event_id, node, topic, outcome, out.now_iso)
        counts[f"{outcome}_{topic}"] += 1
        return True

    @staticmethod
    def _processed_among(conn: Conn, event_ids: Sequence[str]) -> set[str]:
        """Which of these ids were applied before (one query for a whole message)."""
        marks = ",".join("?" * len(event_ids))
        return {
            row[0]
            for row in conn.execute(
                f"SELECT event_id FROM processed_events WHERE event_id IN ({marks})",  # noqa: S608
                tuple(event_ids),
            )
        }

    def first_time(
        self,
        conn: Conn,
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
        conn: Conn,
        *,
        node: str,
        store: StoreConfig,
        event: PresenceEvent,
        out: Outgoing,
        counts: Counter[str],
        known: set[str],
    ) -> None:
        if not self.first_time(
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


def _event_time(payload: object) -> tuple[float, ...]:
    """When a message's first event happened (epoch s); none for a status (retained)."""
    if isinstance(payload, PresenceBatch | FootfallBatch | ParkingBatch | CheckinBatch):
        return (payload.events[0].ts.timestamp(),)
    return (payload.ts.timestamp(),) if isinstance(payload, HealthReport) else ()
