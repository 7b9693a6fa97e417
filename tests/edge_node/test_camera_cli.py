"""`mallnet edge read-plate`: one JSON line per image, clear errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from edge_node.camera.synth import make_sample
from mallnet.cli import main


@pytest.fixture
def images(tmp_path):
    good = make_sample(21, "UA", "clear")
    night = make_sample(22, "BR", "night")
    paths = {
        "good": tmp_path / "gate-1.jpg",
        "night": tmp_path / "gate-2.png",
        "corrupt": tmp_path / "broken.jpg",
        "empty": tmp_path / "empty.png",
        "missing": tmp_path / "nope.jpg",
        "blank": tmp_path / "blank.png",
    }
    cv2.imwrite(str(paths["good"]), good.image)
    cv2.imwrite(str(paths["night"]), night.image)
    paths["corrupt"].write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    paths["empty"].write_bytes(b"")
    cv2.imwrite(str(paths["blank"]), good.image[:200, :300] * 0 + 120)
    return paths, {"good": good, "night": night}


def test_read_plate_json_lines(images, capsys):
    paths, truth = images
    order = ["good", "night", "corrupt", "empty", "missing", "blank"]
    code = main(["edge", "read-plate", "--json", *(str(paths[k]) for k in order)])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["image"] for line in lines] == [str(paths[k]) for k in order]
    by = dict(zip(order, lines, strict=True))
    for key in ("good", "night"):
        assert by[key]["plate"] == truth[key].plate
        assert 0.5 <= by[key]["confidence"] <= 1
        x, y, w, h = by[key]["box"]
        tx, ty, tw, th = truth[key].box
        assert abs((x + w / 2) - (tx + tw / 2)) < tw / 2 and abs((y + h / 2) - (ty + th / 2)) < th
    assert by["good"]["country"] == "UA"
    assert "not a readable image" in by["corrupt"]["error"]
    assert "is empty" in by["empty"]["error"]
    assert "No such file" in by["missing"]["error"]
    assert by["blank"] == {
        "image": str(paths["blank"]),
        "plate": None,
        "confidence": 0.0,
        "country": None,
        "box": None,
    }


def test_read_plate_fails_when_every_image_is_unreadable(images, capsys):
    paths, _ = images
    assert main(["edge", "read-plate", str(paths["corrupt"]), str(paths["missing"])]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and all(": error: " in line for line in out)


def test_read_plate_text_output_and_roi(images, capsys):
    paths, truth = images
    assert main(["edge", "read-plate", "--country", "UA", "--no-fallback", str(paths["good"])]) == 0
    assert f": {truth['good'].plate} (UA, confidence " in capsys.readouterr().out
    # An ROI above the car holds no plate.
    assert main(["edge", "read-plate", "--roi", "0,0,1,0.3", "--json", str(paths["good"])]) == 0
    assert json.loads(capsys.readouterr().out)["plate"] is None


def test_read_plate_rejects_bad_arguments(images, capsys):
    paths, _ = images
    assert main(["edge", "read-plate", "--country", "XX", str(paths["good"])]) == 2
    with pytest.raises(SystemExit):
        main(["edge", "read-plate", "--roi", "0,0,2", str(paths["good"])])


def test_synth_frames_writes_a_readable_vehicle_pass(tmp_path, capsys):
    out = tmp_path / "pass"
    assert main(["edge", "synth-frames", "--out", str(out), "--plate", "KA 7777 TX"]) == 0
    frames = sorted(out.glob("*.jpg"))
    assert len(frames) == 10
    assert main(["edge", "read-plate", "--json", str(frames[0]), str(frames[4])]) == 0
    empty, car = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert empty["plate"] is None
    assert car["plate"] == "KA7777TX"


@pytest.mark.parametrize(("plate", "style"), [("!!!", "UA"), ("", "FR"), ("AB123CD", "UA")])
def test_synth_frames_refuses_a_plate_of_no_format(plate, style, tmp_path, caplog):
    """Frames of a plate no gate could read would make a demo or a test that proves nothing."""
    out = tmp_path / "pass"
    args = ["edge", "synth-frames", "--out", str(out), "--plate", plate, "--style", style]
    assert main(args) == 2
    assert f"is not a {style} plate" in caplog.text
    assert not out.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["read-plate", "gate.jpg"],
        ["synth-frames", "--out", "frames", "--plate", "AA1234BB"],
        ["gate", "--config", "gate.yaml"],
    ],
)
def test_camera_commands_on_a_node_without_the_camera_extra(argv, tmp_path):
    """A store Pi installs only `edge`: the camera commands say what is missing (exit 2)."""
    (tmp_path / "gate.yaml").write_text(
        "node: {id: gate-north, mall: m}\nmqtt: {}\noutbox: {path: o.sqlite}\n"
        "lanes: [{gate: north-in, direction: entry, camera: {type: file, path: f}}]\n"
    )
    code = (
        "import sys\n"
        "for name in ('cv2', 'numpy', 'rapidocr', 'onnxruntime', 'PIL'):\n"
        "    sys.modules[name] = None  # as if not installed\n"
        "from mallnet.cli import main\n"
        f"sys.exit(main(['edge', *{argv!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert result.returncode == 2, result.stderr
    assert "needs the camera extra" in result.stderr
    assert "Traceback" not in result.stderr
