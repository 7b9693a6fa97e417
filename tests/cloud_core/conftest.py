"""Fixtures for the cloud core: an in-process core on the real broker, core-side clients,
and the database a test's core uses.

``database`` is a fresh SQLite file, or — in a module that sets ``BOTH_BACKENDS = True``,
where every test that uses it runs once per backend — a fresh PostgreSQL database on the
session's throwaway cluster (``pg_cluster``, tests/postgres.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloud_core.app import CoreApp
from cloud_core.config import CoreConfig
from cloud_core.store import DatabaseTarget, PgTarget
from cloud_core.store.target import schema_for_mall
from mallnet.broker import DevBroker
from mallnet.config import MqttSettings
from mallnet.mqtt import MqttClient
from mallnet.wire import encode
from mallnet.wire.payloads import DeviceStatus
from mallnet.wire.topics import STATUS
from tests import postgres
from tests.cloud_core.helpers import Clock, add_core, core_mqtt, make_config
from tests.conftest import MALL, wait_until
from tests.postgres import PgCluster

BACKENDS = ("sqlite", "postgres")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_backend" in metafunc.fixturenames and getattr(metafunc.module, "BOTH_BACKENDS", False):
        metafunc.parametrize("db_backend", BACKENDS)


@pytest.fixture
def db_backend() -> str:
    """The backend of ``database`` (parametrised in ``BOTH_BACKENDS`` modules)."""
    return "sqlite"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One throwaway PostgreSQL 15 cluster for the session (skips if it cannot run here)."""
    reason = postgres.missing()
    if reason is not None:
        pytest.skip(reason)
    with postgres.cluster({"fsync": "off", "full_page_writes": "off"}) as pg:
        yield pg


@pytest.fixture
def database(request: pytest.FixtureRequest, tmp_path: Path, db_backend: str) -> DatabaseTarget:
    """Where this test's core keeps its data: a fresh SQLite file or PostgreSQL database."""
    if db_backend == "postgres":
        pg: PgCluster = request.getfixturevalue("pg_cluster")
        return PgTarget(pg.new_database(), schema_for_mall(MALL))
    return tmp_path / "core.sqlite"


@pytest.fixture
def new_database(
    request: pytest.FixtureRequest, tmp_path: Path, db_backend: str
) -> Callable[[], DatabaseTarget]:
    """Fresh databases on demand (one per Hypothesis example): SQLite files, or schemas of
    one PostgreSQL database."""
    count = itertools.count()
    url: list[str] = []

    def make() -> DatabaseTarget:
        n = next(count)
        if db_backend == "postgres":
            if not url:
                url.append(request.getfixturevalue("pg_cluster").new_database())
            return PgTarget(url[0], f"example_{n}")
        return tmp_path / f"core-{n}.sqlite"

    return make


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def core_settings(broker: DevBroker) -> MqttSettings:
    return core_mqtt(broker)


@pytest.fixture
def core_config(tmp_path, core_settings, database) -> CoreConfig:
    return make_config(tmp_path, core_settings, database=database)


@pytest.fixture
def core_client(broker: DevBroker, core_settings) -> Iterator[Callable[..., MqttClient]]:
    """Clients in the core's role (the only one that may publish core topics and read inbox
    topics), each its own core identity bound to its client id: the core's user is bound to
    its worker's ids and refuses any other."""
    clients: list[MqttClient] = []

    def make(client_id: str, **kwargs: object) -> MqttClient:
        settings = core_settings.model_copy(update={"username": add_core(broker, client_id)})
        client = MqttClient(settings, client_id, **kwargs)  # type: ignore[arg-type]
        client.start()
        # subscribed, not only connected: a message another client publishes next is delivered
        assert client.wait_subscribed(10), f"{client_id} could not connect and subscribe"
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.stop()


def wait_subscribed(app: CoreApp, probe: MqttClient) -> None:
    """Subscriptions are active once a status message (subscribed last) gets through."""
    consumer = app.consumer
    assert consumer is not None and consumer.client.wait_connected(10)
    seen = consumer.stats().get("status", 0)
    status = DeviceStatus(state="online", device="probe", since=datetime.now(UTC), software="t")

    def seen_probe() -> bool:
        if consumer.stats().get("status", 0) > seen:
            return True
        probe.publish(STATUS.topic(MALL, "probe"), encode(status)).wait(10)
        return False

    wait_until(seen_probe, what="core subscribed")


@pytest.fixture
def run_core(broker: DevBroker, clock, core_client) -> Iterator[Callable[..., CoreApp]]:
    """Start in-process cores (ingest only unless told), each as the core identity of its
    ``ingest.client_id`` (added here); all are stopped afterwards."""
    apps: list[CoreApp] = []
    probe = core_client("probe-publisher")

    def start(config: CoreConfig, only: str | None = "ingest") -> CoreApp:
        add_core(broker, config.ingest.client_id)
        app = CoreApp(config, only=only, clock=clock)  # type: ignore[arg-type]
        app.start()
        apps.append(app)
        if app.consumer is not None:
            wait_subscribed(app, probe)
        return app

    yield start
    for app in apps:
        app.stop()
