"""Readiness: what stops this core process from doing its work right now.

``/ready`` (docs/core.md) answers 503 with these reasons, 200 when there are none:

- the database cannot be written (locked for longer than a second, read-only, no
  space left);
- an ingest connection of this process is not connected to the broker (its reason,
  e.g. ``ConnectionRefusedError``, as the MQTT client last saw it);
- when the API runs apart from ingest (``--only api``): no ingest worker's retained
  status (``mall/v1/{mall}/core/{id}/status``) says ``online``, or the broker that
  holds those statuses cannot be reached.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable

from cloud_core.store import DatabaseTarget, PgTarget
from mallnet.config import MqttSettings
from mallnet.mqtt import Inbound, MqttClient
from mallnet.wire import WireError, decode
from mallnet.wire.payloads import DeviceStatus
from mallnet.wire.topics import CORE_STATUS

log = logging.getLogger(__name__)

#: Below this much free space where the database lives, the core is not ready.
MIN_FREE_BYTES = 16 * 1024 * 1024


def database_problem(target: DatabaseTarget, min_free_bytes: int = MIN_FREE_BYTES) -> str | None:
    """Why the database at ``target`` cannot take a write now, or None.

    SQLite: takes the write lock (``BEGIN IMMEDIATE``, waiting at most a second) and gives
    it back at once; checks that its folder is writable and has space left. PostgreSQL:
    connects (at most two seconds) and checks it is a primary with the mall's schema.
    """
    if isinstance(target, PgTarget):
        from cloud_core.store.postgres import database_problem as pg_problem

        return pg_problem(target)
    path = target
    folder = path.parent
    if not os.access(folder, os.W_OK):
        return "the database folder is not writable"
    try:
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        return f"the database folder cannot be checked: {exc.strerror}"
    if free < min_free_bytes:
        return f"the database disk is almost full ({free} bytes free)"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=1.0)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"the database cannot be written: {exc}"
    return None


class CoreStatusWatch:
    """The retained statuses of the core's ingest workers, for an API running apart.

    Connects lazily, on the first question, so an API that is never asked about
    readiness never talks to the broker.
    """

    def __init__(self, settings: MqttSettings, mall: str, client_id: str) -> None:
        self._settings = settings
        self._mall = mall
        self._client_id = client_id
        self._states: dict[str, str] = {}
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._client: MqttClient | None = None

    def _received(self, message: Inbound) -> None:
        try:
            decoded = decode(message.topic, message.payload)
        except WireError as exc:
            log.warning("ignored a core status on %s: %s", message.topic, exc)
            return
        if isinstance(decoded.message, DeviceStatus):
            with self._lock:
                self._states[decoded.topic.entity] = decoded.message.state

    def states(self) -> dict[str, str]:
        with self._lock:
            return dict(self._states)

    def _connected_client(self) -> MqttClient:
        with self._start_lock:  # probes may ask concurrently: one client, one client id
            if self._client is None:
                self._client = MqttClient(
                    self._settings,
                    self._client_id,
                    subscriptions=[(CORE_STATUS.filter(self._mall), 1)],
                    on_message=self._received,
                )
                self._client.start()
                self._client.wait_connected(1.0)  # a first answer with the retained statuses
            return self._client

    def problem(self) -> str | None:
        client = self._connected_client()
        if not client.connected:
            return f"cannot read the core's status from the broker: {client.problem}"
        states = self.states()
        if "online" not in states.values():
            seen = ", ".join(f"{k}={v}" for k, v in sorted(states.items())) or "none"
            return f"no ingest worker online (retained core status: {seen})"
        return None

    def stop(self) -> None:
        with self._start_lock:
            if self._client is not None:
                self._client.stop()


def readiness(
    database: DatabaseTarget,
    connections: dict[str, MqttClient],
    watch: CoreStatusWatch | None = None,
) -> Callable[[], list[str]]:
    """A check returning every reason this process is not ready (empty: ready)."""

    def check() -> list[str]:
        problems: list[str] = []
        db = database_problem(database)
        if db is not None:
            problems.append(db)
        for name, client in connections.items():
            reason = client.problem
            if reason is not None:
                problems.append(f"{name} not connected to the broker: {reason}")
        if watch is not None:
            reason = watch.problem()
            if reason is not None:
                problems.append(reason)
        return problems

    return check
