"""The real Kivy kiosk, offscreen: touches and typed text, asserting on what the screen shows.

Every screen is saved in all three languages (``test_screenshots_of_every_screen``) to
``$KIOSK_SCREENSHOTS_DIR`` when set (the docs use ``docs/screenshots``), else to a temp folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from kiosk.i18n import LANGUAGES, Translator
from kiosk.ports import run_inline
from kiosk.viewmodel import KioskViewModel, Settings
from tests.conftest import wait_until
from tests.kiosk.conftest import Screen
from tests.kiosk.fakes import NOW, FakeCore, FakeSink, ManualClock, offer

LANG_BUTTON = {"en": "English", "uk": "Українська", "ru": "Русский"}


class Kiosk:
    def __init__(self, screen: Screen) -> None:
        self.core = FakeCore()
        self.sink = FakeSink()
        self.clock = ManualClock()
        self.vm = KioskViewModel(
            self.core,
            self.sink,
            Translator(),
            settings=Settings(store="atrium", idle_timeout_s=60),
            clock=self.clock,
            run_io=run_inline,
            wall_clock=lambda: NOW,
        )
        self.vm.set_offers(
            (
                offer(1, days=2),
                offer(2, days=9),
            )
        )
        screen.ui.attach(self.vm)
        screen.step()


@pytest.fixture
def kiosk(screen: Screen) -> Kiosk:
    return Kiosk(screen)


def t(key: str, lang: str = "en", **values: Any) -> str:
    translator = Translator()
    translator.set_language(lang)
    return translator(key, **values)


def test_idle_shows_the_pushed_offers_and_starts_on_a_touch(screen: Screen, kiosk: Kiosk) -> None:
    assert screen.current == "idle"
    assert screen.shows("Offer 1") and screen.shows("1 / 2")
    screen.tap("Touch to start")
    assert screen.current == "checkin"
    assert screen.shows("Type your phone number")


def test_phone_check_in_on_the_keypad_shows_the_wallet(screen: Screen, kiosk: Kiosk) -> None:
    screen.tap("Touch to start")
    for digit in "0671234567":
        screen.tap(digit)
    assert screen.shows("• ••• ••• •67")
    assert not screen.shows("0671234567")
    screen.tap("OK")
    assert screen.current == "wallet"
    assert screen.shows("You are checked in.")
    assert screen.shows("Mall: 110 points")
    assert screen.shows("Mall: 30 points expire from 04.12.2026")
    assert screen.shows("+40 points, cafe · Receipt")
    assert [token for _, token, _ in kiosk.sink.submitted] == ["customer:c0001"]


def test_a_typed_number_and_enter_work_like_the_keypad(screen: Screen, kiosk: Kiosk) -> None:
    screen.tap("Touch to start")
    screen.type("067123456x7")
    screen.key(8)  # backspace
    screen.type("7")
    assert screen.shows("• ••• ••• •67")
    screen.key(13)
    assert screen.current == "wallet"


def test_an_unknown_number_and_a_short_one_are_explained(screen: Screen, kiosk: Kiosk) -> None:
    screen.tap("Touch to start")
    screen.type("067")
    screen.tap("OK")
    assert screen.shows("That is not a complete phone number.")
    screen.type("0000000")
    screen.tap("OK")
    assert screen.current == "message"
    assert screen.shows("No wallet with this number")
    screen.tap("OK")
    assert screen.current == "idle"


def test_offline_check_in_says_it_is_saved(screen: Screen, kiosk: Kiosk) -> None:
    kiosk.core.reachable = False
    kiosk.sink.online = False
    screen.tap("Touch to start")
    screen.type("0671234567")
    screen.tap("OK")
    assert screen.shows("Saved, will be sent when the connection is back.")
    assert screen.shows("Offline: 1 saved here, sent when the connection is back")


def test_language_buttons_switch_every_text(screen: Screen, kiosk: Kiosk) -> None:
    screen.tap("Українська")
    assert screen.shows("Торкніться, щоб почати")
    screen.tap("Торкніться, щоб почати")
    assert screen.shows("Введіть номер телефону")
    screen.tap("Русский")
    assert screen.shows("Введите номер телефона")
    assert not screen.shows("Type your phone number")


def test_receipt_scan_and_offers_from_the_wallet(screen: Screen, kiosk: Kiosk) -> None:
    kiosk.vm.on_code("mallnet:customer:c0001")
    screen.step()
    assert screen.current == "wallet"
    screen.tap("Scan receipt")
    assert screen.shows("Scan your receipt")
    kiosk.vm.on_code("FISCAL;42")
    screen.step()
    assert screen.shows("Receipt sent to the mall's system.")
    screen.tap("OK")
    screen.tap("Offers")
    assert screen.shows("Offer 1")
    screen.tap(">")
    assert screen.shows("Offer 2") and screen.shows("2 / 2")
    screen.tap("Get code")
    assert screen.shows("cannot be claimed at kiosks yet")


def test_a_code_from_the_camera_thread_reaches_the_screen_through_the_inbox(
    screen: Screen, kiosk: Kiosk
) -> None:
    import threading

    camera = threading.Thread(
        target=lambda: screen.ui.inbox.post(lambda: kiosk.vm.on_code("mallnet:customer:c0001"))
    )
    camera.start()
    camera.join()
    assert screen.current == "idle"  # nothing happens off the UI thread

    def shown() -> bool:
        screen.step(1)
        return screen.current == "wallet" and screen.shows("Mall: 110 points")

    wait_until(shown, what="the wallet after the camera's code")


def test_inactivity_wipes_the_shopper_from_the_screen(screen: Screen, kiosk: Kiosk) -> None:
    screen.tap("Touch to start")
    screen.type("0671234567")
    screen.tap("OK")
    assert screen.shows("Mall: 110 points")
    kiosk.clock.advance(61)
    kiosk.vm.tick()
    screen.step()
    assert screen.current == "idle"
    everything = " ".join(
        w.text for s in screen.ui.root.screens for w in s.walk() if getattr(w, "text", "")
    )
    assert "110" not in everything and "67" not in everything and "c0001" not in everything


def _open(kiosk: Kiosk, screen: Screen, name: str) -> None:
    vm = kiosk.vm
    if name == "idle":
        return
    if name == "checkin":
        vm.start()
        for digit in "067123":
            vm.press(digit)
    elif name == "wallet":
        vm.on_code("mallnet:customer:c0001")
    elif name == "offers":
        vm.go("offers")
    elif name == "scan":
        vm.on_code("mallnet:customer:c0001")
        vm.scan("receipt")
    elif name == "message":
        vm.on_code("mallnet:customer:c0001")
        vm.scan("store")
        vm.on_code("mallnet:store:cafe-1")
    elif name == "offline":
        kiosk.core.reachable = False
        kiosk.sink.online = False
        vm.start()
        for digit in "0671234567":
            vm.press(digit)
        vm.submit_phone()
    screen.step()


SCREENS = ("idle", "checkin", "wallet", "offers", "scan", "message", "offline")


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("name", SCREENS)
def test_screenshots_of_every_screen(screen: Screen, name: str, lang: str, tmp_path: Path) -> None:
    kiosk = Kiosk(screen)
    screen.tap(LANG_BUTTON[lang])
    _open(kiosk, screen, name)
    expected = "message" if name == "offline" else name
    assert screen.current == expected
    for button in ("lang.en", "lang.uk", "lang.ru"):
        assert screen.shows(t(button))  # the language switch is on every screen
    folder = Path(os.environ.get("KIOSK_SCREENSHOTS_DIR", tmp_path))
    shot = screen.screenshot(folder / f"kiosk-{name}-{lang}.png")
    assert shot.stat().st_size > 10_000
