"""A whole mall of synthetic shoppers: trips between stores, heard by every node at once.

Stores stand on both sides of one corridor (``corridor_layout``), each with a node inside,
``depth`` metres from the corridor's centre line. A shopper's trip enters at the
corridor's start, walks to each chosen store, steps in and browses around the node
(``Stay``: the ground truth of who was inside where, and when), steps out and walks on;
some stays are glances too short to be a visit. Anonymous passers-by only walk the
corridor. One ``Scene`` hears every walk, so each node also hears the corridor and the
stores next door — with the radio model's noise and losses — as real nodes do.

``simulate_mall`` plans the trips and returns each node's adverts and the truth; the
demo (``mallnet demo``) and load tests use it through ``mallnet edge simulate-mall``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from edge_node.ble.simulate import Radio, Scene, Walk, Waypoint, random_address
from edge_node.ble.sources import Advert
from mallnet import identity

Point = tuple[float, float]
ENTRANCE: Point = (-12.0, 0.0)


@dataclass(frozen=True)
class StoreSpot:
    """A store on the corridor and the node inside it."""

    store: str
    node: str
    x: float
    side: int  # +1 north of the corridor, -1 south


@dataclass(frozen=True)
class Shopper:
    name: str
    key: bytes  # the beacon key registered with the core


@dataclass(frozen=True)
class Stay:
    """A shopper inside a store from ``enter`` to ``leave`` (Unix times)."""

    shopper: str
    store: str
    enter: float
    leave: float

    @property
    def dwell(self) -> float:
        return self.leave - self.enter


@dataclass(frozen=True)
class MallPlan:
    """Trips planned for a period: tuning for how shoppers behave."""

    start: float
    horizon_s: float = 1800.0
    trips_per_shopper: int = 1
    stores_per_trip: tuple[int, int] = (2, 4)
    browse_s: tuple[float, float] = (60.0, 150.0)
    glance_s: tuple[float, float] = (4.0, 12.0)
    glance_share: float = 0.25
    passers_per_min: float = 4.0
    early_shoppers: int = 3  # trips that start within the first seconds (quick feedback)
    speed_mps: float = 1.2


@dataclass
class MallSimulation:
    adverts: dict[str, list[Advert]]  # node id → time-ordered adverts
    stays: list[Stay] = field(default_factory=list)
    walks: int = 0


def corridor_layout(stores: Sequence[tuple[str, str]], *, spacing: float = 18.0) -> list[StoreSpot]:
    """(store, node) pairs placed alternately north and south along the corridor."""
    return [
        StoreSpot(store, node, (index // 2) * spacing, 1 if index % 2 == 0 else -1)
        for index, (store, node) in enumerate(stores)
    ]


def node_positions(spots: Sequence[StoreSpot], depth: float = 8.0) -> dict[str, Point]:
    return {spot.node: (spot.x, spot.side * depth) for spot in spots}


class _Path:
    """Builds a walk's waypoints at walking speed; records the stays."""

    def __init__(self, start: float, speed: float) -> None:
        self.start = start
        self.speed = speed
        self.t = 0.0
        self.at = ENTRANCE
        self.points = [Waypoint(0.0, *ENTRANCE)]

    def walk_to(self, x: float, y: float, pause: float = 0.0) -> None:
        self.t += math.hypot(x - self.at[0], y - self.at[1]) / self.speed + pause
        self.at = (x, y)
        self.points.append(Waypoint(round(self.t, 2), x, y))

    def stay(
        self, spot: StoreSpot, dwell: float, rng: random.Random, depth: float
    ) -> tuple[float, float]:
        """Step in, wander near the node for ``dwell`` s, step out: (entered, left), walk time."""
        door_y = spot.side * 3.0
        self.walk_to(spot.x, 0.0)
        self.walk_to(spot.x, door_y)
        self.walk_to(spot.x + rng.uniform(-1, 1), spot.side * (depth - 1.0))
        entered = self.t
        end = self.t + dwell
        while self.t < end:
            x = spot.x + rng.uniform(-1.5, 1.5)
            y = spot.side * (depth + rng.uniform(-1.5, 1.0))
            step = math.hypot(x - self.at[0], y - self.at[1]) / self.speed
            self.t = min(end, self.t + max(step, rng.uniform(6, 15)))
            self.at = (x, y)
            self.points.append(Waypoint(round(self.t, 2), x, y))
        left = self.t
        self.walk_to(spot.x, door_y)
        self.walk_to(spot.x, 0.0)
        return entered, left

    def walk(self, key: bytes, address: str) -> Walk:
        return Walk(key, self.start, tuple(self.points), address=address)


