"""Reviews and ratings of stores: invitations, reviews, replies, moderation, ratings.

A shopper may review a store only through an invitation (``review_invitations``):

- after a visit or a purchase: ``invite_due`` (a job) invites, ``reviews.invite_delay_s``
  after it, at most once per shopper and store within ``reviews.invite_period_days``; the
  invitation reaches the shopper's inbox as a ``MessageNotice`` (kind ``review``);
- from a QR on a table: a per-store code signed with ``reviews.secret`` (``table_code``);
  scanned from the shopper's wallet it makes (or finds) that day's invitation.

One review per invitation: 1–5 stars and a text of at most ``reviews.text_max``
characters. The store's tenant replies (once, may edit); the mall hides or shows a review
with a reason. Ratings (average, count, distribution) count visible reviews only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cloud_core import ledger
from cloud_core.config import CoreConfig
from cloud_core.errors import Conflict, InvalidInput, NotFound
from cloud_core.rules.common import Notice
from cloud_core.store import Conn
from mallnet.ids import new_event_id
from mallnet.wire.payloads import MessageNotice

TABLE_PREFIX = "mallnet:r:"


@dataclass(frozen=True)
class Invitation:
    id: str
    customer: str
    store: str
    business: str
    source: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Review:
    id: str
    store: str
    business: str
    customer: str
    stars: int
    text: str
    created_at: datetime
    reply: str | None
    replied_at: datetime | None
    hidden: bool
    moderation_reason: str | None
    moderated_at: datetime | None


@dataclass(frozen=True)
class Rating:
    store: str
    count: int
    average: float | None
    distribution: dict[int, int]


def _t(value: Any) -> datetime | None:
    return ledger.from_iso(value) if value else None


def _invitation(row: Any) -> Invitation:
    return Invitation(
        id=row["id"],
        customer=row["customer_id"],
        store=row["store"],
        business=row["business"],
        source=row["source"],
        created_at=ledger.from_iso(row["created_at"]),
        expires_at=ledger.from_iso(row["expires_at"]),
    )


def _review(row: Any) -> Review:
    return Review(
        id=row["id"],
        store=row["store"],
        business=row["business"],
        customer=row["customer_id"],
        stars=int(row["stars"]),
        text=row["text"],
        created_at=ledger.from_iso(row["created_at"]),
        reply=row["reply"],
        replied_at=_t(row["replied_at"]),
        hidden=bool(row["hidden"]),
        moderation_reason=row["moderation_reason"],
        moderated_at=_t(row["moderated_at"]),
    )


def _invite(
    conn: Conn,
    config: CoreConfig,
    *,
    customer: str,
    store: str,
    source: str,
    period: str,
    now: datetime,
) -> Invitation | None:
    """Write an invitation unless this (customer, store, period) has one; None if it had."""
    assert config.reviews is not None
    found = next((s for s in config.stores if s.id == store), None)
    if found is None:
        raise NotFound(f"no store {store}")
    business = found.business
    iid = "r" + secrets.token_hex(10)
    expires = now + timedelta(days=config.reviews.invite_valid_days)
    row = conn.execute(
        "INSERT INTO review_invitations (id, customer_id, store, business, source, period,"
        " created_at, created_epoch, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (customer_id, store, period) DO NOTHING RETURNING id",
        (
            iid,
            customer,
            store,
            business,
            source,
            period,
            ledger.iso(now),
            now.timestamp(),
            ledger.iso(expires),
        ),
    ).fetchone()
    return None if row is None else invitation(conn, iid)


def invitation(conn: Conn, iid: str) -> Invitation:
    row = conn.execute("SELECT * FROM review_invitations WHERE id = ?", (iid,)).fetchone()
    if row is None:
        raise NotFound(f"no review invitation {iid}")
    return _invitation(row)


def invite_due(conn: Conn, config: CoreConfig, now: datetime) -> list[Notice]:
    """Invite shoppers whose visit or purchase is at least ``invite_delay_s`` old (and at
    most ``lookback_days``), once per shopper and store per ``invite_period_days``; the
    inbox notices (in the caller's transaction)."""
    settings = config.reviews
    assert settings is not None
    upto = now - timedelta(seconds=settings.invite_delay_s)
    since = now - timedelta(days=settings.lookback_days)
    period_s = settings.invite_period_days * 86_400
    candidates: dict[tuple[str, str], str] = {}
    for row in conn.execute(
        "SELECT DISTINCT customer_id, store FROM visits WHERE ts_epoch > ? AND ts_epoch <= ?",
        (since.timestamp(), upto.timestamp()),
    ):
        candidates.setdefault((row["customer_id"], row["store"]), "visit")
    for row in conn.execute(
        "SELECT DISTINCT customer_id, store FROM purchases WHERE ts > ? AND ts <= ?"
        " AND status = 'registered'",
        (ledger.iso(since), ledger.iso(upto)),
    ):
        candidates.setdefault((row["customer_id"], row["store"]), "purchase")
    stores = {s.id: s for s in config.stores}
    notices = []
    for (customer, store), source in sorted(candidates.items()):
        if store not in stores:
            continue
        recent = conn.execute(
            "SELECT 1 FROM review_invitations WHERE customer_id = ? AND store = ?"
            " AND created_epoch > ?",
            (customer, store, now.timestamp() - period_s),
        ).fetchone()
        if recent is not None:
            continue
        period = str(int(now.timestamp() // period_s))
        made = _invite(
            conn, config, customer=customer, store=store, source=source, period=period, now=now
        )
        if made is None:
            continue
        name = stores[store].name
        notices.append(
            Notice(
                customer,
                MessageNotice(
                    id=new_event_id(),
                    ts=now,
                    kind="review",
                    ref=made.id,
                    title=f"How was {name}?"[:120],
                    text=f"Rate {name} from 1 to 5 stars and tell us why.",
                ),
            )
        )
    return notices


# --- table QR codes --------------------------------------------------------------------


def _table_sig(key: bytes, store: str) -> str:
    return hmac.new(key, f"review-table\0{store}".encode(), hashlib.sha256).hexdigest()[:24]


def table_code(key: bytes, store: str) -> str:
    """The text of a store's table QR (signed; printed once per store)."""
    return f"{TABLE_PREFIX}{store}:{_table_sig(key, store)}"


def invite_from_qr(
    conn: Conn, config: CoreConfig, key: bytes, *, customer: str, code: str, now: datetime
) -> Invitation:
    """That day's invitation for the store of a table's QR (``InvalidInput`` if forged)."""
    store, _, sig = code.removeprefix(TABLE_PREFIX).partition(":")
    if not code.startswith(TABLE_PREFIX) or not hmac.compare_digest(sig, _table_sig(key, store)):
        raise InvalidInput("not a review code of this mall")
    if all(s.id != store for s in config.stores):
        raise InvalidInput("not a review code of this mall")
    day = now.astimezone(ZoneInfo(config.timezone)).date().isoformat()
    made = _invite(
        conn, config, customer=customer, store=store, source="qr", period=f"qr:{day}", now=now
    )
    if made is not None:
        return made
    row = conn.execute(
        "SELECT * FROM review_invitations WHERE customer_id = ? AND store = ? AND period = ?",
        (customer, store, f"qr:{day}"),
    ).fetchone()
    return _invitation(row)


def open_invitations(conn: Conn, customer: str, now: datetime) -> list[Invitation]:
    """A shopper's invitations not used and not expired, newest first."""
    return [
        _invitation(row)
        for row in conn.execute(
            "SELECT i.* FROM review_invitations i LEFT JOIN reviews r ON r.invitation_id = i.id"
            " WHERE i.customer_id = ? AND r.id IS NULL AND i.expires_at > ?"
            " ORDER BY i.created_at DESC LIMIT 100",
            (customer, ledger.iso(now)),
        )
    ]


# --- reviews ---------------------------------------------------------------------------


def submit(
    conn: Conn,
    config: CoreConfig,
    *,
    customer: str,
    invitation_id: str,
    stars: int,
    text: str,
    now: datetime,
) -> Review:
    """A review through the shopper's own invitation (``NotFound`` for anyone else's,
    ``Conflict`` once used, ``InvalidInput`` when expired or out of bounds)."""
    assert config.reviews is not None
    row = conn.execute(
        "SELECT * FROM review_invitations WHERE id = ? AND customer_id = ?",
        (invitation_id, customer),
    ).fetchone()
    if row is None:
        raise NotFound("no such invitation for you")
    inv = _invitation(row)
    if inv.expires_at <= now:
        raise InvalidInput("the invitation has expired")
    if not 1 <= stars <= 5:
        raise InvalidInput("stars must be 1 to 5")
    text = text.strip()
    if len(text) > config.reviews.text_max:
        raise InvalidInput(f"the text is longer than {config.reviews.text_max} characters")
    rid = "v" + secrets.token_hex(10)
    made = conn.execute(
        "INSERT INTO reviews (id, invitation_id, customer_id, store, business, stars, text,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (invitation_id) DO NOTHING RETURNING id",
        (rid, inv.id, customer, inv.store, inv.business, stars, text, ledger.iso(now)),
    ).fetchone()
    if made is None:
        raise Conflict("this invitation has been used")
    return get(conn, rid)


def get(conn: Conn, review_id: str) -> Review:
    row = conn.execute("SELECT * FROM reviews WHERE id = ?", (review_id,)).fetchone()
    if row is None:
        raise NotFound(f"no review {review_id}")
    return _review(row)


def reply(conn: Conn, review_id: str, text: str, by: str, now: datetime) -> Review:
    conn.execute(
        "UPDATE reviews SET reply = ?, replied_at = ?, replied_by = ? WHERE id = ?",
        (text.strip(), ledger.iso(now), by, review_id),
    )
    return get(conn, review_id)


def moderate(
    conn: Conn, review_id: str, *, hidden: bool, reason: str, by: str, now: datetime
) -> Review:
    get(conn, review_id)
    conn.execute(
        "UPDATE reviews SET hidden = ?, moderation_reason = ?, moderated_at = ?,"
        " moderated_by = ? WHERE id = ?",
        (int(hidden), reason.strip(), ledger.iso(now), by, review_id),
    )
    return get(conn, review_id)


def list_reviews(
    conn: Conn, store: str, *, with_hidden: bool, limit: int, offset: int
) -> list[Review]:
    hidden = "" if with_hidden else " AND hidden = 0"
    return [
        _review(row)
        for row in conn.execute(
            f"SELECT * FROM reviews WHERE store = ?{hidden}"  # noqa: S608
            " ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
            (store, limit, offset),
        )
    ]


def rating(conn: Conn, store: str) -> Rating:
    """Average, count and distribution of a store's visible reviews."""
    distribution = dict.fromkeys(range(1, 6), 0)
    for row in conn.execute(
        "SELECT stars, COUNT(*) AS n FROM reviews WHERE store = ? AND hidden = 0 GROUP BY stars",
        (store,),
    ):
        distribution[int(row["stars"])] = int(row["n"])
    count = sum(distribution.values())
    total = sum(stars * n for stars, n in distribution.items())
    return Rating(store, count, round(total / count, 2) if count else None, distribution)
