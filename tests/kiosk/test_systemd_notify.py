"""The kiosk under systemd's notify protocol: READY=1 once its window is up, WATCHDOG=1 from
Kivy's own clock; a camera that stops delivering frames is a health problem."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import yaml

from kiosk.camera import ScanThread
from mallnet.broker import DevBroker, free_port
from mallnet.frames.sources import Frame, FrameSource, SourceHealth
from tests.conftest import wait_until
from tests.notify import NotifySocket

KIOSK = "kiosk-watched"


def test_the_kiosk_process_says_ready_and_pings_from_its_ui_loop(broker: DevBroker, tmp_path):
    key = tmp_path / "kiosk.key"
    key.write_text("k" * 40 + "\n")
    key.chmod(0o600)
    config = {
        "kiosk": {"id": KIOSK, "mall": broker.mall},
        "core": {"url": f"http://127.0.0.1:{free_port()}", "api_key_file": str(key)},
        "mqtt": {"port": broker.port, "username": KIOSK, "password": broker.add_user(KIOSK)},
        "queue": {"path": str(tmp_path / "queue.sqlite")},
        "screen": {"fullscreen": False, "width": 640, "height": 400},
    }
    path = tmp_path / "kiosk.yaml"
    path.write_text(yaml.safe_dump(config))
    notify = NotifySocket(tmp_path / "notify.sock")
    env = {
        **os.environ,
        **notify.env(),
        "SDL_VIDEODRIVER": "offscreen",
        "KIVY_HOME": str(tmp_path / "kivy-home"),
    }
    log = (tmp_path / "kiosk.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mallnet.cli", "kiosk", "run", "--config", str(path)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        assert "kiosk" in notify.wait_for("READY", "1", timeout=90)["STATUS"]
        notify.pings(3)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        notify.close()
        log.close()


class StalledCamera(FrameSource):
    """Delivers a few frames, then blocks in ``read`` (a camera that stopped answering)."""

    def __init__(self, frames: int) -> None:
        self.left = frames
        self.release = threading.Event()
        import numpy as np

        self._image = np.zeros((120, 160, 3), np.uint8)

    def read(self) -> Frame | None:
        if self.left <= 0:
            self.release.wait()
            self.finished = True
            return None
        self.left -= 1
        return Frame(self._image, 0.0, self.left)

    def health(self) -> SourceHealth:
        return SourceHealth(True, 0, 0, 0, None, None)


def test_a_camera_that_stops_delivering_frames_is_a_kiosk_health_problem(tmp_path: Path):
    source = StalledCamera(frames=3)
    scan = ScanThread(source, lambda _code: None, max_fps=1000)
    scan.start()
    try:
        wait_until(lambda: scan.frames == 3, what="the first frames")
        assert scan.problem(stall_s=60) is None
        wait_until(lambda: scan.problem(stall_s=0.2) is not None, what="the stall to show")
        assert "no frame" in str(scan.problem(stall_s=0.2))
    finally:
        source.release.set()
        scan.stop()
    assert scan.problem(stall_s=0.2) is None  # the source ended: nothing to watch
