"""Lotteries and their winners: the rows of ``rules/lottery.py``.

``lotteries`` holds each announced lottery with its secret seed (never shown before the
draw; only its SHA-256 is), and once drawn the sorted entries it was drawn from;
``lottery_winners`` one row per prize won. Every function runs in the caller's transaction.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloud_core import ledger
from cloud_core.errors import Conflict, NotFound
from cloud_core.store import Conn


@dataclass(frozen=True)
class Prize:
    title: str
    points: int
    pocket: str


@dataclass(frozen=True)
class Lottery:
    id: str
    title: str
    campaign: str | None
    stores: tuple[str, ...]
    opens_at: datetime
    closes_at: datetime
    prizes: tuple[Prize, ...]
    seed: str
    seed_sha256: str
    status: str
    created_at: datetime
    drawn_at: datetime | None
    entries: tuple[str, ...] | None


@dataclass(frozen=True)
class Winner:
    rank: int
    entry: str
    points: int
    pocket: str
    title: str


def new_seed() -> str:
    return secrets.token_hex(32)


def create(
    conn: Conn,
    *,
    lottery_id: str,
    title: str,
    campaign: str | None,
    stores: tuple[str, ...],
    opens_at: datetime,
    closes_at: datetime,
    prizes: tuple[Prize, ...],
    seed: str,
    seed_sha256: str,
    now: datetime,
) -> None:
    row = conn.execute(
        "INSERT INTO lotteries (id, title, campaign_id, stores, opens_at, closes_at, prizes,"
        " seed, seed_sha256, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?,"
        " 'announced', ?) ON CONFLICT (id) DO NOTHING RETURNING id",
        (
            lottery_id,
            title,
            campaign,
            json.dumps(list(stores)),
            ledger.iso(opens_at),
            ledger.iso(closes_at),
            json.dumps([p.__dict__ for p in prizes]),
            seed,
            seed_sha256,
            ledger.iso(now),
        ),
    ).fetchone()
    if row is None:
        raise Conflict(f"lottery {lottery_id!r} exists already")


def _lottery(r: Any) -> Lottery:  # a row by column name, of either backend
    entries = r["entries"]
    drawn_at = r["drawn_at"]
    return Lottery(
        id=str(r["id"]),
        title=str(r["title"]),
        campaign=r["campaign_id"],
        stores=tuple(json.loads(r["stores"])),
        opens_at=ledger.from_iso(r["opens_at"]),
        closes_at=ledger.from_iso(r["closes_at"]),
        prizes=tuple(Prize(**p) for p in json.loads(r["prizes"])),
        seed=str(r["seed"]),
        seed_sha256=str(r["seed_sha256"]),
        status=str(r["status"]),
        created_at=ledger.from_iso(r["created_at"]),
        drawn_at=ledger.from_iso(drawn_at) if drawn_at else None,
        entries=tuple(json.loads(entries)) if entries is not None else None,
    )


_COLUMNS = (
    "id, title, campaign_id, stores, opens_at, closes_at, prizes, seed, seed_sha256, status,"
    " created_at, drawn_at, entries"
)


def get(conn: Conn, lottery_id: str) -> Lottery:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM lotteries WHERE id = ?",  # noqa: S608 - fixed columns
        (lottery_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"no lottery {lottery_id!r}")
    return _lottery(row)


def list_all(conn: Conn, limit: int, offset: int) -> list[Lottery]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM lotteries ORDER BY created_at DESC, id"  # noqa: S608
        " LIMIT ? OFFSET ?",
        (limit, offset),
    ).fetchall()
    return [_lottery(row) for row in rows]


def participants(conn: Conn, lottery: Lottery) -> list[str]:
    """The distinct customers who took part (``rules/lottery.py``, step 1)."""
    period = (ledger.iso(lottery.opens_at), ledger.iso(lottery.closes_at))
    if lottery.campaign is not None:
        rows = conn.execute(
            "SELECT DISTINCT customer_id FROM deliveries WHERE campaign_id = ?"
            " AND ts >= ? AND ts < ?",
            (lottery.campaign, *period),
        ).fetchall()
    elif lottery.stores:
        marks = ",".join("?" * len(lottery.stores))
        where = f"ts >= ? AND ts < ? AND store IN ({marks})"  # placeholders only
        sql = f"SELECT DISTINCT customer_id FROM visits WHERE {where}"  # noqa: S608
        rows = conn.execute(sql, (*period, *lottery.stores)).fetchall()
    else:
        rows = conn.execute(
            "SELECT DISTINCT customer_id FROM visits WHERE ts >= ? AND ts < ?", period
        ).fetchall()
    return sorted(str(row["customer_id"]) for row in rows)


def mark_drawn(conn: Conn, lottery_id: str, entries: list[str], now: datetime) -> bool:
    """Announced → drawn with its entries; False if it was not announced (drawn once)."""
    row = conn.execute(
        "UPDATE lotteries SET status = 'drawn', drawn_at = ?, entries = ?"
        " WHERE id = ? AND status = 'announced' RETURNING id",
        (ledger.iso(now), json.dumps(entries), lottery_id),
    ).fetchone()
    return row is not None


def add_winner(
    conn: Conn, lottery_id: str, rank: int, *, entry: str, customer: str, prize: Prize
) -> None:
    conn.execute(
        "INSERT INTO lottery_winners (lottery_id, rank, entry, customer_id, points, pocket,"
        " title) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (lottery_id, rank, entry, customer, prize.points, prize.pocket, prize.title),
    )


def winners_of(conn: Conn, lottery_id: str) -> list[Winner]:
    rows = conn.execute(
        "SELECT rank, entry, points, pocket, title FROM lottery_winners WHERE lottery_id = ?"
        " ORDER BY rank",
        (lottery_id,),
    ).fetchall()
    return [
        Winner(int(r["rank"]), str(r["entry"]), int(r["points"]), str(r["pocket"]), str(r["title"]))
        for r in rows
    ]


def erase(conn: Conn, customer: str) -> int:
    """Unlink the customer from prizes won (erasure); the published entry stays, linked to
    nobody once the customer id is gone."""
    return conn.execute(
        "UPDATE lottery_winners SET customer_id = NULL WHERE customer_id = ?", (customer,)
    ).rowcount
