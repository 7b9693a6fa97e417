"""Presence decisions on noisy synthetic walks (σ 4–6 dB, 13–40 % loss)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_node.ble import simulate
from edge_node.ble.config import FootfallSettings, PresenceSettings
from edge_node.ble.ibeacon import build_frame
from edge_node.ble.presence import FootfallCount, PresenceChange, PresenceEngine, State
from edge_node.ble.sources import Advert
from mallnet.wire.payloads import PresenceTuning
from tests.edge_node.helpers import PREFIX, T0, key, kinds, run_engine

NOISE = [(4.0, 0.13), (5.0, 0.25), (6.0, 0.40)]
SEEDS = range(6)


def _hear(
    walks: list[simulate.Walk],
    nodes: dict[str, simulate.Point],
    sigma: float,
    loss: float,
    seed: int,
) -> dict[str, list[Advert]]:
    radio = simulate.Radio(sigma_db=sigma, loss=loss)
    return simulate.Scene(PREFIX, nodes, radio).adverts(walks, seed)


@pytest.mark.parametrize(("sigma", "loss"), NOISE)
@pytest.mark.parametrize("seed", SEEDS)
def test_a_shopper_passing_the_door_gets_no_enter(sigma: float, loss: float, seed: int) -> None:
    adverts = _hear([simulate.pass_by(key(1), T0)], {"n": (0, 0)}, sigma, loss, seed)["n"]
    assert adverts, "the node must hear the passer"
    assert kinds(run_engine(adverts)) == []


@pytest.mark.parametrize(("sigma", "loss"), NOISE)
@pytest.mark.parametrize("seed", SEEDS)
def test_three_minute_browse_is_one_enter_and_one_exit(
    sigma: float, loss: float, seed: int
) -> None:
    walk = simulate.browse(key(2), T0, 180, rng=random.Random(seed))
    adverts = _hear([walk], {"n": (0, 0)}, sigma, loss, seed)["n"]
    decisions = run_engine(adverts)
    seen = [k for k in kinds(decisions) if k != "dwell"]
    assert seen == ["enter", "exit"]
    changes = [d for d in decisions if isinstance(d, PresenceChange)]
    enter, exit_ = changes[0], changes[-1]
    assert 150 <= exit_.inside_s <= 260  # about the browse, give or take dwell and timeout
    assert enter.inside_s == 0 and enter.distance_m <= PresenceSettings().radius_m
    assert all(d.kind == "dwell" for d in changes[1:-1]) and len(changes) >= 4


@pytest.mark.parametrize(("sigma", "loss"), NOISE)
@pytest.mark.parametrize("seed", SEEDS)
def test_neighbouring_stores_do_not_both_claim_a_shopper(
    sigma: float, loss: float, seed: int
) -> None:
    # Two stores' nodes 12 m apart (≥ 2 × (radius 4 m + hysteresis 1.5 m), docs/edge.md).
    nodes = {"a": (0.0, 0.0), "b": (12.0, 0.0)}
    rng = random.Random(seed)
    walks = [
        simulate.browse(key(3), T0, 180, at=(0.0, 0.0), rng=rng),
        simulate.browse(key(4), T0 + 30, 180, at=(12.0, 0.0), rng=rng),
    ]
    heard = _hear(walks, nodes, sigma, loss, seed)
    tag_a = _tag_of(walks[0], T0 + 100)
    tag_b = _tag_of(walks[1], T0 + 100)
    decided_a, decided_b = run_engine(heard["a"]), run_engine(heard["b"])
    assert [k for k in kinds(decided_a, tag_a) if k != "dwell"] == ["enter", "exit"]
    assert [k for k in kinds(decided_b, tag_b) if k != "dwell"] == ["enter", "exit"]
    assert kinds(decided_a, tag_b) == [] and kinds(decided_b, tag_a) == []


def test_without_calibration_the_neighbour_would_claim_the_shopper() -> None:
    # The same geometry with a node-B radius reaching into store A shows the test can fail.
    walk = simulate.browse(key(3), T0, 180, at=(0.0, 0.0), rng=random.Random(0))
    heard = _hear([walk], {"b": (12.0, 0.0)}, 5, 0.25, 0)["b"]
    assert "enter" in kinds(run_engine(heard, PresenceSettings(radius_m=14)))


def _tag_of(walk: simulate.Walk, t: float) -> str:
    from mallnet import identity

    return identity.tag_id(walk.key, identity.window_of(t))


def _frame(power: int = -59) -> tuple[str, int]:
    from mallnet import identity

    return identity.tag_id(key(9), 0), power


def test_exit_when_the_tag_falls_silent_and_forgetting() -> None:
    engine = PresenceEngine(PresenceSettings(enter_dwell_s=10, exit_timeout_s=30))
    tag, power = _frame()
    for i in range(30):  # 15 s close by
        engine.observe(T0 + i * 0.5, tag, power, -60)
    assert kinds(engine.take()) == ["enter"]
    assert engine.state_of(tag) is State.INSIDE
    engine.tick(T0 + 14.5 + 29)
    assert kinds(engine.take()) == []
    engine.tick(T0 + 14.5 + 30)
    decided = [d for d in engine.take() if isinstance(d, PresenceChange)]
    assert [d.kind for d in decided] == ["exit"]
    assert decided[0].inside_s == pytest.approx(30 + 14.5 - 10, abs=0.6)
    engine.tick(T0 + 200)
    assert engine.tracked == 0


def test_dwell_reports_at_the_configured_interval() -> None:
    engine = PresenceEngine(PresenceSettings(enter_dwell_s=0, dwell_report_s=30))
    tag, power = _frame()
    for i in range(200):  # 100 s
        engine.observe(T0 + i * 0.5, tag, power, -60)
    changes = [d for d in engine.take() if isinstance(d, PresenceChange)]
    assert [d.kind for d in changes] == ["enter", "dwell", "dwell", "dwell"]
    assert [d.inside_s for d in changes] == [0, 30, 60, 90]


def test_footfall_counts_unique_tags_and_adverts_per_minute() -> None:
    engine = PresenceEngine(PresenceSettings(), FootfallSettings(window_s=60))
    start = 1_763_869_980.0  # a minute boundary
    for i in range(10):
        engine.observe(start + i, f"{i % 3:032x}", -59, -90)
    for i in range(4):
        engine.observe(start + 60 + i, f"{7:032x}", -59, -90)
    engine.tick(start + 125)
    counts = [d for d in engine.take() if isinstance(d, FootfallCount)]
    assert [(c.window_start, c.unique_tags, c.adverts) for c in counts] == [
        (start, 3, 10),
        (start + 60, 1, 4),
    ]


def test_core_tuning_applies_over_the_file_config() -> None:
    settings = PresenceSettings(radius_m=4)
    tuned = settings.tuned(PresenceTuning(radius_m=2.5, rx_adjust_db=-3))
    assert (tuned.radius_m, tuned.rx_adjust_db, tuned.enter_dwell_s) == (2.5, -3, 45)
    engine = PresenceEngine(settings)
    near = engine.distance_for(-59, -63)
    engine.apply(tuned)
    assert engine.distance_for(-59, -63) > near  # a negative adjustment pushes tags away


def test_frames_from_the_simulator_round_trip() -> None:
    from mallnet import identity

    f = identity.beacon_frame(PREFIX, key(1), 5)
    assert build_frame(f.uuid, f.major, f.minor, -59)[:8] == bytes.fromhex("4c000215") + PREFIX


def test_a_visit_across_an_id_rotation_is_two_tags_each_entered_and_exited_once() -> None:
    from mallnet import identity

    boundary = (identity.window_of(T0) + 1) * identity.WINDOW_S
    walk = simulate.browse(key(6), boundary - 120, 240, rng=random.Random(1))
    adverts = _hear([walk], {"n": (0, 0)}, 5, 0.25, 1)["n"]
    decisions = run_engine(adverts)
    old = identity.tag_id(key(6), identity.window_of(boundary - 1))
    new = identity.tag_id(key(6), identity.window_of(boundary))
    assert [k for k in kinds(decisions, old) if k != "dwell"] == ["enter", "exit"]
    assert [k for k in kinds(decisions, new) if k != "dwell"] == ["enter", "exit"]
    assert {d.tag for d in decisions if isinstance(d, PresenceChange)} == {old, new}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.floats(0.05, 90), st.integers(-100, -40)),
        min_size=1,
        max_size=300,
    )
)
def test_every_tag_alternates_enter_dwell_exit_whatever_the_input(
    steps: list[tuple[int, float, int]],
) -> None:
    engine = PresenceEngine(PresenceSettings(enter_dwell_s=5, exit_timeout_s=10, dwell_report_s=3))
    t = T0
    for tag_no, dt, rssi in steps:
        t += dt
        engine.tick(t)
        engine.observe(t, f"{tag_no:032x}", -59, rssi)
    engine.tick(t + 1000)
    changes = [d for d in engine.take() if isinstance(d, PresenceChange)]
    for tag in {c.tag for c in changes}:
        inside = False
        last_t = -1.0
        for change in (c for c in changes if c.tag == tag):
            assert change.t >= last_t
            last_t = change.t
            if change.kind == "enter":
                assert not inside and change.inside_s == 0
                inside = True
            else:
                assert inside, f"{change.kind} without an enter"
                assert change.inside_s >= 0
                inside = change.kind == "dwell"
        assert not inside  # everyone left in the end
    assert engine.inside == 0
