"""What nodes report about themselves: status, health and footfall rows (and their points).

Each function writes in the caller's (the batch's) transaction and returns the telemetry
point to send after the commit; claims, staleness and dispatch stay in ``applier.py``.
"""

from __future__ import annotations

from cloud_core import ledger
from cloud_core.store import Conn
from cloud_core.telemetry import Point
from mallnet.wire.payloads import DeviceStatus, FootfallEvent, HealthReport


def record_status(conn: Conn, status: DeviceStatus, now_iso: str) -> None:
    """A node's retained status (online/offline since when, software); an older one is ignored."""
    conn.execute(
        "INSERT INTO nodes (id, state, since, software, last_seen) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET state = excluded.state, since = excluded.since,"
        " software = excluded.software, last_seen = excluded.last_seen"
        " WHERE nodes.since IS NULL OR excluded.since >= nodes.since",
        (
            status.device,
            status.state,
            ledger.iso(status.since),
            status.software,
            now_iso,
        ),
    )


def record_health(conn: Conn, mall: str, report: HealthReport) -> Point:
    """A node's latest health report (``nodes.last_health``) and its telemetry point."""
    conn.execute(
        "INSERT INTO nodes (id, last_health, last_seen) VALUES (?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET last_health = excluded.last_health,"
        " last_seen = excluded.last_seen",
        (report.node, report.model_dump_json(), ledger.iso(report.ts)),
    )
    fields: dict[str, float] = {
        "uptime_s": report.uptime_s,
        "adverts_per_s": report.adverts_per_s,
        "events_per_s": report.events_per_s,
        "outbox_depth": report.outbox_depth,
        "outbox_oldest_age_s": report.outbox_oldest_age_s,
        "outbox_dropped": report.outbox_dropped,
        "scanner_restarts": report.scanner_restarts,
    }
    if report.cpu_temp_c is not None:
        fields["cpu_temp_c"] = report.cpu_temp_c
    if report.load_1m is not None:
        fields["load_1m"] = report.load_1m
    return Point("node_health", {"mall": mall, "node": report.node}, fields, report.ts)


def record_footfall(conn: Conn, mall: str, node: str, store: str, window: FootfallEvent) -> Point:
    """Add one footfall window to the node's hourly row, and its telemetry point."""
    hour = window.window_start.strftime("%Y-%m-%dT%H:00Z")
    conn.execute(
        "INSERT INTO footfall (node, hour, unique_tags, adverts, windows)"
        " VALUES (?, ?, ?, ?, 1) ON CONFLICT (node, hour) DO UPDATE SET"
        " unique_tags = footfall.unique_tags + excluded.unique_tags,"
        " adverts = footfall.adverts + excluded.adverts, windows = footfall.windows + 1",
        (node, hour, window.unique_tags, window.adverts),
    )
    return Point(
        "footfall",
        {"mall": mall, "node": node, "store": store},
        {"unique_tags": window.unique_tags, "adverts": window.adverts},
        window.window_start,
    )
