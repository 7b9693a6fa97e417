"""Promo-code pools ("external coupons"): a partner's list of codes, each given to exactly
one shopper (long: pools, uploads, claims and marking used share one table's invariants and
are read together).

The mall creates a pool for a partner business and uploads the partner's codes (CSV,
``promo_csv``). A claim gives a shopper the next unclaimed code in upload order:

* one statement takes it — ``UPDATE promo_codes SET customer_id = ? … WHERE pool_id = ? AND
  code = (SELECT … WHERE customer_id IS NULL ORDER BY seq LIMIT 1) AND customer_id IS NULL
  RETURNING code`` — inside the caller's write transaction, so two claims never get the same
  code (SQLite: the transaction holds the write lock; PostgreSQL: ``SERIALIZABLE``, the loser
  runs again through ``store.retrying``; at a weaker isolation the losing UPDATE re-checks
  ``customer_id IS NULL``, takes nothing, and the claim tries the next code);
* a shopper holds at most ``per_customer`` codes of a pool (default one); a claim at the cap
  gives the shopper's latest code back, and a claim repeated with the same request key gives
  the same code (idempotent);
* none left: ``PoolExhausted`` (409), nothing written.

The pool's counters (``total``, ``claimed``, ``used``) change in the same transaction as
the codes, so stock is read without a scan. When a claim leaves ``low_stock`` or fewer codes,
the alert is logged once (``low_alerted``), until an upload lifts the stock above it again.

The partner (its tenant key) marks a code used: once; again with the same request key is the
same answer, otherwise ``CodeAlreadyUsed`` (409). Nothing here commits.
"""

from __future__ import annotations

import functools
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import jinja2

from cloud_core import promo_csv
from cloud_core.errors import CodeAlreadyUsed, Conflict, InvalidInput, NotFound, PoolExhausted
from cloud_core.ledger import from_iso, iso
from cloud_core.promo_csv import Row
from cloud_core.store import Conn, Store, retrying

log = logging.getLogger(__name__)

#: Bad rows and duplicates an upload's report lists (all are counted).
MAX_PROBLEMS = 100
#: Rows an upload writes per transaction (claims interleave between them).
CHUNK = 500
#: Tries of the claim statement before a pool with free codes is called busy (PostgreSQL).
CLAIM_TRIES = 20
#: An upload ``running`` with no progress for this long was cut short (its process stopped):
#: it reads as ``failed``; the codes it added stay, and uploading the file again adds the rest.
STALE_AFTER_S = 120.0
INTERRUPTED = "interrupted (the core stopped); upload the file again to add the rest"
#: What an erased shopper's claimed codes keep in ``customer_id`` (claimed, by nobody).
ERASED = ""


@dataclass(frozen=True)
class Pool:
    id: str
    business: str
    title: str
    description: str
    valid_from: datetime
    valid_until: datetime
    low_stock: int
    per_customer: int
    total: int = 0
    claimed: int = 0
    used: int = 0
    low_alerted: bool = False

    @property
    def free(self) -> int:
        return self.total - self.claimed

    @property
    def low(self) -> bool:
        return self.free <= self.low_stock

    def valid_at(self, moment: datetime) -> bool:
        return self.valid_from <= moment < self.valid_until


@dataclass(frozen=True)
class Claim:
    outcome: Literal["claimed", "already_claimed"]
    pool: str
    code: str
    claimed_at: datetime


@dataclass(frozen=True)
class Use:
    outcome: Literal["used", "duplicate"]
    pool: str
    code: str
    used_at: datetime


@dataclass(frozen=True)
class Upload:
    id: str
    pool: str
    state: Literal["running", "done", "failed"]
    total: int
    done: int
    added: int
    duplicates_in_file: int
    duplicates_in_pool: int
    bad: int
    problems: list[dict[str, Any]]
    detail: str
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class HeldCode:
    """A code in a shopper's wallet."""

    pool: str
    business: str
    title: str
    code: str
    claimed_at: datetime
    used_at: datetime | None
    valid_until: datetime


def _pool(row: Any) -> Pool:
    return Pool(
        id=row["id"],
        business=row["business"],
        title=row["title"],
        description=row["description"],
        valid_from=from_iso(row["valid_from"]),
        valid_until=from_iso(row["valid_until"]),
        low_stock=int(row["low_stock"]),
        per_customer=int(row["per_customer"]),
        total=int(row["total"]),
        claimed=int(row["claimed"]),
        used=int(row["used"]),
        low_alerted=bool(row["low_alerted"]),
    )


