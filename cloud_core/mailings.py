"""Mailings: a selection of shoppers, a message, its audience, its outbox, unsubscribes.
(long: one storage module for the whole outbox — drafts, audience, queue, leases, status and
the signed unsubscribe tokens — so every SQL statement on these tables lives here.)

The mall (sender ``mall``) or a tenant (sender: its business) writes a draft: a title, a
text, channels and a ``Selection``. ``audience`` counts who it would reach now; ``send``
writes one ``mailing_outbox`` row per recipient and channel (the key ``(mailing, customer,
channel)`` makes every delivery idempotent) and the dispatcher (``mail_dispatch.py``)
delivers them at least once, with retries and exponential backoff.

Who may be reached: a shopper who consented to personal offers (``customer_consents``)
and has not unsubscribed from the channel (``mailing_unsubscribes``); a tenant reaches only
its own customers, those with a visit or a purchase at its stores. Both are checked again
at send time. An e-mail goes only to a customer with a stored address.

Coupons: a draft may name a coupon series of its sender (``coupon_series``, e.g. one valid
on one given day): ``send`` issues one coupon of it to each recipient (``coupons.issue``,
idempotent per mailing and shopper, within the series' caps; a shopper the series can no
longer reach gets the message without one), and the message names the coupon.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from cloud_core import coupons, ledger
from cloud_core.errors import Conflict, InvalidInput, NotFound
from cloud_core.store import Conn

log = logging.getLogger(__name__)

MALL = "mall"  # the sender of the mall's own mailings (as the coalition pocket is named)
Channel = Literal["inbox", "webhook", "email"]
CHANNELS: tuple[Channel, ...] = ("inbox", "webhook", "email")
#: How long a claimed delivery is left to its sender before another turn may retry it.
LEASE_S = 300.0


@dataclass(frozen=True)
class Selection:
    """Who a mailing reaches, beyond consent (every field optional; all must hold)."""

    min_visits: int | None = None  # at least this many visits …
    visits_within_days: int = 30  # … within this many days
    last_visit_within_days: int | None = None  # visited within N days
    last_visit_before_days: int | None = None  # last visit more than N days ago (lapsed)
    store: str | None = None  # a visit or a purchase at this store
    pocket: str | None = None  # a balance in this pocket …
    min_balance: int = 1  # … of at least this many points

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Selection:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Draft:
    title: str
    text: str
    channels: tuple[Channel, ...]
    selection: Selection = field(default_factory=Selection)
    coupon_series: str | None = None


@dataclass(frozen=True)
class Mailing:
    id: str
    kind: str
    sender: str
    title: str
    text: str
    channels: tuple[Channel, ...]
    selection: Selection
    status: str
    audience: int
    created_at: datetime
    created_by: str
    sent_at: datetime | None
    coupon_series: str | None = None


@dataclass(frozen=True)
class Delivery:
    mailing: str
    customer: str
    channel: Channel
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    sent_at: datetime | None


def _mailing(row: Any) -> Mailing:
    return Mailing(
        id=row["id"],
        kind=row["kind"],
        sender=row["sender"],
        title=row["title"],
        text=row["text"],
        channels=tuple(row["channels"].split(",")),
        selection=Selection.from_json(row["selection"]),
        status=row["status"],
        audience=int(row["audience"]),
        created_at=ledger.from_iso(row["created_at"]),
        created_by=row["created_by"],
        sent_at=ledger.from_iso(row["sent_at"]) if row["sent_at"] else None,
        coupon_series=row["coupon_series"],
    )


def coupon_key(mailing_id: str, customer: str) -> str:
    """The request key of the coupon a mailing issues to one shopper."""
    return f"mailing:{mailing_id}:{customer}"


def create(
    conn: Conn,
    sender: str,
    draft: Draft,
    by: str,
    now: datetime,
    *,
    kind: str = "mailing",
    mailing_id: str | None = None,
) -> Mailing:
    """Write a draft (``Conflict`` if ``mailing_id`` is taken)."""
    mid = mailing_id or "m" + secrets.token_hex(10)
    row = conn.execute(
        "INSERT INTO mailings (id, kind, sender, title, text, channels, selection, status,"
        " created_at, created_by, coupon_series) VALUES (?, ?, ?, ?, ?, ?, ?, 'draft', ?, ?, ?)"
        " ON CONFLICT (id) DO NOTHING RETURNING id",
        (
            mid,
            kind,
            sender,
            draft.title,
            draft.text,
            ",".join(dict.fromkeys(draft.channels)),
            draft.selection.to_json(),
            ledger.iso(now),
            by,
            draft.coupon_series,
        ),
    ).fetchone()
    if row is None:
        raise Conflict(f"mailing {mid} exists")
    return get(conn, mid)


def get(conn: Conn, mailing_id: str) -> Mailing:
    row = conn.execute("SELECT * FROM mailings WHERE id = ?", (mailing_id,)).fetchone()
    if row is None:
        raise NotFound(f"no mailing {mailing_id}")
    return _mailing(row)


def list_mailings(conn: Conn, sender: str | None, limit: int, offset: int) -> list[Mailing]:
    where, params = ("WHERE sender = ?", [sender]) if sender is not None else ("", [])
    return [
        _mailing(row)
        for row in conn.execute(
            f"SELECT * FROM mailings {where} ORDER BY created_at DESC, id"  # noqa: S608
            " LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
    ]


# --- the audience ----------------------------------------------------------------------


def _ids(rows: Iterable[Any]) -> set[str]:
    return {str(row[0]) for row in rows}


def customers_of(conn: Conn, business: str) -> set[str]:
    """A tenant's own customers: a visit or a purchase at one of its stores."""
    visits = conn.execute("SELECT DISTINCT customer_id FROM visits WHERE business = ?", (business,))
    bought = conn.execute(
        "SELECT DISTINCT customer_id FROM purchases WHERE business = ?", (business,)
    )
    return _ids(visits) | _ids(bought)


