"""The gate under systemd's notify protocol: READY=1, WATCHDOG=1 from its own loop while its
cameras deliver frames; a hung or dead camera stops the pings (systemd then restarts it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from edge_node.camera.app import GateApp
from edge_node.camera.config import load_gate_config
from mallnet.frames.sources import Frame, FrameSource, SourceHealth
from mallnet.systemd import Notifier
from tests.edge_node.helpers import GATE_NODE, gate_config
from tests.edge_node.test_camera_app import idle_frame
from tests.notify import WATCHDOG_USEC, NotifySocket

QUIET_S = 2 * WATCHDOG_USEC / 1e6


class HangingCamera(FrameSource):
    """Delivers frames until ``hang`` is set, then blocks inside ``read`` like a camera driver
    that stopped answering, until ``hang`` is cleared."""

    def __init__(self) -> None:
        self.hang = threading.Event()
        self.free = threading.Event()
        self.free.set()
        self.frames = 0
        self._image = idle_frame()

    def read(self) -> Frame | None:
        if self.hang.is_set():
            self.free.wait()
        self.frames += 1
        return Frame(self._image, float(self.frames), self.frames)

    def health(self) -> SourceHealth:
        return SourceHealth(True, self.frames, 0, 0, None, None)


def test_a_hung_camera_read_stops_the_gates_pings(broker, tmp_path: Path) -> None:
    config = load_gate_config(gate_config(tmp_path, broker, broker.add_user(GATE_NODE), tmp_path))
    notify = NotifySocket(tmp_path / "notify.sock")
    camera = HangingCamera()
    app = GateApp(
        config,
        reader=object(),  # type: ignore[arg-type]  # idle frames: no motion, never read
        sources=[camera],
        notifier=Notifier(str(notify.path), WATCHDOG_USEC),
    )
    failures: list[BaseException] = []

    def scenario() -> None:  # the gate's loop owns the main thread (it installs signals)
        try:
            assert "north-in" in notify.wait_for("READY", "1")["STATUS"]
            notify.pings(3)
            camera.free.clear()
            camera.hang.set()  # the driver stops answering: the loop hangs in read()
            notify.silence(quiet_s=QUIET_S)
            camera.hang.clear()
            camera.free.set()
            notify.pings(2)  # frames again, pings again
        except BaseException as exc:
            failures.append(exc)
        finally:
            camera.free.set()
            app.request_stop()

    driver = threading.Thread(target=scenario)
    driver.start()
    try:
        assert app.run() == 0
    finally:
        driver.join(60)
        notify.close()
    if failures:
        raise failures[0]


def test_the_gate_process_stops_pinging_when_its_camera_delivers_nothing(broker, tmp_path):
    """`mallnet edge gate` with an unplugged camera: READY, then no pings once no frame came
    for `health.stall_s` (the OpenCV source keeps retrying; systemd restarts the service)."""
    path = gate_config(
        tmp_path,
        broker,
        broker.add_user(GATE_NODE),
        tmp_path,
        lanes=[
            {
                "gate": "north-in",
                "direction": "entry",
                "camera": {
                    "type": "opencv",
                    "device": str(tmp_path / "unplugged.avi"),
                    "reconnect_min_s": 0.2,
                    "reconnect_max_s": 0.5,
                },
            }
        ],
        health={"interval_s": 0.2, "stall_s": 1.0},
        at_end="idle",
    )
    notify = NotifySocket(tmp_path / "notify.sock")
    log = (tmp_path / "gate.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mallnet.cli", "edge", "gate", "--config", str(path)],
        env={**os.environ, **notify.env()},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        notify.wait_for("READY", "1", timeout=60)
        before = notify.silence(quiet_s=QUIET_S, within_s=60)
        statuses = [m.get("STATUS", "") for m in [*before, *notify.messages]]
        assert any("camera north-in delivered no frame" in s for s in statuses), statuses
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING", "1")
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        notify.close()
        log.close()
