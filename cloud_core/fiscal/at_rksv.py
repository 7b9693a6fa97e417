"""Austria: the machine-readable code of a receipt under the RKSV.

Every Austrian cash-register receipt carries a signed machine-readable code (usually a QR
code), fixed by the Registrierkassensicherheitsverordnung (RKSV, BGBl. II Nr. 410/2015,
annex "Detailspezifikation", § 9): thirteen fields joined by ``_``, starting with one:

    _R1-AT1_KASSE-7_Bon-0815_2026-11-28T14:03:11_12,40_3,60_0,00_0,00_0,00_<Umsatzzähler>_<Zertifikat>_<Signatur-Vorbeleg>_<Signatur>

the algorithm and signature-provider id (``R1-AT0`` … ``R1-AT2``), the cash register's id
(``Kassen-ID``), the receipt number, date and time (ISO, local), the gross amounts at the
normal, reduced-1, reduced-2, zero and special VAT rates (comma decimals, negative on a
reversal), the encrypted turnover counter (base64; ``STO``/``TRA`` base64-encoded on
reversal and training receipts), the certificate's serial, the previous receipt's
signature link and this receipt's signature. A receipt is unique by (Kassen-ID, number);
its total is the sum of the five amounts. The mall does not verify the signature (that
needs the register's certificate from FinanzOnline); it trusts the registry of its own
tenants' registers and counts each receipt once.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

from cloud_core.fiscal import FiscalReceipt, ReceiptFormatError

FORMAT = "at-rksv"
_HEAD = re.compile(r"^R1-AT[0-9]$")
_ID = re.compile(r"^[A-Za-z0-9 .,:/+#-]{1,64}$")
_AMOUNT = re.compile(r"^-?\d{1,9},\d{2}$")
_NOT_A_SALE = {"U1RP", "VFJB"}  # base64 of "STO" (reversal) and "TRA" (training)


def matches(text: str) -> bool:
    return text.startswith("_R1-AT")


def parse(text: str) -> FiscalReceipt:
    parts = text.split("_")
    if len(parts) != 14 or parts[0] != "":
        raise ReceiptFormatError("RKSV code: want 13 fields separated by '_'")
    head, register, number, stamp, *rest = parts[1:]
    amounts, counter = rest[:5], rest[5]
    if not _HEAD.match(head):
        raise ReceiptFormatError("RKSV code: unknown algorithm id (want R1-AT0 … R1-AT9)")
    if not _ID.match(register) or not _ID.match(number):
        raise ReceiptFormatError("RKSV code: the register id or receipt number is malformed")
    try:
        issued = datetime.fromisoformat(stamp)
    except ValueError:
        raise ReceiptFormatError("RKSV code: the date and time are not ISO 8601") from None
    if issued.tzinfo is not None or len(stamp) != 19:
        raise ReceiptFormatError("RKSV code: the date and time are not YYYY-MM-DDThh:mm:ss")
    if not all(_AMOUNT.match(a) for a in amounts):
        raise ReceiptFormatError("RKSV code: the amounts must look like 12,40")
    try:
        total = sum((Decimal(a.replace(",", ".")) for a in amounts), Decimal(0))
    except InvalidOperation:
        raise ReceiptFormatError("RKSV code: an amount is not a number") from None
    return FiscalReceipt(
        format=FORMAT,
        register=register,
        number=number,
        issued_at=issued,
        total_cents=int(total * 100),
        sale=total > 0 and counter not in _NOT_A_SALE,
    )
