"""One migration registry: every entry point makes the same schema on a fresh database."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import sqlite_utils
import yaml

from cloud_core.store.migrations import migrations
from mallnet.broker import free_port
from tests.conftest import wait_until

MALLNET = str(Path(sys.executable).with_name("mallnet"))


def _demo_config(workdir: Path, api_port: int) -> Path:
    password = workdir / "core.password"
    workdir.mkdir(parents=True)
    password.write_text("unused\n")
    subprocess.run(
        [
            MALLNET,
            "core",
            "demo-config",
            "--workdir",
            str(workdir),
            "--mqtt-port",
            str(free_port()),
            "--mqtt-password-file",
            str(password),
            "--api-port",
            str(api_port),
        ],
        check=True,
        capture_output=True,
    )
    return workdir / "core.yaml"


def _schema(database: Path) -> tuple[set[str], list[str]]:
    with sqlite3.connect(database) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        applied = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY name")]
    return tables, applied


def test_core_expire_on_a_fresh_database_makes_every_table_core_run_makes(tmp_path):
    expire_config = _demo_config(tmp_path / "expire", free_port())
    result = subprocess.run(
        [MALLNET, "core", "expire", "--config", str(expire_config)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr

    port = free_port()
    run_config = _demo_config(tmp_path / "run", port)
    log = (tmp_path / "core.log").open("wb")
    core = subprocess.Popen(
        [MALLNET, "core", "run", "--only", "api", "--config", str(run_config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:

        def up() -> bool:
            assert core.poll() is None, (tmp_path / "core.log").read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout=30, what="the core's API")
    finally:
        core.send_signal(signal.SIGTERM)
        core.wait(timeout=30)
        log.close()

    def database(config: Path) -> Path:
        return Path(yaml.safe_load(config.read_text())["database"])

    expire_tables, expire_applied = _schema(database(expire_config))
    run_tables, run_applied = _schema(database(run_config))
    assert expire_tables == run_tables
    assert {"parking_sessions", "parking_validations", "presence_segments"} <= expire_tables
    registry = migrations.for_sqlite().pending(sqlite_utils.Database(memory=True))
    assert expire_applied == run_applied == sorted(m.name for m in registry)
