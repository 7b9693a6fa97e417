"""The demo's inbox watcher: every shopper's notices, as a read-only monitor sees them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from mallnet.mqtt import Inbound
from mallnet.wire import WireError, decode
from mallnet.wire.payloads import CreditNotice, OfferNotice

log = logging.getLogger(__name__)


@dataclass
class Inbox:
    """Remembers every credit and offer that reached a shopper's inbox topic."""

    names: dict[str, str] = field(default_factory=dict)  # customer id → shopper name
    credits: list[tuple[str, CreditNotice]] = field(default_factory=list)
    offers: list[tuple[str, OfferNotice]] = field(default_factory=list)
    quiet: bool = False  # log a line per notice unless quiet
    cond: threading.Condition = field(default_factory=threading.Condition)

    def on_message(self, message: Inbound) -> None:
        try:
            decoded = decode(message.topic, message.payload)
        except WireError as exc:
            log.warning("inbox: rejected %s: %s", message.topic, exc)
            return
        who = self.names.get(decoded.topic.entity, decoded.topic.entity)
        notice = decoded.message
        with self.cond:
            if isinstance(notice, CreditNotice):
                self.credits.append((who, notice))
                if not self.quiet:
                    log.info("inbox %-5s ← %s", who, notice.text)
            elif isinstance(notice, OfferNotice):
                self.offers.append((who, notice))
                if not self.quiet:
                    log.info("inbox %-5s ← offer: %s", who, notice.offer.title)
            self.cond.notify_all()

    def count(self, reason: str) -> int:
        with self.cond:
            return sum(1 for _, notice in self.credits if notice.reason == reason)

    def visit_credits(self) -> list[tuple[str, str]]:
        """(shopper, pocket) of every visit credit so far."""
        with self.cond:
            return [(who, n.pocket) for who, n in self.credits if n.reason == "visit"]

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)
