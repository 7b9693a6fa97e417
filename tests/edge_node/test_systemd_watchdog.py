"""The store node under systemd's notify protocol: READY=1 once running, WATCHDOG=1 from its own
loop while the scan makes progress, none once the scan stalls (systemd then restarts it)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

from edge_node.ble.app import EdgeApp
from edge_node.ble.config import load_node_config
from edge_node.ble.sources import Advert, SourceStats, advert_from_json
from mallnet.broker import DevBroker
from mallnet.systemd import Notifier
from tests.edge_node.helpers import PREFIX, T0, key, node_config
from tests.notify import WATCHDOG_USEC, NotifySocket

NODE = "store-watched"


def _advert_line(n: int) -> bytes:
    mfr = bytes.fromhex("4c000215") + PREFIX + key(n)[:12] + bytes([0, 1, 0, 2, 0xC5])
    return (Advert(T0 + n * 0.01, "C4:7C:8D:6A:11:02", -60, mfr).to_json() + "\n").encode()


class Feeder:
    """Writes trace lines into the node's FIFO, as a scanner delivers adverts, until paused."""

    def __init__(self, fifo: Path) -> None:
        self.fd = os.open(fifo, os.O_RDWR)  # never blocks, and the node never sees EOF
        self.running = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._feed, daemon=True)
        self.thread.start()

    def _feed(self) -> None:
        n = 0
        while not self.done.is_set():
            if self.running.wait(0.1):
                n += 1
                os.write(self.fd, _advert_line(n))
                self.done.wait(0.02)  # pacing the adverts, not waiting for a result

    def close(self) -> None:
        self.done.set()
        self.thread.join(10)
        os.close(self.fd)


def test_the_node_process_says_ready_pings_while_scanning_and_stops_when_the_scan_stalls(
    broker: DevBroker, tmp_path: Path
) -> None:
    fifo = tmp_path / "scan.fifo"
    os.mkfifo(fifo)
    password = broker.add_user(NODE)
    config = node_config(tmp_path, broker, NODE, password, fifo, at_end="idle")
    notify = NotifySocket(tmp_path / "notify.sock")
    feeder = Feeder(fifo)
    feeder.running.set()
    env = {**os.environ, **notify.env()}
    log = (tmp_path / "node.log").open("wb")
    node = subprocess.Popen(
        [sys.executable, "-m", "mallnet.cli", "edge", "run", "--config", str(config)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        ready = notify.wait_for("READY", "1")
        assert NODE in ready.get("STATUS", "")
        notify.pings(3)  # ~every 0.5 s (WatchdogSec=1) while adverts flow
        feeder.running.clear()  # the scan stalls: the replay blocks, the loop with it
        notify.silence(quiet_s=2 * WATCHDOG_USEC / 1e6)
        assert node.poll() is None  # alive but silent: systemd would kill and restart it
        feeder.running.set()  # adverts again: the pings come back
        notify.pings(2)
        node.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING", "1")
        assert node.wait(30) == 0
    finally:
        if node.poll() is None:
            node.kill()
            node.wait(10)
        feeder.close()
        notify.close()
        log.close()


class HungScan:
    """A beacon source whose scan hangs after a few adverts while the loop stays alive, as a
    BlueZ call that never returns does."""

    def __init__(self) -> None:
        self.stats = SourceStats()
        self.unstick = asyncio.Event()

    def now(self) -> float:
        return T0

    async def adverts(self) -> AsyncIterator[Advert]:
        for n in range(3):
            self.stats.beat = time.monotonic()
            yield advert_from_json(_advert_line(n).decode())
        await self.unstick.wait()  # hung: no beat from here on


def test_a_hung_scan_with_a_live_loop_withholds_the_pings(broker: DevBroker, tmp_path: Path):
    """The loop keeps turning (MQTT, heartbeats) but the scan made no progress for
    ``health.stall_s``: the pings stop and STATUS says why."""
    password = broker.add_user(NODE)
    path = node_config(tmp_path, broker, NODE, password, tmp_path / "unused.jsonl", at_end="idle")
    text = path.read_text().replace("interval_s: 1", "interval_s: 1\n  stall_s: 1.5")
    path.write_text(text)
    config = load_node_config(path)
    assert config.health.stall_s == 1.5
    notify = NotifySocket(tmp_path / "notify.sock")
    scan = HungScan()
    app = EdgeApp(
        config,
        source=scan,
        notifier=Notifier(str(notify.path), WATCHDOG_USEC),
    )
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(asyncio.run(app.run())))
    runner.start()
    try:
        notify.wait_for("READY", "1")
        notify.pings(1)
        before = notify.silence(quiet_s=2 * WATCHDOG_USEC / 1e6)
        statuses = [m["STATUS"] for m in [*before, *notify.messages] if "STATUS" in m]
        assert any("beacon scan made no progress" in s for s in statuses), statuses
        assert app.watchdog.withheld >= 1
    finally:
        app.request_stop()
        runner.join(30)
        notify.close()
    assert result == [0]
