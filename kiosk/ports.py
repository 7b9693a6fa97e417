"""What the view model needs from the outside world, as plain data and protocols.

The composition root (``kiosk/app.py``) plugs in the real adapters
(``kiosk/link.py``: the core's HTTP API, MQTT and the on-disk queue); tests
plug in their own or the real ones against a real core and broker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from kiosk.errors import KioskError

T = TypeVar("T")


class CoreUnreachable(KioskError):
    """The core's API did not answer (network, timeout, 5xx): try later, queue what can wait."""


class CoreRefused(KioskError):
    """The core answered with an error that trying again will not fix (a 4xx)."""


@dataclass(frozen=True)
class Pocket:
    pocket: str  # "mall" (the coalition pocket) or a business id
    balance: int
    available: int
    next_expiry: datetime | None


@dataclass(frozen=True)
class Credit:
    ts: datetime
    pocket: str
    points: int
    text: str


@dataclass(frozen=True)
class Expiring:
    """Points of a pocket expiring within the core's window, and the earliest date."""

    pocket: str
    points: int
    earliest: datetime


@dataclass(frozen=True)
class WalletDetails:
    """The core's wallet summary for a self-service screen."""

    recent: tuple[Credit, ...]
    expiring: tuple[Expiring, ...]
    expiring_days: int


@dataclass(frozen=True)
class Wallet:
    customer: str
    pockets: tuple[Pocket, ...]
    details: WalletDetails | None = None  # None: the core does not give a kiosk them


@dataclass(frozen=True)
class Offer:
    campaign: str
    business: str
    title: str
    text: str
    valid_until: datetime


@dataclass(frozen=True)
class Submitted:
    """A check-in taken by the sink: its source-made id, and whether the link was up."""

    id: str
    online: bool


class CoreApi(Protocol):
    """The calls a kiosk key may make (docs/core.md, HTTP API)."""

    def find_customer(self, e164: str) -> str | None:
        """The customer id for a phone number; None if nobody has it."""
        ...

    def wallet(self, customer: str) -> Wallet:
        """Balances per pocket, with recent credits and points expiring soon if the core
        gives them to a kiosk."""
        ...

    def offers(self) -> tuple[Offer, ...]:
        """The offers active now (also pushed over MQTT)."""
        ...


class CheckinSink(Protocol):
    """Takes check-ins: stores them durably, then sends them when it can."""

    @property
    def online(self) -> bool: ...

    @property
    def waiting(self) -> int:
        """Check-ins saved and not yet sent."""
        ...

    def submit(self, token: str, store: str | None) -> Submitted: ...


class IoRunner(Protocol):
    """Runs ``work`` off the UI thread and hands its result (or exception) to ``done``
    on the UI thread. Tests run both at once."""

    def __call__(self, work: Callable[[], T], done: Callable[[T | Exception], None]) -> None: ...


def run_inline(work: Callable[[], T], done: Callable[[T | Exception], None]) -> None:
    """An ``IoRunner`` that runs everything now, on the caller's thread."""
    try:
        result: T | Exception = work()
    except Exception as exc:
        result = exc
    done(result)
