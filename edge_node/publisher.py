"""Drain the outbox in seq order into QoS 1 batches; prune on the core's receipts.

The publisher runs on the app's loop thread (the only one touching SQLite).
MQTT callbacks (receipts, reconnects) arrive on paho's network thread and only
enqueue; ``pump(now)`` applies them and publishes:

1. receipts remove their ids from the outbox;
2. after a (re)connect every waiting event is marked unsent, so the whole
   backlog is republished in seq order — a PUBACK from a broker that then
   crashed proves nothing;
3. a PUBACK with any reason code but 0 means the broker did not deliver the
   batch (16: no matching subscribers — e.g. after a broker restart, which
   forgets the core's shared subscriptions, until the core subscribes again;
   135: not authorised): the same go-back-N republish happens, after a backoff
   (``retry_min_s`` doubling up to ``retry_max_s``), so a broker restart costs
   seconds, not the receipt timeout;
4. if the oldest published event has had no receipt for ``receipt_timeout_s``,
   the same go-back-N republish happens (the broker or the core lost it);
5. when nothing is awaiting a receipt, the oldest unsent events (at most
   ``max_inflight``) are published as up to ``max_inflight_batches`` batches of
   consecutive events of one topic.

With one batch in flight (the default) the core sees each node's events in seq
order even across a broker crash: paho retransmits an unacknowledged batch on
reconnect before anything newer exists, and older batches are never outstanding.
Batches grow with the backlog (up to ``batch_size``), so throughput stays far
above a store's event rate.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from edge_node.outbox import Outbox, Stored
from mallnet.mqtt import NO_MATCHING_SUBSCRIBERS, Inbound, PublishTicket
from mallnet.wire import WireError, decode
from mallnet.wire.payloads import Receipt
from mallnet.wire.topics import FOOTFALL, PARKING, PRESENCE, TopicSpec

log = logging.getLogger(__name__)

LEAVES: dict[str, TopicSpec] = {spec.leaf: spec for spec in (PRESENCE, FOOTFALL, PARKING)}


class Transport(Protocol):
    """What the publisher needs from ``mallnet.mqtt.MqttClient``."""

    @property
    def connected(self) -> bool: ...

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> PublishTicket: ...


@dataclass
class PublisherStats:
    published_events: int = 0
    published_batches: int = 0
    receipted: int = 0
    unknown_receipts: int = 0
    bad_receipts: int = 0
    republish_rounds: int = 0
    acked_batches: int = 0
    refused_batches: int = 0  # PUBACK reason code not 0: kept and sent again after a backoff


class Publisher:
    def __init__(
        self,
        outbox: Outbox,
        mall: str,
        node: str,
        *,
        batch_size: int = 100,
        max_inflight: int = 2000,
        max_inflight_batches: int = 1,
        receipt_timeout_s: float = 30.0,
        retry_min_s: float = 0.25,
        retry_max_s: float = 5.0,
    ) -> None:
        self.outbox = outbox
        self.mall = mall
        self.node = node
        self.batch_size = batch_size
        self.max_inflight = max_inflight
        self.max_inflight_batches = max_inflight_batches
        self.receipt_timeout_s = receipt_timeout_s
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.transport: Transport | None = None
        self.stats = PublisherStats()
        self._receipts: queue.SimpleQueue[tuple[str, ...]] = queue.SimpleQueue()
        self._reconnected = threading.Event()
        self._tickets: list[PublishTicket] = []
        self._refusals = 0  # consecutive refused batches
        self._retry_at = 0.0  # no publishing before this (after a refusal)
        self._head = f'{{"v":1,"node":"{node}","events":['
        self.wakeup: Callable[[], None] = lambda: None

    @property
    def awaiting_acks(self) -> int:
        """Batches published and not yet acknowledged (or refused) by the broker."""
        return sum(1 for ticket in self._tickets if not ticket.done)

    # -- MQTT callbacks (network thread) ------------------------------------------

    def on_connected(self) -> None:
        self._reconnected.set()
        self.wakeup()

    def on_message(self, message: Inbound) -> None:
        """Handles the node's receipts topic; other topics are ignored here."""
        try:
            decoded = decode(message.topic, message.payload)
        except WireError as exc:
            self.stats.bad_receipts += 1
            log.warning("rejected message on %s: %s", message.topic, exc)
            return
        if isinstance(decoded.message, Receipt):
            self._receipts.put(decoded.message.ids)
            self.wakeup()

    # -- the loop -------------------------------------------------------------------

    def pump(self, now: float) -> int:
        """Apply receipts and reconnects, then publish what is due; returns events sent."""
        self._apply_receipts()
        self._settle_tickets(now)
        transport = self.transport
        if self._reconnected.is_set():
            self._reconnected.clear()
            self._retry_at = 0.0  # a new connection: try at once
            reset = self.outbox.reset_sent()
            if reset:
                self.stats.republish_rounds += 1
                log.info("reconnected: republishing %d unreceipted events in order", reset)
        if transport is None or not transport.connected or now < self._retry_at:
            return 0
        oldest = self.outbox.oldest_sent_at()
        if oldest is not None and now - oldest >= self.receipt_timeout_s:
            reset = self.outbox.reset_sent()
            self.stats.republish_rounds += 1
            log.warning(
                "no receipt for %.0fs: republishing %d events in order", now - oldest, reset
            )
        if self.outbox.inflight():
            return 0  # the window is full until the core's receipts (or a timeout) free it
        sent = 0
        window = min(self.max_inflight, self.batch_size * self.max_inflight_batches)
        for batch in self._batches(self.outbox.unsent(window)):
            leaf = batch[0].leaf
            spec = LEAVES.get(leaf)
            if spec is None:  # not ours to publish; keep it, but never block the rest
                log.error("outbox event %s has unknown topic %r", batch[0].id, leaf)
                continue
            payload = (self._head + ",".join(e.payload for e in batch) + "]}").encode()
            ticket = transport.publish(spec.topic(self.mall, self.node), payload, qos=1)
            if ticket.local_rc != 0:
                log.info("publish failed locally (rc=%s); will retry", ticket.local_rc)
                break
            self._tickets.append(ticket)
            self.outbox.mark_sent([e.seq for e in batch], now)
            sent += len(batch)
            self.stats.published_batches += 1
        self.stats.published_events += sent
        return sent

    def _settle_tickets(self, now: float) -> None:
        """Count PUBACKs (a PUBACK never removes an event); on a refusal, go back and
        republish everything unreceipted after a backoff."""
        pending = []
        refused: int | None = None
        for ticket in self._tickets:
            if not ticket.done:
                pending.append(ticket)
                continue
            reason = ticket.wait(0)
            if reason == 0:
                self.stats.acked_batches += 1
                if self._refusals and refused is None:
                    log.info("the broker delivers again after %d refused batches", self._refusals)
                    self._refusals = 0
            else:
                refused = reason
                self.stats.refused_batches += 1
        self._tickets = pending
        if refused is None:
            return
        self._refusals += 1
        backoff = min(self.retry_max_s, self.retry_min_s * 2 ** min(self._refusals - 1, 30))
        self._retry_at = now + backoff
        reset = self.outbox.reset_sent()
        note = ""
        if refused == NO_MATCHING_SUBSCRIBERS:
            note = ": no matching subscribers, is the core subscribed?"
        level = logging.WARNING if self._refusals == 1 else logging.DEBUG
        log.log(
            level,
            "the broker did not deliver a batch (reason %d%s): keeping %d events, "
            "sending again in %.2fs",
            refused,
            note,
            reset,
            backoff,
        )

    def _apply_receipts(self) -> None:
        while True:
            try:
                ids = self._receipts.get_nowait()
            except queue.Empty:
                return
            removed = self.outbox.receipt(ids)
            self.stats.receipted += removed
            self.stats.unknown_receipts += len(ids) - removed

    def _batches(self, events: list[Stored]) -> list[list[Stored]]:
        batches: list[list[Stored]] = []
        for event in events:
            if batches and batches[-1][0].leaf == event.leaf and len(batches[-1]) < self.batch_size:
                batches[-1].append(event)
            else:
                batches.append([event])
        return batches


def drain_exit_code(
    depth: int, mono: float, deadline: float | None, on_drained: Callable[[], None]
) -> int | None:
    """At the end of a finite source: the exit code once the outbox is drained (0, after
    ``on_drained``, e.g. a last heartbeat) or the drain deadline passed (1); None to go on."""
    if deadline is None:
        return None
    if depth == 0:
        log.info("outbox drained; stopping")
        on_drained()
        return 0
    if mono > deadline:
        log.error("%d events still unreceipted; stopping", depth)
        return 1
    return None
