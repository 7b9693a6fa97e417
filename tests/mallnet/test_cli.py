"""The `mallnet` command: every subcommand is documented, parts plug in without imports."""

from __future__ import annotations

import argparse
import json
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


def _add_device(tmp_path: Path, user: str, role: str) -> list[str]:
    return [
        "broker",
        "add-device",
        user,
        "--role",
        role,
        "--mall",
        "riverside",
        "--dynsec-file",
        str(tmp_path / "dynsec.json"),
        "--secret-out",
        str(tmp_path / f"{user}.secret"),
    ]


def test_add_device_writes_a_private_secret_and_never_prints_it(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mallnet.cli", *_add_device(tmp_path, "store-1", "store")],
        capture_output=True,
        text=True,
        check=True,
    )
    secret = tmp_path / "store-1.secret"
    password = secret.read_text().strip()
    assert len(password) >= 24
    assert password not in result.stdout + result.stderr
    assert secret.stat().st_mode & 0o777 == 0o600
    dynsec = tmp_path / "dynsec.json"
    assert dynsec.stat().st_mode & 0o777 == 0o600
    assert password not in dynsec.read_text()  # only its PBKDF2 hash is stored
    [client] = json.loads(dynsec.read_text())["clients"]
    assert client["username"] == client["clientid"] == "store-1"
    assert main(["broker", "remove-device", "store-1", "--dynsec-file", str(dynsec)]) == 0
    assert json.loads(dynsec.read_text())["clients"] == []
    assert main(["broker", "remove-device", "store-1", "--dynsec-file", str(dynsec)]) == 1


def test_add_device_refuses_a_bad_id_or_one_of_the_cores(tmp_path):
    assert main(_add_device(tmp_path, "Store/1", "store")) == 2
    assert main(_add_device(tmp_path, "core-1", "kiosk")) == 2
    assert not (tmp_path / "dynsec.json").exists()
    assert main(_add_device(tmp_path, "core-1", "core")) == 0


def test_demo_runs_the_whole_mall_end_to_end(tmp_path):
    """The README's first command: broker, core, two replaying nodes, a gate and a kiosk; every
    visit credited once."""
    result = subprocess.run(
        [sys.executable, "-m", "mallnet.cli", "demo", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "summary: 4 visit credits (expected 4), 1 kiosk check-in, 2 offers pushed" in (
        result.stderr
    )
    assert "wallet Ben bean-bar=10, book-nook=10" in result.stderr
    # Cat showed her app's QR code to the kiosk (a real `mallnet kiosk run`, offscreen here)
    assert "kiosk: 1 check-in credited at kiosk-atrium" in result.stderr
    assert "wallet Cat book-nook=10, mall=5" in result.stderr
    # Ann pays part of an order at Bean Bar's till with her parking bonus, capped at 15 %
    assert "cap 30 points (15 %), asking 31 → 409 urn:mallnet:problem:cap-exceeded" in (
        result.stderr
    )
    assert (
        "till: 30 points paid (of 200 cents), 17 points cashback; settlement: the mall owes "
        "bean-bar 30 cents"
    ) in result.stderr
    assert "wallet Ann bean-bar=27, mall=20" in result.stderr
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


def test_broker_acl_prints_what_an_identity_may_do(capsys):
    args = ["broker", "acl", "kiosk-1", "--role", "kiosk", "--mall", "riverside"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "publishClientSend mall/v1/riverside/kiosks/kiosk-1/checkins" in lines
    assert "subscribeLiteral mall/v1/riverside/kiosks/kiosk-1/offers" in lines
    assert not [line for line in lines if "/nodes/" in line]
    assert main(["broker", "acl", "x", "--role", "store", "--mall", "River/Side"]) == 2


def test_a_file_that_cannot_be_written_is_an_error_line_not_a_traceback(tmp_path, caplog):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    out = blocked / "dynsec.json"
    args = ["broker", "add-device", "store-1", "--role", "store", "--mall", "m1"]
    assert main([*args, "--dynsec-file", str(out), "--secret-out", str(tmp_path / "s")]) == 2
    assert str(out) in caplog.text and "Traceback" not in caplog.text
    key = "ab" * 32
    trace = blocked / "t.jsonl"
    assert (
        main(["edge", "simulate", "--out", str(trace), "--prefix", "f7a3e1c2", "--key", key]) == 2
    )
