"""Request and response bodies of the terminal and settlement endpoints (a till's quote,
holds, purchases and refunds; the mutual-settlement report), each with an OpenAPI example.
Apart from ``models.py`` to keep each to one concern."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, StringConstraints, model_validator

from cloud_core.api.models import _example

CustomerId = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$"),
    Field(description="The customer id `POST /terminal/identify` answered."),
]
Receipt = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$"),
    Field(description="The receipt (cheque) number of the till's sale, unique per store."),
]
Cents = Annotated[int, Field(gt=0, le=100_000_000, description="Money in cents.")]
Points = Annotated[int, Field(ge=0, le=100_000_000, description="Points (1 point = 1 cent).")]

_CUSTOMER = "c3f9a1b2c4d5e6f708192a3b"
_HOLD = "h5d0c1e2f3a4b5c6d7e8f9a0b"
_TS = "2026-11-23T10:15:00Z"


class IdentifyIn(BaseModel):
    model_config = _example(card_token=f"mc1.{_CUSTOMER}.1795428000.2xQ0bq7Yl1sV8kq3JmQv9A")
    card_token: str | None = Field(
        default=None,
        max_length=200,
        description="The token of the shopper's card QR (signed, short-lived).",
    )
    phone: str | None = Field(
        default=None,
        min_length=3,
        max_length=32,
        description="Or the phone number the shopper tells (lookups are rate-limited per key).",
    )

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.card_token is None) == (self.phone is None):
            raise ValueError("give exactly one of card_token and phone")
        return self


class TerminalPocket(BaseModel):
    model_config = _example(pocket="mall", available=500, next_expiry=None)
    pocket: str = Field(description="`mall` (coalition) or this store's business.")
    available: int = Field(description="Spendable points now.")
    next_expiry: datetime | None = Field(description="When the soonest of them expire.")


class IdentifyOut(BaseModel):
    model_config = _example(
        customer=_CUSTOMER,
        pockets=[{"pocket": "mall", "available": 500, "next_expiry": None}],
    )
    customer: str = Field(description="The shopper's id: give it to quote, holds, purchases.")
    pockets: list[TerminalPocket] = Field(
        description="The pockets spendable at this till: the coalition and this business's."
    )


class QuoteIn(BaseModel):
    model_config = _example(customer=_CUSTOMER, receipt="R-1001", order_cents=4000)
    customer: CustomerId
    receipt: Receipt
    order_cents: Cents


class QuotePocket(BaseModel):
    model_config = _example(pocket="mall", available=500, usable=600)
    pocket: str = Field(description="`mall` or the business.")
    available: int = Field(description="Spendable points in the pocket.")
    usable: int = Field(description="Of them, usable on this receipt now (cap and order).")


class QuoteOut(BaseModel):
    model_config = _example(
        customer=_CUSTOMER,
        receipt="R-1001",
        order_cents=4000,
        cap_pct=15.0,
        cap_points=600,
        cap_left=600,
        used_points=0,
        pockets=[
            {"pocket": "mall", "available": 500, "usable": 500},
            {"pocket": "pizzeria", "available": 0, "usable": 0},
        ],
        max_points=500,
        to_pay_cents=3500,
    )
    customer: str = Field(description="The shopper.")
    receipt: str = Field(description="The receipt.")
    order_cents: int = Field(description="The receipt's total (the largest sum given for it).")
    cap_pct: float = Field(description="Share of the order payable with coalition points.")
    cap_points: int = Field(description="The receipt's coalition cap in points.")
    cap_left: int = Field(description="Of the cap, not yet held or spent on this receipt.")
    used_points: int = Field(description="Points already held or spent on this receipt.")
    pockets: list[QuotePocket] = Field(description="Per pocket: available and usable.")
    max_points: int = Field(description="Most points usable now, all pockets.")
    to_pay_cents: int = Field(description="Left to pay in money when every usable point is used.")


class HoldIn(BaseModel):
    model_config = _example(
        customer=_CUSTOMER, receipt="R-1001", order_cents=4000, store_points=0, coalition_points=600
    )
    customer: CustomerId
    receipt: Receipt
    order_cents: Cents
    store_points: Points = 0
    coalition_points: Points = 0
    gift_cents: Points = Field(
        default=0, description="Prepaid gift-certificate money (cents) valid at this shop."
    )


class HoldOut(BaseModel):
    model_config = _example(
        id=_HOLD,
        customer=_CUSTOMER,
        store="pizzeria-l2",
        receipt="R-1001",
        status="held",
        points=600,
        store_points=0,
        coalition_points=600,
        gift_cents=0,
        created_at=_TS,
        expires_at="2026-11-23T10:20:00Z",
        seller="maria",
        closed_by=None,
    )
    id: str = Field(description="The hold: commit or release it before `expires_at`.")
    customer: str = Field(description="The shopper.")
    store: str = Field(description="Where.")
    receipt: str = Field(description="The receipt.")
    status: Literal["held", "committed", "released", "expired", "refunded"] = Field(
        description="`held` until committed, released, expired (points returned) or refunded."
    )
    points: int = Field(description="Points held, all pockets.")
    store_points: int = Field(description="From the business's own pocket.")
    coalition_points: int = Field(description="From the coalition pocket.")
    gift_cents: int = Field(description="From gift certificates (money, cents).")
    created_at: datetime = Field(description="When reserved.")
    expires_at: datetime = Field(description="An uncommitted hold returns its points then.")
    seller: str = Field(description="The seller who reserved it.")
    closed_by: str | None = Field(description="The seller who committed or released it.")


class PurchaseIn(BaseModel):
    model_config = _example(customer=_CUSTOMER, receipt="R-1001", amount_cents=3400)
    customer: CustomerId
    receipt: Receipt
    amount_cents: Cents = Field(description="What the shopper paid in money (cents).")


class PurchaseOut(BaseModel):
    model_config = _example(
        id="p0a1b2c3d4e5f60718293a4b",
        customer=_CUSTOMER,
        store="pizzeria-l2",
        receipt="R-1001",
        amount_cents=3400,
        cashback_points=340,
        cashback_pocket="pizzeria",
        status="registered",
        ts=_TS,
        seller="maria",
    )
    id: str = Field(description="The purchase.")
    customer: str = Field(description="The shopper.")
    store: str = Field(description="Where.")
    receipt: str = Field(description="The receipt.")
    amount_cents: int = Field(description="The sum.")
    cashback_points: int = Field(description="Points credited back by the store's rule.")
    cashback_pocket: str | None = Field(description="Where they went (None: no cashback).")
    status: Literal["registered", "refunded"] = Field(description="Refunded: reversed.")
    ts: datetime = Field(description="When registered.")
    seller: str = Field(description="The seller who registered it.")
    free_parking_minutes: int = Field(
        default=0,
        description="Free parking minutes this purchase added to the shopper's open session "
        "(`parking.purchase_validations`; 0: none, or no car inside).",
    )


class RefundIn(BaseModel):
    model_config = _example(receipt="R-1001")
    receipt: Receipt


class RefundOut(BaseModel):
    model_config = _example(
        receipt="R-1001",
        points_returned=600,
        cashback_reversed=340,
        holds=[_HOLD],
        purchase=None,
    )
    receipt: str = Field(description="The receipt refunded.")
    points_returned: int = Field(description="Redeemed points back to the shopper.")
    cashback_reversed: int = Field(description="Cashback points taken back.")
    holds: list[str] = Field(description="The holds refunded or released.")
    purchase: PurchaseOut | None = Field(description="The purchase, now `refunded` (if any).")


class SettlementLine(BaseModel):
    model_config = _example(
        payer="mall", payee="pizzeria", amount_cents=600, commission_cents=0, entries=1
    )
    payer: str = Field(description="Who funded the points (`mall` or a business).")
    payee: str = Field(description="Where they were spent.")
    amount_cents: int = Field(description="The payer owes the payee this.")
    commission_cents: int = Field(description="And owes the mall this commission.")
    entries: int = Field(description="Journal entries summed.")


class SettlementPartner(BaseModel):
    model_config = _example(
        partner="pizzeria", receivable_cents=600, payable_cents=0, net_cents=600
    )
    partner: str = Field(description="`mall` or a business.")
    receivable_cents: int = Field(description="Owed to it (the mall: also commissions).")
    payable_cents: int = Field(description="It owes (its points spent elsewhere + commission).")
    net_cents: int = Field(description="Receivable − payable: positive, it is owed money.")


class SettlementReportOut(BaseModel):
    model_config = _example(
        period="2026-11",
        closed=False,
        closed_at=None,
        lines=[
            {
                "payer": "mall",
                "payee": "pizzeria",
                "amount_cents": 600,
                "commission_cents": 0,
                "entries": 1,
            }
        ],
        partners=[
            {"partner": "mall", "receivable_cents": 0, "payable_cents": 600, "net_cents": -600},
            {"partner": "pizzeria", "receivable_cents": 600, "payable_cents": 0, "net_cents": 600},
        ],
        total_cents=600,
        commission_cents=0,
    )
    period: str = Field(description="The month, `YYYY-MM` (the mall's time zone).")
    closed: bool = Field(description="Closed periods are frozen: this report never changes.")
    closed_at: str | None = Field(description="When it was closed.")
    lines: list[SettlementLine] = Field(description="Who owes whom.")
    partners: list[SettlementPartner] = Field(description="Per partner: the balance.")
    total_cents: int = Field(description="Sum of `amount_cents` (equals the journal).")
    commission_cents: int = Field(description="Sum of the mall's commissions.")


class CertificateIn(BaseModel):
    model_config = _example(points=500)
    points: int = Field(gt=0, le=1_000_000, description="Points the certificate is worth.")


class CertificateOut(BaseModel):
    model_config = _example(
        code="BC-3F9A-0C1D-77E2-A4B5",
        business="pizzeria",
        store="pizzeria-l2",
        seller="maria",
        points=500,
        pocket="pizzeria",
        issued_at=_TS,
        expires_at="2027-02-21T10:15:00Z",
        scanned=False,
        scanned_at=None,
    )
    code: str = Field(description="Print it (and its QR); the shopper scans it once.")
    business: str = Field(description="The issuing business.")
    store: str = Field(description="The issuing store.")
    seller: str = Field(description="The seller who issued it.")
    points: int = Field(description="Points it is worth.")
    pocket: str = Field(description="Where its points go: the business's pocket or `mall`.")
    issued_at: datetime = Field(description="When issued.")
    expires_at: datetime = Field(description="Scan it before this.")
    scanned: bool = Field(description="Whether a shopper has scanned it.")
    scanned_at: datetime | None = Field(description="When.")


class ScanIn(BaseModel):
    model_config = _example(code="BC-3F9A-0C1D-77E2-A4B5")
    code: str = Field(min_length=8, max_length=40, description="The certificate's code.")


class SellerTallyOut(BaseModel):
    model_config = _example(
        seller="maria",
        store="pizzeria-l2",
        issued=12,
        issued_points=6000,
        scanned=9,
        scanned_points=4500,
    )
    seller: str = Field(description="The seller.")
    store: str = Field(description="The store.")
    issued: int = Field(description="Certificates issued.")
    issued_points: int = Field(description="Their points.")
    scanned: int = Field(description="Of them, scanned by shoppers.")
    scanned_points: int = Field(description="Their points.")


class GiftSaleIn(BaseModel):
    model_config = _example(amount_cents=5000, businesses=["pizzeria", "bean-bar"], valid_days=365)
    amount_cents: Cents = Field(description="The certificate's value in cents.")
    businesses: list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]] = (
        Field(default_factory=list, max_length=100, description="Valid at these (empty: all).")
    )
    valid_days: int = Field(default=365, ge=1, le=3650, description="Valid this long.")


class GiftOut(BaseModel):
    model_config = _example(
        code="GC-1A2B-3C4D-5E6F-7A8B",
        amount_cents=5000,
        businesses=["bean-bar", "pizzeria"],
        sold_at=_TS,
        expires_at="2027-11-23T10:15:00Z",
        activated=False,
    )
    code: str = Field(description="The certificate's code (print it with its QR).")
    amount_cents: int = Field(description="Its value.")
    businesses: list[str] = Field(description="Where it is valid (empty: every shop).")
    sold_at: datetime = Field(description="When sold.")
    expires_at: datetime = Field(description="Activate and spend it before this.")
    activated: bool = Field(description="Whether a shopper has activated it.")


class GoodsIn(BaseModel):
    model_config = _example(customer=_CUSTOMER, goods="bean-bar-coffee", count=5)
    customer: CustomerId
    goods: str = Field(max_length=64, description="The goods account (`spending.goods` id).")
    count: int = Field(gt=0, le=10_000, description="Items.")


class GoodsOut(BaseModel):
    model_config = _example(customer=_CUSTOMER, goods="bean-bar-coffee", count=5, left=9)
    customer: str = Field(description="The shopper.")
    goods: str = Field(description="The goods account.")
    count: int = Field(description="Items sold or taken now.")
    left: int = Field(description="Items the shopper has left in it.")
