"""The kiosk's translation files: every key in all three languages, placeholders intact."""

from __future__ import annotations

import json
import re
import string

import pytest

from kiosk.errors import KioskError
from kiosk.i18n import LANGUAGES, LOCALES_DIR, Translator, load_catalog

KEY_RE = re.compile(r"""(?:t|self\.t)\(\s*["']([a-z_]+\.[a-z_]+)["']""")


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_language_has_every_key_with_the_same_placeholders() -> None:
    catalogs = {lang: load_catalog(lang) for lang in LANGUAGES}
    english = catalogs["en"]
    for lang, catalog in catalogs.items():
        assert set(catalog) == set(english), f"{lang}: {set(english) ^ set(catalog)}"
        for key, text in catalog.items():
            assert text.strip(), f"{lang}: {key} is empty"
            assert _fields(text) == _fields(english[key]), f"{lang}: {key} placeholders differ"


def test_every_key_the_code_and_layout_use_exists() -> None:
    english = load_catalog("en")
    root = LOCALES_DIR.parent
    used: set[str] = set()
    for path in [*root.rglob("*.py"), *root.rglob("*.kv")]:
        used |= set(KEY_RE.findall(path.read_text(encoding="utf-8")))
        used |= set(re.findall(r"""app\.tr\(["']([a-z_]+\.[a-z_]+)["']""", path.read_text()))
    assert used, "found no translation keys in kiosk/"
    assert used <= set(english), sorted(used - set(english))


def test_switching_language_and_fallback_to_english(caplog: pytest.LogCaptureFixture) -> None:
    t = Translator(
        {"en": {"a.b": "Hello {who}", "c.d": "Only English"}, "uk": {"a.b": "Вітаю {who}"}}
    )
    assert t("a.b", who="X") == "Hello X"
    t.set_language("uk")
    assert t("a.b", who="X") == "Вітаю X"
    assert t("c.d") == "Only English"
    assert "no uk translation" in caplog.text
    with pytest.raises(KioskError):
        t.set_language("de")


def test_a_broken_catalog_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "en.json").write_text(json.dumps({"a.b": 3}))
    with pytest.raises(KioskError, match="object of strings"):
        load_catalog("en", tmp_path)
    with pytest.raises(KioskError, match="cannot load"):
        load_catalog("uk", tmp_path)
