"""The documented install path: a built wheel, `pip install "mallnet[cloud]"`, then the
broker, core and edge commands from a folder outside the checkout.

The wheel is built from this checkout and installed into a fresh venv with uv, pinned
to the versions in uv.lock (their wheels are in uv's cache after bootstrap).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mallnet.broker import free_port
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[1]


def _uv() -> str:
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(ROOT / ".tools/bin/uv")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("uv not found: run scripts/bootstrap.sh")


def _run(*args: str | Path, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=False, cwd=cwd, timeout=300
    )
    if check:
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel of this checkout installed with its `cloud` extra."""
    work = tmp_path_factory.mktemp("wheel")
    uv = _uv()
    _run(uv, "build", "--wheel", "--quiet", "--out-dir", work / "dist", ROOT, cwd=work)
    (wheel,) = (work / "dist").glob("mallnet-*.whl")
    constraints = work / "constraints.txt"
    _run(uv, "export", "--quiet", "--project", ROOT, "--frozen", "--no-hashes",
         "--all-extras", "--no-emit-project", "--output-file", constraints, cwd=work)  # fmt: skip
    venv = work / "venv"
    _run(uv, "venv", "--quiet", "--python", sys.executable, venv, cwd=work)
    _run(uv, "pip", "install", "--quiet", "--python", venv / "bin/python",
         "--constraints", constraints, f"mallnet[cloud] @ {wheel.as_uri()}", cwd=work)  # fmt: skip
    return venv


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def test_the_wheel_carries_the_broker_and_firmware_data(installed, outside):
    found = _run(
        installed / "bin/python",
        "-c",
        "import mallnet; from mallnet.resources import data_dir; print(mallnet.__file__);"
        "print(data_dir('mqtt_broker')); print(data_dir('firmware_config'))",
        cwd=outside,
    ).stdout.split()
    assert all(str(installed) in line and str(ROOT) not in line for line in found), found
    for folder, installed_folder in (("mqtt_broker", found[1]), ("firmware_config", found[2])):
        shipped = _run("git", "ls-files", folder, cwd=ROOT).stdout.split()
        assert shipped, folder
        for name in shipped:
            assert (Path(installed_folder) / Path(name).relative_to(folder)).is_file(), name


def test_broker_acl_and_edge_schema_check_run_from_the_installed_wheel(installed, outside):
    mallnet = installed / "bin/mallnet"
    acl = _run(mallnet, "broker", "acl", "store-1", "--role", "store", "--mall", "riverside",
               cwd=outside)  # fmt: skip
    assert "mall/v1/riverside/nodes/store-1/" in acl.stdout
    _run(mallnet, "edge", "schema", "--check", cwd=outside)


def test_broker_run_serves_from_the_installed_wheel(installed, outside):
    port = free_port()
    log = (outside / "broker.log").open("wb")
    broker = subprocess.Popen(
        [installed / "bin/mallnet", "broker", "run", "--data-dir", "data", "--port", str(port)],
        cwd=outside,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def serving() -> bool:
            text = (outside / "broker.log").read_text()
            assert broker.poll() is None, text
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return "Ctrl-C stops it" in text
            except OSError:
                return False

        wait_until(serving, timeout=30, what="the wheel's dev broker")
    finally:
        broker.send_signal(signal.SIGINT)
        assert broker.wait(timeout=30) == 0, (outside / "broker.log").read_text()
        log.close()
    assert (outside / "data" / "mosquitto.conf").stat().st_size > 0


def test_core_commands_run_from_the_installed_wheel(installed, outside):
    mallnet = installed / "bin/mallnet"
    (outside / "core.password").write_text("unused\n")
    _run(mallnet, "core", "demo-config", "--workdir", "core", "--mqtt-port", str(free_port()),
         "--mqtt-password-file", "core.password", cwd=outside)  # fmt: skip
    _run(mallnet, "core", "expire", "--config", "core/core.yaml", cwd=outside)
    assert (outside / "core" / "core.sqlite").exists()
