"""Logging set-up shared by every process, with redaction of personal data and secrets."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Literal

_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"(?i)(password|passwd|secret|token|api[_-]?key|key)(\"?\s*[=:]\s*\"?)[^\s\",}]+"
        ),
        r"\1\2***",
    ),
    (re.compile(r"\b(?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}\b"), "**:**:**:**:**:**"),
    # also URL-encoded (`?phone=%2B380…`, as httpx and uvicorn log request URLs)
    (re.compile(r"(?:\+|%2[Bb])\d{7,15}\b"), "+***phone***"),
)

# Phone numbers as people write them: E.164 (+447911123456), grouped with spaces, dashes,
# dots or parentheses (+44 7911 123456, +1 (555) 123-4567, +44.7911.123456), a bracketed
# area code ((020) 7946 0958) and national forms with a trunk 0 (07911 123456). A
# candidate counts when it holds 7 digits or more, so dates (2026-11-29), times, versions
# and addresses (127.0.0.1) are left alone.
_SEP = r"[ .\-]"
_PHONE = re.compile(
    rf"""
    (?<![\w+])\+\d+(?:{_SEP}?\(\d+\))?(?:{_SEP}\d+)*   # +44 7911 123456, +1 (555) 123-4567
    | (?<![\w.:/-])\(\d{{2,5}}\){_SEP}?\d+(?:{_SEP}\d+)*   # (020) 7946 0958
    | (?<![\w.:/-])0\d{{2,4}}(?:{_SEP}?\d{{3,4}}){{2}}     # 07911 123456, 020-7946-0958
    """,
    re.VERBOSE,
)


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(c.isdigit() for c in text)
    return "+***phone***" if digits >= 7 else text


def redact(text: str) -> str:
    """Mask secrets, MAC addresses and phone numbers in a log line."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return _PHONE.sub(_mask_phone, text)


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


def configure_logging(level: str = "INFO", fmt: Literal["text", "json"] = "text") -> None:
    """Configure the root logger once, at a process's composition root."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            RedactingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        )
    handler.set_name("mallnet")
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() != "mallnet"] + [handler]
    root.setLevel(level.upper())
