"""Helpers for the cloud core tests: a movable clock, configs, contract events."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml

from cloud_core import customers, ledger, offers
from cloud_core.app import CoreApp
from cloud_core.config import CoreConfig
from cloud_core.customers import Resolution, TagResolver, load_all_keys
from cloud_core.store import open_store
from mallnet import identity
from mallnet.broker import DevBroker, free_port
from mallnet.config import MqttSettings
from mallnet.dynsec import Role
from mallnet.ids import UuidV7Factory
from mallnet.mqtt import Inbound, MqttClient
from mallnet.wire import decode, encode
from mallnet.wire.payloads import (
    FootfallBatch,
    FootfallEvent,
    HealthReport,
    PresenceBatch,
    PresenceEvent,
    Receipt,
)
from mallnet.wire.topics import PRESENCE, RECEIPTS
from tests.conftest import MALL, Collector

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
        "database": tmp_path / "core.sqlite",
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


def register(config, n: int, phone: str) -> str:
    store = open_store(config.database)
    try:
        with store.transaction() as conn:
            customer, _ = customers.register_customer(conn, phone, default_region="GB")
            customers.attach_beacon_key(conn, customer, key_of(n).hex())
    finally:
        store.close()
    return customer


def add_campaign(config, **overrides) -> None:
    campaign = offers.Campaign(
        id="winter-coffee",
        business="bean-bar",
        title="Hot chocolate -20 %",
        text="Show this at Bean Bar.",
        image_url=None,
        starts_at=datetime.fromtimestamp(START, UTC) - timedelta(days=1),
        ends_at=datetime.fromtimestamp(START, UTC) + timedelta(days=7),
        stores=(),
        zones=(),
        segment="all",
        cap_count=1,
        cap_period_s=None,
    )
    campaign = offers.Campaign(**{**campaign.__dict__, **overrides})
    store = open_store(config.database)
    try:
        with store.transaction() as conn:
            offers.create_campaign(
                conn, campaign, {s.id: s for s in config.stores}, datetime.now(UTC)
            )
    finally:
        store.close()


def wallet(config, customer: str) -> dict[str, int]:
    store = open_store(config.database)
    try:
        with store.read() as conn:
            assert ledger.check_invariants(conn) == []
            at = datetime.fromtimestamp(START, UTC)
            return {b.pocket: b.balance for b in ledger.balances(conn, customer, at)}
    finally:
        store.close()


def receipts_collector(
    connect, node: str, *, persistent: bool = False
) -> tuple[Collector, MqttClient]:
    """A node's receipts subscription. ``persistent`` (as a real node's session is) keeps
    what the core receipts while the broker restarts and this client reconnects."""
    collector = Collector()
    client = connect(
        node,
        subscriptions=[(RECEIPTS.topic(MALL, node), 1)],
        on_message=collector,
        persistent_session=persistent,
    )
    return collector, client


def receipted_ids(collector: Collector) -> list[str]:
    ids: list[str] = []
    for message in list(collector.messages):
        receipt = decode(message.topic, message.payload).message
        assert isinstance(receipt, Receipt)
        ids.extend(receipt.ids)
    return ids


def message(walker: Walker, *events) -> Inbound:
    return Inbound(
        PRESENCE.topic(MALL, walker.node), encode(walker.batch(list(events))), 1, False, 0
    )


class BrokenResolver(TagResolver):
    """Our own seam: a resolver that fails for one tag, as a bug would."""

    def __init__(self, store, clock, poison: str) -> None:
        super().__init__(lambda: load_all_keys(store.conn), clock)
        self.poison = poison

    def resolve(self, tag: str, event_time: float) -> Resolution:
        if tag == self.poison:
            raise RuntimeError("resolver bug")
        return super().resolve(tag, event_time)


# Telemetry points carry real times (a time-series server refuses far-future samples):
# the start of the current hour, so the hourly rollups below are predictable.
BASE = time.time() // 3600 * 3600


def footfall(walker: Walker, minute: int, unique: int) -> FootfallBatch:
    walker.seq += 1
    start = datetime.fromtimestamp(BASE + minute * 60, UTC)
    return FootfallBatch(
        node=walker.node,
        events=(
            FootfallEvent(
                id=walker._ids(),
                seq=walker.seq,
                ts=start,
                window_start=start,
                window_s=60,
                unique_tags=unique,
                adverts=unique * 40,
            ),
        ),
    )


def health(walker: Walker, depth: int) -> HealthReport:
    walker.seq += 1
    return HealthReport(
        id=walker._ids(),
        seq=walker.seq,
        ts=datetime.fromtimestamp(BASE + 5, UTC),
        node=walker.node,
        uptime_s=100.0,
        adverts_per_s=30.0,
        events_per_s=0.5,
        outbox_depth=depth,
        outbox_oldest_age_s=0.0,
        outbox_dropped=0,
        scanner_restarts=0,
        adapter_resets=0,
        cpu_temp_c=48.5,
    )
