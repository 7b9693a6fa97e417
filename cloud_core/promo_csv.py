"""A partner's list of promo codes as CSV: a pure parser (bytes in, rows and problems out).

The format (docs/core.md "Promo-code pools"):

* UTF-8 (a byte-order mark is allowed), lines ending in LF or CRLF;
* the code in the first column; other columns are ignored (a partner's own notes);
* a first row whose first cell is ``code`` (any case) is a header and skipped;
* blank lines are skipped;
* a code is 3–64 characters of ``A–Z a–z 0–9 - _ . / + #``, kept as written (codes are
  case-sensitive: ``ab12`` and ``AB12`` are two codes).

``check_envelope`` refuses a body that is not such a file at all (not UTF-8, not CSV, no
code in it) before anything is written; ``parse`` judges each row: a good code, a duplicate
of an earlier row of the same file, or a bad row with its line number and the reason.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from cloud_core.errors import InvalidInput

CODE_PATTERN = re.compile(r"^[A-Za-z0-9\-_./+#]{3,64}$")
HEADER = "code"


@dataclass(frozen=True)
class Row:
    """One line of the file as the import sees it."""

    line: int
    kind: Literal["code", "duplicate", "bad"]
    code: str = ""
    reason: str = ""


def _text(body: bytes) -> str:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the file is not UTF-8 text (byte {exc.start})") from None
    if "\x00" in text:
        raise InvalidInput("the file is not text (it holds NUL bytes)")
    return text


def _rows(text: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for cells in reader:
            yield reader.line_num, cells
    except csv.Error as exc:
        raise InvalidInput(f"not CSV: line {reader.line_num}: {exc}") from None


def check_envelope(body: bytes) -> int:
    """How many data rows the file has (header and blank lines not counted); ``InvalidInput``
    if it is not a UTF-8 CSV with at least one row."""
    count = 0
    for index, (_line, cells) in enumerate(_rows(_text(body))):
        if not cells or all(not c.strip() for c in cells):
            continue
        if index == 0 and cells[0].strip().lower() == HEADER:
            continue
        count += 1
    if count == 0:
        raise InvalidInput("the file holds no codes (one code per line, in the first column)")
    return count


def parse(body: bytes) -> Iterator[Row]:
    """Every data row of a file ``check_envelope`` accepted, in order."""
    seen: set[str] = set()
    for index, (line, cells) in enumerate(_rows(_text(body))):
        if not cells or all(not c.strip() for c in cells):
            continue
        code = cells[0].strip()
        if index == 0 and code.lower() == HEADER:
            continue
        if not code:
            yield Row(line, "bad", reason="no code in the first column")
        elif len(code) > 64:
            yield Row(line, "bad", reason=f"code longer than 64 characters ({len(code)})")
        elif not CODE_PATTERN.match(code):
            yield Row(
                line,
                "bad",
                reason="a code is 3-64 characters of A-Z a-z 0-9 - _ . / + #",
            )
        elif code in seen:
            yield Row(line, "duplicate", code=code, reason="already on an earlier line")
        else:
            seen.add(code)
            yield Row(line, "code", code=code)
