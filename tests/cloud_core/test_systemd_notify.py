"""The core under systemd's notify protocol: READY=1 once its consumer and API run,
WATCHDOG=1 from its main loop while the ingest worker turns, STOPPING=1 on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from cloud_core.app import CoreApp
from tests.cloud_core.core_process import write_config
from tests.cloud_core.helpers import core_mqtt, make_config
from tests.notify import NotifySocket


def test_the_core_process_says_ready_and_pings_from_its_loop(broker, tmp_path):
    config = write_config(tmp_path, broker)
    notify = NotifySocket(tmp_path / "notify.sock")
    log = (tmp_path / "core.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mallnet.cli", "core", "run", "--config", str(config),
         "--only", "ingest"],
        env={**os.environ, **notify.env()},
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        ready = notify.wait_for("READY", "1", timeout=60)
        assert "core-crash" in ready["STATUS"] and "ingest" in ready["STATUS"]
        notify.pings(3)
        proc.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING", "1")
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        notify.close()
        log.close()


def test_a_dead_ingest_worker_is_a_health_problem(broker, tmp_path):
    """What withholds the core's ping: its worker thread gone (a broker outage is not)."""
    app = CoreApp(make_config(tmp_path, core_mqtt(broker)), only="ingest")
    app.start()
    try:
        assert app.health_problems() == []
        assert app.consumer is not None
        app.consumer.stop()
        assert app.health_problems() == ["the ingest worker stopped"]
    finally:
        app.stop()
