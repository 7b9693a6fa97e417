"""Shared fixtures: a real Mosquitto per test from mqtt_broker/ config, MQTT clients, waiting."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mallnet.broker import DevBroker
from mallnet.config import MqttSettings
from mallnet.mqtt import Inbound, MqttClient

os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
os.environ.setdefault("KIVY_HOME", str(Path(__file__).parent / ".kivy-home"))
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")

MALL = "testmall"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--ble-adapter", default=None, help="run real-radio tests on this adapter")
    parser.addoption("--camera", default=None, help="run real-camera tests on this device")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "ble_adapter" in item.keywords and not config.getoption("--ble-adapter"):
            item.add_marker(pytest.mark.skip(reason="needs --ble-adapter (opt-in hardware test)"))
        if "camera" in item.keywords and not config.getoption("--camera"):
            item.add_marker(pytest.mark.skip(reason="needs --camera (opt-in hardware test)"))


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """A test that runs a command in-process (``mallnet.cli.main``) configures the root
    logger with a handler on that test's captured stderr, which pytest closes afterwards;
    left behind, it breaks every later test that logs (Kivy's logger among them)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def wait_until(
    predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Wait for a condition to hold, polling with backoff; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[DevBroker]:
    """A real Mosquitto on a free loopback port, stopped by its PID afterwards. Identities are
    added live (``broker.add_user``), with the role their name implies (``core…``, ``gate…``,
    ``kiosk…``, ``monitor…`` read-only, else a store node; ``mallnet.broker.dev_role``), bound to
    their own client id (a core identity ``X`` also to ``X-out`` and ``X-api``): a test that
    watches topics connects as its own ``monitor-…`` identity, never as the core."""
    instance = DevBroker(tmp_path / "broker", mall=MALL)
    instance.start()
    try:
        yield instance
    finally:
        instance.kill() if instance.running else None


def settings_for(broker: DevBroker, user: str) -> MqttSettings:
    """Credentials for a broker user (added on first use; later calls reuse its password,
    so clients already logged in as that user stay connected)."""
    password = broker.credential(user)
    return MqttSettings(
        port=broker.port,
        username=user,
        password=password,
        reconnect_min_s=0.1,
        reconnect_max_s=1,
    )


class Collector:
    """A message handler that records messages and lets tests wait for them."""

    def __init__(self) -> None:
        self.messages: list[Inbound] = []
        self._cond = threading.Condition()

    def __call__(self, message: Inbound) -> None:
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Inbound]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"got {len(self.messages)} messages, expected {count}")
            return list(self.messages)


@pytest.fixture
def connect(broker: DevBroker) -> Iterator[Callable[..., MqttClient]]:
    """Make connected clients for broker users; all are stopped afterwards."""
    clients: list[MqttClient] = []

    def make(user: str, client_id: str | None = None, **kwargs: object) -> MqttClient:
        client = MqttClient(settings_for(broker, user), client_id or user, **kwargs)  # type: ignore[arg-type]
        client.start()
        # subscribed, not only connected: a message another client publishes next is delivered
        assert client.wait_subscribed(10), f"{user} could not connect and subscribe"
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.stop()
