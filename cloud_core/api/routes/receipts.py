"""Receipt QR scans: a shopper's fiscal receipt becomes a purchase with cashback, once
(``receipt_scans``; docs/core.md "Receipt QR"). From the shopper's own wallet (``/me``) or
from a kiosk or the office for a customer."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from cloud_core import customers as customer_store
from cloud_core import receipt_scans
from cloud_core.api.auth import ApiContext
from cloud_core.api.deps import ERRORS, AdminOrKiosk, Ctx, now
from cloud_core.api.routes.me import Me
from cloud_core.api.till import expire_holds, keep_notices

router = APIRouter(tags=["receipts"], responses=ERRORS)

FNS_EXAMPLE = "t=20261128T1403&s=40.00&fn=9282000100072197&i=64318&fp=2918241905&n=1"


class ReceiptScanIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"qr": FNS_EXAMPLE}]})
    qr: str = Field(
        min_length=1,
        max_length=1024,
        description="The text of the receipt's QR code, as scanned (formats: docs/core.md).",
    )


class ReceiptScanOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "format": "ru-fns",
                    "store": "pizzeria-l2",
                    "receipt": "ru-fns:9282000100072197:64318",
                    "issued_at": "2026-11-28T14:03:00",
                    "amount_cents": 4000,
                    "cashback_points": 400,
                    "cashback_pocket": "pizzeria",
                    "prize_points": 0,
                }
            ]
        }
    )
    format: str = Field(description="The parser that read it: `ru-fns`, `at-rksv`.")
    store: str = Field(description="The store whose fiscal register printed it.")
    receipt: str = Field(description="The receipt's fiscal key: format, register, number.")
    issued_at: datetime = Field(description="As printed on the receipt (the mall's time).")
    amount_cents: int = Field(description="The receipt's total.")
    cashback_points: int = Field(description="Points credited by the store's cashback rule.")
    cashback_pocket: str | None = Field(description="Where they went (none: no cashback).")
    prize_points: int = Field(description="The weekly receipt game's prize, if this won it.")


SCAN_ERRORS: dict[int | str, dict[str, object]] = {
    404: {"model": ERRORS[404]["model"], "description": "No store has the receipt's register."},
    409: {"model": ERRORS[409]["model"], "description": "The receipt was already scanned."},
    422: {
        "model": ERRORS[400]["model"],
        "description": "Not a receipt QR code this mall reads, a return, too old or future.",
    },
}


def _scan(ctx: ApiContext, customer: str, qr: str) -> ReceiptScanOut:
    moment = now(ctx)
    expire_holds(ctx, moment)
    with ctx.store.transaction() as conn:
        customer_store.require_customer(conn, customer)
        done, changes = receipt_scans.scan(conn, ctx.config, customer=customer, qr=qr, now=moment)
        keep_notices(ctx, conn, changes, moment)
    return ReceiptScanOut(
        format=done.receipt.format,
        store=done.store,
        receipt=done.receipt.key,
        issued_at=done.receipt.issued_at,
        amount_cents=done.receipt.total_cents,
        cashback_points=done.purchase.cashback_points,
        cashback_pocket=done.purchase.cashback_pocket,
        prize_points=done.prize_points,
    )


@router.post(
    "/me/receipts",
    summary="Scan your receipt's QR code: cashback for a purchase, once",
    status_code=status.HTTP_201_CREATED,
    responses=SCAN_ERRORS,
)
def scan_my_receipt(body: ReceiptScanIn, ctx: Ctx, me: Me) -> ReceiptScanOut:
    """The signed-in shopper scans a tenant's fiscal receipt: the store is found from the
    receipt's register, the store's cashback rule credits it, and the same receipt never
    credits twice, whoever scans it."""
    return _scan(ctx, me.customer, body.qr)


@router.post(
    "/customers/{customer}/receipts",
    summary="Scan a customer's receipt QR code (kiosk, office)",
    status_code=status.HTTP_201_CREATED,
    responses=SCAN_ERRORS,
)
def scan_receipt(
    customer: str, body: ReceiptScanIn, ctx: Ctx, _caller: AdminOrKiosk
) -> ReceiptScanOut:
    """As `POST /me/receipts`, for the customer a kiosk identified."""
    return _scan(ctx, customer, body.qr)
