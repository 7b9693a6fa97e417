"""Time series: footfall and node health reach a real InfluxDB-v2-speaking server
(VictoriaMetrics), batched and without blocking ingest; without one, SQLite serves them."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cloud_core.app import CoreApp
from mallnet.broker import free_port
from mallnet.wire import encode
from mallnet.wire.topics import FOOTFALL, HEALTH
from tests.cloud_core.helpers import (
    BASE,
    Clock,
    Walker,
    footfall,
    health,
    make_config,
    receipted_ids,
    receipts_collector,
)
from tests.conftest import MALL, wait_until

VM_BINARY = Path("/usr/bin/victoria-metrics")


@pytest.fixture
def victoria(tmp_path) -> Iterator[str]:
    """A real VictoriaMetrics on a free loopback port, storage in tmp_path."""
    if not VM_BINARY.exists():
        pytest.fail("victoria-metrics is not installed: run scripts/bootstrap.sh")
    port = free_port()
    log = (tmp_path / "vm.log").open("wb")
    proc = subprocess.Popen(
        [
            str(VM_BINARY),
            f"-httpListenAddr=127.0.0.1:{port}",
            f"-storageDataPath={tmp_path / 'vm'}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-loggerLevel=ERROR",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, "victoria-metrics exited"
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, timeout=30, what="victoria-metrics to answer /health")
        yield url
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


def export(url: str, metric: str) -> list[dict[str, Any]]:
    params = {
        "match[]": f'{{__name__="{metric}"}}',
        "start": "0",
        "end": str(int(BASE + 86400)),
    }
    r = httpx.get(f"{url}/api/v1/export", params=params, timeout=5)
    r.raise_for_status()
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def send_telemetry(connect) -> tuple[list[str], object]:
    receipts, node = receipts_collector(connect, "store-1")
    walker = Walker("store-1")
    batches = [footfall(walker, 0, 12), footfall(walker, 1, 8), footfall(walker, 70, 5)]
    ids = [b.events[0].id for b in batches]
    for batch in batches:
        node.publish(FOOTFALL.topic(MALL, "store-1"), encode(batch)).wait(10)
    node.publish(HEALTH.topic(MALL, "store-1"), encode(health(walker, 3)), qos=0)
    wait_until(lambda: set(receipted_ids(receipts)) == set(ids), what="footfall receipts")
    return ids, receipts


def test_footfall_and_health_reach_victoria_metrics(
    tmp_path, victoria, core_settings, run_core, connect
):
    config = make_config(
        tmp_path, core_settings, telemetry={"url": victoria, "flush_interval_s": 0.05}
    )
    app = run_core(config)
    assert isinstance(app.clock, Clock)
    app.clock.set(BASE + 7200)  # the core's clock after the telemetry (it refuses future events)
    send_telemetry(connect)

    def series(metric: str) -> list[dict[str, Any]]:
        httpx.get(f"{victoria}/internal/force_flush", timeout=5)
        return export(victoria, metric)

    wait_until(
        lambda: len(series("footfall_unique_tags")) == 1,
        timeout=20,
        what="footfall in victoria-metrics",
    )
    [ff] = series("footfall_unique_tags")
    assert ff["metric"] == {
        "__name__": "footfall_unique_tags",
        "mall": MALL,
        "node": "store-1",
        "store": "bean-bar-l1",
    }
    assert sorted(ff["values"]) == [5, 8, 12]
    assert ff["timestamps"][0] == int(BASE * 1000)
    wait_until(
        lambda: len(series("node_health_outbox_depth")) == 1,
        timeout=20,
        what="health in victoria-metrics",
    )
    assert series("node_health_cpu_temp_c")[0]["values"] == [48.5]
    sink = app.telemetry
    assert sink is not None and sink.written == 4 and sink.dropped == 0


def test_an_unreachable_server_never_blocks_ingest(
    tmp_path, core_settings, run_core, connect, clock
):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config = make_config(tmp_path, core_settings, telemetry={"url": dead, "flush_interval_s": 0.05})
    clock.set(BASE + 7200)  # the core's clock after the telemetry (it refuses future events)
    app = run_core(config)
    send_telemetry(connect)  # receipted although every write fails
    wait_until(lambda: app.telemetry.failed_writes > 0, what="a failed write")


def test_without_a_server_the_api_serves_sqlite_rollups(
    tmp_path, core_settings, run_core, connect, clock
):
    keys = tmp_path / "keys.yaml"
    keys.write_text(
        yaml.safe_dump(
            {"keys": [{"name": "o", "role": "admin", "key": "k-admin-0123456789abcdef"}]}
        )
    )
    port = free_port()
    config = make_config(tmp_path, core_settings, api={"port": port, "keys_file": str(keys)})
    clock.set(BASE + 7200)  # the core's clock after the telemetry (it refuses future events)
    app: CoreApp = run_core(config, only=None)
    assert app.config.telemetry is None
    send_telemetry(connect)
    headers = {"X-API-Key": "k-admin-0123456789abcdef"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=5) as api:
        rows = api.get("/stats/footfall").json()
        hours = [
            datetime.fromtimestamp(BASE + h * 3600, UTC).strftime("%Y-%m-%dT%H:00Z") for h in (0, 1)
        ]
        assert [(r["hour"], r["unique_tags"], r["windows"]) for r in rows] == [
            (hours[0], 20, 2),
            (hours[1], 5, 1),
        ]
        wait_until(
            lambda: any(n["health"] for n in api.get("/nodes").json()), what="health on /nodes"
        )
        node = next(n for n in api.get("/nodes").json() if n["id"] == "store-1")
        assert node["health"]["outbox_depth"] == 3
