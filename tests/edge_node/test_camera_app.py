"""The gate node: image files → plates → parking events → real broker → receipts; crops; config."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from edge_node.camera.app import GateApp
from edge_node.camera.config import load_gate_config
from edge_node.camera.events import CropStore
from edge_node.camera.synth import make_sample
from mallnet.broker import DevBroker
from mallnet.cli import main
from mallnet.errors import ConfigError
from mallnet.frames.config import OpenCVCamera
from mallnet.frames.sources import OpenCVSource
from mallnet.mqtt import Inbound, MqttClient
from mallnet.wire import decode, encode
from mallnet.wire.payloads import HealthReport, ParkingBatch, Receipt
from mallnet.wire.topics import HEALTH, PARKING, RECEIPTS
from tests.conftest import settings_for, wait_until
from tests.edge_node.helpers import GATE_NODE, gate_config


def idle_frame(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frame = np.full((720, 1280, 3), 105, np.uint8)
    frame[420:] = 65
    for y in rng.integers(0, 720, 8):
        frame[int(y) : int(y) + 3] = rng.integers(30, 200)
    return frame


def write_pass_frames(folder: Path, plates: list[tuple[str, str]]) -> None:
    """idle, then for each (style, plate): the car for 3 frames and 3 idle frames."""
    folder.mkdir(parents=True)
    frames = [idle_frame()] * 2
    for i, (style, plate) in enumerate(plates):
        car = make_sample(300 + i, style, "clear", plate=plate).image
        frames += [car] * 3 + [idle_frame()] * 3
    for n, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{n:04d}.png"), frame)


class ReceiptingCore:
    """Test-side core: records parking batches and receipts them (after 'committing')."""

    def __init__(self, broker: DevBroker) -> None:
        self.batches: list[ParkingBatch] = []
        self.health: list[HealthReport] = []
        self.client = MqttClient(
            settings_for(broker, "core-test"),
            "core-test",
            subscriptions=[(PARKING.filter(broker.mall), 1), (HEALTH.filter(broker.mall), 0)],
            on_message=self._on_message,
        )
        self.mall = broker.mall

    def _on_message(self, message: Inbound) -> None:
        decoded = decode(message.topic, message.payload).message
        if isinstance(decoded, HealthReport):
            self.health.append(decoded)
            return
        assert isinstance(decoded, ParkingBatch)
        self.batches.append(decoded)
        receipt = Receipt(ts=datetime.now(UTC), ids=tuple(e.id for e in decoded.events))
        self.client.publish(RECEIPTS.topic(self.mall, decoded.node), encode(receipt))


def test_gate_node_reads_each_car_once_and_the_core_receipts_them(broker, tmp_path):
    frames = tmp_path / "frames"
    write_pass_frames(frames, [("UA", "KA1234TX"), ("US", "7ABC123")])
    core = ReceiptingCore(broker)
    core.client.start()
    assert core.client.wait_subscribed(10)
    password = broker.add_user(GATE_NODE)
    config = load_gate_config(gate_config(tmp_path, broker, password, frames))
    app = GateApp(config)
    try:
        assert app.run() == 0  # at_end: exit → returns once every event is receipted
        wait_until(lambda: bool(core.health), what="a heartbeat")
    finally:
        core.client.stop()
    events = [e for batch in core.batches for e in batch.events]
    assert [(e.kind, e.gate, e.plate, e.country) for e in events] == [
        ("entry", "north-in", "KA1234TX", "UA"),
        ("entry", "north-in", "7ABC123", "US"),
    ]
    assert all(e.confidence >= 0.6 for e in events)
    assert [e.seq for e in events] == [1, 2]
    assert all(batch.node == GATE_NODE for batch in core.batches)
    assert core.health[-1].camera_ok is True
    # The crops stayed on the node, one per event, named by the event id.
    crops = CropStore(tmp_path / "crops", 3600)
    for event in events:
        path = crops.find(event.id)
        assert path is not None and cv2.imread(str(path)) is not None
    # The outbox is empty: every event was receipted.
    import sqlite3

    with sqlite3.connect(tmp_path / "outbox.sqlite") as db:
        assert db.execute("SELECT count(*) FROM events").fetchone() == (0,)


def test_crops_are_pruned_after_the_retention(tmp_path):
    store = CropStore(tmp_path / "c", retention_s=3600)
    patch = np.full((20, 60, 3), 200, np.uint8)
    old = store.save("019aaf3c-4a10-7c3e-9f21-6b0e2d4c8a11", patch, now=1_000_000)
    new = store.save("019aaf3c-4a11-7000-8a5b-2f9d0c1e3b42", patch, now=1_003_000)
    assert old is not None and new is not None
    assert store.prune(now=1_004_000) == 1
    assert not old.exists() and new.exists()
    assert CropStore(tmp_path / "none", retention_s=0).save("x", patch, now=1) is None


def test_a_lost_camera_shows_in_health(tmp_path, broker):
    password = broker.add_user(GATE_NODE)
    config = load_gate_config(gate_config(tmp_path, broker, password, tmp_path))
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    source = OpenCVSource(
        OpenCVCamera(type="opencv", device=str(tmp_path / "no-such-camera.avi")),
        clock=lambda: clock[0],
        sleep=sleep,
    )
    app = GateApp(config, sources=[source])
    try:
        assert app.step() == 0
        assert app.camera_ok() is False
        assert source.health().failures == 1
    finally:
        app.outbox.close()


def test_a_frame_the_source_cannot_hand_over_is_skipped(tmp_path, broker):
    """A camera delivering one frame in a pixel format we cannot use costs that frame only."""
    from mallnet.errors import FrameError
    from mallnet.frames.sources import Frame, FrameSource, SourceHealth

    class Flaky(FrameSource):
        def __init__(self) -> None:
            self.script: list[Exception | int] = [
                FrameError("frames must be uint8, got uint16"),
                1,
                2,
            ]

        def read(self) -> Frame | None:
            if not self.script:
                self.finished = True
                return None
            item = self.script.pop(0)
            if isinstance(item, Exception):
                raise item
            return Frame(idle_frame(), float(item), int(item))

        def health(self) -> SourceHealth:
            return SourceHealth(True, 0, 0, 0, None, None)

    config = load_gate_config(gate_config(tmp_path, broker, "unused", tmp_path))
    app = GateApp(config, reader=object(), sources=[Flaky()])  # type: ignore[arg-type]
    try:
        assert [app.step(), app.step(), app.step(), app.step()] == [0, 1, 1, 0]
        assert app.lanes[0].bad_frames == 1 and app.ended
    finally:
        app.outbox.close()


def test_gate_config_errors_name_the_line(tmp_path, broker, capsys):
    password = broker.add_user(GATE_NODE)
    path = gate_config(tmp_path, broker, password, tmp_path)
    assert main(["edge", "gate", "--config", str(path), "--validate-config"]) == 0
    assert "ok (gate node gate-north: north-in/entry)" in capsys.readouterr().out
    text = path.read_text().replace("- UA", "- XX").replace("direction: entry", "direction: up")
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_gate_config(path)
    problems = "\n".join(err.value.problems)
    assert "lanes.0.direction" in problems and "lanes.0.countries" in problems
    assert f"{path}:" in problems
    assert main(["edge", "gate", "--config", str(path), "--validate-config"]) == 2


def test_gate_validate_config_warns_about_a_missing_password_file(tmp_path, broker, capsys):
    """As `edge run --validate-config`: a credential not provisioned yet only warns."""
    path = gate_config(tmp_path, broker, "unused", tmp_path)
    data = yaml.safe_load(path.read_text())
    data["mqtt"] = {"username": GATE_NODE, "password_file": "gate.password"}
    path.write_text(yaml.safe_dump(data))
    assert main(["edge", "gate", "--config", str(path), "--validate-config"]) == 0
    assert "warning: mqtt.password_file" in capsys.readouterr().err
    (tmp_path / "gate.password").write_text("secret\n")
    assert main(["edge", "gate", "--config", str(path), "--validate-config"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_the_documented_gate_config_is_valid():
    from edge_node.camera.config import GateConfig

    docs = (Path(__file__).resolve().parents[2] / "docs" / "parking.md").read_text()
    start = docs.index("node: {id: gate-north")
    example = yaml.safe_load(docs[start : docs.index("```", start)])
    config = GateConfig.model_validate(example)
    assert [lane.direction for lane in config.lanes] == ["entry", "exit"]


def test_gate_command_runs_with_a_lost_camera_and_stops_cleanly_on_sigterm(broker, tmp_path):
    """`mallnet edge gate` as a process: online, camera_ok false in heartbeats, SIGTERM: offline."""
    import signal
    import subprocess
    import sys

    from mallnet.wire.payloads import DeviceStatus
    from mallnet.wire.topics import STATUS
    from tests.conftest import Collector

    password = broker.add_user(GATE_NODE)
    path = gate_config(
        tmp_path,
        broker,
        password,
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
        at_end="idle",
    )
    watcher = Collector()
    watch = MqttClient(
        settings_for(broker, "monitor-watcher"),  # a monitor reads every node's topics
        "monitor-watcher",
        subscriptions=[(STATUS.filter(broker.mall), 1), (HEALTH.filter(broker.mall), 0)],
        on_message=watcher,
    )
    watch.start()
    assert watch.wait_subscribed(10)
    log = tmp_path / "gate.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mallnet.cli", "edge", "gate", "--config", str(path)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def decoded(kind):
            return [
                m
                for m in (decode(x.topic, x.payload).message for x in list(watcher.messages))
                if isinstance(m, kind)
            ]

        wait_until(lambda: len(decoded(HealthReport)) >= 2, timeout=60, what="heartbeats")
        assert all(h.camera_ok is False for h in decoded(HealthReport))
        assert [s.state for s in decoded(DeviceStatus)][-1] == "online"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        wait_until(lambda: decoded(DeviceStatus)[-1].state == "offline", what="offline status")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        watch.stop()
    text = log.read_text()
    assert "cannot open camera" in text and "Traceback" not in text


def test_gate_config_paths_are_relative_to_the_file_and_every_outbox_field_is_used(
    tmp_path, broker
):
    """TLS files next to the config resolve there (as docs/parking.md's example has it), and
    the outbox's `max_inflight_batches` reaches the publisher, as on a store node."""
    path = gate_config(
        tmp_path,
        broker,
        "unused",
        tmp_path,
        outbox={"path": "outbox.sqlite", "max_inflight_batches": 3, "batch_size": 7},
    )
    data = yaml.safe_load(path.read_text())
    data["mqtt"]["tls"] = {"ca_file": "ca.crt", "cert_file": "gate.crt", "key_file": "/k/gate.key"}
    path.write_text(yaml.safe_dump(data))
    config = load_gate_config(path)
    tls = config.mqtt.tls
    assert tls is not None
    assert (tls.ca_file, tls.cert_file) == (tmp_path / "ca.crt", tmp_path / "gate.crt")
    assert tls.key_file == Path("/k/gate.key")
    del data["mqtt"]["tls"]
    path.write_text(yaml.safe_dump(data))
    config = load_gate_config(path)
    app = GateApp(config, reader=object(), sources=[object()])  # type: ignore[arg-type, list-item]
    try:
        assert (app.publisher.max_inflight_batches, app.publisher.batch_size) == (3, 7)
    finally:
        app.outbox.close()


def test_a_lane_runs_on_the_configs_own_pass_settings(tmp_path, broker):
    """One set of tuning settings: the `passes:` section is what the lane uses, not a copy."""
    path = gate_config(
        tmp_path, broker, "unused", tmp_path, passes={"hold_s": 2.5, "early_votes": 4}
    )
    config = load_gate_config(path)
    app = GateApp(config, reader=object(), sources=[object()])  # type: ignore[arg-type, list-item]
    try:
        lane = app.lanes[0].lane
        assert lane.settings is config.passes
        assert (lane.settings.hold_s, lane.settings.early_votes) == (2.5, 4)
        assert lane.gate.settings.min_changed == config.passes.motion_threshold
    finally:
        app.outbox.close()
