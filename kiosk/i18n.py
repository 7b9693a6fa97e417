"""The kiosk's strings: one JSON file per language in ``kiosk/locales``.

Keys are dotted names (``wallet.title``); values are ``str.format`` templates.
A key missing from a language falls back to English and is logged once, so a
late translation never blanks a button; ``tests/kiosk/test_i18n.py`` keeps
all three files complete.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

from kiosk.errors import KioskError

log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
LANGUAGES: tuple[str, ...] = ("en", "uk", "ru")
DEFAULT_LANGUAGE = "en"


def load_catalog(language: str, directory: Path = LOCALES_DIR) -> dict[str, str]:
    """One language's strings; ``KioskError`` if the file is missing or malformed."""
    path = directory / f"{language}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KioskError(f"cannot load translations {path}: {exc}") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise KioskError(f"{path}: expected an object of strings")
    return data


class Translator:
    """Looks strings up in the current language, falling back to English."""

    def __init__(self, catalogs: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self._catalogs = dict(catalogs or {lang: load_catalog(lang) for lang in LANGUAGES})
        if DEFAULT_LANGUAGE not in self._catalogs:
            raise KioskError("the English catalog is required (the fallback)")
        self.language = DEFAULT_LANGUAGE
        self._warned: set[tuple[str, str]] = set()

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(lang for lang in LANGUAGES if lang in self._catalogs)

    def set_language(self, language: str) -> None:
        if language not in self._catalogs:
            raise KioskError(f"no translations for language {language!r}")
        self.language = language

    def __call__(self, key: str, **values: object) -> str:
        template = self._catalogs[self.language].get(key)
        if template is None:
            if (self.language, key) not in self._warned:
                self._warned.add((self.language, key))
                log.warning("no %s translation for %r; using English", self.language, key)
            template = self._catalogs[DEFAULT_LANGUAGE].get(key, key)
        return template.format(**values) if values else template
