"""How much a line of text looks like a plate: a score per candidate read, formats as a preference.

Every text line (or row of boxes, or two stacked rows) the reader finds gets a score
from the OCR engine's own confidence, then:

* **scene text is refused**: lines that are mostly lower case (watermarks, shop
  signs, web addresses), plate furniture (US state names, slogans, ``POLICE``,
  ``DUBAI``, month stickers) and reads shorter than 2 or longer than 10 characters;
* **odd characters cost** (``©``, ``,``, ``!`` …: a plate prints letters, digits and
  separators only);
* **formats rank, never filter**: a read that fits one of the gate's national formats
  keeps its score (a fix between look-alikes costs a little: ``O/0``, ``I/1`` almost
  nothing, ``B/8``, ``S/5``, ``Z/2`` … more); a read that fits none keeps
  ``NO_FORMAT`` of it — still a plate (vanity, foreign, old), just a less sure one;
  reads without a digit and very short reads cost more (signs are words).

The reader multiplies in the line's height against the frame's tallest text (the
registration is the largest text on a plate) and abstains below ``min_confidence``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from edge_node.camera.formats import BAND_CODES, PlateFormat, match_format, normalise

NO_FORMAT = 0.8  # a plausible read that fits none of the gate's formats
LETTERS_ONLY = 0.85  # … and has no digit (vanity plates, but also signs)
SHORT = 0.8  # … and is 2–3 characters long
MONOTONE = 0.5  # … and is one character repeated (a row of studs, a grille: "0000")
WEAK_FIX = 0.78  # per other look-alike fix (B/8, S/5, Z/2 …): never beats the read as it is
STRONG_FIX = 0.97  # per O/0, I/1 fix (the glyphs OCR really confuses on plates)
BAND_DROP = 0.97  # per character of the country's band code dropped around a fit
DROPPED = 0.75  # per other character dropped around a fit: never beats the read as it is
ODD_CHAR = 0.85  # per character that is neither alphanumeric nor a separator
MIN_LEN, MAX_LEN = 2, 10
MAX_LOWER = 0.3  # share of lower-case letters above which a line is scene text

_SEPARATORS = frozenset(" -.·:_")
_US_STATES = [
    "ALABAMA",
    "ALASKA",
    "ARIZONA",
    "ARKANSAS",
    "CALIFORNIA",
    "COLORADO",
    "CONNECTICUT",
    "DELAWARE",
    "FLORIDA",
    "GEORGIA",
    "HAWAII",
    "IDAHO",
    "ILLINOIS",
    "INDIANA",
    "IOWA",
    "KANSAS",
    "KENTUCKY",
    "LOUISIANA",
    "MAINE",
    "MARYLAND",
    "MASSACHUSETTS",
    "MICHIGAN",
    "MINNESOTA",
    "MISSISSIPPI",
    "MISSOURI",
    "MONTANA",
    "NEBRASKA",
    "NEVADA",
    "NEWHAMPSHIRE",
    "NEWJERSEY",
    "NEWMEXICO",
    "NEWYORK",
    "NORTHCAROLINA",
    "NORTHDAKOTA",
    "OHIO",
    "OKLAHOMA",
    "OREGON",
    "PENNSYLVANIA",
    "RHODEISLAND",
    "SOUTHCAROLINA",
    "SOUTHDAKOTA",
    "TENNESSEE",
    "TEXAS",
    "UTAH",
    "VERMONT",
    "VIRGINIA",
    "WASHINGTON",
    "WESTVIRGINIA",
    "WISCONSIN",
    "WYOMING",
    "ONTARIO",
    "QUEBEC",
    "ALBERTA",
]
# Words printed on plates and cars around the registration (never a registration themselves).
_OTHER_FURNITURE = (
    "USA IND INDIA GBR POLICE TAXI DUBAI BRASIL BRAZIL MERCOSUL COSTARICA CENTROAMERICA "
    "EVERGREENSTATE SUNSHINESTATE EMPIRESTATE GARDENSTATE OCEANSTATE FIRSTSTATE LANDOFLINCOLN "
    "FIRSTINFLIGHT GREATFACES YOURSTOMANAGE DEALER JAN FEB MAR APR MAY JUN JUL AUG SEP SEPT OCT "
    "NOV DEC"
)
FURNITURE = frozenset(_US_STATES + _OTHER_FURNITURE.split())
# Furniture long enough to be recognised inside a longer read ("MAYVIRGINIA").
_EMBEDDED = tuple(sorted((w for w in FURNITURE if len(w) >= 6), key=len, reverse=True))
_DIGIT = re.compile(r"\d")
# The look-alikes a fit may change almost for free; every other fix is WEAK_FIX.
NEAR_IDENTICAL = frozenset({("O", "0"), ("0", "O"), ("I", "1"), ("1", "I")})


@dataclass(frozen=True)
class Scored:
    """A candidate plate read and how sure the ranking is of it (0–1)."""

    plate: str
    score: float
    country: str | None  # the format it fits, if any
    layout: str  # "L"/"D" classes, e.g. "LLDDLLL"
    fixes: int = 0


def layout_of(plate: str) -> str:
    return "".join("D" if c.isdigit() else "L" for c in plate)


def is_scene_text(raw: str) -> bool:
    """Mostly lower case: a watermark, a sign, a web address, never a plate."""
    letters = [c for c in raw if c.isalpha()]
    lower = sum(1 for c in letters if c.islower())
    return bool(letters) and lower / len(letters) > MAX_LOWER


def is_furniture(text: str) -> bool:
    """A state name, slogan or sticker word, alone or run into another word."""
    return text in FURNITURE or any(word in text for word in _EMBEDDED)


def score_text(
    raw: str, ocr_score: float, formats: Sequence[PlateFormat], max_fixes: float = 2.0
) -> Scored | None:
    """The best reading of ``raw`` as a plate, or None when it cannot be one."""
    if is_scene_text(raw):
        return None
    text = normalise(raw)
    if not MIN_LEN <= len(text) <= MAX_LEN + 3 or is_furniture(text):
        return None  # (up to 3 more: a band code a format fit drops)
    odd = sum(1 for c in raw if not (c.isalnum() or c in _SEPARATORS))
    base = ocr_score * ODD_CHAR**odd
    if not _DIGIT.search(text):  # judged on what was read, not on what a fit makes of it
        base *= LETTERS_ONLY
    if len(text) < 4:
        base *= SHORT
    if len(set(text)) == 1:
        base *= MONOTONE
    plain = Scored(text, base * NO_FORMAT, None, layout_of(text))
    best = plain if len(text) <= MAX_LEN else Scored(text, 0.0, None, layout_of(text))
    fitted = match_format(text, formats, max_fixes) if len(text) >= 4 else None
    if fitted is not None and _fix_is_plausible(text, fitted.plate, fitted.fixes):
        start = _start(text, fitted.plate)
        strong = weak = 0
        for a, b in zip(text[start:], fitted.plate, strict=False):
            if a != b:
                strong += (a, b) in NEAR_IDENTICAL
                weak += (a, b) not in NEAR_IDENTICAL
        head, tail = text[:start], text[start + len(fitted.plate) :]
        band = BAND_CODES.get(fitted.fmt.country, "")
        # The band's code, or the part of it the OCR kept ("U" of "UA"), costs little.
        drops = BAND_DROP ** len(head) if head and head in band else DROPPED ** len(head)
        drops *= DROPPED ** len(tail)
        score = base * WEAK_FIX**weak * STRONG_FIX**strong * drops
        if score > best.score:
            best = Scored(fitted.plate, score, fitted.fmt.country, fitted.fmt.pattern, fitted.fixes)
    return best if best.score > 0 else None


def _fix_is_plausible(text: str, plate: str, fixes: int) -> bool:
    """Fixes mend a plate, never make one: at most a quarter of it, and never a class of
    character the read did not have (a word with no digit does not become a plate)."""
    if fixes > max(1, len(text) // 4):
        return False
    has_digit, has_letter = _DIGIT.search(text), re.search(r"[A-Z]", text)
    return bool(has_digit or not _DIGIT.search(plate)) and bool(
        has_letter or not re.search(r"[A-Z]", plate)
    )


def _start(text: str, plate: str) -> int:
    """Where a fitted plate starts in the read (after dropped leading characters)."""
    best, cost = 0, len(plate) + 1
    for start in range(len(text) - len(plate) + 1):
        diff = sum(1 for a, b in zip(text[start:], plate, strict=False) if a != b)
        if diff < cost:
            best, cost = start, diff
    return best
