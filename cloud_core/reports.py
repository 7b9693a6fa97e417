"""The API's read queries: customers' summaries, nodes, statistics, dead letters, parking.

Everything the HTTP API reads and no rule decides on is queried here (read-only, in the
caller's read transaction), so routes carry no SQL. Access control stays in the routes:
a function takes the filters it is given (a tenant's business, its nodes) as data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cloud_core import ledger
from cloud_core.store import Conn, Row
from cloud_core.store.filters import Filters

# --- customers --------------------------------------------------------------------------


def customer_of_phone(conn: Conn, e164: str) -> str | None:
    """The customer registered with this (normalised) phone number."""
    row = conn.execute("SELECT id FROM customers WHERE phone = ?", (e164,)).fetchone()
    return None if row is None else str(row[0])


def beacon_key_count(conn: Conn, customer: str) -> int:
    (keys,) = conn.execute(
        "SELECT COUNT(*) FROM beacon_keys WHERE customer_id = ?", (customer,)
    ).fetchone()
    return int(keys)


def plates_of(conn: Conn, customer: str) -> list[str]:
    return [
        str(r[0])
        for r in conn.execute(
            "SELECT plate FROM vehicles WHERE customer_id = ? ORDER BY plate", (customer,)
        )
    ]


@dataclass(frozen=True)
class Credit:
    ts: datetime
    pocket: str
    points: int
    text: str


def recent_credits(conn: Conn, customer: str, limit: int) -> list[Credit]:
    """A wallet's last ``limit`` grants, newest first (what a self-service screen may show)."""
    rows = conn.execute(
        "SELECT ts, pocket, delta, text FROM journal WHERE customer_id = ? AND kind = 'grant'"
        " ORDER BY ts DESC, id DESC LIMIT ?",
        (customer, limit),
    ).fetchall()
    return [Credit(ledger.from_iso(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in rows]


@dataclass(frozen=True)
class Expiring:
    pocket: str
    points: int
    earliest: datetime


def expiring_between(conn: Conn, customer: str, start: datetime, end: datetime) -> list[Expiring]:
    """Per pocket: the points of open lots expiring after ``start`` and by ``end``, and the
    earliest such expiry."""
    rows = conn.execute(
        "SELECT pocket, SUM(remaining), MIN(expires_at) FROM lots WHERE customer_id = ?"
        " AND remaining > 0 AND expires_at > ? AND expires_at <= ? GROUP BY pocket ORDER BY pocket",
        (customer, ledger.iso(start), ledger.iso(end)),
    ).fetchall()
    return [Expiring(str(r[0]), int(r[1]), ledger.from_iso(r[2])) for r in rows]


# --- nodes and statistics ---------------------------------------------------------------


def nodes(conn: Conn) -> dict[str, Row]:
    """Every node's row (status, last health, last seen) by id."""
    return {r["id"]: r for r in conn.execute("SELECT * FROM nodes")}


def visit_stats(
    conn: Conn,
    *,
    business: str | None = None,
    day: str | None = None,
    store: str | None = None,
) -> list[Row]:
    """Visits, customers and points per store and local day (optionally of one business)."""
    where = Filters().add("business = ?", business).add("day = ?", day).add("store = ?", store)
    columns = (
        "store, business, day, COUNT(*) AS visits, COUNT(DISTINCT customer_id) AS customers,"
        " SUM(points) AS points"
    )
    group = "GROUP BY store, business, day ORDER BY day, store"  # a store has one business
    sql = f"SELECT {columns} FROM visits{where.sql} {group}"  # noqa: S608
    return conn.execute(sql, where.params).fetchall()


def footfall(
    conn: Conn,
    *,
    among: Sequence[str] | None = None,
    node: str | None = None,
    from_hour: str | None = None,
    until: str | None = None,
    limit: int,
    offset: int,
) -> list[Row]:
    """Footfall rows by hour, then node: of the nodes ``among`` (all if None), from the
    hour ``from_hour`` (``2026-11-23T10:00Z``), hours starting before ``until``."""
    where = Filters()
    if among is not None:
        where.add(f"node IN ({','.join('?' * len(among))})", *among)
    where.add("node = ?", node).add("hour >= ?", from_hour).add("hour < ?", until)
    return conn.execute(
        f"SELECT * FROM footfall{where.sql} ORDER BY hour, node LIMIT ? OFFSET ?",  # noqa: S608
        [*where.params, limit, offset],
    ).fetchall()


# --- operations -------------------------------------------------------------------------


def dead_letters(conn: Conn, *, before_id: int | None, node: str | None, limit: int) -> list[Row]:
    """Dead letters, newest first (a page: those older than ``before_id``)."""
    where = Filters().add("id < ?", before_id).add("node = ?", node)
    return conn.execute(
        f"SELECT * FROM dead_letters{where.sql} ORDER BY id DESC LIMIT ?",  # noqa: S608
        [*where.params, limit],
    ).fetchall()


def dead_letter(conn: Conn, dead_letter_id: int) -> Row | None:
    row: Row | None = conn.execute(
        "SELECT * FROM dead_letters WHERE id = ?", (dead_letter_id,)
    ).fetchone()
    return row


@dataclass(frozen=True)
class IngestTotals:
    outcomes: dict[str, int]
    dead_letters: int
    dead_letters_by_node: dict[str, dict[str, int]]


def ingest_totals(conn: Conn) -> IngestTotals:
    """Processed events by outcome, dead letters kept, and per-node dead-letter counts."""
    outcomes = {
        str(r[0]): int(r[1])
        for r in conn.execute("SELECT outcome, COUNT(*) FROM processed_events GROUP BY outcome")
    }
    (dead,) = conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()
    by_node: dict[str, dict[str, int]] = {}
    for node, what, n in conn.execute(
        "SELECT node, what, n FROM dead_letter_counts ORDER BY node, what"
    ):
        by_node.setdefault(node, {})[what] = n
    return IngestTotals(outcomes, int(dead), by_node)


# --- parking ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    id: int
    car_park: str
    customer: str | None
    status: str
    entry_ts: datetime | None
    exit_ts: datetime | None
    duration_s: float | None
    free_minutes: int
    free: bool | None
    match: str


def sessions_of(conn: Conn, customer: str, limit: int = 50) -> list[Session]:
    """A customer's parking sessions, newest first."""
    rows = conn.execute(
        "SELECT id, car_park, customer_id, status, entry_ts, exit_ts, duration_s, free_minutes,"
        " free, match FROM parking_sessions WHERE customer_id = ?"
        " ORDER BY COALESCE(entry_epoch, exit_epoch) DESC LIMIT ?",
        (customer, limit),
    ).fetchall()
    return [
        Session(
            int(r[0]),
            str(r[1]),
            r[2],
            str(r[3]),
            ledger.from_iso(r[4]) if r[4] else None,
            ledger.from_iso(r[5]) if r[5] else None,
            r[6],
            int(r[7]),
            None if r[8] is None else bool(r[8]),
            str(r[9]),
        )
        for r in rows
    ]


def occupancy_series(
    conn: Conn, car_park: str, since: datetime | None = None
) -> list[tuple[datetime, int]]:
    """The car park's occupancy after each entry and exit since ``since``, oldest first."""
    start = since.timestamp() if since is not None else float("-inf")
    rows = conn.execute(
        "SELECT ts, occupied FROM parking_occupancy WHERE car_park = ? AND ts_epoch >= ?"
        " ORDER BY ts_epoch, id",
        (car_park, start),
    ).fetchall()
    return [(ledger.from_iso(str(ts)), int(occ)) for ts, occ in rows]


# --- the control panel (cloud_core/panel) ----------------------------------------------


def journal_feed(conn: Conn, *, kind: str, pocket: str | None, limit: int) -> list[Row]:
    """The newest journal rows of one kind (``grant``: credits, ``spend``: redemptions),
    of one pocket (a tenant's) or all."""
    where = Filters().add("kind = ?", kind).add("pocket = ?", pocket)
    return conn.execute(
        "SELECT ts, customer_id, pocket, delta, reason, text FROM journal"  # noqa: S608
        f"{where.sql} ORDER BY id DESC LIMIT ?",
        [*where.params, limit],
    ).fetchall()


def deliveries_feed(
    conn: Conn, *, business: str | None, campaign: str | None, limit: int
) -> list[Row]:
    """The newest offer deliveries of the campaigns that exist now (of one business or
    campaign, or all), with the campaign's business and title."""
    where = Filters().add("c.business = ?", business).add("d.campaign_id = ?", campaign)
    return conn.execute(
        "SELECT d.ts, d.customer_id, d.campaign_id, d.trigger, c.business, c.title"  # noqa: S608
        " FROM deliveries d JOIN campaigns c ON c.instance = d.campaign_instance"
        f"{where.sql} ORDER BY d.id DESC LIMIT ?",
        [*where.params, limit],
    ).fetchall()


def parking_entries(conn: Conn, limit: int) -> list[Row]:
    """The newest parking sessions by entry (or exit, for an exit-only read): no plates."""
    return conn.execute(
        "SELECT car_park, status, entry_ts, exit_ts, duration_s, free_minutes, match,"
        " customer_id IS NOT NULL AS registered FROM parking_sessions"
        " ORDER BY COALESCE(entry_epoch, exit_epoch) DESC, id DESC LIMIT ?",
        (limit,),
    ).fetchall()


def parking_occupied(conn: Conn) -> dict[str, int]:
    """Vehicles inside each car park now."""
    return {
        str(r[0]): int(r[1])
        for r in conn.execute("SELECT car_park, occupied FROM parking_state ORDER BY car_park")
    }


# --- monitoring (GET /metrics) ----------------------------------------------------------


@dataclass(frozen=True)
class Monitoring:
    """What ``/metrics`` reads from the database per scrape (small, bounded tables only:
    never a scan of ``processed_events`` or the journal)."""

    notices_pending: int
    dead_letters_by_node: dict[str, int]  # rows kept in dead_letters
    dead_letter_counts: dict[tuple[str, str], int]  # (node, what) the bounds dropped/ignored
    nodes: list[Row]  # id, state, last_seen, last_health


def monitoring(conn: Conn) -> Monitoring:
    (pending,) = conn.execute("SELECT COUNT(*) FROM pending_notices").fetchone()
    kept = {
        str(r[0]): int(r[1])
        for r in conn.execute("SELECT node, COUNT(*) FROM dead_letters GROUP BY node")
    }
    counts = {
        (str(r[0]), str(r[1])): int(r[2])
        for r in conn.execute("SELECT node, what, n FROM dead_letter_counts")
    }
    rows = conn.execute(
        "SELECT id, state, last_seen, last_health FROM nodes ORDER BY id"
    ).fetchall()
    return Monitoring(int(pending), kept, counts, rows)
