"""ansible/ is clean under ansible-lint's production profile, and its playbooks parse."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ANSIBLE = Path(__file__).resolve().parents[2] / "ansible"
BIN = Path(sys.executable).parent


@pytest.mark.timeout(600)
def test_ansible_lint_production_profile_is_clean() -> None:
    done = subprocess.run(
        [str(BIN / "ansible-lint"), "--offline", "--profile", "production", "--nocolor"],
        cwd=ANSIBLE,
        capture_output=True,
        text=True,
        check=False,
        timeout=540,
        env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(Path.home()), "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


@pytest.mark.parametrize("playbook", ["site.yml", "rolling_update.yml", "rollback.yml"])
def test_playbooks_parse(playbook: str) -> None:
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), "--syntax-check", playbook],
        cwd=ANSIBLE,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={
            "PATH": f"{BIN}:/usr/bin:/bin",
            "HOME": str(Path.home()),
            "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
        },
    )
    assert done.returncode == 0, done.stdout + done.stderr
