"""The MQTT side of ingest: batching, ack after commit, receipts, notices, periodic jobs.

``Consumer`` is the thin adapter around an ``Applier`` (the logic, no network): paho's
network thread only queues messages; one worker thread drains the queue, applies up to
``batch_max`` messages per transaction, and only after ``COMMIT`` acknowledges each
message to the broker (manual ack) and publishes the receipts the nodes wait for and the
customers' inbox notices (kept in the outbox, ``notices.py``, until the broker acks them).
Between batches the same thread runs the periodic jobs (``jobs.py``).

``after_commit`` (optional, given by whoever builds the ``Consumer``) is called with the
number of batches committed so far, right after each commit and before the batch is acked
and its receipts and notices are published: the tests inject a crash there (the worst
moment) through their own launcher; production code reads no test switch.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from prometheus_client import Histogram

from cloud_core.config import CoreConfig
from cloud_core.ingest.applier import Applier, Outgoing
from cloud_core.ingest.notices import PendingNotice
from cloud_core.telemetry import TelemetrySink
from mallnet.errors import MqttError
from mallnet.mqtt import Inbound, MqttClient, PublishTicket, Will
from mallnet.wire import encode
from mallnet.wire.payloads import MAX_BATCH, OfferCard, Receipt
from mallnet.wire.topics import (
    CHECKINS,
    FOOTFALL,
    HEALTH,
    KIOSK_CONFIG,
    KIOSK_OFFERS,
    KIOSK_RECEIPTS,
    NODE_CONFIG,
    PARKING,
    PRESENCE,
    RECEIPTS,
    STATUS,
)

log = logging.getLogger(__name__)

#: Upper bounds (s) of the ingest delay histogram: a live node is within a second, a node
#: that was offline sends hours old events from its outbox.
DELAY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0)

#: The broker's PUBACK reason codes that mean it took a publish (16: no subscribers).
PUBLISHED = (0, 16)


def subscriptions(config: CoreConfig) -> list[tuple[str, int]]:
    """Shared subscriptions for the load the workers split (plain ones for a lone worker,
    ``ingest.shared: false``); status is retained, so plain."""
    group, mall = config.ingest.share_group, config.mall
    load = [PRESENCE, FOOTFALL, HEALTH, CHECKINS] + ([PARKING] if config.parking else [])
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
        # commit time minus the time of each message's first event (one observation per
        # message); not in any registry: /metrics collects it (cloud_core/metrics.py)
        self.ingest_delay = Histogram(
            "mallnet_ingest_delay_seconds",
            "From a message's first event at the source to its commit in the core.",
            buckets=DELAY_BUCKETS,
            registry=None,
        )
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
        self.turned_at = time.monotonic()  # the worker loop's last turn
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
                self._send_notices(self.applier.outbox.pending(), skip_in_flight=True)
            except sqlite3.Error:
                log.exception("pending notices could not be read; retrying")
                self._publisher_connects = 0
        self._collect_published()
        if self._notices_published and self._queue.empty():
            try:
                self.applier.outbox.published(self._notices_published)
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
                self._send_notices(self.applier.jobs.expire())
            except sqlite3.Error:
                log.exception("expiry job failed; retrying later")
        if self.applier.config.kiosks and now >= self._next_offers and self.publisher.connected:
            self._next_offers = now + self._kiosk_offers_interval_s
            try:
                self._publish_kiosk_offers()
            except sqlite3.Error:
                log.exception("kiosk offers could not be read; retrying later")

    @property
    def alive(self) -> bool:
        """The worker thread runs (``turned_at`` tells whether it still turns)."""
        return self._thread.is_alive()

    def _run(self) -> None:
        self._next_expiry = self._next_offers = time.monotonic()
        while not self._stop.is_set():
            self.turned_at = time.monotonic()  # the systemd watchdog's sign of life
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
            committed_at = self.applier.clock()
            for sent in out.event_times:
                self.ingest_delay.observe(max(0.0, committed_at - sent))
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
        for kiosk, all_ids in out.kiosk_receipts.items():
            ids = list(dict.fromkeys(all_ids))
            for start in range(0, len(ids), MAX_BATCH * 4):
                receipt = Receipt(ts=now, ids=tuple(ids[start : start + MAX_BATCH * 4]))
                self.publisher.publish(KIOSK_RECEIPTS.topic(mall, kiosk), encode(receipt), qos=1)
        self._send_notices(out.pending)
        if out.points:
            self.telemetry.write(out.points)

    def _publish_node_configs(self) -> None:
        """Retained presence tuning for the nodes of stores that set it, and the settings
        of every configured kiosk (once per start)."""
        mall = self.applier.config.mall
        for node, config in self.applier.jobs.node_configs():
            self.publisher.publish(
                NODE_CONFIG.topic(mall, node), encode(config), qos=1, retain=True
            )
        for kiosk, settings in self.applier.jobs.kiosk_configs():
            self.publisher.publish(
                KIOSK_CONFIG.topic(mall, kiosk), encode(settings), qos=1, retain=True
            )

    def _publish_kiosk_offers(self) -> None:
        """Retained offer lists for the configured kiosks, republished when they change."""
        current = self.applier.jobs.kiosk_offers()
        if current.offers == self._kiosk_offers:
            return
        mall = self.applier.config.mall
        payload = encode(current)
        for kiosk in self.applier.config.kiosks:
            self.publisher.publish(KIOSK_OFFERS.topic(mall, kiosk.id), payload, qos=1, retain=True)
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
            self.applier.outbox.published(self._notices_published)
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
