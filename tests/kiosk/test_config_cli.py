"""`mallnet kiosk run --config F --validate-config`: a valid example; problems name file:line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.config import load_kiosk_config
from mallnet.errors import ConfigError
from mallnet.frames.config import FileCamera

EXAMPLE = Path(__file__).resolve().parents[2] / "kiosk" / "config.example.yaml"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mallnet.cli", "kiosk", "run", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_the_example_config_is_valid_and_missing_secrets_only_warn() -> None:
    result = run_cli("--config", str(EXAMPLE), "--validate-config")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{EXAMPLE}: ok (kiosk kiosk-atrium)"
    assert "warning" in result.stderr and "kiosk.key" in result.stderr


def test_problems_are_reported_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "kiosk.yaml"
    bad.write_text(
        "kiosk:\n"
        "  id: Kiosk/1\n"
        "  mall: demo\n"
        "  idle_timeout_s: 1\n"
        "core:\n"
        "  url: not-a-url\n"
        "  api_key_file: k\n"
        "mqtt: {}\n"
        "camera: {type: webcam}\n"
        "colour: blue\n"
    )
    result = run_cli("--config", str(bad), "--validate-config")
    assert result.returncode == 2
    problems = result.stderr.splitlines()
    assert any(p.startswith(f"{bad}:2: kiosk.id:") for p in problems), problems
    assert any(p.startswith(f"{bad}:4: kiosk.idle_timeout_s:") for p in problems), problems
    assert any(p.startswith(f"{bad}:6: core.url:") for p in problems), problems
    assert any(p.startswith(f"{bad}:9: camera") for p in problems), problems
    assert any(p.startswith(f"{bad}:10: colour:") for p in problems), problems


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    path = tmp_path / "site" / "kiosk.yaml"
    path.parent.mkdir()
    path.write_text(
        "kiosk: {id: k1, mall: demo}\n"
        "core: {url: 'http://core:8080', api_key_file: kiosk.key}\n"
        "mqtt: {password_file: k1.password}\n"
        "camera: {type: file, path: codes.avi}\n"
    )
    config = load_kiosk_config(path)
    site = path.resolve().parent
    assert config.core.api_key_file == site / "kiosk.key"
    assert config.queue.path == site / "kiosk-queue.sqlite"
    assert config.mqtt.password_file == site / "k1.password"
    assert isinstance(config.camera, FileCamera) and config.camera.path == site / "codes.avi"
    with pytest.raises(ConfigError, match="cannot read API key file"):
        config.core.resolve_key()
