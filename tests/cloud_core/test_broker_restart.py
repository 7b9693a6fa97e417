"""A broker killed (kill -9) while the nodes publish and the core is down loses nothing.

Mosquitto 2.0 does not restore shared subscriptions after a restart: until the core
subscribes again, what the nodes publish is answered with PUBACK reason 16 (no matching
subscribers) and discarded. The nodes treat that as not delivered and send again with
backoff, so the restart costs seconds, not their receipt timeout (here longer than the
test waits). Real Mosquitto, real nodes (``EdgeApp`` on replayed traces), the real core.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import yaml

from cloud_core.app import CoreApp
from cloud_core.store import open_store
from edge_node.ble.app import EdgeApp
from edge_node.ble.config import load_node_config
from edge_node.outbox import Outbox
from mallnet.broker import DevBroker
from mallnet.mqtt import PublishTicket
from mallnet.wire import decode
from mallnet.wire.payloads import FootfallBatch, PresenceBatch
from tests.cloud_core.conftest import wait_subscribed
from tests.cloud_core.helpers import Clock, make_config, register, wallet
from tests.conftest import wait_until
from tests.edge_node.helpers import T0, AppThread, browse_trace, node_config

log = logging.getLogger(__name__)

NODES = ("store-1", "store-2")


class Recording:
    """The node's transport seam: records every event id and seq it publishes."""

    def __init__(self, app: EdgeApp) -> None:
        self.inner = app.client
        self.events: dict[str, int] = {}

    @property
    def connected(self) -> bool:
        return self.inner.connected

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> PublishTicket:
        message = decode(topic, payload).message
        if isinstance(message, PresenceBatch | FootfallBatch):
            self.events.update({e.id: e.seq for e in message.events})
        return self.inner.publish(topic, payload, qos, retain)


def _node(tmp_path: Path, broker: DevBroker, node: str, seed: int) -> tuple[EdgeApp, Recording]:
    trace = tmp_path / f"{node}.jsonl"
    browse_trace(trace, shoppers=12, stagger=15, seed=seed)
    path = node_config(tmp_path, broker, node, broker.add_user(node), trace, receipt_timeout_s=3600)
    data = yaml.safe_load(path.read_text())
    data["source"]["drain_timeout_s"] = 3600  # the test's own timeout decides
    path.write_text(yaml.safe_dump(data))
    app = EdgeApp(load_node_config(path))
    recording = Recording(app)
    app.publisher.transport = recording
    return app, recording


def _processed(config) -> dict[str, list[str]]:
    store = open_store(config.database)
    try:
        with store.read() as conn:
            rows = conn.execute(
                "SELECT event_id, node FROM processed_events WHERE topic NOT LIKE '%health'"
            ).fetchall()
    finally:
        store.close()
    out: dict[str, list[str]] = {}
    for event_id, node in rows:
        out.setdefault(str(node), []).append(str(event_id))
    return out


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "plain"])
def test_broker_killed_while_the_core_is_down_loses_and_doubles_nothing(
    tmp_path, broker, core_settings, core_client, *, shared
):
    config = make_config(tmp_path, core_settings, ingest={"batch_wait_ms": 1, "shared": shared})
    customers = [register(config, n, f"+44 7911 1230{n:02d}") for n in range(1, 13)]
    clock = Clock(T0 + 600)
    probe = core_client("probe-publisher")
    core = CoreApp(config, only="ingest", clock=clock)
    core.start()  # once, so that its persistent session and subscriptions exist
    try:
        wait_subscribed(core, probe)
    finally:
        core.stop()
    # the broker saves its state every second: wait for a save that has the core's session
    stopped = time.time_ns()
    saved = broker.data_dir / "mosquitto.db"
    wait_until(
        lambda: saved.exists() and saved.stat().st_mtime_ns > stopped, 10, "a broker autosave"
    )

    nodes = [_node(tmp_path, broker, node, seed) for seed, node in enumerate(NODES)]
    threads = [AppThread(app).start() for app, _ in nodes]
    try:
        wait_until(
            lambda: all(app.publisher.stats.acked_batches >= 1 for app, _ in nodes),
            30,
            "each node's first batch taken by the broker (queued for the absent core)",
        )
        broker.kill()  # kill -9, the core still down
        broker.start()
        wait_until(
            lambda: all(app.client.counters.connects >= 2 for app, _ in nodes),
            30,
            "the nodes back on the restarted broker",
        )
        if shared:  # the restarted broker forgot the subscription: nodes' batches refused
            wait_until(
                lambda: all(app.publisher.stats.refused_batches >= 2 for app, _ in nodes),
                30,
                "PUBACK 16 (no matching subscribers), twice, for each node",
            )
        else:  # a plain subscription in a saved session survives: queued for the core
            wait_until(
                lambda: all(
                    app.publisher.stats.republish_rounds >= 1 and app.publisher.awaiting_acks == 0
                    for app, _ in nodes
                ),
                30,
                "the republished batches acknowledged by the restarted broker",
            )
        restarted = time.monotonic()
        core = CoreApp(config, only="ingest", clock=clock)
        core.start()
        try:
            wait_until(
                lambda: all(t.code is not None for t in threads),
                120,
                "every node drained (receipted by the core) and finished",
            )
            recovery = time.monotonic() - restarted
        finally:
            core.stop()
    finally:
        for app, _ in nodes:
            app.request_stop()
        codes = [t.join() for t in threads]
    log.warning(
        "recovery (%s subscription): %.2fs from the core's restart to every event receipted;"
        " refused batches per node: %s",
        "shared" if shared else "plain",
        recovery,
        [app.publisher.stats.refused_batches for app, _ in nodes],
    )
    assert codes == [0, 0]
    if not shared:
        assert [app.publisher.stats.refused_batches for app, _ in nodes] == [0, 0]
    processed = _processed(config)
    for (_app, recording), node in zip(nodes, NODES, strict=True):
        last_seq = _last_seq(tmp_path, node)
        assert sorted(recording.events.values()) == list(range(1, last_seq + 1))
        # each event the node made is applied exactly once (processed_events is keyed by id)
        assert sorted(processed[node]) == sorted(recording.events)
    balances = [sum(wallet(config, c).values()) for c in customers]  # ledger invariants hold
    assert sum(balances) > 0


def _last_seq(tmp_path: Path, node: str) -> int:
    box = Outbox(tmp_path / f"{node}.outbox.sqlite")
    try:
        assert box.depth == 0
        return box.last_seq
    finally:
        box.close()
