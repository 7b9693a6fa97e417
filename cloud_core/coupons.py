"""Coupon series: a business's (or the mall's) coupons, issued to shoppers and used once at
the owner's till (docs/core.md, "Coupons"). long: a series, its issue (granted or bought
with points), its signed QR payload and its redemption belong together.

A series has an emission period (coupons are issued only inside it), a total cap and a cap
per shopper, a code mode (``shared``: one code printed on every coupon; ``unique``: a code
per coupon made here), a validity (a date range, or one given day, in the mall's time zone)
and a discount text. An issue takes one unit of the total cap with a conditional
``UPDATE ... WHERE issued < total_cap`` in the caller's write transaction, so concurrent
issues never pass either cap; an issue is idempotent by its request key.

A coupon's QR payload is ``C1.<coupon>.<customer or ->.<signature>``, the signature an
HMAC-SHA256 (``coupons.secret_file``) over the coupon and the shopper it is bound to (``-``
for a bearer coupon), so a forged or altered payload is refused. A redemption marks the
coupon used once, at a till of the series' owner (any till for the mall's series), and only
on a day of its validity. Nothing here commits.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from cloud_core import ledger
from cloud_core.errors import Conflict, Forbidden, InvalidInput, NotFound
from cloud_core.ledger import COALITION, from_iso, iso
from cloud_core.schemes_config import CoalitionCouponRule
from cloud_core.store import Conn
from mallnet.ids import new_event_id

log = logging.getLogger(__name__)

MALL = "mall"  # the owner of the mall's own series: redeemable at any till
_QR = re.compile(r"^C1\.([A-Za-z0-9-]{1,64})\.([A-Za-z0-9_-]{1,64})\.([0-9a-f]{32})$")
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


class CouponsExhausted(Conflict):
    """The series has issued its total cap, or the shopper their cap."""

    problem = "coupons-exhausted"


class CouponNotIssuable(Conflict):
    """Outside the series' emission period, or not sold for points."""

    problem = "coupon-not-issuable"


class CouponNotValid(Conflict):
    """A coupon used outside its validity (before, after, or not on its one day)."""

    problem = "coupon-not-valid"


class CouponUsed(Conflict):
    """A coupon already redeemed."""

    problem = "coupon-used"


class CouponQrError(InvalidInput):
    """A coupon QR payload that is malformed, forged or altered."""

    problem = "coupon-qr"


class CouponElsewhere(Forbidden):
    """A coupon presented at a till of another business than its series' owner."""

    problem = "coupon-other-business"


@dataclass(frozen=True)
class Series:
    id: str
    owner: str
    title: str
    discount: str
    emission_start: datetime
    emission_end: datetime
    total_cap: int
    per_customer_cap: int
    code_mode: Literal["shared", "unique"]
    shared_code: str | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    valid_day: date | None = None
    price_points: int | None = None
    issued: int = 0


@dataclass(frozen=True)
class Coupon:
    id: str
    series: Series
    customer: str | None
    code: str
    source: str
    points: int
    issued_at: datetime
    used_at: datetime | None
    used_store: str | None
    outcome: Literal["issued", "duplicate", "stored"] = "stored"
    changes: tuple[ledger.Change, ...] = ()


