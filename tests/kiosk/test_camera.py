"""The camera thread: QR codes from a video file through the shared frame sources, debounced."""

from __future__ import annotations

import threading

from kiosk.camera import Debouncer, ScanThread
from mallnet.frames.config import FileCamera
from mallnet.frames.sources import open_source
from tests.conftest import wait_until
from tests.kiosk.fakes import ManualClock
from tests.kiosk.media import blank_frame, qr_frame, write_video


def test_debouncer_reads_a_code_once_while_it_stays_in_view() -> None:
    clock = ManualClock()
    debounce = Debouncer(5.0, clock)
    assert debounce.accept("a")
    for _ in range(10):  # held in front of the camera for 10 s
        clock.advance(1)
        assert not debounce.accept("a")
    assert debounce.accept("b")
    clock.advance(5)
    assert debounce.accept("a")  # taken away and shown again later


def test_a_video_is_scanned_off_the_calling_thread_each_code_once(tmp_path) -> None:
    frames = (
        [blank_frame()] * 3
        + [qr_frame("mallnet:customer:c0001")] * 8
        + [blank_frame()] * 2
        + [qr_frame("mallnet:store:cafe-1")] * 5
    )
    video = write_video(tmp_path / "codes.avi", frames)
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    def on_code(text: str) -> None:
        with lock:
            seen.append((text, threading.current_thread().name))

    source = open_source(FileCamera(type="file", path=video))
    thread = ScanThread(source, on_code, debounce_s=60, max_fps=1000)
    thread.start()
    wait_until(thread.finished.is_set, what="the end of the video")
    thread.stop()
    assert [text for text, _ in seen] == ["mallnet:customer:c0001", "mallnet:store:cafe-1"]
    assert {name for _, name in seen} == {"kiosk-camera"}
    assert thread.frames == len(frames)
