"""Kiosk check-ins: what one check-in names, whom it is for, and what it earns.

A ``CheckinEvent``'s ``token`` (docs/kiosk.md, "Check-in tokens") is one of

* ``customer:<id>`` — a shopper identified at the kiosk (phone looked up, or the app's QR);
* ``phone:<E.164>`` — a number typed while the core was unreachable; the core resolves it
  (the number is never logged nor stored with the check-in);
* ``receipt:<id>:<text>`` — a receipt QR for shopper ``<id>``: the core credits nothing
  for receipts yet, so it is kept (``kiosk_checkins.token``, outcome ``unsupported``) for
  when it does.

``apply_checkin`` runs in the ingest transaction that also marks the event processed
(exactly once by event id), in this order:

1. the token must parse (``bad_token``) and name a known customer (``unknown_customer``);
2. a kiosk acts only for the shopper who just identified: it may check in at most
   ``checkins.max_customers`` different customers within ``checkins.window_s`` either side
   of the check-in (``kiosk_limit`` beyond that; the customers it already served still
   check in), so a compromised kiosk cannot credit the whole customer list;
3. where: ``store`` must be the kiosk's own store or one of its ``stores`` (``wrong_store``
   otherwise). A store check-in is a pay-per-visit visit of that store through
   ``visit_credit.credit_visit`` — the same cooldown (whichever node or kiosk saw the last
   visit) and the same daily cap as a beacon visit, no dwell. A check-in naming no store
   is a *kiosk visit*: ``checkins.kiosk_visit_points`` coalition points, at most
   ``checkins.kiosk_visits_per_day`` times per customer per local day (``limit`` beyond).

Every check-in is recorded in ``kiosk_checkins`` with its outcome (erased with the
customer; the rows are ``cloud_core/kiosk_checkins.py``'s). ``parse_token``, ``target`` and
``over_limit`` are pure functions of values.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

from cloud_core import kiosk_checkins, ledger
from cloud_core.config import CheckinRules, GameRules, KioskConfig, StoreConfig, VisitRules
from cloud_core.offers import Campaign
from cloud_core.rules.common import Notice, local_day
from cloud_core.rules.credit import DailyLimit, credit
from cloud_core.rules.visit_credit import credit_visit
from cloud_core.store import Conn
from mallnet.wire.payloads import CheckinEvent

Outcome = Literal[
    "bad_token",
    "unknown_customer",
    "unsupported",
    "kiosk_limit",
    "wrong_store",
    "credited",
    "cooldown",
    "capped",
    "limit",
    "no_points",
]

_CUSTOMER_MAX = 64


@dataclass(frozen=True)
class Token:
    """A parsed check-in token: ``value`` is the customer id or the E.164 number."""

    kind: Literal["customer", "phone", "receipt"]
    value: str


@dataclass(frozen=True)
class Where:
    """Where a check-in counts: a store's visit, the kiosk itself, or nowhere."""

    kind: Literal["store", "kiosk", "refused"]
    store: StoreConfig | None = None


@dataclass(frozen=True)
class CheckinResult:
    outcome: Outcome
    customer: str | None = None
    points: int = 0
    notices: tuple[Notice, ...] = field(default=())


def _is_customer_id(text: str) -> bool:
    return 0 < len(text) <= _CUSTOMER_MAX and all(
        c.isascii() and (c.isalnum() or c in "_-") for c in text
    )


def parse_token(token: str) -> Token | None:
    """What a check-in token names, or None if it is none of the documented forms."""
    kind, _, rest = token.partition(":")
    if kind == "customer" and _is_customer_id(rest):
        return Token("customer", rest)
    if kind == "phone" and rest.startswith("+") and rest[1:].isdigit() and 8 <= len(rest) <= 16:
        return Token("phone", rest)
    if kind == "receipt":
        customer, sep, text = rest.partition(":")
        if sep and text and _is_customer_id(customer):
            return Token("receipt", customer)
    return None


