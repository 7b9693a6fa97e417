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


def redact(text: str) -> str:
    """Mask secrets, MAC addresses and phone numbers in a log line."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


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
