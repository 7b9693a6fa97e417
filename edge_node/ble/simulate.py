"""Synthetic shoppers: noisy, lossy iBeacon adverts as nodes would hear them.

A shopper follows a piecewise-linear walk (waypoints in metres, seconds). Their
beacon advertises ``rate_hz`` times a second with the rotating frame of
``mallnet.identity`` for the advert's window (so the core can resolve it with
the same beacon key). Each node at position ``(x, y)`` hears an advert with
probability ``1 - loss`` at RSSI ``P1m - 10 n log10(d) + N(0, σ²)`` where ``d``
is the distance (at least 0.3 m). Output is the JSONL trace format of
``edge_node.ble.sources`` — the same a live capture has.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edge_node.ble.ibeacon import build_frame
from edge_node.ble.sources import Advert
from mallnet import identity

Point = tuple[float, float]


@dataclass(frozen=True)
class Waypoint:
    t: float  # seconds from the walk's start
    x: float
    y: float


@dataclass(frozen=True)
class Walk:
    key: bytes  # the shopper's beacon key
    start: float  # Unix time of the first waypoint
    waypoints: tuple[Waypoint, ...]
    address: str = "02:00:00:00:00:01"

    @property
    def end(self) -> float:
        return self.start + self.waypoints[-1].t

    def position(self, t: float) -> Point:
        rel = t - self.start
        points = self.waypoints
        if rel <= points[0].t:
            return points[0].x, points[0].y
        for a, b in itertools.pairwise(points):
            if rel <= b.t:
                span = b.t - a.t
                f = 0.0 if span <= 0 else (rel - a.t) / span
                return a.x + (b.x - a.x) * f, a.y + (b.y - a.y) * f
        return points[-1].x, points[-1].y


@dataclass(frozen=True)
class Radio:
    """How adverts propagate and get lost."""

    sigma_db: float = 5.0
    loss: float = 0.25
    measured_power: int = -59
    path_loss_exponent: float = 2.0
    rate_hz: float = 2.0
    sensitivity_dbm: int = -100  # weaker adverts are not received


@dataclass
class Scene:
    """Nodes (by id, at positions) hearing a set of walks."""

    prefix: bytes
    nodes: dict[str, Point]
    radio: Radio = field(default_factory=Radio)

    def adverts(self, walks: Iterable[Walk], seed: int = 0) -> dict[str, list[Advert]]:
        """What each node hears, time-ordered."""
        rng = random.Random(seed)
        heard: dict[str, list[Advert]] = {node: [] for node in self.nodes}
        radio = self.radio
        step = 1.0 / radio.rate_hz
        for walk in walks:
            t = walk.start + rng.uniform(0, step)
            frames: dict[int, bytes] = {}
            while t <= walk.end:
                window = identity.window_of(t)
                frame = frames.get(window)
                if frame is None:
                    f = identity.beacon_frame(self.prefix, walk.key, window)
                    frame = frames[window] = build_frame(
                        f.uuid, f.major, f.minor, radio.measured_power
                    )
                x, y = walk.position(t)
                for node, (nx, ny) in self.nodes.items():
                    if rng.random() < radio.loss:
                        continue
                    d = max(0.3, math.hypot(x - nx, y - ny))
                    rssi = (
                        radio.measured_power
                        - 10 * radio.path_loss_exponent * math.log10(d)
                        + rng.gauss(0, radio.sigma_db)
                    )
                    rssi_i = max(-127, min(20, round(rssi)))
                    if rssi_i < radio.sensitivity_dbm:
                        continue
                    heard[node].append(Advert(round(t, 3), walk.address, rssi_i, frame, None))
                t += step * rng.uniform(0.9, 1.1)
        for node_adverts in heard.values():
            node_adverts.sort(key=lambda a: a.t)
        return heard


def pass_by(
    key: bytes, start: float, *, lane_y: float = 3.5, speed: float = 1.2, span: float = 25.0
) -> Walk:
    """Walk along the corridor past the store's door (node at the origin) without entering."""
    duration = 2 * span / speed
    return Walk(key, start, (Waypoint(0, -span, lane_y), Waypoint(duration, span, lane_y)))


def browse(
    key: bytes,
    start: float,
    browse_s: float,
    *,
    at: Point = (0.0, 0.0),
    spread: float = 1.5,
    corridor_y: float = 6.0,
    rng: random.Random | None = None,
) -> Walk:
    """Walk in from the corridor, wander near ``at`` for ``browse_s`` seconds, walk out."""
    rng = rng or random.Random(0)
    ax, ay = at
    points = [Waypoint(0, ax - 15, ay + corridor_y), Waypoint(12, ax, ay + corridor_y)]
    t = 18.0
    points.append(Waypoint(t, ax, ay + 1))
    end = t + browse_s
    while t < end:
        t = min(end, t + rng.uniform(8, 20))
        points.append(Waypoint(t, ax + rng.uniform(-spread, spread), ay + rng.uniform(-1, spread)))
    points.append(Waypoint(t + 6, ax, ay + corridor_y))
    points.append(Waypoint(t + 18, ax + 15, ay + corridor_y))
    return Walk(key, start, tuple(points))


def write_trace(path: Path, adverts: Sequence[Advert]) -> None:
    """Write adverts as a JSONL trace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for advert in adverts:
            out.write(advert.to_json() + "\n")


def random_address(rng: random.Random) -> str:
    """A random resolvable-private-style address (what phones advertise)."""
    first = (rng.randrange(256) & 0x3F) | 0x40
    rest = [rng.randrange(256) for _ in range(5)]
    return ":".join(f"{b:02X}" for b in (first, *rest))
