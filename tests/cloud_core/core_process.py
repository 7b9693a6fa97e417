"""Starting the real core in a process of its own, from a config file the tests write."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.cloud_core.helpers import CORE_PASSWORD, STORES, add_core
from tests.conftest import MALL


def write_config(
    tmp_path: Path,
    broker,
    *,
    client_id: str = "core-crash",
    database: str = "core.sqlite",
    daily_cap: int = 30,
    batch_max: int = 200,
) -> Path:
    """A core config file for worker ``client_id`` (``core-<id>.yaml`` unless the default);
    ``database`` is a file name next to it or a ``postgresql://`` URL."""
    secret = tmp_path / "core.password"
    secret.write_text(CORE_PASSWORD + "\n")
    secret.chmod(0o600)
    config = {
        "mall": MALL,
        "database": database,
        "mqtt": {
            "port": broker.port,
            "username": add_core(broker, client_id),
            "password_file": str(secret),
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 1,
        },
        "ingest": {"client_id": client_id, "batch_wait_ms": 1, "batch_max": batch_max},
        # no cooldown: only the exactly-once machinery stands between a redelivery and a credit
        "visits": {"points": 10, "min_dwell_s": 60, "cooldown_s": 0, "daily_cap": daily_cap},
        "stores": STORES,
    }
    path = tmp_path / ("core.yaml" if client_id == "core-crash" else f"{client_id}.yaml")
    path.write_text(yaml.safe_dump(config))
    return path


def start_core(
    config: Path, log: Path, crash_after: int | None = None, kill_in_batch: int | None = None
) -> subprocess.Popen[bytes]:
    """The real core in a process of its own (``--only ingest``); with ``crash_after`` it is
    started by the tests' launcher, which exits it (9) right after that many commits; with
    ``kill_in_batch`` the launcher SIGKILLs it inside that batch's transaction."""
    if crash_after is None and kill_in_batch is None:
        command = ["-m", "mallnet.cli", "core", "run", "--config", str(config), "--only", "ingest"]
    else:
        launcher = Path(__file__).with_name("crash_launcher.py")
        command = [str(launcher), "--config", str(config)]
        if crash_after is not None:
            command += ["--crash-after", str(crash_after)]
        if kill_in_batch is not None:
            command += ["--kill-in-batch", str(kill_in_batch)]
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, *command], stdout=out, stderr=subprocess.STDOUT)
