"""Phone numbers typed on the kiosk's keypad: E.164 checks and masking (pure functions).

The keypad gives digits only; the kiosk's configured country code is put in
front unless the shopper typed their own (a leading ``+``, or ``00``). A number
is shown masked (``+380 •• ••• •• 67``) so a passer-by cannot read it.
"""

from __future__ import annotations

import re

E164_RE = re.compile(r"^\+[1-9]\d{7,14}$")
MAX_DIGITS = 15
MASK = "•"


def to_e164(typed: str, country_code: str) -> str | None:
    """The E.164 form of what was typed, or None if it cannot be a phone number.

    ``typed`` holds digits and at most a leading ``+``; ``country_code`` is
    like ``+380``. A national number's leading trunk ``0`` is dropped
    (``0671234567`` in Ukraine is ``+380671234567``).
    """
    text = typed.strip()
    if text.startswith("+"):
        candidate = "+" + text[1:]
    elif text.startswith("00"):
        candidate = "+" + text[2:]
    else:
        candidate = country_code + text.lstrip("0")
    return candidate if E164_RE.fullmatch(candidate) else None


def mask(number: str, visible: int = 2) -> str:
    """A number with every digit but the last ``visible`` hidden, in groups of three
    from the right."""
    digits = number.lstrip("+")
    if not digits:
        return ""
    keep = digits[-visible:] if visible else ""
    hidden = MASK * (len(digits) - len(keep))
    body = hidden + keep
    head = len(body) % 3
    groups = ([body[:head]] if head else []) + [body[i : i + 3] for i in range(head, len(body), 3)]
    return ("+" if number.startswith("+") else "") + " ".join(groups)
