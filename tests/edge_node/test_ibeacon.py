"""The iBeacon parser: real-world frames, every malformed kind, never raising."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_node.ble.ibeacon import IBeacon, IBeaconParser, Reject, build_frame, parse_ibeacon
from mallnet import identity

# Real frames as BlueZ hands them over (company id 0x004C little-endian first).
ESTIMOTE = bytes.fromhex("4c000215b9407f30f5f8466eaff925556b57fe6d4e2a1f8bb6")  # default UUID
AIRLOCATE = bytes.fromhex("4c000215e2c56db5dffb48d2b060d0f5a71096e00001000ac5")  # Apple sample
# Other Apple payloads phones send all day (Nearby Info, Find My / offline finding, AirDrop).
NEARBY = bytes.fromhex("4c0010051b1c6f3a4e")
FIND_MY = bytes.fromhex("4c0012199c3a8d5e1f2b7a6c4d9e0f1a2b3c4d5e6f7a8b9c0d1e2f03")
AIRDROP = bytes.fromhex("4c000512000000000000000001a3b1c2d3e4f50600")


def test_real_world_frames_decode() -> None:
    est = parse_ibeacon(ESTIMOTE)
    assert est == IBeacon(uuid.UUID("b9407f30-f5f8-466e-aff9-25556b57fe6d"), 0x4E2A, 0x1F8B, -74)
    air = parse_ibeacon(AIRLOCATE)
    assert air == IBeacon(uuid.UUID("e2c56db5-dffb-48d2-b060-d0f5a71096e0"), 1, 10, -59)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", Reject.EMPTY),
        (b"\x4c", Reject.TRUNCATED),
        (b"\x4c\x00\x02", Reject.TRUNCATED),
        (AIRLOCATE[:24], Reject.TRUNCATED),
        (AIRLOCATE[:5], Reject.TRUNCATED),
        (bytes.fromhex("5900") + AIRLOCATE[2:], Reject.NOT_APPLE),  # Nordic's company id
        (bytes.fromhex("004c") + AIRLOCATE[2:], Reject.NOT_APPLE),  # big-endian by mistake
        (NEARBY, Reject.NOT_IBEACON),
        (FIND_MY, Reject.NOT_IBEACON),
        (AIRDROP, Reject.NOT_IBEACON),
        (AIRLOCATE[:3] + b"\x14" + AIRLOCATE[4:], Reject.BAD_LENGTH),
        (AIRLOCATE + b"\x00", Reject.TRAILING),
        ("4c000215", Reject.NOT_BYTES),
        (None, Reject.NOT_BYTES),
        (12345, Reject.NOT_BYTES),
    ],
)
def test_every_malformed_kind_yields_nothing_and_says_why(data: object, reason: Reject) -> None:
    assert parse_ibeacon(data) is reason
    parser = IBeaconParser(bytes.fromhex("e2c56db5"))
    assert parser.sighting(data) is None
    assert parser.rejected[reason] == 1
    assert parser.accepted == 0


@given(st.binary(max_size=64))
def test_garbage_never_raises(data: bytes) -> None:
    result = parse_ibeacon(data)
    assert isinstance(result, IBeacon | Reject)
    if isinstance(result, IBeacon):
        assert build_frame(result.uuid, result.major, result.minor, result.measured_power) == data


def test_bytearray_and_memoryview_are_accepted() -> None:
    assert parse_ibeacon(bytearray(AIRLOCATE)) == parse_ibeacon(AIRLOCATE)
    assert parse_ibeacon(memoryview(AIRLOCATE)) == parse_ibeacon(AIRLOCATE)
    parser = IBeaconParser(bytes.fromhex("e2c56db5"))
    assert parser.sighting(bytearray(AIRLOCATE)) == parser.sighting(AIRLOCATE)


def test_program_filter_and_tag_id_match_the_shared_identity() -> None:
    prefix = identity.parse_prefix("f7a3e1c2")
    key = identity.parse_key("ab" * 32)
    window = identity.window_of(1_763_870_000)
    frame = identity.beacon_frame(prefix, key, window)
    data = build_frame(frame.uuid, frame.major, frame.minor, -59)
    parser = IBeaconParser(prefix)
    sighting = parser.sighting(data)
    assert sighting is not None
    assert sighting.tag == identity.tag_of_frame(frame.uuid, frame.major, frame.minor)
    assert sighting.tag == identity.tag_id(key, window)
    assert sighting.measured_power == -59
    # a valid iBeacon of another program is ignored, and counted
    assert parser.sighting(ESTIMOTE) is None
    assert parser.rejected[Reject.OTHER_PROGRAM] == 1
    assert (parser.accepted, parser.rejected_total) == (1, 1)


def test_measured_power_sign() -> None:
    for power in (-100, -59, -1, 0, 4):
        frame = build_frame(uuid.uuid4(), 1, 2, power)
        decoded = parse_ibeacon(frame)
        assert isinstance(decoded, IBeacon) and decoded.measured_power == power
