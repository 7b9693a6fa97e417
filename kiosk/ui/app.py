"""The Kivy application: a thin shell that shows ``KioskViewModel.view()`` and forwards touches.

Layout lives in ``kiosk.kv``. Besides touches, a USB keyboard (or a keyboard
wedge) can type the phone number: digits and ``+`` go to the keypad, Enter
submits, Backspace deletes. The view model's clock ticks once a second; the
``UiInbox`` (results from the camera, MQTT and HTTP threads) is drained twenty
times a second, on this thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.factory import Factory
from kivy.lang import Builder
from kivy.properties import DictProperty, StringProperty

from kiosk.ui_bridge import UiInbox
from kiosk.viewmodel import KioskViewModel
from mallnet.systemd import Watchdog

KV_FILE = Path(__file__).with_name("kiosk.kv")
ENTER_KEYS = (13, 271)  # Return and keypad Enter
BACKSPACE = 8


class KioskUi(App):  # type: ignore[misc]  # Kivy ships no type hints
    view = DictProperty({})
    lang = StringProperty("en")

    def __init__(
        self,
        vm: KioskViewModel,
        inbox: UiInbox,
        watchdog: Watchdog | None = None,
        **kwargs: Any,
    ) -> None:
        """``watchdog``: systemd's; READY once the window is up, then pinged from Kivy's own
        clock (a hung UI loop sends nothing)."""
        super().__init__(**kwargs)
        self.title = "mallnet kiosk"
        self.inbox = inbox
        self.watchdog = watchdog
        self.vm = vm
        self.view = vm.view()  # every key kv reads exists before the widgets are built
        self._events: list[Any] = []

    def build(self) -> Any:
        if str(KV_FILE) not in Builder.files:
            Builder.load_file(str(KV_FILE))
        root = Factory.KioskRoot()
        from kivy.uix.screenmanager import NoTransition

        root.transition = NoTransition()
        self.attach(self.vm, root)
        Window.bind(on_textinput=self._on_text, on_key_down=self._on_key)
        self._events = [
            Clock.schedule_interval(lambda _dt: self.vm.tick(), 1.0),
            Clock.schedule_interval(lambda _dt: self.inbox.drain(), 0.05),
        ]
        watchdog = self.watchdog
        if watchdog is not None:

            def ping(_dt: float) -> None:  # returning False would unschedule it (Kivy)
                watchdog.tick()

            Clock.schedule_once(lambda _dt: watchdog.ready("kiosk showing its screen"), 0)
            self._events.append(Clock.schedule_interval(ping, 0.25))
        return root

    def attach(self, vm: KioskViewModel, root: Any = None) -> None:
        """Show this view model (the composition root's; tests attach a fresh one per test)."""
        self.vm = vm
        vm.subscribe(lambda: self.refresh() if self.vm is vm else None)
        self.refresh(root)

    def refresh(self, root: Any = None) -> None:
        view = self.vm.view()
        self.lang = self.vm.t.language
        self.view = view
        root = root or self.root
        if root is not None and root.current != view["screen"]:
            root.current = view["screen"]

    def tr(self, key: str, _lang: str) -> str:
        """A translated label; ``_lang`` is there so kv re-evaluates when it changes."""
        return self.vm.t(key)

    def _on_text(self, _window: Any, text: str) -> None:
        if self.vm.screen != "checkin":
            return
        for char in text:
            if char.isdigit() or char == "+":
                self.vm.press(char)

    def _on_key(self, _window: Any, key: int, *_args: Any) -> bool:
        if self.vm.screen != "checkin":
            return False
        if key in ENTER_KEYS:
            self.vm.submit_phone()
            return True
        if key == BACKSPACE:
            self.vm.press("back")
            return True
        return False

    def on_stop(self) -> None:
        for event in self._events:
            event.cancel()
        Window.unbind(on_textinput=self._on_text, on_key_down=self._on_key)
