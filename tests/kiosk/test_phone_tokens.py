"""Keypad phone numbers (E.164, masking) and the meaning of scanned QR codes."""

from __future__ import annotations

import pytest

from kiosk import phone, tokens


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("0671234567", "+380671234567"),
        ("671234567", "+380671234567"),
        ("+447911123456", "+447911123456"),
        ("00447911123456", "+447911123456"),
        ("067", None),
        ("", None),
        ("+0671234567", None),
        ("1234567890123456789", None),
    ],
)
def test_to_e164(typed: str, expected: str | None) -> None:
    assert phone.to_e164(typed, "+380") == expected


def test_mask_shows_only_the_last_two_digits() -> None:
    masked = phone.mask("+380671234567")
    assert masked == "+••• ••• ••• •67"
    assert sum(c.isdigit() for c in masked) == 2
    assert phone.mask("5") == "5"
    assert phone.mask("") == ""


def test_classify() -> None:
    assert tokens.classify("mallnet:customer:c0001") == tokens.ScannedCode("customer", "c0001")
    assert tokens.classify(" mallnet:store:cafe-1 ") == tokens.ScannedCode("store", "cafe-1")
    assert tokens.classify("mallnet:store:Bad/Id").kind == "other"
    assert tokens.classify("mallnet:customer:").kind == "other"
    assert tokens.classify("https://receipt.example/123") == tokens.ScannedCode(
        "other", "https://receipt.example/123"
    )


def test_receipt_token_fits_the_wire_limit() -> None:
    assert tokens.receipt_token("c1", "abc") == "receipt:c1:abc"
    assert tokens.receipt_token("c1", "x" * 600) is None
    assert tokens.receipt_token("c1", "") is None
