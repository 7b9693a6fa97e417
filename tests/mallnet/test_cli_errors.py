"""Every CLI error is one line naming the file and the problem, exit 2 — never a traceback.

These run the real `mallnet` console script as a subprocess, from a folder outside the
checkout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

MALLNET = str(Path(sys.executable).with_name("mallnet"))


def mallnet(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MALLNET, *args], capture_output=True, text=True, check=False, cwd=cwd, timeout=60
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "command",
    [
        ["core", "run", "--validate-config", "--config"],
        ["core", "expire", "--config"],
        ["edge", "run", "--validate-config", "--config"],
    ],
)
def test_a_config_that_is_not_utf8_is_one_line_naming_the_file(tmp_path, command):
    config = tmp_path / "latin1.yaml"
    config.write_bytes("mall: caf\xe9\n".encode("latin-1"))
    line = one_error_line(mallnet(*command, str(config), cwd=tmp_path))
    assert f"{config}: config is not UTF-8 text (byte 0xe9 at offset 9)" in line


def test_a_yaml_syntax_error_names_the_file_line_and_column(tmp_path):
    config = tmp_path / "core.yaml"
    config.write_text("mall: demo\nstores: [a\nx: : y\n")
    line = one_error_line(mallnet("core", "expire", "--config", str(config), cwd=tmp_path))
    assert f"{config}:3:2: not valid YAML: expected ',' or ']'" in line
    assert "<unicode string>" not in line


def test_a_missing_config_is_one_line(tmp_path):
    missing = tmp_path / "nope.yaml"
    line = one_error_line(mallnet("core", "expire", "--config", str(missing), cwd=tmp_path))
    assert f"cannot read config {missing}: No such file or directory" in line


@pytest.mark.parametrize("where", ["before", "after"])
def test_an_unknown_log_level_is_one_line(tmp_path, where):
    args = ["wire", "docs", "--check", "--output", str(tmp_path / "wire.md")]
    option = ["--log-level", "LOUD"]
    argv = [*option, *args] if where == "before" else [*args, *option]
    line = one_error_line(mallnet(*argv, cwd=tmp_path))
    assert "--log-level: 'LOUD' is not one of DEBUG, INFO, WARNING, ERROR" in line


def test_an_unknown_option_is_one_line(tmp_path):
    line = one_error_line(mallnet("core", "expire", cwd=tmp_path))
    assert line.startswith("mallnet core expire: error: ") and "--config" in line
    line = one_error_line(mallnet("core", "expire", "--config", "c.yaml", "--x", cwd=tmp_path))
    assert line.startswith("mallnet: error: unrecognized arguments: --x")


@pytest.mark.parametrize("where", ["before", "after"])
def test_log_options_are_accepted_before_and_after_the_subcommand(tmp_path, where):
    config = tmp_path / "core.yaml"
    config.write_text("mall: demo\nstores: [a\n")
    args = ["core", "expire", "--config", str(config)]
    options = ["--log-level", "debug", "--log-format", "json"]
    argv = [*options, *args] if where == "before" else [*args, *options]
    line = one_error_line(mallnet(*argv, cwd=tmp_path))
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["msg"].startswith(f"{config}:3:1: not valid YAML")


def test_a_log_level_after_the_subcommand_takes_effect(tmp_path):
    stale = tmp_path / "wire.md"
    stale.write_text("old")
    quiet = mallnet("wire", "docs", "--output", str(stale), "--log-level", "ERROR", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""
    loud = mallnet("--log-level", "ERROR", "wire", "docs", "--output", str(stale), cwd=tmp_path)
    assert loud.returncode == 0 and loud.stderr == ""
    info = mallnet("wire", "docs", "--output", str(stale), "--log-level", "info", cwd=tmp_path)
    assert info.returncode == 0 and f"wrote {stale}" in info.stderr
