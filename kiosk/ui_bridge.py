"""Handing work to and from the UI thread, without Kivy (so it is tested without a window).

Camera, MQTT and HTTP results arrive on other threads; they ``post`` a callable
here and the UI thread runs it in ``drain`` (the Kivy app calls ``drain``
twenty times a second). ``run_io`` is the view model's ``IoRunner``: the work
runs on a small pool, its result comes back through ``post``.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class UiInbox:
    """A thread-safe inbox of callables the UI thread runs in order."""

    def __init__(self, workers: int = 2) -> None:
        self._inbox: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kiosk-io")

    def post(self, call: Callable[[], None]) -> None:
        """Run ``call`` on the UI thread soon (callable from any thread)."""
        self._inbox.put(call)

    def drain(self) -> int:
        """Run everything posted so far (on the UI thread); returns how many ran."""
        ran = 0
        while True:
            try:
                call = self._inbox.get_nowait()
            except queue.Empty:
                return ran
            try:
                call()
            except Exception:  # one bad callback must not stop the screen
                log.exception("a UI callback failed")
            ran += 1

    def run_io(self, work: Callable[[], T], done: Callable[[T | Exception], None]) -> None:
        def job() -> None:
            try:
                result: T | Exception = work()
            except Exception as exc:
                result = exc
            self.post(lambda: done(result))

        self._pool.submit(job)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
