"""The codec: every example round-trips; every kind of malformed input is one typed error."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mallnet.wire import MAX_PAYLOAD_BYTES, WireError, WireErrorKind, decode, encode
from mallnet.wire.examples import EXAMPLES
from mallnet.wire.topics import ALL_TOPICS, HEALTH, PRESENCE, RECEIPTS, parse_topic

GOOD_TOPIC = PRESENCE.topic("m1", "store-bean-bar-1")
GOOD = json.loads(encode(EXAMPLES["PresenceBatch"]))


def _entity_for(spec_payload: str) -> str:
    example = EXAMPLES[spec_payload]
    return getattr(example, "node", None) or getattr(example, "device", None) or "someone"


@pytest.mark.parametrize("spec", ALL_TOPICS, ids=lambda s: s.name)
def test_every_example_round_trips(spec):
    example = EXAMPLES[spec.payload]
    topic = spec.topic("m1", _entity_for(spec.payload))
    decoded = decode(topic, encode(example))
    assert decoded.message == example
    assert decoded.topic.spec is spec
    assert str(decoded.topic) == topic


def test_encoding_is_compact_and_drops_nulls():
    raw = encode(EXAMPLES["CheckinBatch"])
    assert b" " not in raw.replace(b"mallnet:c", b"")
    assert b"null" not in raw and b"store" not in raw


def _mutate(**changes):
    body = json.loads(json.dumps(GOOD))
    event = body["events"][0]
    for key, value in changes.items():
        if value is KeyError:
            event.pop(key)
        else:
            event[key] = value
    return json.dumps(body).encode()


def _raw_number(token: str) -> bytes:
    """The example with a bare ``NaN``/``Infinity`` (Python's JSON extension) as ``inside_s``."""
    text = json.dumps(GOOD, separators=(",", ":"))
    assert '"inside_s":0.0' in text
    return text.replace('"inside_s":0.0', f'"inside_s":{token}', 1).encode()


MALFORMED = {
    "bad json": (GOOD_TOPIC, b'{"v":1,', WireErrorKind.JSON),
    "not utf-8": (GOOD_TOPIC, b"\xff\xfe\x00", WireErrorKind.JSON),
    "empty": (GOOD_TOPIC, b"", WireErrorKind.JSON),
    "deeply nested": (GOOD_TOPIC, b"[" * 50_000, WireErrorKind.JSON),
    "oversize": (GOOD_TOPIC, b" " * (MAX_PAYLOAD_BYTES + 1), WireErrorKind.OVERSIZE),
    "array not object": (GOOD_TOPIC, b"[1,2]", WireErrorKind.SCHEMA),
    "unknown field": (GOOD_TOPIC, _mutate(extra=1), WireErrorKind.SCHEMA),
    "missing id": (GOOD_TOPIC, _mutate(id=KeyError), WireErrorKind.SCHEMA),
    "wrong type": (GOOD_TOPIC, _mutate(rssi="-60"), WireErrorKind.SCHEMA),
    "bool for int": (GOOD_TOPIC, _mutate(seq=True), WireErrorKind.SCHEMA),
    "out of range": (GOOD_TOPIC, _mutate(rssi=-500), WireErrorKind.SCHEMA),
    "negative seq": (GOOD_TOPIC, _mutate(seq=-1), WireErrorKind.SCHEMA),
    "not a uuid7": (
        GOOD_TOPIC,
        _mutate(id="5b0e8a52-7b3d-4f1e-9d0a-2c1b3a4d5e6f"),
        WireErrorKind.SCHEMA,
    ),
    "naive time": (GOOD_TOPIC, _mutate(ts="2026-11-23T10:00:00"), WireErrorKind.SCHEMA),
    "unknown kind": (GOOD_TOPIC, _mutate(kind="teleport"), WireErrorKind.SCHEMA),
    "future version": (GOOD_TOPIC, _mutate(v=2), WireErrorKind.SCHEMA),
    "bad tag": (GOOD_TOPIC, _mutate(tag="XYZ"), WireErrorKind.SCHEMA),
    "wrong model for topic": (
        RECEIPTS.topic("m1", "store-bean-bar-1"),
        encode(EXAMPLES["PresenceBatch"]),
        WireErrorKind.SCHEMA,
    ),
    "sender mismatch": (
        PRESENCE.topic("m1", "store-other"),
        encode(EXAMPLES["PresenceBatch"]),
        WireErrorKind.MISMATCH,
    ),
    "NaN": (GOOD_TOPIC, _raw_number("NaN"), WireErrorKind.SCHEMA),
    "Infinity": (GOOD_TOPIC, _raw_number("Infinity"), WireErrorKind.SCHEMA),
    "unbounded Infinity": (
        HEALTH.topic("m1", "store-bean-bar-1"),
        encode(EXAMPLES["HealthReport"]).replace(b'"cpu_temp_c":51.2', b'"cpu_temp_c":Infinity'),
        WireErrorKind.SCHEMA,
    ),
    "topic too short": (
        "mall/v1/m1/nodes/x",
        encode(EXAMPLES["PresenceBatch"]),
        WireErrorKind.TOPIC,
    ),
    "topic wrong version": (
        "mall/v9/m1/nodes/store-bean-bar-1/presence",
        encode(EXAMPLES["PresenceBatch"]),
        WireErrorKind.TOPIC,
    ),
    "topic unknown leaf": ("mall/v1/m1/nodes/store-bean-bar-1/selfie", b"{}", WireErrorKind.TOPIC),
    "topic wildcard id": ("mall/v1/m1/nodes/+/presence", b"{}", WireErrorKind.TOPIC),
    "topic upper-case id": ("mall/v1/M1/nodes/a/presence", b"{}", WireErrorKind.TOPIC),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_each_malformed_kind_is_one_typed_error(name):
    topic, payload, kind = MALFORMED[name]
    with pytest.raises(WireError) as info:
        decode(topic, payload)
    assert info.value.kind is kind
    assert info.value.topic == topic
    assert str(info.value).startswith(kind.value)


@settings(max_examples=300, deadline=None)
@given(
    topic=st.one_of(st.text(max_size=80), st.sampled_from([GOOD_TOPIC])),
    payload=st.binary(max_size=512),
)
def test_arbitrary_input_never_raises_anything_but_wire_error(topic, payload):
    with contextlib.suppress(WireError):
        decode(topic, payload)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_arbitrary_json_is_rejected_as_schema(value):
    with pytest.raises(WireError) as info:
        decode(GOOD_TOPIC, json.dumps(value).encode())
    assert info.value.kind is WireErrorKind.SCHEMA


def test_models_are_frozen():
    batch = EXAMPLES["PresenceBatch"]
    with pytest.raises(ValueError, match="frozen"):
        batch.node = "other"  # type: ignore[attr-defined]


def test_topic_builders_and_filters():
    assert PRESENCE.filter() == "mall/v1/+/nodes/+/presence"
    assert PRESENCE.shared_filter("core", "m1") == "$share/core/mall/v1/m1/nodes/+/presence"
    parsed = parse_topic("mall/v1/m1/nodes/n-1/presence")
    assert (parsed.mall, parsed.entity, parsed.spec) == ("m1", "n-1", PRESENCE)
