"""Encoding and decoding of contract messages.

``decode`` turns any input into either a ``Decoded`` message or one typed
``WireError`` whose ``kind`` says what was wrong; it never lets another
exception escape, so a consumer can reject, log, count and carry on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from mallnet.errors import MallnetError
from mallnet.wire import payloads
from mallnet.wire.topics import Topic, TopicError, TopicSpec, parse_topic

MAX_PAYLOAD_BYTES = 256 * 1024


class WireErrorKind(StrEnum):
    TOPIC = "topic"  # the topic is not part of the contract
    OVERSIZE = "oversize"  # larger than MAX_PAYLOAD_BYTES
    JSON = "json"  # not UTF-8 JSON
    SCHEMA = "schema"  # JSON that does not match the topic's model
    MISMATCH = "mismatch"  # valid payload whose sender differs from the topic's


class WireError(MallnetError):
    """A message that is not a valid v1 contract message."""

    def __init__(self, kind: WireErrorKind, detail: str, topic: str = "") -> None:
        self.kind = kind
        self.detail = detail
        self.topic = topic
        super().__init__(f"{kind.value}: {detail}")


_ADAPTERS: dict[str, TypeAdapter[Any]] = {}


def payload_adapter(spec: TopicSpec) -> TypeAdapter[Any]:
    """The validator for a topic's payload (cached)."""
    adapter = _ADAPTERS.get(spec.payload)
    if adapter is None:
        adapter = TypeAdapter(getattr(payloads, spec.payload))
        _ADAPTERS[spec.payload] = adapter
    return adapter


@dataclass(frozen=True)
class Decoded:
    topic: Topic
    message: BaseModel


def encode(message: BaseModel) -> bytes:
    """Compact JSON; ``None`` fields are left out."""
    return message.model_dump_json(exclude_none=True).encode()


def _sender(message: BaseModel) -> str | None:
    for field in ("node", "device"):
        value = getattr(message, field, None)
        if isinstance(value, str):
            return value
    return None


def decode(topic: str, payload: bytes | bytearray | memoryview) -> Decoded:
    """Validate a topic and its payload; raises only ``WireError``."""
    try:
        parsed = parse_topic(topic)
    except TopicError as exc:
        raise WireError(WireErrorKind.TOPIC, str(exc), topic) from None
    data = bytes(payload)
    if len(data) > MAX_PAYLOAD_BYTES:
        raise WireError(WireErrorKind.OVERSIZE, f"{len(data)} bytes > {MAX_PAYLOAD_BYTES}", topic)
    try:
        message = payload_adapter(parsed.spec).validate_json(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if errors and errors[0]["type"] == "json_invalid":
            raise WireError(WireErrorKind.JSON, f"not JSON: {errors[0]['msg']}", topic) from None
        raise WireError(WireErrorKind.SCHEMA, _summarise(exc), topic) from None
    except (ValueError, TypeError, RecursionError) as exc:  # defensive: custom validators
        raise WireError(WireErrorKind.SCHEMA, str(exc), topic) from None
    sender = _sender(message)
    if sender is not None and sender != parsed.entity:
        raise WireError(
            WireErrorKind.MISMATCH,
            f"payload says it comes from {sender!r}, topic is for {parsed.entity!r}",
            topic,
        )
    return Decoded(parsed, message)


def _summarise(exc: ValidationError, limit: int = 5) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"... and {more} more")
    return "; ".join(parts)
