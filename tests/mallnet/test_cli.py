"""The `mallnet` command: every subcommand is documented, parts plug in without imports."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from mallnet.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def _commands(parser: argparse.ArgumentParser, prefix: str = "mallnet") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                path = f"{prefix} {name}"
                found.append(path)
                found.extend(_commands(sub, path))
    return found


def test_every_command_is_documented():
    docs = (ROOT / "README.md").read_text() + "".join(
        p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))
    )
    missing = [cmd for cmd in _commands(build_parser()) if f"`{cmd}" not in docs]
    assert not missing, f"undocumented commands (add them to README.md / docs): {missing}"


def test_wire_docs_check_passes_on_a_current_file():
    assert main(["wire", "docs", "--check"]) == 0


def test_wire_docs_check_fails_on_a_stale_file(tmp_path):
    stale = tmp_path / "wire.md"
    stale.write_text("old")
    assert main(["wire", "docs", "--check", "--output", str(stale)]) == 1


def test_add_device_writes_a_private_secret_and_never_prints_it(tmp_path):
    passwd, secret = tmp_path / "passwd", tmp_path / "node.secret"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mallnet.cli",
            "broker",
            "add-device",
            "store-1",
            "--password-file",
            str(passwd),
            "--secret-out",
            str(secret),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    password = secret.read_text().strip()
    assert len(password) >= 24
    assert password not in result.stdout + result.stderr
    assert secret.stat().st_mode & 0o777 == 0o600
    assert passwd.read_text().startswith("store-1:")


def test_add_device_refuses_an_id_that_is_not_a_contract_id(tmp_path):
    code = main(
        [
            "broker",
            "add-device",
            "Store/1",
            "--password-file",
            str(tmp_path / "p"),
            "--secret-out",
            str(tmp_path / "s"),
        ]
    )
    assert code == 2
    assert not (tmp_path / "p").exists()


def test_demo_runs_the_whole_mall_end_to_end(tmp_path):
    """The README's first command: broker, core, two replaying nodes; every visit credited once."""
    result = subprocess.run(
        [sys.executable, "-m", "mallnet.cli", "demo", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "summary: 4 visit credits (expected 4), 2 offers pushed" in result.stderr
    assert "wallet Ben bean-bar=10, book-nook=10" in result.stderr
    assert "+44" not in result.stderr  # phone numbers never reach the logs


def test_diagnose_redacts_secrets_and_personal_data(tmp_path, capsys):
    config = tmp_path / "node.yaml"
    config.write_text(
        "node: store-1\nmqtt:\n  password: hunter2hunter2\n  host: 127.0.0.1\n"
        "note: call +380501234567 about aa:bb:cc:dd:ee:ff\n"
    )
    assert main(["diagnose", "--config", str(config), "--config", str(tmp_path / "nope.yaml")]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "+380501234567" not in out and "aa:bb:cc" not in out
    assert '"host": "127.0.0.1"' in out and '"parsed": false' in out


def test_broker_acl_renders_the_template_for_a_mall(tmp_path):
    out = tmp_path / "mallnet.acl"
    assert main(["broker", "acl", "--mall", "riverside", "--out", str(out)]) == 0
    text = out.read_text()
    assert "pattern write mall/v1/riverside/nodes/%u/presence" in text
    assert "user core\ntopic readwrite mall/v1/riverside/#" in text
    assert "@" not in text.replace("%u", "")
    assert main(["broker", "acl", "--mall", "River/Side", "--out", str(out)]) == 2


def test_a_file_that_cannot_be_written_is_an_error_line_not_a_traceback(tmp_path, caplog):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    out = blocked / "mallnet.acl"
    assert main(["broker", "acl", "--mall", "m1", "--out", str(out)]) == 2
    assert str(out) in caplog.text and "Traceback" not in caplog.text
    key = "ab" * 32
    trace = blocked / "t.jsonl"
    assert (
        main(["edge", "simulate", "--out", str(trace), "--prefix", "f7a3e1c2", "--key", key]) == 2
    )
