"""Customers and the rotating-id resolver."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_core import customers
from cloud_core.customers import TagResolver
from cloud_core.errors import Conflict, InvalidInput
from cloud_core.store import open_store
from mallnet import identity as rotating
from tests.cloud_core.helpers import START, Clock, key_of


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("07911 123456", "GB", "+447911123456"),
        ("+44 (0)7911-123-456", "GB", "+447911123456"),
        ("067 123 4567", "UA", "+380671234567"),
        ("+1 650 253 0000", "GB", "+16502530000"),
    ],
)
def test_phones_are_stored_in_e164(raw, region, e164):
    assert customers.normalise_phone(raw, region) == e164


@pytest.mark.parametrize("raw", ["", "hello", "123", "+44 1"])
def test_bad_phones_are_refused(raw):
    with pytest.raises(InvalidInput):
        customers.normalise_phone(raw, "GB")


def test_keys_vehicles_and_conflicts(tmp_path):
    store = open_store(tmp_path / "c.sqlite")
    try:
        with store.transaction() as conn:
            ann, _ = customers.register_customer(conn, "07911 123456", default_region="GB")
            bob, _ = customers.register_customer(conn, "07911 123457", default_region="GB")
            before = customers.key_generation(conn)
            _, key = customers.attach_beacon_key(conn, ann)
            assert customers.key_generation(conn) == before + 1
            with pytest.raises(Conflict):
                customers.attach_beacon_key(conn, bob, key)
            with pytest.raises(InvalidInput):
                customers.attach_beacon_key(conn, bob, "ab" * 8)
            assert customers.attach_vehicle(conn, ann, "ab-12 cde") == "AB12CDE"
            with pytest.raises(Conflict):
                customers.attach_vehicle(conn, bob, "AB12CDE")
            assert customers.customer_of_plate(conn, "AB12CDE") == ann
            assert customers.load_all_keys(conn) == [(ann, bytes.fromhex(key))]
    finally:
        store.close()


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 50),
    window_shift=st.integers(-3, 3),
    offset=st.floats(0, rotating.WINDOW_S, exclude_max=True),
)
def test_an_id_counts_only_inside_its_window_and_the_skew(n, window_shift, offset):
    keys = [(f"c{i}", key_of(i)) for i in range(1, 51)]
    clock = Clock(START)
    resolver = TagResolver(lambda: keys, clock)
    resolver.refresh(0)
    event_time = START + offset
    window = rotating.window_of(event_time) + window_shift
    tag = rotating.tag_id(key_of(n), window)
    got = resolver.resolve(tag, event_time).customer
    accepted = window in rotating.windows_accepting(event_time)
    assert got == (f"c{n}" if accepted else None)
    # only neighbours within the skew are ever accepted
    if accepted and window_shift != 0:
        edge = (window + (1 if window_shift < 0 else 0)) * rotating.WINDOW_S
        assert abs(event_time - edge) <= rotating.SKEW_S
