"""Referrals: a new shopper joins with a shopper's code; the referrer is rewarded once,
on the new shopper's first qualifying visit or purchase.

``join`` (the API's transaction) records a referral after refusing a code nobody has
(``NotFound``), the shopper's own code, a shopper who already joined with one, and an
existing shopper — registered more than ``referrals.new_within_s`` ago, or with any visit,
purchase or credit already (``Conflict``). The reward's terms are fixed then.

``reward_first_visit`` is the qualifying trigger's seam: ``visit_credit.credit_visit``
calls it for every visit it records (beacon, kiosk check-in or store QR; a visit stopped
by the cooldown is no visit), and a till's purchase (``POST /terminal/purchases``) calls
it the same way. The first call for a pending referral moves it to ``rewarded`` (exactly
once, ``referrals.mark_rewarded``) and credits the referrer's coalition pocket (and the
new shopper's welcome points, if any) through ``credit``, each with its own idempotency
key, with the referrer's inbox notice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cloud_core import ledger, referrals
from cloud_core.errors import Conflict, NotFound
from cloud_core.rules.common import Notice
from cloud_core.rules.credit import credit
from cloud_core.schemes_config import ReferralSettings
from cloud_core.store import Conn


def join(conn: Conn, *, referee: str, code: str, now: datetime, settings: ReferralSettings) -> str:
    """Record that the new shopper ``referee`` joined with ``code``; the referrer's id."""
    referrer = referrals.referrer_of_code(conn, code)
    if referrer is None:
        raise NotFound("no shopper has this referral code")
    facts = referrals.newcomer(conn, referee)
    if facts is None:
        raise NotFound(f"no customer {referee!r}")
    if referrer == referee:
        raise Conflict("a shopper cannot join with their own referral code")
    if facts.referred:
        raise Conflict("this shopper has already joined with a referral code")
    if facts.active or now - facts.registered_at > timedelta(seconds=settings.new_within_s):
        raise Conflict(
            "only a new shopper can join with a referral code (registered recently, no "
            "visit or credit yet)"
        )
    referrals.add_referral(
        conn,
        referee=referee,
        referrer=referrer,
        referrer_points=settings.referrer_points,
        referee_points=settings.referee_points,
        now=now,
    )
    return referrer


def reward_first_visit(
    conn: Conn, *, customer: str, trigger: str, ts: datetime
) -> tuple[Notice, ...]:
    """Pay a pending referral of ``customer`` (its first qualifying visit); see above."""
    pending = referrals.pending_of(conn, customer)
    if pending is None or not referrals.mark_rewarded(conn, customer, trigger, ts):
        return ()
    notices: list[Notice] = []
    paid = credit(
        conn,
        customer=pending.referrer,
        pocket=ledger.COALITION,
        points=pending.referrer_points,
        reason="referral",
        idem_key=f"referral:{customer}",
        now=ts,
        text=f"+{pending.referrer_points} points: a friend you invited made their first visit",
    )
    notices.extend([paid.notice] if paid.notice else [])
    if pending.referee_points > 0:
        welcome = credit(
            conn,
            customer=customer,
            pocket=ledger.COALITION,
            points=pending.referee_points,
            reason="referral",
            idem_key=f"referral-welcome:{customer}",
            now=ts,
            text=f"+{pending.referee_points} welcome points for joining with a friend's code",
        )
        notices.extend([welcome.notice] if welcome.notice else [])
    return tuple(notices)