def _day(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def _series(row: Any) -> Series:
    return Series(
        id=row["id"],
        owner=row["owner"],
        title=row["title"],
        discount=row["discount"],
        emission_start=from_iso(row["emission_start"]),
        emission_end=from_iso(row["emission_end"]),
        total_cap=int(row["total_cap"]),
        per_customer_cap=int(row["per_customer_cap"]),
        code_mode=row["code_mode"],
        shared_code=row["shared_code"],
        valid_from=_day(row["valid_from"]),
        valid_until=_day(row["valid_until"]),
        valid_day=_day(row["valid_day"]),
        price_points=None if row["price_points"] is None else int(row["price_points"]),
        issued=int(row["issued"]),
    )


def _coupon(row: Any, series: Series, outcome: Any = "stored") -> Coupon:
    return Coupon(
        id=row["id"],
        series=series,
        customer=row["customer_id"],
        code=row["code"],
        source=row["source"],
        points=int(row["points"]),
        issued_at=from_iso(row["issued_at"]),
        used_at=None if row["used_at"] is None else from_iso(row["used_at"]),
        used_store=row["used_store"],
        outcome=outcome,
    )


def _day_text(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


def create_series(conn: Conn, s: Series, now: datetime) -> Series:
    """A new series; ``InvalidInput`` if it contradicts itself, ``Conflict`` if the id is taken."""
    if s.emission_end <= s.emission_start:
        raise InvalidInput("the emission period ends before it starts")
    if s.total_cap < 1 or s.per_customer_cap < 1:
        raise InvalidInput("the caps must be at least 1")
    if (s.code_mode == "shared") != (s.shared_code is not None):
        raise InvalidInput("a shared code goes with code_mode 'shared' (and only with it)")
    if s.valid_day is not None and (s.valid_from is not None or s.valid_until is not None):
        raise InvalidInput("a coupon is valid on one day or in a range, not both")
    if s.valid_from and s.valid_until and s.valid_until < s.valid_from:
        raise InvalidInput("the validity ends before it starts")
    row = conn.execute(
        "INSERT INTO coupon_series (id, owner, title, discount, emission_start, emission_end,"
        " total_cap, per_customer_cap, code_mode, shared_code, valid_from, valid_until,"
        " valid_day, price_points, issued, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)"
        " ON CONFLICT (id) DO NOTHING RETURNING id",
        (
            s.id,
            s.owner,
            s.title,
            s.discount,
            iso(s.emission_start),
            iso(s.emission_end),
            s.total_cap,
            s.per_customer_cap,
            s.code_mode,
            s.shared_code,
            _day_text(s.valid_from),
            _day_text(s.valid_until),
            _day_text(s.valid_day),
            s.price_points,
            iso(now),
        ),
    ).fetchone()
    if row is None:
        raise Conflict(f"a coupon series {s.id!r} exists already")
    log.info("coupon series %s of %s (cap %d)", s.id, s.owner, s.total_cap)
    return s


def get_series(conn: Conn, series_id: str) -> Series:
    row = conn.execute("SELECT * FROM coupon_series WHERE id = ?", (series_id,)).fetchone()
    if row is None:
        raise NotFound(f"no coupon series {series_id!r}")
    return _series(row)


def list_series(
    conn: Conn, owner: str | None = None, *, limit: int = 100, offset: int = 0
) -> list[Series]:
    sql, params = "SELECT * FROM coupon_series", []
    if owner is not None:
        sql += " WHERE owner = ?"
        params.append(owner)
    rows = conn.execute(sql + " ORDER BY id LIMIT ? OFFSET ?", [*params, limit, offset])
    return [_series(r) for r in rows.fetchall()]


def _new_code() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(10))


def issue(
    conn: Conn,
    series_id: str,
    customer: str | None,
    request_key: str,
    now: datetime,
    *,
    source: str = "grant",
    points: int = 0,
) -> Coupon:
    """Issue one coupon of the series to ``customer`` (None: a bearer coupon); the same
    request key again answers the same coupon and takes nothing."""
    again = conn.execute("SELECT * FROM coupons WHERE request_key = ?", (request_key,)).fetchone()
    if again is not None:
        if again["series_id"] != series_id or again["customer_id"] != customer:
            raise Conflict("this idempotency key was used for another coupon")
        return _coupon(again, get_series(conn, series_id), "duplicate")
    series = get_series(conn, series_id)
    if not series.emission_start <= now < series.emission_end:
        raise CouponNotIssuable(f"series {series_id!r} is not issued now (emission period)")
    if customer is not None:
        held = conn.execute(
            "SELECT COUNT(*) AS n FROM coupons WHERE series_id = ? AND customer_id = ?",
            (series_id, customer),
        ).fetchone()
        if int(held["n"]) >= series.per_customer_cap:
            raise CouponsExhausted(f"this shopper holds the series' cap of {series_id!r}")
    took = conn.execute(
        "UPDATE coupon_series SET issued = issued + 1 WHERE id = ? AND issued < total_cap"
        " RETURNING issued",
        (series_id,),
    ).fetchone()
    if took is None:
        raise CouponsExhausted(f"series {series_id!r} has issued all its coupons")
    code = series.shared_code or _new_code()
    coupon_id = new_event_id()
    row = conn.execute(
        "INSERT INTO coupons (id, series_id, customer_id, code, source, points, request_key,"
        " issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        (coupon_id, series_id, customer, code, source, points, request_key, iso(now)),
    ).fetchone()
    log.info("coupon of series %s issued (%s)", series_id, source)
    return _coupon(row, series, "issued")


def by_request_key(conn: Conn, request_key: str) -> Coupon | None:
    """The coupon issued under ``request_key`` (a mailing's to one shopper), if any."""
    row = conn.execute("SELECT * FROM coupons WHERE request_key = ?", (request_key,)).fetchone()
    return None if row is None else _coupon(row, get_series(conn, row["series_id"]))


def buy(conn: Conn, series_id: str, customer: str, request_key: str, now: datetime) -> Coupon:
    """Sell a coupon of the series for its points from the coalition pocket: the coupon and
    the spend in the caller's one transaction, both or neither (``InsufficientPoints``)."""
    key = f"coupon-buy:{customer}:{request_key}"
    series = get_series(conn, series_id)
    if series.price_points is None:
        raise CouponNotIssuable(f"series {series_id!r} is not sold for points")
    coupon = issue(conn, series_id, customer, key, now, source="points", points=series.price_points)
    if coupon.outcome == "duplicate":
        return coupon
    spent = ledger.spend(
        conn,
        customer=customer,
        pocket=COALITION,
        points=series.price_points,
        idem_key=key,
        now=now,
        reason="spend",
        text=f"coupon: {series.title}"[:300],
    )
    return Coupon(**{**coupon.__dict__, "changes": tuple(spent.changes)})


def wallet(conn: Conn, customer: str, owner: str | None = None) -> list[Coupon]:
    """A shopper's coupons, newest first (one owner's when given)."""
    rows = conn.execute(
        "SELECT * FROM coupons WHERE customer_id = ? ORDER BY issued_at DESC, id", (customer,)
    ).fetchall()
    cache: dict[str, Series] = {}
    out = []
    for r in rows:
        sid = r["series_id"]
        if sid not in cache:
            cache[sid] = get_series(conn, sid)
        if owner is None or cache[sid].owner == owner:
            out.append(_coupon(r, cache[sid]))
    return out


def qr_payload(key: bytes, coupon: Coupon) -> str:
    """The coupon's signed QR payload (bound to its shopper, or ``-`` for a bearer coupon)."""
    body = f"C1.{coupon.id}.{coupon.customer or '-'}"
    return f"{body}.{_sign(key, body)}"


def _sign(key: bytes, body: str) -> str:
    return hmac.new(key, f"mallnet-coupon:{body}".encode(), hashlib.sha256).hexdigest()[:32]


def verify_qr(key: bytes, payload: str) -> tuple[str, str | None]:
    """The coupon id and bound shopper of a payload; ``CouponQrError`` if forged or altered."""
    found = _QR.match(payload.strip())
    if found is None:
        raise CouponQrError("not a coupon QR payload")
    coupon_id, holder, signature = found.groups()
    if not hmac.compare_digest(_sign(key, f"C1.{coupon_id}.{holder}"), signature):
        raise CouponQrError("the coupon QR payload is forged or altered")
    return coupon_id, None if holder == "-" else holder


def valid_on(series: Series, day: date) -> bool:
    if series.valid_day is not None:
        return day == series.valid_day
    if series.valid_from is not None and day < series.valid_from:
        return False
    return series.valid_until is None or day <= series.valid_until


def redeem(
    conn: Conn,
    *,
    business: str,
    store: str,
    seller: str,
    now: datetime,
    tz: ZoneInfo,
    coupon_id: str | None = None,
    code: str | None = None,
    customer: str | None = None,
    series_id: str | None = None,
) -> Coupon:
    """Mark a coupon used at ``business``'s till: by id (a verified QR payload) or by code
    (a unique code; a shared code with the shopper). Once per coupon, on a valid day only."""
    if coupon_id is not None:
        row = conn.execute("SELECT * FROM coupons WHERE id = ?", (coupon_id,)).fetchone()
    elif code is not None:
        rows = conn.execute("SELECT * FROM coupons WHERE code = ?", (code.strip(),)).fetchall()
        if series_id is not None:
            rows = [r for r in rows if r["series_id"] == series_id]
        if customer is not None:
            rows = [r for r in rows if r["customer_id"] == customer]
        unused = [r for r in rows if r["used_at"] is None]
        row = (unused or rows or [None])[0]
        shared = row is not None and get_series(conn, row["series_id"]).code_mode == "shared"
        if shared and customer is None:
            raise InvalidInput("a shared code needs the shopper (identify them first)")
    else:
        raise InvalidInput("a coupon QR payload or a code is needed")
    if row is None or series_id not in (None, row["series_id"]):
        raise NotFound("no such coupon")
    series = get_series(conn, row["series_id"])
    if series.owner not in (business, MALL):
        raise CouponElsewhere("this coupon is not redeemable at this business's tills")
    if customer is not None and row["customer_id"] not in (None, customer):
        raise CouponQrError("this coupon belongs to another shopper")
    if not valid_on(series, now.astimezone(tz).date()):
        raise CouponNotValid(f"coupon of series {series.id!r} is not valid today")
    done = conn.execute(
        "UPDATE coupons SET used_at = ?, used_store = ?, used_by = ?"
        " WHERE id = ? AND used_at IS NULL RETURNING *",
        (iso(now), store, seller, row["id"]),
    ).fetchone()
    if done is None:
        raise CouponUsed("this coupon was used already")
    log.info("coupon of series %s redeemed at %s", series.id, store)
    return _coupon(done, series, "stored")


def erase_customer(conn: Conn, customer: str) -> dict[str, int]:
    n = conn.execute("DELETE FROM coupons WHERE customer_id = ?", (customer,)).rowcount
    return {"coupons": n}


def coalition_grants(
    conn: Conn,
    rules: tuple[CoalitionCouponRule, ...],
    *,
    business: str,
    customer: str,
    amount_cents: int,
    purchase_id: str,
    now: datetime,
) -> list[Coupon]:
    """Coalition coupons: a purchase at ``business`` issues each configured series of another
    business (once per purchase and series); an exhausted or closed series is skipped."""
    out = []
    for rule in rules:
        if rule.business != business or amount_cents < rule.min_amount_cents:
            continue
        key = f"coalition:{purchase_id}:{rule.series}"
        try:
            out.append(issue(conn, rule.series, customer, key, now, source="coalition"))
        except (CouponsExhausted, CouponNotIssuable, NotFound) as exc:
            log.info("no coalition coupon of %s for a purchase: %s", rule.series, exc)
    return out