def audience(conn: Conn, sender: str, selection: Selection, now: datetime) -> list[str]:
    """Who a mailing of ``sender`` with ``selection`` reaches now (consented; a tenant's
    own customers only), sorted."""
    ids = _ids(conn.execute("SELECT customer_id FROM customer_consents WHERE offers = 1"))
    scope: str = ""
    scope_params: tuple[str, ...] = ()
    if sender != MALL:
        ids &= customers_of(conn, sender)
        scope, scope_params = " AND business = ?", (sender,)
    epoch = now.timestamp()
    sel = selection
    if sel.store is not None:
        ids &= _ids(
            conn.execute("SELECT DISTINCT customer_id FROM visits WHERE store = ?", (sel.store,))
        ) | _ids(
            conn.execute("SELECT DISTINCT customer_id FROM purchases WHERE store = ?", (sel.store,))
        )
    if sel.min_visits is not None:
        ids &= _ids(
            conn.execute(
                "SELECT customer_id FROM visits WHERE ts_epoch >= ?"  # noqa: S608
                f"{scope} GROUP BY customer_id HAVING COUNT(*) >= ?",
                (epoch - sel.visits_within_days * 86_400, *scope_params, sel.min_visits),
            )
        )
    if sel.last_visit_within_days is not None or sel.last_visit_before_days is not None:
        last = {
            str(row[0]): float(row[1])
            for row in conn.execute(
                f"SELECT customer_id, MAX(ts_epoch) FROM visits WHERE 1 = 1{scope}"  # noqa: S608
                " GROUP BY customer_id",
                scope_params,
            )
        }
        if sel.last_visit_within_days is not None:
            ids &= {c for c, t in last.items() if t >= epoch - sel.last_visit_within_days * 86_400}
        if sel.last_visit_before_days is not None:
            ids &= {c for c, t in last.items() if t < epoch - sel.last_visit_before_days * 86_400}
    if sel.pocket is not None:
        ids &= _ids(
            conn.execute(
                "SELECT customer_id FROM lots WHERE pocket = ? AND remaining > 0"
                " AND (expires_at IS NULL OR expires_at > ?)"
                " GROUP BY customer_id HAVING SUM(remaining) >= ?",
                (sel.pocket, ledger.iso(now), sel.min_balance),
            )
        )
    return sorted(ids)


def _emails(conn: Conn, ids: Iterable[str]) -> set[str]:
    return {
        str(row[0])
        for row in conn.execute("SELECT id, email FROM customers WHERE email IS NOT NULL")
        if row[1]
    } & set(ids)


