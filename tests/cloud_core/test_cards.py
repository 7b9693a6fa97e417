"""The loyalty-card QR token: signed, short-lived, never the phone number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from cloud_core.cards import issue_card_token, verify_card_token
from cloud_core.config import CardSettings, load_core_config
from cloud_core.errors import CardTokenError, CoreError
from mallnet.errors import ConfigError
from tests.conftest import MALL

KEY = b"card-test-secret-0123456789abcdef"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CUSTOMER = "c0123456789abcdef01234567"


def test_round_trip_names_the_customer_and_never_a_phone() -> None:
    token = issue_card_token(KEY, CUSTOMER, NOW)
    assert verify_card_token(KEY, token, NOW + timedelta(seconds=119)) == CUSTOMER
    assert "+" not in token and token.split(".")[1] == CUSTOMER  # the id, no phone field
    assert token.count(".") == 3 and len(token) < 80  # small enough for a quick QR


def test_expired_token_is_refused() -> None:
    token = issue_card_token(KEY, CUSTOMER, NOW, ttl_s=120)
    with pytest.raises(CardTokenError, match="expired"):
        verify_card_token(KEY, token, NOW + timedelta(seconds=120))


def test_forged_and_altered_tokens_are_refused() -> None:
    token = issue_card_token(KEY, CUSTOMER, NOW)
    other = issue_card_token(b"another-secret-0123456789abcdef", CUSTOMER, NOW)
    with pytest.raises(CardTokenError, match="signature"):
        verify_card_token(KEY, other, NOW)
    version, customer, expires, signature = token.split(".")
    for altered in (
        f"{version}.c{'f' * 24}.{expires}.{signature}",  # someone else's id
        f"{version}.{customer}.{int(expires) + 3600}.{signature}",  # a longer life
        f"{version}.{customer}.{expires}.{'A' * 22}",
    ):
        with pytest.raises(CardTokenError, match="signature"):
            verify_card_token(KEY, altered, NOW)


@pytest.mark.parametrize(
    "junk",
    ["", "mc1", "mc2.c1.1.AAAAAAAAAAAAAAAAAAAAAA", "mc1.C!.12.x", "x" * 5000, "+447700900123"],
)
def test_malformed_tokens_are_refused(junk: str) -> None:
    with pytest.raises(CardTokenError, match="malformed"):
        verify_card_token(KEY, junk, NOW)


def test_card_token_error_is_a_core_error() -> None:
    assert issubclass(CardTokenError, CoreError)
    with pytest.raises(CardTokenError):
        issue_card_token(KEY, CUSTOMER, NOW, ttl_s=0)
    with pytest.raises(CardTokenError):
        issue_card_token(b"", CUSTOMER, NOW)


def test_key_is_loaded_from_a_file_beside_the_config(tmp_path: Path) -> None:
    (tmp_path / "card.secret").write_text("card-file-secret-0123456789abcdef\n")
    config_file = tmp_path / "core.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "mall": MALL,
                "database": "core.sqlite",
                "mqtt": {"port": 1883},
                "cards": {"secret_file": "card.secret", "ttl_s": 60},
            }
        )
    )
    config = load_core_config(config_file)
    assert config.cards is not None and config.cards.ttl_s == 60
    key = config.cards.key()
    assert key == b"card-file-secret-0123456789abcdef"
    assert verify_card_token(key, issue_card_token(key, CUSTOMER, NOW, 60), NOW) == CUSTOMER


@pytest.mark.parametrize("secret", ["short", "changeme-changeme"[:8], "password"])
def test_weak_or_placeholder_secret_is_refused(secret: str) -> None:
    with pytest.raises(ConfigError):
        CardSettings.model_validate({"secret": secret}).key()


def test_missing_secret_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        CardSettings(secret_file=tmp_path / "absent").key()
    with pytest.raises(ValueError, match="secret_file"):
        CardSettings()
