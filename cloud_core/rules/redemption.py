"""Redemption and cashback at a till: pure decisions on numbers (no database).

One point pays one cent. At a partner's till a shopper may pay with the partner's own
pocket (spendable only there) and with coalition points, the latter capped per receipt at
the partner's share (``coalition_cap_pct`` of the receipt's total, over every hold on that
receipt: splitting an order into several calls cannot beat it). Points never pay more than
the order.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from cloud_core.errors import CapExceeded, InsufficientPoints, InvalidInput


def share(amount: int, pct: float, *, rounding: str = ROUND_FLOOR) -> int:
    """``pct`` percent of ``amount`` (integers), rounded down unless told otherwise."""
    exact = Decimal(amount) * Decimal(str(pct)) / Decimal(100)
    return int(exact.quantize(Decimal(1), rounding=rounding))


def commission(amount_cents: int, pct: float) -> int:
    """The mall's commission on ``amount_cents`` (to the cent, half up)."""
    return share(amount_cents, pct, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Quote:
    """What a shopper can pay with points on one receipt now."""

    order_cents: int
    cap_pct: float
    cap_points: int  # the receipt's coalition cap in all
    cap_left: int  # of it, not yet held or spent on this receipt
    used_points: int  # points already held or spent on this receipt (both pockets)
    store_available: int
    coalition_available: int
    store_usable: int
    coalition_usable: int
    gift_available: int = 0  # prepaid gift money (cents) valid at this business
    gift_usable: int = 0

    @property
    def max_points(self) -> int:
        return self.store_usable + self.coalition_usable + self.gift_usable

    @property
    def to_pay_cents(self) -> int:
        """What is left to pay in money if the shopper uses every usable point."""
        return self.order_cents - self.used_points - self.max_points


def quote(
    *,
    order_cents: int,
    cap_pct: float,
    store_available: int,
    coalition_available: int,
    used_points: int,
    used_coalition: int,
    gift_available: int = 0,
) -> Quote:
    """The points usable per pocket: coalition first within the cap, then the store's own
    pocket, then prepaid gift money (no cap: it is money), up to what is left of the order
    (a store-pocket-only shop has cap 0)."""
    cap_points = share(order_cents, cap_pct)
    cap_left = max(0, cap_points - used_coalition)
    open_cents = max(0, order_cents - used_points)
    coalition_usable = min(coalition_available, cap_left, open_cents)
    store_usable = min(store_available, open_cents - coalition_usable)
    gift_usable = min(gift_available, open_cents - coalition_usable - store_usable)
    return Quote(
        order_cents=order_cents,
        cap_pct=cap_pct,
        cap_points=cap_points,
        cap_left=cap_left,
        used_points=used_points,
        store_available=store_available,
        coalition_available=coalition_available,
        store_usable=store_usable,
        coalition_usable=coalition_usable,
        gift_available=gift_available,
        gift_usable=gift_usable,
    )


def check_request(
    q: Quote, *, store_points: int, coalition_points: int, gift_cents: int = 0
) -> None:
    """Refuse a redemption the quote does not allow, saying why (nothing is written)."""
    asked = store_points + coalition_points + gift_cents
    if min(store_points, coalition_points, gift_cents) < 0 or asked <= 0:
        raise InvalidInput("ask for a positive number of points")
    if coalition_points > q.cap_left:
        raise CapExceeded(
            f"coalition points on this receipt are capped at {q.cap_pct:g} % of "
            f"{q.order_cents} cents = {q.cap_points} points; {q.cap_points - q.cap_left} "
            f"already held or spent, {coalition_points} asked"
        )
    if coalition_points > q.coalition_available:
        raise InsufficientPoints(
            f"the coalition pocket holds {q.coalition_available} spendable points, "
            f"{coalition_points} asked"
        )
    if store_points > q.store_available:
        raise InsufficientPoints(
            f"the store's pocket holds {q.store_available} spendable points, {store_points} asked"
        )
    if gift_cents > q.gift_available:
        raise InsufficientPoints(
            f"gift certificates valid here hold {q.gift_available} cents, {gift_cents} asked"
        )
    if q.used_points + asked > q.order_cents:
        raise InvalidInput(
            f"points cannot pay more than the order: {q.order_cents} cents, "
            f"{q.used_points} already held or spent, {asked} asked"
        )
