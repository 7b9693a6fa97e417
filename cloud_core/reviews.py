"""Reviews and ratings of stores: the rows, the invitations, table QR codes.

A shopper may review a store they visited or bought at (a visit or a till purchase
``reviews.invite_after_s`` to ``invite_within_s`` ago: the *invitation*, listed for the
app) or whose table QR code they scanned (``mr1.<store>.<table>.<signature>``,
HMAC-SHA256 under the store QR secret, not rotating: it is printed on a table). One
review per shopper and store, 1–5 stars and a text; it is ``pending`` until the mall
publishes or rejects it, and only published reviews count in a store's rating. The
tenant replies. Every function runs in the caller's transaction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from cloud_core import ledger
from cloud_core.errors import Conflict, InvalidInput, NotFound
from cloud_core.store import Conn
from cloud_core.store.filters import Filters

_TABLE_CODE = re.compile(
    r"^mr1\.([a-z0-9][a-z0-9_-]{0,63})\.([A-Za-z0-9_-]{1,32})\.([A-Za-z0-9_-]{22})$"
)

Status = Literal["pending", "published", "rejected"]


def _signature(key: bytes, mall: str, store: str, table: str) -> str:
    mac = hmac.new(key, f"mr1|{mall}|{store}|{table}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:16]).decode().rstrip("=")


def table_code(key: bytes, mall: str, store: str, table: str) -> str:
    """The code printed on one table of a store (a QR inviting a review)."""
    return f"mr1.{store}.{table}.{_signature(key, mall, store, table)}"


def verify_table_code(key: bytes, mall: str, code: str) -> str:
    """The store a table code names; ``InvalidInput`` if it is malformed, forged or altered."""
    found = _TABLE_CODE.match(code.strip())
    if found is None:
        raise InvalidInput("not a table QR code (malformed)")
    store, table, signature = found.groups()
    if not hmac.compare_digest(_signature(key, mall, store, table), signature):
        raise InvalidInput("table QR signature does not match (forged or altered code)")
    return store


@dataclass(frozen=True)
class Invitation:
    store: str
    visited_at: datetime


def invitations(
    conn: Conn, customer: str, now: datetime, *, after_s: float, within_s: float
) -> list[Invitation]:
    """Stores the customer visited (or bought at, not refunded) ``after_s``–``within_s`` ago
    and has not reviewed."""
    rows = conn.execute(
        "SELECT store, MAX(ts) AS last FROM ("
        " SELECT store, ts FROM visits WHERE customer_id = ?"
        " UNION ALL SELECT store, ts FROM purchases WHERE customer_id = ? AND status = 'registered'"
        ") AS seen WHERE ts <= ? AND ts >= ?"
        " AND store NOT IN (SELECT store FROM reviews WHERE customer_id = ?)"
        " GROUP BY store ORDER BY store",
        (
            customer,
            customer,
            ledger.iso(now - timedelta(seconds=after_s)),
            ledger.iso(now - timedelta(seconds=within_s)),
            customer,
        ),
    ).fetchall()
    return [Invitation(str(r["store"]), ledger.from_iso(str(r["last"]))) for r in rows]


@dataclass(frozen=True)
class Review:
    id: str
    store: str
    business: str
    stars: int
    text: str
    source: str
    status: Status
    created_at: datetime
    moderation_note: str | None
    reply: str | None
    replied_at: datetime | None


_COLUMNS = (
    "id, store, business, stars, text, source, status, created_at, moderation_note, reply,"
    " replied_at"
)


def _review(r: Any) -> Review:
    return Review(
        id=str(r["id"]),
        store=str(r["store"]),
        business=str(r["business"]),
        stars=int(r["stars"]),
        text=str(r["text"]),
        source=str(r["source"]),
        status=r["status"],
        created_at=ledger.from_iso(str(r["created_at"])),
        moderation_note=r["moderation_note"],
        reply=r["reply"],
        replied_at=ledger.from_iso(str(r["replied_at"])) if r["replied_at"] else None,
    )


def add(
    conn: Conn,
    *,
    customer: str,
    store: str,
    business: str,
    stars: int,
    text: str,
    source: str,
    now: datetime,
) -> str:
    """A new pending review; ``Conflict`` if the customer reviewed this store before."""
    review_id = "r" + secrets.token_hex(12)
    row = conn.execute(
        "INSERT INTO reviews (id, customer_id, store, business, stars, text, source, status,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)"
        " ON CONFLICT (customer_id, store) DO NOTHING RETURNING id",
        (review_id, customer, store, business, stars, text, source, ledger.iso(now)),
    ).fetchone()
    if row is None:
        raise Conflict("this shopper has reviewed this store already")
    return review_id


def get(conn: Conn, review_id: str) -> Review:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM reviews WHERE id = ?",  # noqa: S608 - fixed columns
        (review_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"no review {review_id!r}")
    return _review(row)


def moderate(conn: Conn, review_id: str, status: Status, note: str | None, now: datetime) -> None:
    get(conn, review_id)
    conn.execute(
        "UPDATE reviews SET status = ?, moderation_note = ?, moderated_at = ? WHERE id = ?",
        (status, note, ledger.iso(now), review_id),
    )


def reply(conn: Conn, review_id: str, text: str, now: datetime) -> None:
    get(conn, review_id)
    conn.execute(
        "UPDATE reviews SET reply = ?, replied_at = ? WHERE id = ?",
        (text, ledger.iso(now), review_id),
    )


def find(
    conn: Conn,
    *,
    store: str | None,
    business: str | None,
    status: Status | None,
    limit: int,
    offset: int,
) -> list[Review]:
    where = (
        Filters().add("store = ?", store).add("business = ?", business).add("status = ?", status)
    )
    sql = f"SELECT {_COLUMNS} FROM reviews{where.sql} ORDER BY created_at DESC, id LIMIT ? OFFSET ?"  # noqa: S608
    return [_review(r) for r in conn.execute(sql, [*where.params, limit, offset]).fetchall()]


def histogram(conn: Conn, store: str) -> list[int]:
    """Published reviews of the store per star count, 1 to 5."""
    counts = [0] * 5
    for row in conn.execute(
        "SELECT stars, COUNT(*) AS n FROM reviews WHERE store = ? AND status = 'published'"
        " GROUP BY stars",
        (store,),
    ):
        counts[int(row["stars"]) - 1] = int(row["n"])
    return counts


def erase(conn: Conn, customer: str) -> int:
    return conn.execute("DELETE FROM reviews WHERE customer_id = ?", (customer,)).rowcount
