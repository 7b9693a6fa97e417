"""``credit``: the one way a rule grants points — the ledger entry and its inbox notice.

Every rule that pays (a visit, the stores game, a campaign bonus, a parking entry bonus)
calls ``credit``; it grants through the ledger (idempotent by ``idem_key``; with a
``DailyLimit``, at most so many times per customer, rule and local day) and, when points
were granted, makes the customer's ``CreditNotice``. Nothing else builds credit notices,
except ``change_notice`` for ledger changes made outside the rules (expiry).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cloud_core import ledger
from cloud_core.rules.common import Notice
from cloud_core.store import Conn
from mallnet.ids import new_event_id
from mallnet.wire.payloads import CreditNotice


@dataclass(frozen=True)
class DailyLimit:
    """At most ``max_per_day`` grants per customer of ``rule`` on the mall's ``day``."""

    rule: str
    day: str
    max_per_day: int = 1


@dataclass(frozen=True)
class Credit:
    """What a ``credit`` did: the ledger's answer and the notice to publish (if granted)."""

    result: ledger.GrantResult
    notice: Notice | None

    @property
    def granted(self) -> bool:
        return self.result.change is not None


def change_notice(change: ledger.Change, text: str) -> CreditNotice:
    """The inbox notice of one ledger change."""
    return CreditNotice(
        id=new_event_id(),
        ts=change.ts,
        points=change.delta,
        pocket=change.pocket,
        reason=change.reason,
        text=text[:300],
    )


def credit(
    conn: Conn,
    *,
    customer: str,
    pocket: str,
    points: int,
    reason: ledger.Reason,
    idem_key: str,
    now: datetime,
    text: str,
    expires_at: datetime | None = None,
    limit: DailyLimit | None = None,
) -> Credit:
    """Grant ``points`` (in the caller's transaction) and make the notice that says so."""
    if limit is None:
        result = ledger.grant(
            conn,
            customer=customer,
            pocket=pocket,
            points=points,
            reason=reason,
            idem_key=idem_key,
            now=now,
            expires_at=expires_at,
            text=text,
        )
    else:
        result = ledger.grant_limited(
            conn,
            customer=customer,
            pocket=pocket,
            points=points,
            reason=reason,
            idem_key=idem_key,
            now=now,
            rule=limit.rule,
            day=limit.day,
            max_per_day=limit.max_per_day,
            expires_at=expires_at,
            text=text,
        )
    notice = None if result.change is None else Notice(customer, change_notice(result.change, text))
    return Credit(result, notice)
