"""Fiscal receipts' QR codes: one pluggable parser per published national format.

A shopper photographs the QR code printed on a tenant's receipt; ``parse_receipt`` turns
its text into a ``FiscalReceipt`` — which register printed it (``register``: the key the
mall maps to a store in ``stores[].fiscal_registers``), its number, time and sum, and a
``key`` unique to that receipt in its country, so the same receipt never credits twice —
or raises ``ReceiptFormatError`` saying why not. The parsers take text and return data:
no network, no database.

Implemented (each module documents its published source):

* ``ru_fns`` — Russia, the FNS receipt QR (``t=…&s=…&fn=…&i=…&fp=…&n=…``);
* ``at_rksv`` — Austria, the RKSV machine-readable code (``_R1-AT…_…``).

A new country is a module with ``FORMAT`` (its name), ``matches(text)`` and
``parse(text)``, listed in ``PARSERS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType

from cloud_core.errors import InvalidInput

MAX_QR_TEXT = 1024  # longer texts are refused unread


class ReceiptFormatError(InvalidInput):
    """A receipt QR code that no parser accepts, or that its parser finds malformed."""


@dataclass(frozen=True)
class FiscalReceipt:
    format: str  # the parser that read it, e.g. "ru-fns"
    register: str  # the fiscal register / drive / cash box that printed it
    number: str  # the receipt's number on that register
    issued_at: datetime  # as printed (local time, naive, or aware where the format says)
    total_cents: int  # the receipt's total in the currency's minor unit
    sale: bool  # False for returns and corrections: they never earn points

    @property
    def key(self) -> str:
        """Unique per receipt in its format: what "the same receipt" means."""
        return f"{self.format}:{self.register}:{self.number}"


def _parsers() -> tuple[ModuleType, ...]:
    from cloud_core.fiscal import at_rksv, ru_fns

    return (ru_fns, at_rksv)


def formats() -> list[str]:
    return [str(module.FORMAT) for module in _parsers()]


def parse_receipt(text: str) -> FiscalReceipt:
    """The receipt a QR code's text describes; ``ReceiptFormatError`` if none."""
    if len(text) > MAX_QR_TEXT:
        raise ReceiptFormatError(f"a receipt QR code is at most {MAX_QR_TEXT} characters")
    text = text.strip()
    for module in _parsers():
        matches: Callable[[str], bool] = module.matches
        if matches(text):
            parse: Callable[[str], FiscalReceipt] = module.parse
            return parse(text)
    raise ReceiptFormatError(
        f"not a fiscal receipt QR code this mall reads (formats: {', '.join(formats())})"
    )
