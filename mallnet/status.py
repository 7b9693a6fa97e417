"""Read a device's retained status from the broker (``mallnet broker status``).

A rolling update (ansible/rolling_update.yml) waits, node by node, until the node's retained
``status`` says ``online`` with the new release before it moves on. It connects as a
``monitor`` identity, which may read the mall's topics and publish nothing.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from mallnet.config import MqttSettings
from mallnet.errors import MallnetError
from mallnet.mqtt import Inbound, MqttClient
from mallnet.wire.topics import KIOSK_STATUS, STATUS


class StatusError(MallnetError):
    """The broker could not be reached or refused the monitor."""


def read_status(
    settings: MqttSettings, mall: str, device: str, *, kiosk: bool = False, timeout: float = 10.0
) -> dict[str, Any] | None:
    """The device's retained status payload, or ``None`` when the broker holds none."""
    topic = (KIOSK_STATUS if kiosk else STATUS).topic(mall, device)
    got: list[dict[str, Any]] = []
    arrived = threading.Event()

    def on_message(message: Inbound) -> None:
        try:
            got.append(json.loads(message.payload))
        except ValueError:
            got.append({"state": "unreadable"})
        arrived.set()

    client_id = settings.username or "monitor"
    client = MqttClient(settings, client_id, subscriptions=[(topic, 1)], on_message=on_message)
    client.start()
    try:
        if not client.wait_subscribed(timeout):
            raise StatusError(
                f"cannot read {topic} from {settings.host}:{settings.port}: "
                f"{client.problem or 'not subscribed'}"
            )
        # A retained message is sent right after the SUBACK; allow it a moment to arrive.
        arrived.wait(min(timeout, 2.0))
    finally:
        client.stop()
    return got[-1] if got else None
