"""Results from other threads reach the UI thread only when it drains its inbox."""

from __future__ import annotations

import threading

from kiosk.ui_bridge import UiInbox
from tests.conftest import wait_until


def test_work_runs_off_thread_and_its_result_comes_back_on_drain() -> None:
    inbox = UiInbox()
    results: list[tuple[object, str]] = []
    ui_thread = threading.current_thread().name
    try:

        def where(result: object) -> None:
            results.append((result, threading.current_thread().name))

        inbox.run_io(lambda: threading.current_thread().name, where)
        inbox.run_io(lambda: 1 // 0, lambda r: where(type(r).__name__))
        drained = 0

        def drained_two() -> bool:
            nonlocal drained
            drained += inbox.drain()
            return drained == 2

        wait_until(drained_two, what="both results")
        worker, ran_on = results[0]
        assert str(worker).startswith("kiosk-io") and ran_on == ui_thread
        assert results[1] == ("ZeroDivisionError", ui_thread)
    finally:
        inbox.close()


def test_a_failing_callback_does_not_stop_the_others() -> None:
    inbox = UiInbox()
    seen: list[int] = []
    inbox.post(lambda: seen.append(1))

    def broken() -> None:
        raise RuntimeError("a bug in a callback")

    inbox.post(broken)
    inbox.post(lambda: seen.append(3))
    assert inbox.drain() == 3
    assert seen == [1, 3]
    inbox.close()