def target(kiosk: KioskConfig, store: str | None, stores: Mapping[str, StoreConfig]) -> Where:
    """Where a check-in from ``kiosk`` naming ``store`` counts."""
    if store is None:
        return Where("kiosk")
    if store in (kiosk.store, *kiosk.stores) and store in stores:
        return Where("store", stores[store])
    return Where("refused")


def over_limit(customer: str, others: Collection[str], rules: CheckinRules) -> bool:
    """True if a kiosk that checked in ``others`` (distinct customers, within the window)
    may not check in ``customer`` as well."""
    return customer not in others and len(others) >= rules.max_customers


def apply_checkin(
    conn: Conn,
    *,
    kiosk: KioskConfig,
    event: CheckinEvent,
    stores: Mapping[str, StoreConfig],
    visit_rules: Mapping[str, VisitRules],
    rules: CheckinRules,
    game: GameRules,
    tz: ZoneInfo,
    campaigns: Sequence[Campaign] | None = None,
) -> CheckinResult:
    """Apply one check-in (not seen before) and record it; see the module's docstring."""
    token = parse_token(event.token)
    result = _decide(
        conn,
        kiosk=kiosk,
        event=event,
        token=token,
        stores=stores,
        visit_rules=visit_rules,
        rules=rules,
        game=game,
        tz=tz,
        campaigns=campaigns,
    )
    kiosk_checkins.record(
        conn,
        event_id=event.id,
        kiosk=kiosk.id,
        customer=result.customer,
        store=event.store,
        ts=event.ts,
        outcome=result.outcome,
        token=event.token if result.outcome == "unsupported" else None,
    )
    return result


def _decide(
    conn: Conn,
    *,
    kiosk: KioskConfig,
    event: CheckinEvent,
    token: Token | None,
    stores: Mapping[str, StoreConfig],
    visit_rules: Mapping[str, VisitRules],
    rules: CheckinRules,
    game: GameRules,
    tz: ZoneInfo,
    campaigns: Sequence[Campaign] | None,
) -> CheckinResult:
    if token is None:
        return CheckinResult("bad_token")
    customer = kiosk_checkins.customer_named(conn, token.kind, token.value)
    if customer is None:
        return CheckinResult("unknown_customer")
    epoch = event.ts.timestamp()
    if over_limit(
        customer, kiosk_checkins.customers_nearby(conn, kiosk.id, epoch, rules.window_s), rules
    ):
        return CheckinResult("kiosk_limit", customer)
    if token.kind == "receipt":
        return CheckinResult("unsupported", customer)
    where = target(kiosk, event.store, stores)
    if where.kind == "refused":
        return CheckinResult("wrong_store", customer)
    if where.store is not None:
        visit = credit_visit(
            conn,
            customer=customer,
            store=where.store,
            rules=visit_rules[where.store.id],
            game=game,
            tz=tz,
            node=kiosk.id,
            event_id=event.id,
            ts=event.ts,
            campaigns=campaigns,
        )
        outcome: Outcome = "cooldown" if visit.outcome == "cooldown" else "credited"
        if visit.outcome == "capped":
            outcome = "capped"
        return CheckinResult(outcome, customer, visit.points, visit.notices)
    if rules.kiosk_visit_points == 0:
        return CheckinResult("no_points", customer)
    day = local_day(event.ts, tz)
    text = f"+{rules.kiosk_visit_points} points for checking in at the kiosk"
    paid = credit(
        conn,
        customer=customer,
        pocket=ledger.COALITION,
        points=rules.kiosk_visit_points,
        reason="checkin",
        idem_key=f"checkin:{event.id}",
        now=event.ts,
        limit=DailyLimit("kiosk-visit", day, max_per_day=rules.kiosk_visits_per_day),
        text=text,
    )
    if paid.notice is None:
        return CheckinResult("limit", customer)
    return CheckinResult("credited", customer, paid.result.points, (paid.notice,))
