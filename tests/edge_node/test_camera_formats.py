"""Plate formats: validation, positional confusable fixes, absurd reads rejected, folding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_node.camera.formats import (
    FORMATS,
    PlateFormat,
    fold,
    formats_for,
    match_format,
    normalise,
)
from edge_node.camera.synth import STYLES, random_plate_text

ALL = formats_for(["EU", "US", "BR"])


@pytest.mark.parametrize(
    ("raw", "plate", "country", "fixes"),
    [
        ("AA 1234 BB", "AA1234BB", "UA", 0),
        ("UA AA 1234 BB", "AA1234BB", "UA", 0),  # the band's country code is dropped
        ("A4 I234 BB", "AA1234BB", "UA", 2),  # 4→A in a letter slot, I→1 in a digit slot
        ("KA O8I2 CE", "KA0812CE", "UA", 2),
        ("АВ 1234 ХТ", "AB1234XT", "UA", 0),  # Cyrillic look-alikes
        ("AB-123-CD", "AB123CD", "FR", 0),
        ("1234 BCD", "1234BCD", "ES", 0),
        ("I234 BCD", "1234BCD", "ES", 1),
        ("7ABC123", "7ABC123", "US", 0),
        ("ABC 1234", "ABC1234", "US", 0),  # NY layout; BR's old layout is the same
        ("ABC1D23", "ABC1D23", "BR", 0),
        ("A8C1D23", "ABC1D23", "BR", 1),  # 8→B by position
        ("ABCID23", "ABC1D23", "BR", 1),  # I→1 by position
        ("5ZG6 BCD", "5266BCD", "ES", 2),
    ],
)
def test_reads_are_fitted_and_fixed_by_position(raw: str, plate: str, country: str, fixes: int):
    found = match_format(raw, ALL)
    assert found is not None, raw
    assert (found.plate, found.fmt.country, found.fixes) == (plate, country, fixes)


@pytest.mark.parametrize("raw", ["", "HELLO", "1234567890123", "ΩΩΩ", "California", "A", "0000"])
def test_absurd_reads_are_rejected(raw: str):
    assert match_format(raw, ALL) is None


def test_too_many_fixes_are_rejected():
    assert match_format("0O1I2Z5S", formats_for(["UA"]), max_fixes=2) is None
    assert match_format("AA12S4BB", formats_for(["UA"]), max_fixes=0) is None
    assert match_format("AA12S4BB", formats_for(["UA"]), max_fixes=1) is not None


def test_ua_plates_accept_only_letters_with_latin_twins():
    ua = formats_for(["UA"])
    assert match_format("AA1234BG", ua) is None  # G has no Cyrillic twin: not a UA plate
    near = match_format("AA1234BF", ua)  # F is read where only E can be
    assert near is not None and (near.plate, near.fixes) == ("AA1234BE", 1)
    fixed = match_format("AA1234DO", ua)
    assert fixed is not None and fixed.plate == "AA1234OO"  # D→O where only O fits


def test_priority_order_decides_ties():
    us_first = match_format("ABC1234", formats_for(["US", "BR"]))
    br_first = match_format("ABC1234", formats_for(["BR", "US"]))
    assert us_first is not None and us_first.fmt.country == "US"
    assert br_first is not None and br_first.fmt.country == "BR"


def test_unknown_country_is_an_error():
    with pytest.raises(ValueError, match="no plate formats"):
        formats_for(["XX"])
    with pytest.raises(ValueError):
        PlateFormat("XX", "bad", "LLX")


def test_normalise_and_fold():
    assert normalise(" ab-12 3 ") == "AB123"
    assert fold("OIBSZG") == fold("018526")
    assert fold("AB1234CE") != fold("AB1234CF")


@settings(max_examples=200, deadline=None)
@given(style=st.sampled_from(STYLES), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_every_generated_plate_matches_itself_and_survives_one_confusable(style, seed, data):
    plate = random_plate_text(style, np.random.default_rng(seed))
    exact = match_format(plate, ALL)
    assert exact is not None and exact.plate == plate and exact.fixes == 0
    swap = {"0": "O", "1": "I", "8": "B", "5": "S", "2": "Z", "6": "G"}
    swap |= {v: k for k, v in swap.items()}
    positions = [i for i, c in enumerate(plate) if c in swap]
    if not positions:
        return
    i = data.draw(st.sampled_from(positions))
    misread = plate[:i] + swap[plate[i]] + plate[i + 1 :]
    fixed = match_format(misread, [f for f in ALL if f.pattern == exact.fmt.pattern])
    assert fixed is not None and fixed.plate == plate and fixed.fixes == 1


def test_format_table_covers_eu_ua_us_br():
    assert {"UA", "US", "BR"} <= set(FORMATS)
    assert all(f.pattern and f.letters for fs in FORMATS.values() for f in fs)
