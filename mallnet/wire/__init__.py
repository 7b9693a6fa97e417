"""The v1 MQTT wire contract: topics, payload models, codec."""

from mallnet.wire.codec import MAX_PAYLOAD_BYTES, Decoded, WireError, WireErrorKind, decode, encode
from mallnet.wire.topics import ALL_TOPICS, Topic, TopicError, TopicSpec, parse_topic

__all__ = [
    "ALL_TOPICS",
    "MAX_PAYLOAD_BYTES",
    "Decoded",
    "Topic",
    "TopicError",
    "TopicSpec",
    "WireError",
    "WireErrorKind",
    "decode",
    "encode",
    "parse_topic",
]