def unsubscribed(conn: Conn, channel: str) -> set[str]:
    return _ids(
        conn.execute("SELECT customer_id FROM mailing_unsubscribes WHERE channel = ?", (channel,))
    )


def send(conn: Conn, mailing_id: str, now: datetime, available: Iterable[str]) -> Mailing:
    """Queue a draft: one outbox row per recipient and channel it can use; ``Conflict`` if
    it was sent already, ``InvalidInput`` if a channel is not configured."""
    mailing = get(conn, mailing_id)
    missing = set(mailing.channels) - set(available)
    if missing:
        raise InvalidInput(f"channel(s) not configured: {', '.join(sorted(missing))}")
    claimed = conn.execute(
        "UPDATE mailings SET status = 'sending', sent_at = ? WHERE id = ? AND status = 'draft'",
        (ledger.iso(now), mailing_id),
    ).rowcount
    if claimed != 1:
        raise Conflict(f"mailing {mailing_id} was sent already")
    people = audience(conn, mailing.sender, mailing.selection, now)
    rows = []
    for channel in mailing.channels:
        reach = set(people) - unsubscribed(conn, channel)
        if channel == "email":
            reach = _emails(conn, reach)
        rows += [(mailing_id, c, channel, now.timestamp()) for c in sorted(reach)]
    conn.executemany(
        "INSERT INTO mailing_outbox (mailing_id, customer_id, channel, status, attempts,"
        " next_attempt_epoch) VALUES (?, ?, ?, 'pending', 0, ?)"
        " ON CONFLICT (mailing_id, customer_id, channel) DO NOTHING",
        rows,
    )
    conn.execute("UPDATE mailings SET audience = ? WHERE id = ?", (len(people), mailing_id))
    if mailing.coupon_series is not None:
        _issue_coupons(conn, mailing, people, now)
    return get(conn, mailing_id)


def _issue_coupons(conn: Conn, mailing: Mailing, people: Iterable[str], now: datetime) -> None:
    """One coupon of the mailing's series per recipient; one the series cannot reach any more
    (its caps, its emission period) gets the message without one."""
    assert mailing.coupon_series is not None
    for customer in sorted(people):
        try:
            coupons.issue(
                conn,
                mailing.coupon_series,
                customer,
                coupon_key(mailing.id, customer),
                now,
                source="mailing",
            )
        except (coupons.CouponsExhausted, coupons.CouponNotIssuable) as exc:
            log.info("mailing %s: no coupon for a recipient: %s", mailing.id, exc)


# --- delivery status -------------------------------------------------------------------


def status_counts(conn: Conn, mailing_id: str) -> dict[str, dict[str, int]]:
    """Deliveries per channel and status."""
    out: dict[str, dict[str, int]] = {}
    for row in conn.execute(
        "SELECT channel, status, COUNT(*) AS n FROM mailing_outbox WHERE mailing_id = ?"
        " GROUP BY channel, status",
        (mailing_id,),
    ):
        out.setdefault(row["channel"], {})[row["status"]] = int(row["n"])
    return out


def _delivery(row: Any) -> Delivery:
    pending = row["status"] == "pending"
    return Delivery(
        mailing=row["mailing_id"],
        customer=row["customer_id"],
        channel=row["channel"],
        status=row["status"],
        attempts=int(row["attempts"]),
        next_attempt_at=(
            datetime.fromtimestamp(float(row["next_attempt_epoch"]), UTC) if pending else None
        ),
        last_error=row["last_error"],
        sent_at=ledger.from_iso(row["sent_at"]) if row["sent_at"] else None,
    )


def deliveries(conn: Conn, mailing_id: str, limit: int, offset: int) -> list[Delivery]:
    return [
        _delivery(row)
        for row in conn.execute(
            "SELECT * FROM mailing_outbox WHERE mailing_id = ?"
            " ORDER BY customer_id, channel LIMIT ? OFFSET ?",
            (mailing_id, limit, offset),
        )
    ]


def due(conn: Conn, now_epoch: float, limit: int) -> list[Delivery]:
    """Pending deliveries whose next attempt is due, oldest first."""
    return [
        _delivery(row)
        for row in conn.execute(
            "SELECT * FROM mailing_outbox WHERE status = 'pending' AND next_attempt_epoch <= ?"
            " ORDER BY next_attempt_epoch LIMIT ?",
            (now_epoch, limit),
        )
    ]


