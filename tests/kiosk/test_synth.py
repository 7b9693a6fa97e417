"""`mallnet kiosk synth-frames`: frames a file camera plays, the code readable in the middle."""

from __future__ import annotations

from pathlib import Path

from kiosk.scanner import load_image, scan
from mallnet.cli import main


def test_synthetic_frames_show_the_code_between_empty_frames(tmp_path: Path) -> None:
    out = tmp_path / "frames"
    assert main(["kiosk", "synth-frames", "--out", str(out), "--text", "mallnet:customer:c42"]) == 0
    frames = sorted(out.glob("*.png"))
    texts = [[code.text for code in scan(load_image(frame))] for frame in frames]
    assert texts[0] == [] and texts[-1] == []
    assert ["mallnet:customer:c42"] in texts
    assert all(t in ([], ["mallnet:customer:c42"]) for t in texts)
