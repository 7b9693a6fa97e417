"""Helpers for the cloud core tests: a movable clock, configs, contract events."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml

from cloud_core.app import CoreApp
from cloud_core.config import CoreConfig
from mallnet import identity
from mallnet.broker import DevBroker, free_port
from mallnet.config import MqttSettings
from mallnet.dynsec import Role
from mallnet.ids import UuidV7Factory
from mallnet.wire.payloads import PresenceBatch, PresenceEvent
from tests.conftest import MALL

CORE_PASSWORD = "core-test-password-0123456789"
START = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC).timestamp()

STORES: list[dict[str, Any]] = [
    {
        "id": "bean-bar-l1",
        "name": "Bean Bar",
        "business": "bean-bar",
        "zone": "level-1",
        "nodes": ["store-1", "store-1b"],
    },
    {
        "id": "shoe-hub",
        "name": "Shoe Hub",
        "business": "shoe-hub",
        "zone": "level-1",
        "nodes": ["store-2"],
    },
    {
        "id": "book-nook",
        "name": "Book Nook",
        "business": "book-nook",
        "zone": "level-2",
        "nodes": ["store-3"],
    },
]


class Clock:
    """A clock tests move by hand (thread-safe)."""

    def __init__(self, start: float = START) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, value: float) -> None:
        with self._lock:
            self._now = value


def add_core(broker: DevBroker, client_id: str = "core-1") -> str:
    """A core identity bound to ``client_id`` (and its ``-out``/``-api`` connections), with
    the fixed test password, so every core client can reconnect."""
    broker.add_user(client_id, CORE_PASSWORD, role=Role.CORE)
    return client_id


def core_mqtt(broker: DevBroker) -> MqttSettings:
    """The core's broker settings for the default worker ``core-1`` (a config made from them
    by ``make_config`` leaves the user out: it is the config's ``ingest.client_id``; a test
    running another worker id adds its identity with ``add_core``)."""
    return MqttSettings(
        port=broker.port,
        username=add_core(broker),
        password=CORE_PASSWORD,
        reconnect_min_s=0.1,
        reconnect_max_s=1,
    )


def make_config(tmp_path: Path, mqtt: MqttSettings | None = None, **overrides: Any) -> CoreConfig:
    data: dict[str, Any] = {
        "mall": MALL,
        "database": str(tmp_path / "core.sqlite"),
        "mqtt": (mqtt or MqttSettings()).model_dump(mode="json", exclude={"username"}),
        "visits": {"points": 10, "min_dwell_s": 60, "cooldown_s": 3600, "daily_cap": 30},
        "game": {"stores": 3, "points": 50},
        "stores": STORES,
        "ingest": {"batch_wait_ms": 1, "expiry_interval_s": 3600},
    }
    if mqtt is not None and mqtt.password is not None:
        data["mqtt"]["password"] = mqtt.password.get_secret_value()
    data.update(overrides)
    return CoreConfig.model_validate(data)


def key_of(n: int) -> bytes:
    return bytes([n % 256]) * 32


class Walker:
    """Makes contract presence events as a node would (own id generator and sequence)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.seq = 0
        self._ids = UuidV7Factory()

    def event(
        self,
        key: bytes,
        ts: float,
        kind: Literal["enter", "dwell", "exit"] = "dwell",
        inside_s: float = 120.0,
        tag_time: float | None = None,
    ) -> PresenceEvent:
        self.seq += 1
        window = identity.window_of(ts if tag_time is None else tag_time)
        return PresenceEvent(
            id=self._ids(),
            seq=self.seq,
            ts=datetime.fromtimestamp(ts, UTC),
            kind=kind,
            tag=identity.tag_id(key, window),
            rssi=-60.0,
            distance_m=2.0,
            inside_s=inside_s,
        )

    def walk(self, key: bytes, start: float, dwell_s: float = 180.0) -> list[PresenceEvent]:
        """Enter, a dwell report a minute later, exit after ``dwell_s``."""
        return [
            self.event(key, start, "enter", 0.0),
            self.event(key, start + 60, "dwell", 60.0),
            self.event(key, start + dwell_s, "exit", dwell_s),
        ]

    def batch(self, events: list[PresenceEvent]) -> PresenceBatch:
        return PresenceBatch(node=self.node, events=tuple(events))


def api_config(
    tmp_path: Path,
    keys: list[dict[str, str]],
    mqtt: MqttSettings | None = None,
    **overrides: Any,
) -> CoreConfig:
    """A config whose API listens on a free port with these keys (``api=`` adds settings)."""
    keys_file = tmp_path / "api-keys.yaml"
    keys_file.write_text(yaml.safe_dump({"keys": keys}))
    api = {"port": free_port(), "keys_file": str(keys_file), **overrides.pop("api", {})}
    return make_config(tmp_path, mqtt, api=api, **overrides)


def api_client(config: CoreConfig) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{config.api.port}", timeout=10)


@contextlib.contextmanager
def serve_api(
    tmp_path: Path, keys: list[dict[str, str]], **overrides: Any
) -> Iterator[tuple[httpx.Client, CoreApp]]:
    """The core's API alone on real uvicorn with these API keys, and an httpx client for it."""
    config = api_config(tmp_path, keys, **overrides)
    app = CoreApp(config, only="api", clock=Clock(START))
    app.start()
    try:
        with api_client(config) as client:
            yield client, app
    finally:
        app.stop()
