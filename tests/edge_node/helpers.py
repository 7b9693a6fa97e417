"""Helpers for edge-node tests: synthetic traces, store and gate node configs on a real broker,
a store node running on its own thread."""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path

import yaml

from edge_node.ble import simulate
from edge_node.ble.app import EdgeApp
from edge_node.ble.config import FootfallSettings, PresenceSettings
from edge_node.ble.ibeacon import IBeaconParser
from edge_node.ble.presence import Decision, PresenceChange, PresenceEngine
from edge_node.ble.sources import Advert
from mallnet.broker import DevBroker

PREFIX_HEX = "f7a3e1c2"
PREFIX = bytes.fromhex(PREFIX_HEX)
T0 = 1_763_870_000.0  # a fixed Unix time, so traces are reproducible
GATE_NODE = "gate-north"


def key(n: int) -> bytes:
    return bytes([n % 256]) * 32


def run_engine(
    adverts: list[Advert], settings: PresenceSettings | None = None, tail_s: float = 300
) -> list[Decision]:
    """Feed adverts as the app does (ticks once a trace-second), then let time pass."""
    engine = PresenceEngine(settings or PresenceSettings(), FootfallSettings())
    parser = IBeaconParser(PREFIX)
    last_tick = None
    out: list[Decision] = []
    for advert in adverts:
        sighting = parser.sighting(advert.mfr)
        assert sighting is not None
        engine.observe(advert.t, sighting.tag, sighting.measured_power, advert.rssi)
        if last_tick is None or advert.t - last_tick >= 1:
            engine.tick(advert.t)
            last_tick = advert.t
        out += engine.take()
    end = adverts[-1].t if adverts else T0
    for second in range(int(tail_s)):
        engine.tick(end + second)
    out += engine.take()
    return out


def kinds(decisions: list[Decision], tag: str | None = None) -> list[str]:
    return [
        d.kind for d in decisions if isinstance(d, PresenceChange) and (tag is None or d.tag == tag)
    ]


def browse_trace(
    path: Path, shoppers: int, *, browse_s: float = 180, stagger: float = 20, seed: int = 0
) -> list[Advert]:
    rng = random.Random(seed)
    walks = [
        simulate.browse(key(i + 1), T0 + i * stagger, browse_s, rng=rng) for i in range(shoppers)
    ]
    adverts = simulate.Scene(PREFIX, {"n": (0.0, 0.0)}).adverts(walks, seed)["n"]
    simulate.write_trace(path, adverts)
    return adverts


def node_config(
    tmp: Path,
    broker: DevBroker,
    node: str,
    password: str,
    trace: Path,
    *,
    speed: float = 0,
    at_end: str = "exit",
    receipt_timeout_s: float = 5,
    max_events: int = 200_000,
    batch_size: int = 20,
) -> Path:
    data = {
        "node": {"id": node, "mall": broker.mall},
        "mqtt": {
            "host": "127.0.0.1",
            "port": broker.port,
            "username": node,
            "password": password,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 1,
        },
        "source": {
            "type": "replay",
            "path": str(trace),
            "speed": speed,
            "at_end": at_end,
            "drain_timeout_s": 20,
        },
        "ibeacon": {"program_prefix": PREFIX_HEX},
        "presence": {"dwell_report_s": 20},
        "outbox": {
            "path": str(tmp / f"{node}.outbox.sqlite"),
            "receipt_timeout_s": receipt_timeout_s,
            "max_events": max_events,
            "batch_size": batch_size,
        },
        "health": {"interval_s": 1},
    }
    path = tmp / f"{node}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def gate_config(tmp_path: Path, broker: DevBroker, password: str, frames: Path, **extra) -> Path:
    data = {
        "node": {"id": GATE_NODE, "mall": broker.mall},
        "mqtt": {
            "port": broker.port,
            "username": GATE_NODE,
            "password": password,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 1,
        },
        "lanes": [
            {
                "gate": "north-in",
                "direction": "entry",
                "camera": {"type": "file", "path": str(frames), "fps": 10},
                "countries": ["UA", "US"],
            }
        ],
        "reader": {"fallback": False},
        "crops": {"dir": "crops", "retention_h": 1},
        "outbox": {"path": "outbox.sqlite", "receipt_timeout_s": 5},
        "health": {"interval_s": 0.2},
        "at_end": "exit",
        "drain_timeout_s": 30,
    } | extra
    path = tmp_path / "gate.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


class AppThread:
    """The node in-process on its own thread (its loop is the only SQLite user)."""

    def __init__(self, app: EdgeApp) -> None:
        self.app = app
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.code = asyncio.run(self.app.run())

    def start(self) -> AppThread:
        self.thread.start()
        return self

    def join(self, timeout: float = 60) -> int:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "node did not finish"
        assert self.code is not None
        return self.code
