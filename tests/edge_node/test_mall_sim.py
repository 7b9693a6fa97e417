"""The whole-mall shopper simulator: its traces make the nodes' presence engine see the
stays it planned — at the right store only — and nothing for glances or passers-by."""

from __future__ import annotations

import json
import random
from collections import defaultdict

import pytest

from edge_node.ble.config import PresenceSettings
from edge_node.ble.ibeacon import IBeaconParser, build_frame
from edge_node.ble.mall_sim import MallPlan, Shopper, corridor_layout, simulate_mall
from edge_node.ble.presence import PresenceChange, PresenceEngine
from mallnet import identity

PREFIX = bytes.fromhex("f7a3e1c2")
START = 1_780_000_000.0
# the demo's tuning: quick enters and exits, visits of at least 30 s
DEMO_PRESENCE = PresenceSettings(enter_dwell_s=10, exit_timeout_s=15, dwell_report_s=15)
MIN_DWELL = 45.0  # the demo core's visits.min_dwell_s


def _inside_by_shopper(adverts, tags: dict[str, str]) -> dict[str, float]:
    """Seconds inside per shopper as the node's presence engine reports them."""
    parser = IBeaconParser(PREFIX)
    engine = PresenceEngine(DEMO_PRESENCE)
    inside: dict[str, float] = defaultdict(float)
    last = START
    for advert in adverts:
        while advert.t - last >= 1.0:  # the node's loop ticks every second
            last += 1.0
            engine.tick(last)
        sighting = parser.sighting(advert.mfr)
        if sighting is not None:
            engine.observe(advert.t, sighting.tag, sighting.measured_power, advert.rssi)
    engine.flush(last + 60)
    for decision in engine.take():
        if isinstance(decision, PresenceChange) and decision.kind == "exit":
            inside[tags.get(decision.tag, "stranger")] += decision.inside_s
    return inside


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_nodes_see_the_planned_stays_and_nothing_else(seed: int) -> None:
    stores = [(f"store-{i}", f"node-{i}") for i in range(12)]
    rng = random.Random(seed)
    shoppers = [Shopper(f"S{i}", rng.randbytes(identity.KEY_BYTES)) for i in range(12)]
    plan = MallPlan(start=START, horizon_s=900, passers_per_min=6)
    result = simulate_mall(corridor_layout(stores), shoppers, plan, prefix=PREFIX, seed=seed)

    tags = {}
    for shopper in shoppers:
        for window in range(identity.window_of(START) - 1, identity.window_of(START + 3600) + 1):
            frame = identity.beacon_frame(PREFIX, shopper.key, window)
            sighting = IBeaconParser(PREFIX).sighting(
                build_frame(frame.uuid, frame.major, frame.minor, -59)
            )
            assert sighting is not None
            tags[sighting.tag] = shopper.name
    planned: dict[tuple[str, str], float] = defaultdict(float)
    cut = set()  # stays the period's end cuts: their exit is not in the trace
    for stay in result.stays:
        planned[(stay.shopper, stay.store)] += stay.dwell
        if stay.leave > START + plan.horizon_s - 2 * DEMO_PRESENCE.exit_timeout_s:
            cut.add((stay.shopper, stay.store))
    assert any(d >= 60 for d in planned.values()) and any(d < 15 for d in planned.values())

    node_store = dict((node, store) for store, node in stores)
    for node, adverts in result.adverts.items():
        seen = _inside_by_shopper(adverts, tags)
        store = node_store[node]
        assert seen.get("stranger", 0) < MIN_DWELL, f"{node} took a passer-by for a visit"
        for shopper in shoppers:
            dwell = planned.get((shopper.name, store), 0.0)
            if (shopper.name, store) in cut:
                continue
            got = seen.get(shopper.name, 0.0)
            if dwell >= 60:  # a browse (MallPlan.browse_s)
                assert got >= MIN_DWELL, f"{shopper.name} stayed {dwell:.0f} s at {store}: {got}"
            elif dwell < 15:  # a glance (MallPlan.glance_s)
                assert got < MIN_DWELL, f"{node} saw {shopper.name} for {got} s, planned {dwell}"


def test_the_cli_writes_a_trace_per_node_and_the_truth(tmp_path) -> None:
    from mallnet.cli import main

    shoppers = tmp_path / "shoppers.json"
    shoppers.write_text(json.dumps([{"name": "Ann", "key": identity.new_beacon_key()}]))
    code = main(
        [
            "edge",
            "simulate-mall",
            "--out",
            str(tmp_path / "out"),
            "--prefix",
            PREFIX.hex(),
            "--store",
            "bean-bar-l1:node-a",
            "--store",
            "book-nook-l2:node-b",
            "--shoppers",
            str(shoppers),
            "--horizon",
            "300",
            "--start",
            str(START),
        ]
    )
    assert code == 0
    truth = json.loads((tmp_path / "out" / "truth.json").read_text())
    assert {s["shopper"] for s in truth["stays"]} == {"Ann"}
    assert {s["store"] for s in truth["stays"]} <= {"bean-bar-l1", "book-nook-l2"}
    for node in ("node-a", "node-b"):
        lines = (tmp_path / "out" / f"{node}.jsonl").read_text().splitlines()
        assert lines and all(START <= json.loads(line)["t"] <= START + 300 for line in lines)


def test_a_bad_shoppers_file_is_a_clear_error(tmp_path, caplog) -> None:
    from mallnet.cli import main

    bad = tmp_path / "shoppers.json"
    bad.write_text('[{"name": "Ann", "key": "abc"}]')
    code = main(
        [
            *("edge", "simulate-mall", "--out", str(tmp_path / "o"), "--prefix", PREFIX.hex()),
            *("--store", "a:n", "--shoppers", str(bad)),
        ]
    )
    assert code == 2
    assert "--shoppers" in caplog.text
    assert not (tmp_path / "o").exists()
