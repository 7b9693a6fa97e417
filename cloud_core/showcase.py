"""The gift showcase: partners' gifts priced in coalition points, each backed by a promo-code
pool (``promo_codes``).

A purchase takes the pool's next unused code *and* spends the points in the caller's one
write transaction: the code is claimed first (``PoolExhausted`` — nothing spent — when none
is left; the pool's per-customer cap is a ``Conflict``), then ``ledger.spend`` draws the
points from the shopper's coalition pocket (``InsufficientPoints`` rolls the claim back with
the transaction). So no points are taken without a code and no code is given without its
points. A purchase is idempotent by the caller's request key: the same key again answers the
same code and spends nothing. Nothing here commits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from cloud_core import ledger, promo_codes
from cloud_core.errors import Conflict, NotFound
from cloud_core.ledger import COALITION, from_iso, iso
from cloud_core.store import Conn
from mallnet.ids import new_event_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gift:
    id: str
    pool: str
    title: str
    description: str
    points: int


@dataclass(frozen=True)
class Purchase:
    outcome: Literal["bought", "duplicate"]
    id: str
    gift: str
    customer: str
    code: str
    points: int
    ts: datetime
    changes: tuple[ledger.Change, ...] = ()


def _gift(row: Any) -> Gift:
    return Gift(
        id=row["id"],
        pool=row["pool_id"],
        title=row["title"],
        description=row["description"],
        points=int(row["points"]),
    )


def create_gift(conn: Conn, gift: Gift, now: datetime) -> Gift:
    """A gift backed by an existing pool (one gift per pool); ``Conflict`` if the id or the
    pool is taken."""
    promo_codes.get_pool(conn, gift.pool)
    if conn.execute("SELECT 1 FROM showcase_gifts WHERE pool_id = ?", (gift.pool,)).fetchone():
        raise Conflict(f"pool {gift.pool!r} backs another gift already")
    row = conn.execute(
        "INSERT INTO showcase_gifts (id, pool_id, title, description, points, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING id",
        (gift.id, gift.pool, gift.title, gift.description, gift.points, iso(now)),
    ).fetchone()
    if row is None:
        raise Conflict(f"a gift {gift.id!r} exists already")
    log.info("gift %s (%d points) backed by pool %s", gift.id, gift.points, gift.pool)
    return gift


def get_gift(conn: Conn, gift_id: str) -> Gift:
    row = conn.execute("SELECT * FROM showcase_gifts WHERE id = ?", (gift_id,)).fetchone()
    if row is None:
        raise NotFound(f"no gift {gift_id!r}")
    return _gift(row)


def gift_of_pool(conn: Conn, pool_id: str) -> Gift | None:
    row = conn.execute("SELECT * FROM showcase_gifts WHERE pool_id = ?", (pool_id,)).fetchone()
    return None if row is None else _gift(row)


def list_gifts(
    conn: Conn, business: str | None = None, *, limit: int = 100, offset: int = 0
) -> list[tuple[Gift, promo_codes.Pool]]:
    """The showcase by id, with each gift's pool (its stock); one business's when given."""
    sql = "SELECT g.* FROM showcase_gifts g JOIN promo_pools p ON p.id = g.pool_id"
    params: list[object] = []
    if business is not None:
        sql += " WHERE p.business = ?"
        params.append(business)
    rows = conn.execute(sql + " ORDER BY g.id LIMIT ? OFFSET ?", [*params, limit, offset])
    gifts = [_gift(r) for r in rows.fetchall()]
    return [(g, promo_codes.get_pool(conn, g.pool)) for g in gifts]


def buy(conn: Conn, gift_id: str, customer: str, request_key: str, now: datetime) -> Purchase:
    """Sell the gift to ``customer`` for its points (see the module's docstring)."""
    key = f"gift:{customer}:{request_key}"  # a key is the caller's per shopper
    again = conn.execute(
        "SELECT * FROM showcase_purchases WHERE request_key = ?", (key,)
    ).fetchone()
    if again is not None:
        if again["gift_id"] != gift_id:
            raise Conflict("this idempotency key was used for another purchase")
        return Purchase(
            "duplicate",
            again["id"],
            gift_id,
            customer,
            again["code"],
            int(again["points"]),
            from_iso(again["ts"]),
        )
    gift = get_gift(conn, gift_id)
    pool = promo_codes.get_pool(conn, gift.pool)
    claimed = promo_codes.claim(conn, gift.pool, customer, now, request_key=key, at_cap="refuse")
    text = f"{gift.title} ({pool.business}): your code {claimed.code}"
    spent = ledger.spend(
        conn,
        customer=customer,
        pocket=COALITION,
        points=gift.points,
        idem_key=key,
        now=now,
        reason="showcase",
        text=text[:300],
    )
    purchase_id = new_event_id()
    conn.execute(
        "INSERT INTO showcase_purchases (id, gift_id, customer_id, pool_id, code, points,"
        " request_key, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (purchase_id, gift.id, customer, gift.pool, claimed.code, gift.points, key, iso(now)),
    )
    log.info("gift %s bought for %d points", gift.id, gift.points)
    return Purchase(
        "bought", purchase_id, gift.id, customer, claimed.code, gift.points, now, spent.changes
    )


def erase_customer_purchases(conn: Conn, customer: str) -> dict[str, int]:
    n = conn.execute("DELETE FROM showcase_purchases WHERE customer_id = ?", (customer,)).rowcount
    return {"showcase_purchases": n}
