"""Redaction through the real logging set-up: what reaches stderr, in text and JSON."""

from __future__ import annotations

import json
import logging

import pytest

from mallnet.logs import configure_logging

PHONES = [
    "+447911123456",
    "+44 7911 123456",
    "+44-7911-123456",
    "+44.7911.123456",
    "+44 (0) 7911 123456",
    "+1 (555) 123-4567",
    "(555) 123-4567",
    "(020) 7946 0958",
    "07911 123456",
    "020-7946-0958",
    "+44 7911 123456 1234 5678",
]
KEPT = [
    "2026-11-29 06:24:20,123",
    "2026-11-29T06:24:20.123456+00:00",
    "127.0.0.1:1883",
    "mallnet 0.110.0",
    "expired 12 lots in 345 ms",
]


@pytest.fixture
def logged(capsys):
    def emit(fmt, message):
        configure_logging("INFO", fmt)
        try:
            logging.getLogger("tests.redaction").info("%s", message)
        finally:
            root = logging.getLogger()
            root.handlers[:] = [h for h in root.handlers if h.get_name() != "mallnet"]
        return capsys.readouterr().err

    return emit


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("phone", PHONES)
def test_phone_numbers_in_any_common_form_never_reach_the_logs(logged, fmt, phone):
    err = logged(fmt, f"registered {phone}, mac aa:bb:cc:dd:ee:ff")
    message = json.loads(err)["msg"] if fmt == "json" else err.split("tests.redaction: ", 1)[1]
    assert message.rstrip("\n") == "registered +***phone***, mac **:**:**:**:**:**"


@pytest.mark.parametrize("text", KEPT)
def test_dates_times_addresses_and_counts_are_left_alone(logged, text):
    assert text in logged("text", f"note {text} end")
    assert json.loads(logged("json", f"note {text} end"))["msg"] == f"note {text} end"
