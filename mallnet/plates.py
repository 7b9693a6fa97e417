"""The one table of characters plate OCR confuses, shared by the gate's reader and the core.

The gate's reader (``edge_node.camera.formats``) fixes a read by position with
``TO_DIGIT``/``TO_LETTER``; the core matches a read to a registered plate only when
every difference is one of these look-alikes (``cloud_core.parking.match_plate``).
Both take the pairs from here, so what the reader may have swapped is exactly what the
core forgives.
"""

from __future__ import annotations

# Letter ↔ digit look-alikes as OCR confuses them on plates.
TO_DIGIT = {
    "O": "0", "Q": "0", "D": "0", "U": "0",
    "I": "1", "L": "1", "J": "1",
    "Z": "2", "S": "5", "B": "8", "G": "6", "A": "4", "T": "7",
}  # fmt: skip
TO_LETTER = {"0": "O", "1": "I", "2": "Z", "5": "S", "8": "B", "6": "G", "4": "A", "7": "T"}

# Every character to its look-alike class (the class's digit): ``O``, ``Q``, ``D``, ``U``
# and ``0`` alike, ``I``, ``L``, ``J`` and ``1`` alike, ``A`` and ``4`` …
FOLD = str.maketrans("".join(TO_DIGIT), "".join(TO_DIGIT.values()))


def normalise_plate(plate: str) -> str:
    """Upper-case ASCII letters and digits only."""
    return "".join(ch for ch in plate.upper() if ch.isascii() and ch.isalnum())


def fold_plate(plate: str) -> str:
    """A plate with every confusable character replaced by its class."""
    return normalise_plate(plate).translate(FOLD)
