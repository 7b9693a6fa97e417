"""National plate formats: fit an OCR read to a gate's formats, fixing look-alikes by position.

A format is a pattern of character classes, ``L`` (letter) and ``D`` (digit),
optionally with the letters a country actually uses; countries with
variable-length registrations (DE, IN, GB's older series) list one pattern
per length (``expand``). A raw read is normalised (upper case, Cyrillic
look-alikes to Latin, separators dropped), then fitted to each format: a digit
where a letter must be becomes its look-alike letter (``0``→``O``, ``8``→``B``
…) and the other way round, each fix with a cost. ``match_format`` answers
"which format does this read fit, and at what cost"; the reader uses it as a
preference that ranks candidate reads (``ranking.score_text``), never as a
filter: a read that fits no format can still be the plate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import product

# The letter ↔ digit look-alikes and their classes (for comparing reads "after confusable
# folding": accuracy reports; the core's plate matching uses the same table).
from mallnet.plates import FOLD, TO_DIGIT, TO_LETTER

# Letter ↔ letter look-alikes, used only where a country's alphabet forbids the letter read.
LETTER_SWAP = {
    "D": "O",
    "Q": "O",
    "U": "O",
    "V": "Y",
    "Y": "V",
    "F": "E",
    "R": "B",
    "N": "H",
    "W": "M",
    "J": "I",
    "L": "I",
}
# Pairs drawn nearly alike in plate fonts: fixing them costs little.
STRONG = frozenset({("O", "0"), ("0", "O"), ("I", "1"), ("1", "I"), ("Q", "0"), ("D", "0")})
STRONG_COST = 0.25
# The code a country prints on its plate's band, read as part of the text at times.
BAND_CODES = {
    "UA": "UA", "FR": "F", "IT": "I", "ES": "E", "PL": "PL", "BR": "BR", "DE": "D", "GB": "GB",
    "IN": "IND",
}  # fmt: skip
# Cyrillic capitals with Latin twins (UA plates use only these).
CYRILLIC = str.maketrans("АВСЕНІКМОРТХУ", "ABCEHIKMOPTXY")

_NON_ALNUM = re.compile(r"[^A-Z0-9]")


@dataclass(frozen=True)
class PlateFormat:
    """One national plate layout."""

    country: str  # ISO 3166 alpha-2
    name: str
    pattern: str  # "L" letter, "D" digit
    letters: str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

    def __post_init__(self) -> None:
        if set(self.pattern) - {"L", "D"}:
            raise ValueError(f"format {self.name}: pattern may hold only L and D")


def expand(
    country: str, name: str, spec: str, letters: str | None = None
) -> tuple[PlateFormat, ...]:
    """One format per concrete length of ``spec``, e.g. ``"L{1,3}L{1,2}D{1,4}"``."""
    parts = re.findall(r"([LD])(?:\{(\d+),(\d+)\})?", spec)
    options = [[cls * n for n in range(int(lo or 1), int(hi or 1) + 1)] for cls, lo, hi in parts]
    patterns = dict.fromkeys("".join(choice) for choice in product(*options))
    extra = {} if letters is None else {"letters": letters}
    return tuple(PlateFormat(country, name, pattern, **extra) for pattern in patterns)


_UA = "ABCEHIKMOPTX"
_GB = "ABCDEFGHJKLMNOPRSTUVWXYZ"  # no I or Q in the random letters
FORMATS: dict[str, tuple[PlateFormat, ...]] = {
    "UA": (PlateFormat("UA", "UA 2015 (AA 1234 AA)", "LLDDDDLL", _UA),),
    "FR": (PlateFormat("FR", "FR SIV (AA-123-AA)", "LLDDDLL", "ABCDEFGHJKLMNPQRSTVWXYZ"),),
    "IT": (PlateFormat("IT", "IT (AA 123 AA)", "LLDDDLL", "ABCDEFGHJKLMNPRSTVWXYZ"),),
    "ES": (PlateFormat("ES", "ES 2000 (1234 BCD)", "DDDDLLL", "BCDFGHJKLMNPRSTVWXYZ"),),
    "PL": (PlateFormat("PL", "PL (AB 12345)", "LLDDDDD"),),
    "DE": expand("DE", "DE (PG MN 112)", "L{1,3}L{1,2}D{1,4}"),
    "GB": (
        PlateFormat("GB", "GB 2001 (AB12 CDE)", "LLDDLLL", _GB),
        PlateFormat("GB", "GB prefix (A123 BCD)", "LDDDLLL", _GB),
        *expand("GB", "GB suffix (ABC 123D)", "LLLD{1,3}L", _GB),
    ),
    "IN": expand("IN", "IN (MH 12 DE 1433)", "LLD{1,2}L{1,3}D{1,4}"),
    "US": (
        PlateFormat("US", "US 1ABC234 (CA)", "DLLLDDD"),
        PlateFormat("US", "US ABC1234 (NY, TX, PA)", "LLLDDDD"),
    ),
    "BR": (
        PlateFormat("BR", "BR Mercosul (ABC1D23)", "LLLDLDD"),
        PlateFormat("BR", "BR old (ABC1234)", "LLLDDDD"),
    ),
}
# Regions a gate may name instead of listing countries.
REGIONS = {"EU": ("UA", "FR", "IT", "ES", "PL")}


def formats_for(countries: Iterable[str]) -> tuple[PlateFormat, ...]:
    """The formats of the given countries or regions, in the given priority order."""
    out: list[PlateFormat] = []
    for code in countries:
        for country in REGIONS.get(code, (code,)):
            if country not in FORMATS:
                raise ValueError(f"no plate formats for {country!r}; known: {sorted(FORMATS)}")
            out.extend(f for f in FORMATS[country] if f not in out)
    return tuple(out)


def normalise(raw: str) -> str:
    """Upper-case letters and digits only, Cyrillic look-alikes made Latin."""
    return _NON_ALNUM.sub("", raw.upper().translate(CYRILLIC))


def fold(plate: str) -> str:
    """Map every confusable character to its class (``O``, ``0`` and ``D`` alike …)."""
    return normalise(plate).translate(FOLD)


@dataclass(frozen=True)
class FormatMatch:
    """A read fitted to a format."""

    plate: str
    fmt: PlateFormat
    fixes: int  # characters changed to their look-alike
    dropped: int  # characters outside the plate (a band's country code, a border)
    cost: float  # fixes (near-identical pairs cheap) plus dropped characters
    strong_fixes: int = 0  # fixes between near-identical glyphs (O/0, I/1)


def _fit(text: str, fmt: PlateFormat, max_cost: float) -> tuple[str, int, int, float] | None:
    out = []
    fixes = strong = 0
    cost = 0.0
    for char, cls in zip(text, fmt.pattern, strict=True):
        if cls == "D":
            if char.isdigit():
                out.append(char)
                continue
            fixed = TO_DIGIT.get(char)
        else:
            if char.isalpha() and char in fmt.letters:
                out.append(char)
                continue
            fixed = TO_LETTER.get(char) if char.isdigit() else LETTER_SWAP.get(char)
            if fixed is not None and fixed not in fmt.letters:
                fixed = None
        if fixed is None:
            return None
        fixes += 1
        if (char, fixed) in STRONG:
            strong += 1
            cost += STRONG_COST
        else:
            cost += 1.0
        if cost > max_cost:
            return None
        out.append(fixed)
    return "".join(out), fixes, strong, cost


def _drop_cost(head: str, tail: str, fmt: PlateFormat) -> float:
    """Leading characters may be a band's country code (cheap) or a border; trailing cost more."""
    band = BAND_CODES.get(fmt.country, "")
    lead = (
        0.1 * len(head)
        if band and head.endswith(band) and len(head) <= len(band)
        else 0.5 * len(head)
    )
    return lead + 1.0 * len(tail)


def match_format(
    raw: str, formats: Sequence[PlateFormat], max_fixes: float = 2, max_dropped: int = 3
) -> FormatMatch | None:
    """The cheapest fit of ``raw`` to any of ``formats`` (earlier formats win ties), or None.

    ``max_fixes`` bounds the cost of fixes: a look-alike swap costs 1, a swap
    between near-identical glyphs (``O``/``0``, ``I``/``1``) a quarter.
    """
    text = normalise(raw)
    best: FormatMatch | None = None
    for fmt in formats:
        n = len(fmt.pattern)
        dropped = len(text) - n
        if dropped < 0 or dropped > max_dropped:
            continue
        for start in range(dropped + 1):
            fitted = _fit(text[start : start + n], fmt, max_fixes)
            if fitted is None:
                continue
            plate, fixes, strong, cost = fitted
            cost += _drop_cost(text[:start], text[start + n :], fmt)
            candidate = FormatMatch(plate, fmt, fixes, dropped, cost, strong)
            if best is None or candidate.cost < best.cost:
                best = candidate
    return best
