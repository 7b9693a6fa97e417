"""The systemd units in firmware_config/systemd/: what they promise, checked by systemd itself.

``systemd-analyze verify`` checks each unit offline inside a throwaway root (``--root``) that
holds the unit and what its Exec lines run (the release's ``mallnet`` as a stub, Debian's own
``setterm`` and ``sh``); ``systemd-analyze security --offline=true`` scores its exposure, and
docs/operations.md must state that score.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from mallnet.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "firmware_config" / "systemd"
MALLNET = "/opt/mallnet/current/bin/mallnet"  # the release's venv (ansible/roles/mallnet_release)
EXPECTED = {  # unit: (mallnet subcommand, config file, state directory)
    "mallnet-edge.service": (["edge", "run"], "/etc/mallnet/node.yaml", "mallnet-edge"),
    "mallnet-gate.service": (["edge", "gate"], "/etc/mallnet/gate.yaml", "mallnet-gate"),
    "mallnet-kiosk.service": (["kiosk", "run"], "/etc/mallnet/kiosk.yaml", "mallnet-kiosk"),
    "mallnet-core.service": (["core", "run"], "/etc/mallnet/core.yaml", "mallnet-core"),
}
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
    "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "UMask": "0077",
}
MAX_EXPOSURE = 2.0


def parse(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections → keys → every value given (systemd keys repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    [value] = unit[section][key]
    return value


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_unit_is_a_watched_restarted_hardened_notify_service(name: str) -> None:
    unit = parse(UNITS / name)
    command, config, state = EXPECTED[name]
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    assert int(one(unit, "Service", "WatchdogSec")) > 0
    assert one(unit, "Service", "Restart") == "on-failure"
    assert one(unit, "Service", "StateDirectory") == state
    assert one(unit, "Service", "User") == "mallnet"
    for key, value in HARDENING.items():
        assert one(unit, "Service", key) == value, (name, key)
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    assert argv[0] == MALLNET
    args = build_parser().parse_args(argv[1:])  # a command mallnet really has
    assert argv[argv.index(command[0]) : argv.index(command[0]) + 2] == command
    assert args.config == config
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_the_kiosk_is_full_screen_and_never_blanks() -> None:
    unit = parse(UNITS / "mallnet-kiosk.service")
    env = dict(value.split("=", 1) for value in unit["Service"]["Environment"])
    assert env["SDL_VIDEODRIVER"] == "kmsdrm"  # straight to the display, no desktop
    assert env["SDL_VIDEO_ALLOW_SCREENSAVER"] == "0"
    [pre] = unit["Service"]["ExecStartPre"]
    assert "--blank 0" in pre and "--powerdown 0" in pre and "--powersave off" in pre
    assert "getty@tty1.service" in unit["Unit"]["Conflicts"]
    example = (ROOT / "kiosk" / "config.example.yaml").read_text()
    assert re.search(r"fullscreen:\s*true", example)


def _root(tmp_path: Path, name: str) -> Path:
    """A throwaway root holding the unit and what its Exec lines run."""
    root = tmp_path / "root"
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    shutil.copy(UNITS / name, root / "etc" / "systemd" / "system" / name)
    stub = root / MALLNET.lstrip("/")
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    for tool in ("/bin/sh", "/usr/bin/setterm"):  # Debian's own, present on every Pi
        assert Path(tool).exists(), f"{tool} is missing on this machine"
        target = root / tool.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tool, target)
    return root


def _analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip(
            "systemd-analyze is not installed (Debian's systemd package; scripts/bootstrap.sh)"
        )
    return tool


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_systemd_analyze_verifies_each_unit(tmp_path: Path, name: str) -> None:
    root = _root(tmp_path, name)
    done = subprocess.run(
        [_analyze(), "verify", f"--root={root}", "--recursive-errors=no", name],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr  # warnings too


def _documented_exposure() -> dict[str, float]:
    text = (ROOT / "docs" / "operations.md").read_text()
    return {
        m[1]: float(m[2])
        for m in re.finditer(r"\| `(mallnet-[a-z]+\.service)` \| (\d+\.\d) ", text)
    }


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_units_exposure_is_low_and_the_one_docs_state(tmp_path: Path, name: str) -> None:
    root = _root(tmp_path, name)
    done = subprocess.run(
        [_analyze(), "security", "--offline=true", f"--root={root}", name],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", done.stdout)
    assert found, done.stdout + done.stderr
    exposure = float(found[1])
    assert exposure <= MAX_EXPOSURE, f"{name}: exposure {exposure}"
    assert _documented_exposure().get(name) == exposure, "update docs/operations.md"