def _trip(
    shopper: Shopper,
    start: float,
    *,
    spots: Sequence[StoreSpot],
    plan: MallPlan,
    rng: random.Random,
    depth: float,
) -> tuple[Walk, list[Stay]]:
    low, high = plan.stores_per_trip
    chosen = rng.sample(list(spots), min(len(spots), rng.randint(low, high)))
    path = _Path(start, plan.speed_mps)
    stays = []
    for spot in chosen:
        glance = rng.random() < plan.glance_share
        dwell = rng.uniform(*(plan.glance_s if glance else plan.browse_s))
        entered, left = path.stay(spot, dwell, rng, depth)
        stays.append(Stay(shopper.name, spot.store, start + entered, start + left))
    path.walk_to(*ENTRANCE)
    return path.walk(shopper.key, random_address(rng)), stays


def simulate_mall(
    spots: Sequence[StoreSpot],
    shoppers: Sequence[Shopper],
    plan: MallPlan,
    *,
    prefix: bytes,
    radio: Radio | None = None,
    seed: int = 0,
    depth: float = 8.0,
) -> MallSimulation:
    """Plan every trip and passer-by within the horizon; return what each node hears."""
    rng = random.Random(seed)
    walks: list[Walk] = []
    stays: list[Stay] = []
    latest = max(1.0, plan.horizon_s * 0.6)
    for index, shopper in enumerate(shoppers):
        for trip in range(plan.trips_per_shopper):
            if index < plan.early_shoppers and trip == 0:
                offset = 1.0 + index * 2.0
            else:
                offset = rng.uniform(1.0, latest)
            walk, trip_stays = _trip(
                shopper, plan.start + offset, spots=spots, plan=plan, rng=rng, depth=depth
            )
            walks.append(walk)
            stays.extend(trip_stays)
    far_x = max((spot.x for spot in spots), default=0.0) + 12.0
    passers = int(plan.passers_per_min * plan.horizon_s / 60)
    for _ in range(passers):
        key = bytes(rng.randrange(256) for _ in range(identity.KEY_BYTES))
        start = plan.start + rng.uniform(0, plan.horizon_s)
        lane = rng.uniform(-1.5, 1.5)
        duration = 2 * (far_x - ENTRANCE[0]) / plan.speed_mps
        waypoints = (
            Waypoint(0.0, ENTRANCE[0], lane),
            Waypoint(duration / 2, far_x, lane),
            Waypoint(duration, ENTRANCE[0], -lane),
        )
        walks.append(Walk(key, start, waypoints, address=random_address(rng)))
    walks = [w for w in walks if w.start < plan.start + plan.horizon_s]
    scene = Scene(prefix, node_positions(spots, depth), radio or Radio())
    adverts = scene.adverts(walks, seed=seed)
    end = plan.start + plan.horizon_s
    clipped = {node: [a for a in heard if a.t <= end] for node, heard in adverts.items()}
    # a stay the period's end cuts short ends there
    stays = [replace(s, leave=min(s.leave, end)) for s in stays if s.enter < end]
    return MallSimulation(clipped, sorted(stays, key=lambda s: s.enter), len(walks))
