"""Russia: the receipt QR code of the Federal Tax Service (FNS).

Every Russian cash receipt (54-FZ) carries a QR code whose text is an URL query string,
as fixed by FNS order ММВ-7-20/229@ (2017, annex: "the QR code of a cash receipt"):

    t=20190418T211655&s=3943.26&fn=9282000100072197&i=64318&fp=2918241905&n=1

``t`` date and time (``YYYYMMDDTHHMM`` with optional seconds, local time), ``s`` the total in
roubles with kopecks, ``fn`` the fiscal drive's number (16 digits), ``i`` the fiscal
document's number, ``fp`` its fiscal sign (up to 10 digits), ``n`` the kind of operation
(1 sale, 2 return of a sale, 3 expense, 4 return of an expense). A receipt is unique by
(``fn``, ``i``); only ``n=1`` is a sale.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qs

from cloud_core.fiscal import FiscalReceipt, ReceiptFormatError

FORMAT = "ru-fns"
_REQUIRED = ("t", "s", "fn", "i", "fp", "n")
_TIME = re.compile(r"^(\d{8})T(\d{4})(\d{2})?$")


_KEYS = re.compile(r"(?:^|&)(fn|fp)=")


def matches(text: str) -> bool:
    """A query string naming a fiscal drive and a fiscal sign, in any order."""
    return "://" not in text and len(set(_KEYS.findall(text))) == 2


def _one(fields: dict[str, list[str]], name: str) -> str:
    values = fields.get(name)
    if not values:
        raise ReceiptFormatError(f"FNS receipt QR: no '{name}'")
    if len(values) > 1:
        raise ReceiptFormatError(f"FNS receipt QR: '{name}' given twice")
    return values[0]


def parse(text: str) -> FiscalReceipt:
    fields = parse_qs(text, keep_blank_values=True, strict_parsing=False)
    unknown = set(fields) - set(_REQUIRED)
    if unknown:
        raise ReceiptFormatError(f"FNS receipt QR: unknown fields {sorted(unknown)}")
    stamp = _TIME.match(_one(fields, "t"))
    if stamp is None:
        raise ReceiptFormatError("FNS receipt QR: 't' is not YYYYMMDDTHHMM[SS]")
    day, hm, seconds = stamp.groups()
    try:
        issued = datetime.strptime(f"{day}{hm}{seconds or '00'}", "%Y%m%d%H%M%S")
    except ValueError:
        raise ReceiptFormatError("FNS receipt QR: 't' is not a real date and time") from None
    try:
        total = Decimal(_one(fields, "s"))
    except InvalidOperation:
        raise ReceiptFormatError("FNS receipt QR: 's' is not a sum") from None
    if not total.is_finite() or total <= 0 or total != total.quantize(Decimal("0.01")):
        raise ReceiptFormatError("FNS receipt QR: 's' must be a positive sum in kopecks")
    if total > Decimal("100000000"):
        raise ReceiptFormatError("FNS receipt QR: 's' is implausibly large")
    drive, number, sign, kind = (_one(fields, k) for k in ("fn", "i", "fp", "n"))
    if not re.fullmatch(r"\d{16}", drive):
        raise ReceiptFormatError("FNS receipt QR: 'fn' must be the 16-digit fiscal drive number")
    if not re.fullmatch(r"\d{1,10}", number) or int(number) == 0:
        raise ReceiptFormatError("FNS receipt QR: 'i' must be the fiscal document number")
    if not re.fullmatch(r"\d{1,10}", sign):
        raise ReceiptFormatError("FNS receipt QR: 'fp' must be the fiscal sign (digits)")
    if kind not in {"1", "2", "3", "4"}:
        raise ReceiptFormatError("FNS receipt QR: 'n' must be 1, 2, 3 or 4")
    return FiscalReceipt(
        format=FORMAT,
        register=drive,
        number=str(int(number)),
        issued_at=issued,
        total_cents=int(total * 100),
        sale=kind == "1",
    )
