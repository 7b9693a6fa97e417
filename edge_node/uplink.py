"""Every edge node's way to the core: outbox → publisher → MQTT, retained status, heartbeats.

The store node (``ble/app.py``) and the gate node (``camera/app.py``) each build
one ``Uplink`` from their config's shared sections and feed its outbox; the
uplink owns the rest, the same for both: the SQLite outbox and the
``Publisher`` draining it, the MQTT client (persistent session, subscribed to
the node's receipts and to any topic the node adds), the retained ``online``
birth and ``offline`` Last Will, heartbeats every ``health.interval_s`` and the
drain at the end of a finite input. Like the publisher, everything but the
MQTT callbacks runs on the node's loop thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from edge_node.config import HealthSettings, NodeIdentity, OutboxSettings
from edge_node.health import HealthMonitor, Snapshot
from edge_node.outbox import Outbox
from edge_node.publisher import Publisher, drain_exit_code
from mallnet import __version__
from mallnet.config import MqttSettings
from mallnet.ids import new_event_id
from mallnet.mqtt import Inbound, MqttClient, Will
from mallnet.wire import encode
from mallnet.wire.payloads import DeviceStatus
from mallnet.wire.topics import HEALTH, RECEIPTS, STATUS

log = logging.getLogger(__name__)


class Uplink:
    """One node's outbox, publisher, MQTT client and heartbeat, wired together.

    ``snapshot`` gives the node's counters for a heartbeat; ``health_extra``
    adds fields to it (a gate's ``camera_ok``); ``handlers`` maps further topics
    to subscribe to (QoS 1) to the callbacks that take their messages on paho's
    network thread (they must only enqueue).
    """

    def __init__(
        self,
        node: NodeIdentity,
        mqtt: MqttSettings,
        outbox: OutboxSettings,
        health: HealthSettings,
        *,
        snapshot: Callable[[], Snapshot],
        health_extra: Callable[[], Mapping[str, Any]] | None = None,
        handlers: Mapping[str, Callable[[Inbound], None]] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.node = node.id
        self.mall = node.mall
        self.wall = wall
        self.interval_s = health.interval_s
        self._snapshot = snapshot
        self._health_extra = health_extra
        self._handlers = dict(handlers or {})
        self.outbox = Outbox(outbox.path, max_events=outbox.max_events)
        self.publisher = Publisher(
            self.outbox,
            self.mall,
            self.node,
            batch_size=outbox.batch_size,
            max_inflight=outbox.max_inflight,
            max_inflight_batches=outbox.max_inflight_batches,
            receipt_timeout_s=outbox.receipt_timeout_s,
        )
        self.health = HealthMonitor(self.node, wall(), health.thermal_zone)
        self._next_health = float("-inf")
        since = datetime.fromtimestamp(wall(), UTC)
        self.offline = self._status("offline", since)
        self.client = MqttClient(
            mqtt,
            self.node,
            subscriptions=[
                (RECEIPTS.topic(self.mall, self.node), 1),
                *((topic, 1) for topic in self._handlers),
            ],
            on_message=self._on_message,
            will=self.offline,
            birth=self._status("online", since),
            persistent_session=True,
            on_connected=self.publisher.on_connected,
        )
        self.publisher.transport = self.client

    def _status(self, state: Literal["online", "offline"], since: datetime) -> Will:
        status = DeviceStatus(state=state, device=self.node, since=since, software=__version__)
        return Will(STATUS.topic(self.mall, self.node), encode(status))

    def _on_message(self, message: Inbound) -> None:
        handler = self._handlers.get(message.topic)
        if handler is not None:
            handler(message)
        else:
            self.publisher.on_message(message)

    def start(self) -> None:
        self.client.start()

    def heartbeat(self) -> None:
        """Publish one heartbeat from the node's counters now."""
        report = self.health.report(self._snapshot(), new_event_id(), self.outbox.next_health_seq())
        if self._health_extra is not None:
            report = report.model_copy(update=dict(self._health_extra()))
        self.client.publish(HEALTH.topic(self.mall, self.node), encode(report), qos=HEALTH.qos)

    def _last_heartbeat(self) -> None:
        if self.client.connected:
            self.heartbeat()

    def turn(self, mono: float, drain_deadline: float | None) -> int | None:
        """One turn of the node's loop: a heartbeat when one is due, the publisher pumped;
        with a drain deadline (the input has ended), the exit code once drained (see
        ``drain_exit_code``), else None."""
        if mono >= self._next_health and self.client.connected:
            self._next_health = mono + self.interval_s
            self.heartbeat()
        self.publisher.pump(self.wall())
        return drain_exit_code(self.outbox.depth, mono, drain_deadline, self._last_heartbeat)

    def stop(self) -> None:
        """Publish the retained ``offline`` status, disconnect, close the outbox."""
        self.client.stop(farewell=self.offline)
        self.outbox.close()
