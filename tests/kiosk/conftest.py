"""Kivy for the kiosk's UI tests: offscreen (SDL_VIDEODRIVER=offscreen, no DISPLAY), a private
KIVY_HOME, no argument parsing; one real window per session, stepped by ``EventLoop.idle()``.

Kivy reads these variables when it is first imported, so they are set here, before any test
module imports it, and never by production code.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["KIVY_NO_ARGS"] = "1"
os.environ["KIVY_NO_CONSOLELOG"] = "1"
os.environ["KIVY_NO_FILELOG"] = "1"
os.environ["KIVY_HOME"] = tempfile.mkdtemp(prefix="kivy-home-")
atexit.register(shutil.rmtree, os.environ["KIVY_HOME"], True)
os.environ["SDL_VIDEODRIVER"] = "offscreen"
os.environ.pop("DISPLAY", None)

WIDTH, HEIGHT = 1280, 800


class Screen:
    """Drives the real Kivy app: taps by visible text, typed text, keys, screenshots."""

    def __init__(self, ui: Any) -> None:
        self.ui = ui

    def step(self, frames: int = 4) -> None:
        from kivy.base import EventLoop

        for _ in range(frames):
            EventLoop.idle()

    @property
    def current(self) -> str:
        return str(self.ui.root.current)

    def widgets(self) -> list[Any]:
        return list(self.ui.root.current_screen.walk())

    def texts(self) -> list[str]:
        """Every non-empty text shown on the current screen."""
        from kivy.uix.label import Label

        return [
            w.text
            for w in self.widgets()
            if isinstance(w, Label) and w.text and w.opacity > 0 and w.height > 0
        ]

    def shows(self, fragment: str) -> bool:
        return any(fragment in text for text in self.texts())

    def button(self, text: str) -> Any:
        from kivy.uix.button import Button

        found = [w for w in self.widgets() if isinstance(w, Button) and w.text == text]
        assert len(found) == 1, f"{len(found)} buttons {text!r} on {self.current}: {self.texts()}"
        return found[0]

    def tap(self, text: str) -> None:
        """Touch the button showing ``text`` in its middle, as a finger would."""
        from kivy.tests.common import UnitTestTouch

        button = self.button(text)
        x, y = button.to_window(*button.center)
        assert 0 <= x <= WIDTH and 0 <= y <= HEIGHT, f"{text!r} is off screen at {(x, y)}"
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        touch.touch_up()
        self.step()

    def type(self, text: str) -> None:
        from kivy.core.window import Window

        Window.dispatch("on_textinput", text)
        self.step()

    def key(self, code: int) -> None:
        from kivy.core.window import Window

        Window.dispatch("on_key_down", code, 0, None, [])
        self.step()

    def screenshot(self, path: Path) -> Path:
        """The window's real pixels as a PNG at ``path``."""
        from kivy.core.window import Window

        self.step()
        path.parent.mkdir(parents=True, exist_ok=True)
        made = Path(Window.screenshot(name=str(path.with_suffix("")) + "-%(counter)s.png"))
        made.replace(path)
        return path


@pytest.fixture(scope="session")
def kiosk_window() -> Iterator[Any]:
    """The real app, built once per session (Kivy has one window per process)."""
    from kivy.config import Config

    Config.set("graphics", "width", str(WIDTH))
    Config.set("graphics", "height", str(HEIGHT))
    Config.set("kivy", "exit_on_escape", "0")
    from kiosk.i18n import Translator
    from kiosk.ports import run_inline
    from kiosk.ui.app import KioskUi
    from kiosk.ui_bridge import UiInbox
    from kiosk.viewmodel import KioskViewModel
    from tests.kiosk.fakes import FakeCore, FakeSink, ManualClock

    inbox = UiInbox()
    vm = KioskViewModel(
        FakeCore(), FakeSink(), Translator(), clock=ManualClock(), run_io=run_inline
    )
    ui = KioskUi(vm, inbox)
    ui._run_prepare()
    try:
        yield ui
    finally:
        ui.stop()
        inbox.close()


@pytest.fixture
def screen(kiosk_window: Any) -> Screen:
    return Screen(kiosk_window)
