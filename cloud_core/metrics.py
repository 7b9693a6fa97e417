"""Prometheus metrics for ``GET /metrics`` (the list and a scrape config: docs/core.md).

Each API has its own ``CollectorRegistry`` (``ApiContext.metrics``), never the client
library's global one (the tests start many cores in one process). The collectors read the
current values at scrape time; nothing on the ingest path writes for them:

* ``DatabaseCollector`` — what the database holds (inbox notices pending, dead letters per
  node, the nodes' retained status and last health report, the file size with its WAL)
  and this API's refusals. Every API process has it, also one running apart from ingest
  (``--only api``).
* ``WorkerCollector`` — one ingest worker's counters since it started (the consumer's and
  applier's snapshot) and its ingest delay histogram: only in a process that runs ingest
  and the API together (``mallnet core run`` without ``--only``).

Labels are bounded: node ids, outcome names, HTTP statuses — never a customer, tag, plate
or phone number.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cloud_core import ledger, promo_codes, reports
from cloud_core.store import DatabaseTarget, Row, Store

if TYPE_CHECKING:
    from cloud_core.ingest import Consumer

#: The classic text exposition format every Prometheus reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Worker counters with a metric of their own (``mallnet_ingest_<name>_total``); every other
#: counter of the snapshot is an outcome (``mallnet_ingest_outcomes_total{outcome}``).
WORKER_COUNTERS = {
    "messages": "Messages taken from the broker and committed.",
    "batches": "Transactions committed.",
    "events": "Event ids applied for the first time.",
    "duplicates": "Events seen again (redelivered, resent): receipted, applied nowhere.",
    "dead_letters": "Messages dead-lettered.",
    "acked": "Messages acknowledged to the broker (after their commit).",
    "failed_batches": "Batches that failed (retried or applied one by one).",
    "db_full": "Batches refused because the database or its disk is full.",
    "points": "Points granted.",
    "notices_refused": "Inbox notice publishes the broker refused (kept, sent again).",
    "replays_seen": "Beacon ids seen again after their rotation window (replays).",
    "conflict_retries": "Batches run again after a serialization conflict (PostgreSQL).",
}
NOT_COUNTERS = {"notices_in_flight", "delay_p50_us", "delay_p99_us"}


def exposition(registry: CollectorRegistry) -> bytes:
    """The registry in the text format 0.0.4 (``CONTENT_TYPE``)."""
    return generate_latest(registry)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _labelled(
    family: GaugeMetricFamily | CounterMetricFamily, rows: Iterable[tuple[tuple[str, ...], float]]
) -> GaugeMetricFamily | CounterMetricFamily:
    for labels, value in rows:
        family.add_metric(list(labels), value)
    return family


class DatabaseCollector(Collector):
    """Database-derived metrics (a few small queries per scrape, in one read transaction)."""

    def __init__(
        self,
        store: Store,
        database: DatabaseTarget,
        clock: Callable[[], float],
        refused: Counter[int],
    ) -> None:
        self._store = store
        self._database = database
        self._clock = clock
        self._refused = refused

    def collect(self) -> Iterator[Metric]:
        with self._store.read() as conn:
            seen = reports.monitoring(conn)
            pools = promo_codes.all_stock(conn)
        yield from self._pools(pools)
        yield _gauge(
            "mallnet_notices_pending",
            "Inbox notices kept until the broker acknowledges their publish.",
            seen.notices_pending,
        )
        yield _labelled(
            GaugeMetricFamily(
                "mallnet_dead_letters", "Dead letters kept, by node.", labels=["node"]
            ),
            (((node,), n) for node, n in sorted(seen.dead_letters_by_node.items())),
        )
        yield _labelled(
            CounterMetricFamily(
                "mallnet_dead_letter_bounds",
                "What the dead-letter bounds dropped or ignored, by node and what.",
                labels=["node", "what"],
            ),
            sorted(seen.dead_letter_counts.items()),
        )
        yield from self._nodes(seen.nodes)
        yield self._sizes()
        yield _labelled(
            CounterMetricFamily(
                "mallnet_api_refused", "4xx answers of this API process.", labels=["status"]
            ),
            (((str(code),), n) for code, n in sorted(self._refused.items())),
        )

    @staticmethod
    def _pools(pools: list[promo_codes.Pool]) -> Iterator[Metric]:
        """Per promo-code pool: its codes by state, and whether it is running low."""
        codes = GaugeMetricFamily(
            "mallnet_promo_codes",
            "Codes of a promo-code pool, by state (free, claimed, used).",
            labels=["pool", "state"],
        )
        low = GaugeMetricFamily(
            "mallnet_promo_pool_low",
            "1 while a pool has its low-stock threshold or fewer codes left.",
            labels=["pool"],
        )
        for pool in pools:
            codes.add_metric([pool.id, "free"], pool.free)
            codes.add_metric([pool.id, "claimed"], pool.claimed)
            codes.add_metric([pool.id, "used"], pool.used)
            low.add_metric([pool.id], 1.0 if pool.low else 0.0)
        yield codes
        yield low

    def _sizes(self) -> Metric:
        sizes = GaugeMetricFamily(
            "mallnet_database_size_bytes",
            "The SQLite database file and its WAL (PostgreSQL: the mall schema's tables).",
            labels=["file"],
        )
        if not isinstance(self._database, Path):
            with self._store.read() as conn:
                (size,) = conn.execute(
                    "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                ).fetchone()
            sizes.add_metric(["database"], int(size))
            return sizes
        for file, path in (("database", self._database), ("wal", Path(f"{self._database}-wal"))):
            try:
                sizes.add_metric([file], os.stat(path).st_size)
            except FileNotFoundError:
                sizes.add_metric([file], 0)
        return sizes

    def _nodes(self, rows: Iterable[Row]) -> Iterator[Metric]:
        """Per node (and kiosk, gate): its retained status and its last health report."""
        now = self._clock()

        Kind = type[GaugeMetricFamily | CounterMetricFamily]

        def family(kind: Kind, name: str, doc: str) -> GaugeMetricFamily | CounterMetricFamily:
            return kind(name, doc, labels=["node"])

        online = family(GaugeMetricFamily, "mallnet_node_online", "1 while its status is online.")
        last = family(
            GaugeMetricFamily,
            "mallnet_node_last_seen_timestamp_seconds",
            "Its last health report (or status change), epoch seconds.",
        )
        age = family(
            GaugeMetricFamily,
            "mallnet_node_last_seen_age_seconds",
            "Seconds since its last health report (or status change), by the core's clock.",
        )
        reported: dict[str, tuple[Kind, str, str]] = {
            "outbox_depth": (GaugeMetricFamily, "mallnet_node_outbox_depth", "Events waiting."),
            "outbox_oldest_age_s": (
                GaugeMetricFamily,
                "mallnet_node_outbox_oldest_age_seconds",
                "Age of its oldest waiting event.",
            ),
            "outbox_dropped": (
                CounterMetricFamily,
                "mallnet_node_outbox_dropped",
                "Events its outbox dropped to bound the disk.",
            ),
            "scanner_restarts": (
                CounterMetricFamily,
                "mallnet_node_scanner_restarts",
                "Restarts of its scanner.",
            ),
            "uptime_s": (GaugeMetricFamily, "mallnet_node_uptime_seconds", "Its process uptime."),
            "cpu_temp_c": (
                GaugeMetricFamily,
                "mallnet_node_cpu_temperature_celsius",
                "Its SoC temperature.",
            ),
        }
        health = {
            key: family(kind, name, f"{doc} (as last reported)")
            for key, (kind, name, doc) in reported.items()
        }
        for row in rows:
            node = str(row["id"])
            online.add_metric([node], 1.0 if row["state"] == "online" else 0.0)
            if row["last_seen"]:
                at = ledger.from_iso(row["last_seen"]).timestamp()
                last.add_metric([node], at)
                age.add_metric([node], max(0.0, now - at))
            report = json.loads(row["last_health"]) if row["last_health"] else {}
            for key, metric in health.items():
                value = report.get(key)
                if isinstance(value, int | float):
                    metric.add_metric([node], float(value))
        yield online
        yield last
        yield age
        yield from health.values()


class WorkerCollector(Collector):
    """One ingest worker's counters since it started and its delay histogram."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer

    def collect(self) -> Iterator[Metric]:
        stats = self._consumer.stats()
        for key, doc in WORKER_COUNTERS.items():
            yield CounterMetricFamily(f"mallnet_ingest_{key}", doc, value=stats.get(key, 0))
        outcomes = CounterMetricFamily(
            "mallnet_ingest_outcomes",
            "Events (and messages) by what ingest did with them (credited, short, stale,"
            " unknown_tag, health, footfall, status, parking and check-in outcomes…).",
            labels=["outcome"],
        )
        for key, n in sorted(stats.items()):
            if key not in WORKER_COUNTERS and key not in NOT_COUNTERS:
                outcomes.add_metric([key], n)
        yield outcomes
        yield _gauge(
            "mallnet_ingest_notices_in_flight",
            "Inbox notices published and not yet acknowledged by the broker.",
            stats.get("notices_in_flight", 0),
        )
        yield from self._consumer.ingest_delay.collect()


def registry_for(
    store: Store, database: DatabaseTarget, clock: Callable[[], float], refused: Counter[int]
) -> CollectorRegistry:
    """A fresh registry with the database collector (the worker's is added by the app)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(store, database, clock, refused))
    return registry
