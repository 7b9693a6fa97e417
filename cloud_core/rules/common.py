"""What every rule module shares: the inbox notice a decision makes, the mall's day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from mallnet.wire.payloads import CreditNotice, ExpiringNotice, MessageNotice, OfferNotice


@dataclass(frozen=True)
class Notice:
    """An inbox message for one customer, published after the commit."""

    customer: str
    message: CreditNotice | OfferNotice | ExpiringNotice | MessageNotice


def local_day(ts: datetime, tz: ZoneInfo) -> str:
    """The mall's calendar day of a moment (``2026-11-23``)."""
    return ts.astimezone(tz).date().isoformat()
