"""Test doubles for the view model's own ports (kiosk/ports.py), not for any library."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kiosk.ports import (
    CoreUnreachable,
    Credit,
    Expiring,
    Offer,
    Pocket,
    Submitted,
    Wallet,
    WalletDetails,
)
from mallnet.ids import UuidV7Factory

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


class ManualClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeCore:
    """The core's API as the kiosk key sees it: phone book, wallets, offers."""

    def __init__(self) -> None:
        self.phones: dict[str, str] = {"+380671234567": "c0001"}
        self.wallets: dict[str, Wallet] = {
            "c0001": Wallet(
                "c0001",
                (
                    Pocket("mall", 120, 110, NOW + timedelta(days=5)),
                    Pocket("cafe", 40, 40, NOW + timedelta(days=200)),
                ),
                WalletDetails(
                    recent=(
                        Credit(NOW - timedelta(days=1), "mall", 10, "Visit: atrium"),
                        Credit(NOW - timedelta(days=3), "cafe", 40, "Receipt"),
                    ),
                    expiring=(Expiring("mall", 30, NOW + timedelta(days=5)),),
                    expiring_days=7,
                ),
            )
        }
        self.reachable = True
        self.calls: list[str] = []

    def find_customer(self, e164: str) -> str | None:
        self.calls.append(f"find {e164}")
        if not self.reachable:
            raise CoreUnreachable("connection refused")
        return self.phones.get(e164)

    def wallet(self, customer: str) -> Wallet:
        self.calls.append(f"wallet {customer}")
        if not self.reachable:
            raise CoreUnreachable("connection refused")
        return self.wallets.get(customer, Wallet(customer, ()))

    def offers(self) -> tuple[Offer, ...]:
        return ()


class FakeSink:
    def __init__(self) -> None:
        self.online = True
        self.submitted: list[tuple[str, str, str | None]] = []
        self._ids = UuidV7Factory()
        self.waiting = 0

    def submit(self, token: str, store: str | None) -> Submitted:
        event_id = self._ids()
        self.submitted.append((event_id, token, store))
        if not self.online:
            self.waiting += 1
        return Submitted(event_id, self.online)


def offer(n: int, days: int = 3) -> Offer:
    return Offer(f"camp-{n}", "cafe", f"Offer {n}", f"Text {n}", NOW + timedelta(days=days))
