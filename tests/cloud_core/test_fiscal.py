"""Fiscal receipt QR codes: each published format read, and everything else refused."""

from __future__ import annotations

from datetime import datetime

import pytest

from cloud_core.fiscal import MAX_QR_TEXT, ReceiptFormatError, formats, parse_receipt

FNS = "t=20190418T211655&s=3943.26&fn=9282000100072197&i=64318&fp=2918241905&n=1"
RKSV = (
    "_R1-AT1_KASSE-7_Bon-0815_2026-11-28T14:03:11_12,40_3,60_0,00_0,00_0,00_"
    "dGVzdA==_4f2a91_c2lnLXByZXY_c2lnbmF0dXJl"
)


def test_an_fns_receipt_is_read_with_its_register_number_time_and_sum() -> None:
    receipt = parse_receipt(FNS)
    assert receipt.format == "ru-fns"
    assert receipt.register == "9282000100072197" and receipt.number == "64318"
    assert receipt.issued_at == datetime(2019, 4, 18, 21, 16, 55)
    assert receipt.total_cents == 394326 and receipt.sale
    assert receipt.key == "ru-fns:9282000100072197:64318"
    # minutes only, fields in another order, a return (n=2) is not a sale
    other = parse_receipt("n=2&fp=1&i=7&fn=9282000100072197&s=10.5&t=20261128T0903")
    assert other.issued_at == datetime(2026, 11, 28, 9, 3) and other.total_cents == 1050
    assert not other.sale


def test_an_rksv_code_is_read_and_its_total_is_the_sum_of_its_rates() -> None:
    receipt = parse_receipt(RKSV)
    assert receipt.format == "at-rksv"
    assert (receipt.register, receipt.number) == ("KASSE-7", "Bon-0815")
    assert receipt.issued_at == datetime(2026, 11, 28, 14, 3, 11)
    assert receipt.total_cents == 1600 and receipt.sale
    reversal = RKSV.replace("12,40_3,60", "-12,40_-3,60").replace("dGVzdA==", "U1RP")
    assert not parse_receipt(reversal).sale
    training = RKSV.replace("dGVzdA==", "VFJB")
    assert not parse_receipt(training).sale


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("hello", "formats"),
        ("https://example.com/?t=1", "formats"),
        (FNS.replace("&n=1", ""), "no 'n'"),
        (FNS + "&n=1", "given twice"),
        (FNS + "&x=1", "unknown fields"),
        (FNS.replace("20190418T211655", "20191318T211655"), "real date"),
        (FNS.replace("T211655", "211655"), "YYYYMMDDTHHMM"),
        (FNS.replace("3943.26", "-1"), "positive"),
        (FNS.replace("3943.26", "1.001"), "positive"),
        (FNS.replace("3943.26", "NaN"), "positive"),
        (FNS.replace("3943.26", "abc"), "not a sum"),
        (FNS.replace("9282000100072197", "92820001"), "16-digit"),
        (FNS.replace("i=64318", "i=0"), "fiscal document"),
        (FNS.replace("fp=2918241905", "fp=x"), "fiscal sign"),
        (FNS.replace("n=1", "n=9"), "1, 2, 3 or 4"),
        (RKSV.replace("_R1-AT1", "_R1-ATX"), "algorithm"),
        (RKSV.rsplit("_", 1)[0], "13 fields"),
        (RKSV.replace("12,40", "12.40"), "amounts"),
        (RKSV.replace("2026-11-28T14:03:11", "yesterday"), "ISO 8601"),
        (RKSV.replace("2026-11-28T14:03:11", "2026-11-28T14:03:11+01:00"), "hh:mm:ss"),
        (RKSV.replace("KASSE-7", "K\x00"), "malformed"),
        ("t=" + "1" * MAX_QR_TEXT + "&fn=", "at most"),
    ],
)
def test_anything_else_is_refused_saying_why(text: str, why: str) -> None:
    with pytest.raises(ReceiptFormatError, match=why):
        parse_receipt(text)


def test_the_formats_are_listed() -> None:
    assert formats() == ["ru-fns", "at-rksv"]
