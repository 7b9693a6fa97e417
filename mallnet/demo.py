"""``mallnet demo``: a simulated mall on this machine, on embedded defaults.

Today the demo starts a real Mosquitto from ``mqtt_broker/`` config, a
replayed store node that publishes contract presence events for a few
simulated shoppers (rotating beacon ids), and a consumer that decodes every
message and sends the receipts the node waits for. It ends with a summary of
what crossed the broker. Parts join the demo as their own processes
(``mallnet edge run``, ``mallnet core run``) as they are built.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from mallnet import __version__, identity
from mallnet.broker import DevBroker
from mallnet.config import MqttSettings
from mallnet.ids import new_event_id
from mallnet.mqtt import Inbound, MqttClient, Will
from mallnet.wire import WireError, decode, encode
from mallnet.wire.payloads import (
    DeviceStatus,
    PresenceBatch,
    PresenceEvent,
    Receipt,
)
from mallnet.wire.topics import PRESENCE, RECEIPTS, STATUS

log = logging.getLogger(__name__)

MALL = "demo"
NODE = "store-bean-bar-1"
PROGRAM_PREFIX = identity.parse_prefix("f7a3e1c2")
SHOPPERS = 5
_WALK: tuple[tuple[Literal["enter", "dwell", "exit"], float], ...] = (
    ("enter", 0.0),
    ("dwell", 60.0),
    ("exit", 180.0),
)


class _Consumer:
    """Decodes presence batches and answers each with a receipt."""

    def __init__(self) -> None:
        self.client: MqttClient | None = None
        self.events: dict[str, PresenceEvent] = {}
        self.rejected = 0
        self.done = threading.Condition()

    def on_message(self, message: Inbound) -> None:
        try:
            decoded = decode(message.topic, message.payload)
        except WireError as exc:
            self.rejected += 1
            log.warning("rejected %s: %s", message.topic, exc)
            return
        batch = decoded.message
        assert isinstance(batch, PresenceBatch)
        with self.done:
            for event in batch.events:
                self.events.setdefault(event.id, event)
            self.done.notify_all()
        receipt = Receipt(ts=datetime.now(UTC), ids=tuple(e.id for e in batch.events))
        if self.client is not None:
            self.client.publish(RECEIPTS.topic(decoded.topic.mall, batch.node), encode(receipt))


def _walk_events(start_seq: int) -> list[PresenceEvent]:
    now = time.time()
    events: list[PresenceEvent] = []
    seq = start_seq
    for shopper in range(SHOPPERS):
        key = identity.parse_key(f"{shopper + 1:02x}" * 32)
        tag = identity.tag_id(key, identity.window_of(now))
        for kind, inside in _WALK:
            seq += 1
            events.append(
                PresenceEvent(
                    id=new_event_id(),
                    seq=seq,
                    ts=datetime.now(UTC),
                    kind=kind,
                    tag=tag,
                    rssi=-65.0 - shopper,
                    distance_m=1.5 + shopper / 2,
                    inside_s=inside,
                )
            )
    return events


def run_demo(workdir: Path | None = None, duration_s: float | None = None) -> int:
    """Run the demo scenario; returns a process exit code."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="mallnet-demo-")
        workdir = Path(tmp.name)
    broker = DevBroker(workdir / "broker", mall=MALL)
    consumer = _Consumer()
    clients: list[MqttClient] = []
    try:
        broker.start()
        core_settings = MqttSettings(
            port=broker.port, username="core", password=broker.add_user("core")
        )
        node_settings = MqttSettings(
            port=broker.port, username=NODE, password=broker.add_user(NODE)
        )
        core = MqttClient(
            core_settings,
            "core-demo",
            on_message=consumer.on_message,
            subscriptions=[(PRESENCE.shared_filter("core", MALL), 1)],
        )
        consumer.client = core
        clients.append(core)
        status = STATUS.topic(MALL, NODE)
        since = datetime.now(UTC)
        online = DeviceStatus(state="online", device=NODE, since=since, software=__version__)
        offline = online.model_copy(update={"state": "offline"})
        node = MqttClient(
            node_settings,
            NODE,
            birth=Will(status, encode(online)),
            will=Will(status, encode(offline)),
        )
        clients.append(node)
        for client in clients:
            client.start()
            if not client.wait_connected(10):
                log.error("demo client could not connect to the broker")
                return 1
        events = _walk_events(0)
        for start in range(0, len(events), 5):
            batch = PresenceBatch(node=NODE, events=tuple(events[start : start + 5]))
            node.publish(PRESENCE.topic(MALL, NODE), encode(batch))
        timeout = duration_s if duration_s is not None else 15.0
        with consumer.done:
            complete = consumer.done.wait_for(lambda: len(consumer.events) >= len(events), timeout)
        log.info(
            "demo: %d presence events from %d shoppers crossed the broker and were receipted "
            "(%d rejected)",
            len(consumer.events),
            SHOPPERS,
            consumer.rejected,
        )
        node.stop(farewell=Will(status, encode(offline)))
        clients.remove(node)
        return 0 if complete else 1
    finally:
        for client in clients:
            client.stop()
        broker.stop()
        if tmp is not None:
            tmp.cleanup()
