"""``GET /metrics`` over real uvicorn: the Prometheus text format, parsed with the client
library's own parser; events published through the real broker move the worker's counters;
only the ``metrics`` and ``admin`` roles may scrape; no customer id or phone number leaks; a
real edge node process shows in every family issue 15 names, and its kill as offline."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
from prometheus_client.parser import text_string_to_metric_families

from cloud_core.app import CoreApp
from mallnet.wire import encode
from mallnet.wire.payloads import HealthReport
from mallnet.wire.topics import HEALTH, PRESENCE
from tests.cloud_core.api_helpers import KEYS, h
from tests.cloud_core.conftest import wait_subscribed
from tests.cloud_core.helpers import (
    START,
    Walker,
    add_core,
    api_client,
    api_config,
    key_of,
    receipted_ids,
    receipts_collector,
    register,
    serve_api,
)
from tests.conftest import MALL, wait_until
from tests.edge_node.helpers import browse_trace, node_config

SCRAPER = "k-prometheus-0123456789abcdef"
ROLES = [
    {"name": "office", "role": "admin", "key": KEYS["admin"]},
    {"name": "prometheus", "role": "metrics", "key": SCRAPER},
    {"name": "atrium", "role": "kiosk", "key": KEYS["kiosk"]},
    {"name": "bean", "role": "tenant", "business": "bean-bar", "key": KEYS["bean"]},
]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: httpx.Client, headers: dict[str, str]) -> tuple[str, set[str], Samples]:
    """The exposition text, its family names and every sample (name, labels) → value."""
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = list(text_string_to_metric_families(r.text))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples
    }
    return r.text, {f.name for f in families}, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_only_the_metrics_and_admin_roles_may_scrape_and_a_lone_api_has_the_database_metrics(
    tmp_path,
):
    with serve_api(tmp_path, ROLES) as (client, _):
        assert client.get("/metrics").status_code == 401
        wrong = {"X-API-Key": "nope-nope-nope-nope"}
        assert client.get("/metrics", headers=wrong).status_code == 401
        for who in ("kiosk", "bean"):
            r = client.get("/metrics", headers=h(who))
            assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
        _, names, samples = scrape(client, h("admin"))
        bearer = {"Authorization": f"Bearer {SCRAPER}"}  # what Prometheus sends
        _, same, _ = scrape(client, bearer)
        _, also, _ = scrape(client, {"X-API-Key": SCRAPER})
        assert names == same == also
        assert {
            "mallnet_notices_pending",
            "mallnet_dead_letters",
            "mallnet_dead_letter_bounds",
            "mallnet_database_size_bytes",
            "mallnet_node_online",
            "mallnet_node_last_seen_age_seconds",
            "mallnet_node_outbox_depth",
            "mallnet_api_refused",
        } <= names
        # an API running apart from ingest has no worker's counters
        assert not any(n.startswith("mallnet_ingest_") for n in names)
        assert value(samples, "mallnet_database_size_bytes", file="database") > 0
        assert value(samples, "mallnet_api_refused_total", status="403") == 2
        # the scraper's key reads nothing else
        assert client.get("/stores", headers={"X-API-Key": SCRAPER}).status_code == 403
        assert client.get("/dead-letters", headers=bearer | h("bean")).status_code == 403
        assert client.get("/nodes", headers={"X-API-Key": SCRAPER}).json() == []
        spec = client.get("/openapi.json").json()
        assert spec["paths"]["/metrics"]["get"]["security"] == [{"ApiKey": []}]


def test_events_through_the_broker_move_the_counters_and_no_personal_data_leaks(
    tmp_path, core_settings, run_core, connect, clock
):
    config = api_config(tmp_path, ROLES, core_settings)
    phone = "+44 7911 123001"
    ann = register(config, 1, phone)
    app = run_core(config, only=None)
    clock.set(START + 1500)  # after the walk: the core refuses events dated ahead of it
    headers = {"Authorization": f"Bearer {SCRAPER}"}
    with api_client(config) as client:
        _, names, before = scrape(client, headers)
        assert {
            "mallnet_ingest_messages",
            "mallnet_ingest_events",
            "mallnet_ingest_outcomes",
            "mallnet_ingest_dead_letters",
            "mallnet_ingest_delay_seconds",
            "mallnet_ingest_notices_in_flight",
        } <= names
        assert value(before, "mallnet_ingest_delay_seconds_count") == 0

        receipts, node = receipts_collector(connect, "store-1")
        walker = Walker("store-1")
        events = walker.walk(key_of(1), START)
        node.publish(PRESENCE.topic(MALL, "store-1"), encode(walker.batch(events))).wait(10)
        walker.seq += 1
        report = HealthReport(
            id=walker._ids(),
            seq=walker.seq,
            ts=datetime.fromtimestamp(START + 1400, UTC),
            node="store-1",
            uptime_s=3600.0,
            adverts_per_s=30.0,
            events_per_s=0.5,
            outbox_depth=7,
            outbox_oldest_age_s=42.0,
            outbox_dropped=0,
            scanner_restarts=2,
            adapter_resets=0,
        )
        node.publish(HEALTH.topic(MALL, "store-1"), encode(report)).wait(10)
        node.publish(PRESENCE.topic(MALL, "store-1"), b"not json").wait(10)
        wait_until(
            lambda: (
                len(receipted_ids(receipts)) >= 3
                and app.consumer is not None
                and app.consumer.stats().get("dead_letters", 0) == 1
                and app.consumer.stats().get("health", 0) == 1
            ),
            what="the walk receipted, the health report kept, the bad message dead-lettered",
        )
        text, _, after = scrape(client, headers)

    assert (
        value(after, "mallnet_ingest_messages_total")
        - value(before, "mallnet_ingest_messages_total")
        >= 3
    )
    assert value(after, "mallnet_ingest_outcomes_total", outcome="credited") == 1
    assert value(after, "mallnet_ingest_dead_letters_total") == 1
    assert value(after, "mallnet_dead_letters", node="store-1") == 1
    # one observation per message (the walk and the report), not per event
    assert value(after, "mallnet_ingest_delay_seconds_count") == 2
    # the walk's first event is 1500 s old at its commit, the report 100 s
    assert value(after, "mallnet_ingest_delay_seconds_bucket", le="300.0") == 1
    assert value(after, "mallnet_ingest_delay_seconds_sum") == 1600
    assert value(after, "mallnet_node_outbox_depth", node="store-1") == 7
    assert value(after, "mallnet_node_outbox_oldest_age_seconds", node="store-1") == 42
    assert value(after, "mallnet_node_scanner_restarts_total", node="store-1") == 2
    assert value(after, "mallnet_node_last_seen_age_seconds", node="store-1") == 100
    assert value(after, "mallnet_notices_pending") >= 0
    # labels are node ids and outcome names: never a customer or a phone number
    assert ann not in text
    assert "7911" not in text and "+44" not in text


def test_a_real_node_process_shows_in_every_family_the_issue_names(
    tmp_path, broker, core_settings, core_client
):
    """Ingest rates and delays, outcomes, dead letters, notices pending, database size, and
    per-node last-seen and outbox depth as a real edge node process reports them (the core on
    the real clock: the node dates its reports by it); the node's kill shows as offline."""
    config = api_config(tmp_path, ROLES, core_settings)
    add_core(broker, config.ingest.client_id)
    app = CoreApp(config, only=None, clock=time.time)
    app.start()
    trace = tmp_path / "trace.jsonl"
    browse_trace(trace, shoppers=1)
    path = node_config(
        tmp_path, broker, "store-1", broker.add_user("store-1"), trace, at_end="idle"
    )
    started = time.time()
    node = subprocess.Popen(
        [sys.executable, "-m", "mallnet.cli", "edge", "run", "--config", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    headers = {"Authorization": f"Bearer {SCRAPER}"}
    try:
        wait_subscribed(app, core_client("probe-publisher"))
        with api_client(config) as client:

            def scraped() -> Samples:
                return scrape(client, headers)[2]

            wait_until(
                lambda: (
                    value(scraped(), "mallnet_node_online", node="store-1") == 1
                    and ("mallnet_node_outbox_depth", (("node", "store-1"),)) in scraped()
                    and value(scraped(), "mallnet_ingest_delay_seconds_count") > 0
                ),
                timeout=30,
                what="the node online, its health report and an ingest delay in /metrics",
            )
            _, names, samples = scrape(client, headers)
            assert {
                "mallnet_ingest_messages",  # rates: rate(..._total[5m])
                "mallnet_ingest_events",
                "mallnet_ingest_delay_seconds",  # delays
                "mallnet_ingest_outcomes",
                "mallnet_ingest_dead_letters",
                "mallnet_dead_letters",
                "mallnet_dead_letter_bounds",
                "mallnet_notices_pending",
                "mallnet_database_size_bytes",
                "mallnet_node_online",
                "mallnet_node_last_seen_timestamp_seconds",
                "mallnet_node_last_seen_age_seconds",
                "mallnet_node_outbox_depth",
                "mallnet_node_outbox_oldest_age_seconds",
            } <= names
            assert value(samples, "mallnet_ingest_messages_total") > 0
            assert value(samples, "mallnet_ingest_outcomes_total", outcome="health") > 0
            seen = value(samples, "mallnet_node_last_seen_timestamp_seconds", node="store-1")
            assert seen >= started - 1
            assert value(samples, "mallnet_node_outbox_depth", node="store-1") >= 0
            assert value(samples, "mallnet_database_size_bytes", file="database") > 0

            node.send_signal(signal.SIGKILL)
            node.wait(timeout=30)
            wait_until(  # the broker publishes the node's Last Will: offline
                lambda: value(scraped(), "mallnet_node_online", node="store-1") == 0,
                timeout=30,
                what="the killed node offline in /metrics",
            )
    finally:
        if node.poll() is None:
            node.kill()
            node.wait(timeout=10)
        app.stop()