POOL_COLUMNS = (
    "id, business, title, description, valid_from, valid_until, low_stock, per_customer,"
    " total, claimed, used, low_alerted"
)


# --- pools -------------------------------------------------------------------------------


def create_pool(conn: Conn, pool: Pool, now: datetime) -> Pool:
    """A new, empty pool; ``Conflict`` if the id is taken."""
    if pool.valid_until <= pool.valid_from:
        raise InvalidInput("valid_until must be after valid_from")
    row = conn.execute(
        "INSERT INTO promo_pools (id, business, title, description, valid_from, valid_until,"
        " low_stock, per_customer, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO NOTHING RETURNING id",
        (
            pool.id,
            pool.business,
            pool.title,
            pool.description,
            iso(pool.valid_from),
            iso(pool.valid_until),
            pool.low_stock,
            pool.per_customer,
            iso(now),
        ),
    ).fetchone()
    if row is None:
        raise Conflict(f"a pool {pool.id!r} exists already")
    log.info("promo-code pool %s created for %s", pool.id, pool.business)
    return get_pool(conn, pool.id)


def get_pool(conn: Conn, pool_id: str) -> Pool:
    row = conn.execute(
        f"SELECT {POOL_COLUMNS} FROM promo_pools WHERE id = ?",  # noqa: S608
        (pool_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"no promo-code pool {pool_id!r}")
    return _pool(row)


def list_pools(
    conn: Conn, business: str | None = None, *, limit: int = 100, offset: int = 0
) -> list[Pool]:
    """By id; one business's only when given."""
    if business is None:
        rows = conn.execute(
            f"SELECT {POOL_COLUMNS} FROM promo_pools ORDER BY id LIMIT ? OFFSET ?",  # noqa: S608
            (limit, offset),
        ).fetchall()
    else:
        rows = conn.execute(
            f"SELECT {POOL_COLUMNS} FROM promo_pools WHERE business = ?"  # noqa: S608
            " ORDER BY id LIMIT ? OFFSET ?",
            (business, limit, offset),
        ).fetchall()
    return [_pool(r) for r in rows]


def all_stock(conn: Conn) -> list[Pool]:
    """Every pool with its counters (for the metrics; one small row per pool)."""
    rows = conn.execute(f"SELECT {POOL_COLUMNS} FROM promo_pools ORDER BY id").fetchall()  # noqa: S608
    return [_pool(r) for r in rows]


# --- uploads -----------------------------------------------------------------------------


def _upload(row: Any, now: datetime | None) -> Upload:
    state, detail = row["state"], row["detail"]
    if (
        state == "running"
        and now is not None
        and (now - from_iso(row["updated_at"])).total_seconds() > STALE_AFTER_S
    ):
        state, detail = "failed", INTERRUPTED
    return Upload(
        id=row["id"],
        pool=row["pool_id"],
        state=state,
        total=int(row["total"]),
        done=int(row["done"]),
        added=int(row["added"]),
        duplicates_in_file=int(row["duplicates_in_file"]),
        duplicates_in_pool=int(row["duplicates_in_pool"]),
        bad=int(row["bad"]),
        problems=list(json.loads(row["problems"])),
        detail=detail,
        created_at=from_iso(row["created_at"]),
        finished_at=from_iso(row["finished_at"]) if row["finished_at"] else None,
    )


def start_upload(conn: Conn, pool_id: str, total: int, now: datetime) -> Upload:
    """Record an upload of ``total`` rows to a pool (state ``running``)."""
    get_pool(conn, pool_id)
    upload_id = "u" + secrets.token_hex(8)
    conn.execute(
        "INSERT INTO promo_uploads (id, pool_id, state, total, created_at, updated_at)"
        " VALUES (?, ?, 'running', ?, ?, ?)",
        (upload_id, pool_id, total, iso(now), iso(now)),
    )
    return get_upload(conn, pool_id, upload_id)


def get_upload(conn: Conn, pool_id: str, upload_id: str, now: datetime | None = None) -> Upload:
    """An upload as it stands (with ``now``: one cut short reads as ``failed``)."""
    row = conn.execute(
        "SELECT * FROM promo_uploads WHERE id = ? AND pool_id = ?", (upload_id, pool_id)
    ).fetchone()
    if row is None:
        raise NotFound(f"no upload {upload_id!r} to pool {pool_id!r}")
    return _upload(row, now)


def add_rows(conn: Conn, upload: Upload, rows: Sequence[Row], now: datetime) -> Upload:
    """Write one chunk of an upload's rows: new codes are added, codes already in the pool
    and the file's own duplicates and bad rows are counted (and listed, up to
    ``MAX_PROBLEMS``). Updates the upload's progress and the pool's total."""
    pool = get_pool(conn, upload.pool)
    seq = pool.total + 1  # upload order (``total`` counts every code added so far)
    added = in_pool = in_file = bad = 0
    problems = list(upload.problems)

    def note(row: Row, kind: str, reason: str) -> None:
        if len(problems) < MAX_PROBLEMS:
            problems.append({"line": row.line, "kind": kind, "code": row.code, "reason": reason})

    for row in rows:
        if row.kind == "bad":
            bad += 1
            note(row, "bad", row.reason)
            continue
        if row.kind == "duplicate":
            in_file += 1
            note(row, "duplicate_in_file", row.reason)
            continue
        inserted = conn.execute(
            "INSERT INTO promo_codes (pool_id, code, seq) VALUES (?, ?, ?)"
            " ON CONFLICT (pool_id, code) DO NOTHING RETURNING code",
            (pool.id, row.code, seq),
        ).fetchone()
        if inserted is None:
            in_pool += 1
            note(row, "duplicate_in_pool", "already in the pool")
        else:
            added += 1
            seq += 1
    conn.execute(
        "UPDATE promo_uploads SET done = done + ?, added = added + ?,"
        " duplicates_in_file = duplicates_in_file + ?, duplicates_in_pool ="
        " duplicates_in_pool + ?, bad = bad + ?, problems = ?, updated_at = ? WHERE id = ?",
        (len(rows), added, in_file, in_pool, bad, json.dumps(problems), iso(now), upload.id),
    )
    if added:
        _restock(conn, pool, added)
    return get_upload(conn, upload.pool, upload.id)


def _restock(conn: Conn, pool: Pool, added: int) -> None:
    row = conn.execute(
        "UPDATE promo_pools SET total = total + ? WHERE id = ? RETURNING total, claimed",
        (added, pool.id),
    ).fetchone()
    free = int(row["total"]) - int(row["claimed"])
    if pool.low_alerted and free > pool.low_stock:
        conn.execute("UPDATE promo_pools SET low_alerted = 0 WHERE id = ?", (pool.id,))
        log.info("promo-code pool %s restocked: %d codes left", pool.id, free)


def finish_upload(
    conn: Conn, upload: Upload, now: datetime, *, failed: str | None = None
) -> Upload:
    conn.execute(
        "UPDATE promo_uploads SET state = ?, detail = ?, finished_at = ?, updated_at = ?"
        " WHERE id = ?",
        ("failed" if failed else "done", failed or "", iso(now), iso(now), upload.id),
    )
    return get_upload(conn, upload.pool, upload.id)


def run_upload(store: Store, upload: Upload, body: bytes, clock: Callable[[], datetime]) -> None:
    """The background job of an upload: judge the rows, write them ``CHUNK`` per transaction
    (claims go on between them), then mark the upload done (or failed, with why)."""
    chunk: list[Row] = []

    def write(so_far: Upload, rows: list[Row], last: bool) -> Upload:
        # one whole transaction, run again on a lost serialization conflict (PostgreSQL)
        with store.transaction() as conn:
            done = add_rows(conn, so_far, rows, clock()) if rows else so_far
            return finish_upload(conn, done, clock()) if last else done

    try:
        for row in promo_csv.parse(body):
            chunk.append(row)
            if len(chunk) >= CHUNK:
                upload = retrying(functools.partial(write, upload, chunk, False))
                chunk = []
        upload = retrying(functools.partial(write, upload, chunk, True))
    except Exception as exc:
        log.exception("upload %s to pool %s failed", upload.id, upload.pool)
        with store.transaction() as conn:
            finish_upload(conn, upload, clock(), failed=f"stopped: {exc}"[:300])
        return
    log.info(
        "upload %s to pool %s: %d added, %d duplicates in the file, %d already in the pool,"
        " %d bad rows",
        upload.id,
        upload.pool,
        upload.added,
        upload.duplicates_in_file,
        upload.duplicates_in_pool,
        upload.bad,
    )


def latest_uploads(conn: Conn, pool_id: str, now: datetime, limit: int = 3) -> list[Upload]:
    rows = conn.execute(
        "SELECT * FROM promo_uploads WHERE pool_id = ? ORDER BY created_at DESC, id LIMIT ?",
        (pool_id, limit),
    ).fetchall()
    return [_upload(r, now) for r in rows]


# --- claims ------------------------------------------------------------------------------


def held_by(conn: Conn, pool_id: str, customer: str) -> list[Any]:
    return conn.execute(
        "SELECT code, claimed_at FROM promo_codes WHERE pool_id = ? AND customer_id = ?"
        " ORDER BY claimed_at, seq",
        (pool_id, customer),
    ).fetchall()


def _take_next(conn: Conn, pool_id: str, customer: str, key: str | None, now: datetime) -> str:
    for _ in range(CLAIM_TRIES):
        row = conn.execute(
            "UPDATE promo_codes SET customer_id = ?, claim_key = ?, claimed_at = ?"
            " WHERE pool_id = ? AND customer_id IS NULL AND code = ("
            "  SELECT code FROM promo_codes WHERE pool_id = ? AND customer_id IS NULL"
            "  ORDER BY seq LIMIT 1)"
            " RETURNING code",
            (customer, key, iso(now), pool_id, pool_id),
        ).fetchone()
        if row is not None:
            return str(row["code"])
        left = conn.execute(
            "SELECT 1 FROM promo_codes WHERE pool_id = ? AND customer_id IS NULL LIMIT 1",
            (pool_id,),
        ).fetchone()
        if left is None:
            raise PoolExhausted(f"promo-code pool {pool_id!r} is exhausted: no code left")
    raise Conflict(f"promo-code pool {pool_id!r} is busy; retry")


def claim(
    conn: Conn,
    pool_id: str,
    customer: str,
    now: datetime,
    *,
    request_key: str | None = None,
    at_cap: Literal["give_back", "refuse"] = "give_back",
) -> Claim:
    """Give ``customer`` the pool's next unclaimed code (in the caller's write transaction).

    ``request_key``: the same key again gives the same code. At the per-customer cap the
    shopper's latest code comes back (``already_claimed``) — or, with ``at_cap="refuse"``
    (a gift bought with points), ``Conflict``. ``PoolExhausted`` when none is left.
    """
    pool = get_pool(conn, pool_id)
    if request_key is not None:
        again = conn.execute(
            "SELECT code, customer_id, claimed_at FROM promo_codes"
            " WHERE pool_id = ? AND claim_key = ?",
            (pool_id, request_key),
        ).fetchone()
        if again is not None:
            if again["customer_id"] != customer:
                raise Conflict("this request key was used for another shopper")
            return Claim("already_claimed", pool_id, again["code"], from_iso(again["claimed_at"]))
    if not pool.valid_at(now):
        raise Conflict(
            f"promo-code pool {pool_id!r} is valid from {iso(pool.valid_from)}"
            f" until {iso(pool.valid_until)}"
        )
    held = held_by(conn, pool_id, customer)
    if len(held) >= pool.per_customer:
        if at_cap == "refuse":
            raise Conflict(
                f"this shopper holds {len(held)} code(s) of pool {pool_id!r}, the most allowed"
            )
        last = held[-1]
        return Claim("already_claimed", pool_id, last["code"], from_iso(last["claimed_at"]))
    code = _take_next(conn, pool_id, customer, request_key, now)
    row = conn.execute(
        "UPDATE promo_pools SET claimed = claimed + 1 WHERE id = ? RETURNING total, claimed",
        (pool_id,),
    ).fetchone()
    free = int(row["total"]) - int(row["claimed"])
    if free <= pool.low_stock and not pool.low_alerted:
        conn.execute("UPDATE promo_pools SET low_alerted = 1 WHERE id = ?", (pool_id,))
        log.warning(
            "promo-code pool %s (%s) is running low: %d code(s) left (alert at %d)",
            pool_id,
            pool.business,
            free,
            pool.low_stock,
        )
    return Claim("claimed", pool_id, code, now)


# --- marking used ------------------------------------------------------------------------


def mark_used(
    conn: Conn, pool_id: str, code: str, by: str, now: datetime, *, request_key: str | None
) -> Use:
    """The partner took this code (in the caller's write transaction): once. ``NotFound`` for
    a code not in the pool; ``Conflict`` for one no shopper holds or a pool past its
    validity; ``CodeAlreadyUsed`` for a code used before (unless ``request_key`` repeats the
    request that used it: then the same answer, ``duplicate``)."""
    pool = get_pool(conn, pool_id)
    row = conn.execute(
        "SELECT customer_id, used_at, use_key FROM promo_codes WHERE pool_id = ? AND code = ?",
        (pool_id, code),
    ).fetchone()
    if row is None:
        raise NotFound(f"no code {code!r} in pool {pool_id!r}")
    if row["used_at"] is not None:
        if request_key is not None and row["use_key"] == request_key:
            return Use("duplicate", pool_id, code, from_iso(row["used_at"]))
        raise CodeAlreadyUsed(f"code {code!r} was already used at {row['used_at']}")
    if row["customer_id"] is None:
        raise Conflict(f"code {code!r} was never given to a shopper")
    if now >= pool.valid_until:
        raise Conflict(f"pool {pool_id!r} expired at {iso(pool.valid_until)}")
    updated = conn.execute(
        "UPDATE promo_codes SET used_at = ?, used_by = ?, use_key = ?"
        " WHERE pool_id = ? AND code = ? AND used_at IS NULL RETURNING code",
        (iso(now), by, request_key, pool_id, code),
    ).fetchone()
    if updated is None:  # cannot happen inside one write transaction; kept as a guard
        raise CodeAlreadyUsed(f"code {code!r} was already used")
    conn.execute("UPDATE promo_pools SET used = used + 1 WHERE id = ?", (pool_id,))
    log.info("promo code %s of pool %s marked used by %s", code, pool_id, by)
    return Use("used", pool_id, code, now)


# --- reads -------------------------------------------------------------------------------


def wallet_codes(conn: Conn, customer: str, business: str | None = None) -> list[HeldCode]:
    """A shopper's claimed codes, newest first (one business's only when given)."""
    sql = (
        "SELECT c.pool_id, p.business, p.title, c.code, c.claimed_at, c.used_at, p.valid_until"
        " FROM promo_codes c JOIN promo_pools p ON p.id = c.pool_id WHERE c.customer_id = ?"
    )
    params: list[object] = [customer]
    if business is not None:
        sql += " AND p.business = ?"
        params.append(business)
    rows = conn.execute(sql + " ORDER BY c.claimed_at DESC, c.seq DESC", params).fetchall()
    return [
        HeldCode(
            pool=r["pool_id"],
            business=r["business"],
            title=r["title"],
            code=r["code"],
            claimed_at=from_iso(r["claimed_at"]),
            used_at=from_iso(r["used_at"]) if r["used_at"] else None,
            valid_until=from_iso(r["valid_until"]),
        )
        for r in rows
    ]


def printable_codes(conn: Conn, pool_id: str, *, include_used: bool) -> list[Any]:
    """The pool's codes in upload order for a printed list (code, claimed, used)."""
    sql = "SELECT seq, code, claimed_at, used_at FROM promo_codes WHERE pool_id = ?"
    if not include_used:
        sql += " AND used_at IS NULL"
    return conn.execute(sql + " ORDER BY seq", (pool_id,)).fetchall()


_PRINT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "api" / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def printable_page(pool: Pool, rows: Sequence[Any], now: datetime) -> str:
    """The printed list: one HTML page (its print stylesheet is the panel's static
    ``print.css``; no script)."""
    return _PRINT.get_template("promo_codes_print.html").render(
        pool=pool,
        rows=rows,
        printed=now.strftime("%Y-%m-%d %H:%M UTC"),
        day=lambda text: text[:10] if text else "",
    )


def erase_customer_codes(conn: Conn, customer: str) -> dict[str, int]:
    """Erasure: a shopper's codes stay claimed (never given again) by nobody; their request
    keys go."""
    n = conn.execute(
        "UPDATE promo_codes SET customer_id = ?, claim_key = NULL WHERE customer_id = ?",
        (ERASED, customer),
    ).rowcount
    return {"promo_codes": n}


def codes_of(conn: Conn, pool_id: str) -> Iterable[Any]:
    """Every code of a pool with its holder (tests and checks)."""
    return conn.execute(
        "SELECT code, customer_id, used_at FROM promo_codes WHERE pool_id = ? ORDER BY seq",
        (pool_id,),
    ).fetchall()
