"""The kiosk's behaviour without a window: the view model against its own ports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from kiosk.i18n import Translator
from kiosk.ports import WalletDetails, run_inline
from kiosk.viewmodel import KioskViewModel, Settings
from tests.kiosk.fakes import NOW, FakeCore, FakeSink, ManualClock, offer


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def core() -> FakeCore:
    return FakeCore()


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


def make_vm(core: FakeCore, sink: FakeSink, clock: ManualClock, run_io: Any = run_inline):
    return KioskViewModel(
        core,
        sink,
        Translator(),
        settings=Settings(country_code="+380", store="atrium", idle_timeout_s=60, carousel_s=8),
        clock=clock,
        run_io=run_io,
        wall_clock=lambda: NOW,
    )


def type_number(vm: KioskViewModel, digits: str) -> None:
    for key in digits:
        vm.press(key)


def test_idle_carousel_turns_through_pushed_offers(core, sink, clock) -> None:
    vm = make_vm(core, sink, clock)
    assert vm.view()["offer_title"] == "Collect points in every store"
    vm.set_offers((offer(1), offer(2), offer(3, days=-1)))  # the expired one is not shown
    assert vm.view()["offer_title"] == "Offer 1"
    assert vm.view()["offer_position"] == "1 / 2"
    clock.advance(8)
    vm.tick()
    assert vm.view()["offer_title"] == "Offer 2"
    clock.advance(8)
    vm.tick()
    assert vm.view()["offer_title"] == "Offer 1"


def test_phone_check_in_shows_the_wallet_and_sends_a_check_in(core, sink, clock) -> None:
    vm = make_vm(core, sink, clock)
    vm.start()
    type_number(vm, "0671234567")
    assert vm.view()["typed"] == "• ••• ••• •67"
    vm.submit_phone()
    view = vm.view()
    assert view["screen"] == "wallet"
    assert view["message"] == "You are checked in."
    assert "Mall: 110 points" in view["wallet_lines"]
    assert "cafe: 40 points" in view["wallet_lines"]
    assert view["wallet_expiring"] == "Mall: 30 points expire from 04.12.2026"
    assert view["wallet_recent"] == (
        "28.11.2026: +10 points, Mall · Visit: atrium\n26.11.2026: +40 points, cafe · Receipt"
    )
    assert "67" in view["shopper"] and "4567" not in view["shopper"]
    assert [(token, store) for _, token, store in sink.submitted] == [("customer:c0001", "atrium")]
    assert core.calls == ["find +380671234567", "wallet c0001"]


def test_without_the_cores_summary_the_wallet_shows_next_expiry_dates_only(
    core, sink, clock
) -> None:
    core.wallets["c0001"] = replace(core.wallets["c0001"], details=None)  # an older core
    vm = make_vm(core, sink, clock)
    vm.on_code("mallnet:customer:c0001")
    view = vm.view()
    assert view["wallet_expiring"] == "Mall: some points expire on 04.12.2026"
    assert "mall app" in view["wallet_recent"]  # honest: this core does not give them


def test_a_summary_with_nothing_recent_or_expiring_says_so(core, sink, clock) -> None:
    empty = WalletDetails(recent=(), expiring=(), expiring_days=7)
    core.wallets["c0001"] = replace(core.wallets["c0001"], details=empty)
    vm = make_vm(core, sink, clock)
    vm.on_code("mallnet:customer:c0001")
    view = vm.view()
    assert view["wallet_expiring"] == "Nothing expires in the next 7 days."
    assert view["wallet_recent"] == "No credits yet."


def test_an_incomplete_number_is_refused_without_asking_the_core(core, sink, clock) -> None:
    vm = make_vm(core, sink, clock)
    vm.start()
    type_number(vm, "067")
    vm.submit_phone()
    assert vm.view()["input_error"] == "That is not a complete phone number."
    assert core.calls == [] and sink.submitted == []


def test_keypad_back_clear_and_length_limit(core, sink, clock) -> None:
    vm = make_vm(core, sink, clock)
    vm.start()
    vm.press("+")
    type_number(vm, "1" * 20)
    assert vm.typed == "+" + "1" * 15
    vm.press("back")
    assert vm.typed == "+" + "1" * 14
    vm.press("+")  # only first
    vm.press("x")
    assert vm.typed == "+" + "1" * 14
    vm.press("clear")
    assert vm.typed == ""


def test_an_unknown_number_is_said_and_nothing_is_sent(core, sink, clock) -> None:
    vm = make_vm(core, sink, clock)
    vm.start()
    type_number(vm, "0509999999")
    vm.submit_phone()
    assert vm.view()["screen"] == "message"
    assert "No wallet with this number" in vm.view()["message"]
    assert sink.submitted == []
    vm.dismiss()
    assert vm.screen == "idle"


def test_phone_check_in_while_the_core_is_unreachable_is_queued_honestly(core, sink, clock) -> None:
    core.reachable = False
    sink.online = False
    vm = make_vm(core, sink, clock)
    vm.start()
    type_number(vm, "0671234567")
    vm.submit_phone()
    view = vm.view()
    assert view["message"].startswith("Saved, will be sent when the connection is back")
    assert view["status"].startswith("Offline: 1 saved here")
    assert [(token, store) for _, token, store in sink.submitted] == [
        ("phone:+380671234567", "atrium")
    ]


def test_app_qr_identifies_from_idle_and_repeats_are_ignored(core, sink, clock) -> None:
    vm = make_vm(core, sink, clock)
    vm.on_code("mallnet:customer:c0001")
    assert vm.view()["screen"] == "wallet"
    assert vm.view()["shopper"] == "Hello (with the app)"
    vm.on_code("mallnet:customer:c0001")
    assert len(sink.submitted) == 1
    vm.on_code("some-random-code")  # on the wallet screen: not for us
    assert len(sink.submitted) == 1


def test_a_stray_code_on_the_app_scan_screen_is_explained(core, sink, clock) -> None:
    vm = make_vm(core, sink, clock)
    vm.scan("identify")
    vm.on_code("https://example.com")
    assert vm.view()["message"] == "This is not a mall app code."


def test_receipt_and_store_scans_send_check_ins_for_the_shopper(core, sink, clock) -> None:
    vm = make_vm(core, sink, clock)
    vm.on_code("mallnet:customer:c0001")
    vm.scan("receipt")
    assert vm.view()["scan_title"] == "Scan your receipt"
    vm.on_code("FISCAL;123;45.60")
    assert "Points for receipts are added once the mall supports them" in vm.view()["message"]
    vm.dismiss()
    vm.scan("store")
    vm.on_code("not-a-store")
    assert vm.view()["message"] == "This is not a store's code."
    vm.scan("store")
    vm.on_code("mallnet:store:cafe-1")
    assert vm.view()["message"] == "Check-in at cafe-1 sent to the mall's system."
    assert [(token, store) for _, token, store in sink.submitted] == [
        ("customer:c0001", "atrium"),
        ("receipt:c0001:FISCAL;123;45.60", None),
        ("customer:c0001", "cafe-1"),
    ]


def test_scans_for_points_need_a_shopper_first(core, sink, clock) -> None:
    vm = make_vm(core, sink, clock)
    vm.scan("receipt")
    assert vm.screen == "checkin"
    vm.go("wallet")
    assert vm.screen == "checkin"


def test_offline_receipt_is_saved_and_said_so(core, sink, clock) -> None:
    vm = make_vm(core, sink, clock)
    vm.on_code("mallnet:customer:c0001")
    sink.online = False
    vm.scan("receipt")
    vm.on_code("R-1")
    assert vm.view()["message"] == "Receipt saved, will be sent when the connection is back."
    assert vm.waiting_here == 2
    vm.on_delivered({sink.submitted[1][0]})
    assert vm.waiting_here == 1


def test_claiming_an_offer_says_honestly_that_codes_are_not_available(core, sink, clock) -> None:
    vm = make_vm(core, sink, clock)
    vm.set_offers((offer(1), offer(2)))
    vm.select_offer(1)
    assert vm.view()["offer_title"] == "Offer 2"
    assert vm.view()["offer_until"] == "Valid until 02.12.2026"
    vm.claim_offer()
    assert "cannot be claimed at kiosks yet" in vm.view()["message"]


def test_inactivity_returns_to_idle_and_forgets_the_shopper(core, sink, clock) -> None:
    vm = make_vm(core, sink, clock)
    vm.set_language("uk")
    vm.on_code("mallnet:customer:c0001")
    vm.start()
    type_number(vm, "067")
    clock.advance(59)
    vm.tick()
    assert vm.screen == "checkin"
    clock.advance(1)
    vm.tick()
    view = vm.view()
    assert view["screen"] == "idle"
    assert view["language"] == "en"
    assert vm.shopper is None and vm.wallet is None and vm.typed == "" and vm.message is None
    assert not any("c0001" in str(value) or "67" in str(value) for value in view.values())
    assert not any("c0001" in str(value) for value in vars(vm).values())


def test_a_late_core_answer_after_the_timeout_is_dropped(core, sink, clock) -> None:
    parked: list[tuple[Callable[[], Any], Callable[[Any], None]]] = []
    vm = make_vm(core, sink, clock, run_io=lambda work, done: parked.append((work, done)))
    vm.start()
    type_number(vm, "0671234567")
    vm.submit_phone()
    assert vm.view()["busy"] == "One moment…"
    clock.advance(60)
    vm.tick()
    work, done = parked.pop()
    done(work())
    assert vm.screen == "idle" and vm.shopper is None and sink.submitted == []


def test_touches_keep_the_session_alive(core, sink, clock) -> None:
    vm = make_vm(core, sink, clock)
    vm.start()
    for _ in range(5):
        clock.advance(50)
        vm.press("1")
        vm.tick()
    assert vm.screen == "checkin"


def test_language_switch_changes_every_text(core, sink, clock) -> None:
    vm = make_vm(core, sink, clock)
    vm.on_code("mallnet:customer:c0001")
    english = vm.view()
    vm.set_language("uk")
    ukrainian = vm.view()
    vm.set_language("ru")
    russian = vm.view()
    assert ukrainian["message"] == "Вас відмічено."
    assert russian["message"] == "Вы отмечены."
    assert "ТЦ: 110 балів" in ukrainian["wallet_lines"]
    assert english["wallet_recent"] != ukrainian["wallet_recent"] != russian["wallet_recent"]


def test_listeners_hear_every_change(core, sink, clock) -> None:
    vm = make_vm(core, sink, clock)
    seen: list[str] = []
    vm.subscribe(lambda: seen.append(vm.screen))
    vm.start()
    vm.press("1")
    assert seen == ["checkin", "checkin"]


def test_new_settings_apply_from_now_and_a_shoppers_language_stays(core, sink, clock) -> None:
    vm = make_vm(core, sink, clock)
    vm.on_code("mallnet:customer:c0001")
    vm.configure(replace(vm.settings, idle_timeout_s=10, language="uk"))
    assert vm.t.language == "en"  # the shopper on screen keeps the language they see
    clock.advance(10)
    vm.tick()
    assert vm.screen == "idle" and vm.shopper is None
    assert vm.t.language == "uk"  # the idle screen speaks the configured language
    vm.configure(replace(vm.settings, language="ru"))
    assert vm.view()["language"] == "ru"