def claim(conn: Conn, d: Delivery, now_epoch: float) -> bool:
    """Lease a due delivery to this sender (no other turn takes it for ``LEASE_S``)."""
    return (
        conn.execute(
            "UPDATE mailing_outbox SET next_attempt_epoch = ? WHERE mailing_id = ?"
            " AND customer_id = ? AND channel = ? AND status = 'pending'"
            " AND next_attempt_epoch <= ?",
            (now_epoch + LEASE_S, d.mailing, d.customer, d.channel, now_epoch),
        ).rowcount
        == 1
    )


def finish(
    conn: Conn,
    d: Delivery,
    status: Literal["sent", "failed", "skipped", "pending"],
    now: datetime,
    *,
    error: str | None = None,
    retry_at: float | None = None,
) -> None:
    """Record an attempt's outcome (``pending`` with ``retry_at``: try again then)."""
    conn.execute(
        "UPDATE mailing_outbox SET status = ?, attempts = attempts + ?, last_error = ?,"
        " sent_at = ?, next_attempt_epoch = ? WHERE mailing_id = ? AND customer_id = ?"
        " AND channel = ? AND status = 'pending'",
        (
            status,
            0 if status == "skipped" else 1,
            error[:500] if error else None,
            ledger.iso(now) if status == "sent" else None,
            retry_at if retry_at is not None else now.timestamp(),
            d.mailing,
            d.customer,
            d.channel,
        ),
    )


def may_receive(conn: Conn, customer: str, channel: str) -> str | None:
    """Why a customer may not receive on a channel now (None: they may)."""
    row = conn.execute(
        "SELECT c.email, k.offers FROM customers c"
        " LEFT JOIN customer_consents k ON k.customer_id = c.id WHERE c.id = ?",
        (customer,),
    ).fetchone()
    if row is None:
        return "customer erased"
    if not row["offers"]:
        return "no consent to offers"
    if conn.execute(
        "SELECT 1 FROM mailing_unsubscribes WHERE customer_id = ? AND channel = ?",
        (customer, channel),
    ).fetchone():
        return "unsubscribed"
    if channel == "email" and not row["email"]:
        return "no e-mail address"
    return None


def email_of(conn: Conn, customer: str) -> str | None:
    row = conn.execute("SELECT email FROM customers WHERE id = ?", (customer,)).fetchone()
    return str(row["email"]) if row is not None and row["email"] else None


# --- unsubscribe -----------------------------------------------------------------------


def _signature(key: bytes, customer: str, channel: str) -> str:
    mac = hmac.new(key, f"unsubscribe\0{customer}\0{channel}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def unsubscribe_token(key: bytes, customer: str, channel: str) -> str:
    """A signed token that unsubscribes one shopper from one channel (no expiry)."""
    body = base64.urlsafe_b64encode(f"{customer}\n{channel}".encode()).decode().rstrip("=")
    return f"{body}.{_signature(key, customer, channel)}"


def read_token(key: bytes, token: str) -> tuple[str, str]:
    """(customer, channel) of a token; ``InvalidInput`` if forged, altered or malformed."""
    body, _, sig = token.partition(".")
    try:
        customer, channel = (
            base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode().split("\n")
        )
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("not an unsubscribe token") from None
    if channel not in CHANNELS or not hmac.compare_digest(sig, _signature(key, customer, channel)):
        raise InvalidInput("not an unsubscribe token")
    return customer, channel


def unsubscribe(conn: Conn, customer: str, channel: str, now: datetime) -> None:
    """Stop a channel's mailings to a shopper (idempotent); pending ones are skipped."""
    conn.execute(
        "INSERT INTO mailing_unsubscribes (customer_id, channel, ts) VALUES (?, ?, ?)"
        " ON CONFLICT (customer_id, channel) DO NOTHING",
        (customer, channel, ledger.iso(now)),
    )


def digest_id(now: datetime) -> str:
    """The weekly digest's mailing id (one per ISO week)."""
    year, week, _ = now.isocalendar()
    return f"digest-{year}-w{week:02d}"
