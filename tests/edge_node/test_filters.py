"""Kalman vs median/IQR on noisy, lossy walks; the configured default must be the better."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from functools import partial

import pytest

from edge_node.ble import simulate
from edge_node.ble.config import PresenceSettings
from edge_node.ble.filters import KalmanFilter, MedianIqrFilter, RssiFilter
from tests.edge_node.helpers import T0, key

P1M = -59.0
TRACES = [(4.0, 0.13), (5.0, 0.25), (6.0, 0.40)]


def _samples(sigma: float, loss: float, seed: int) -> list[tuple[float, float, float]]:
    """(t, measured, true) for one browsing shopper heard by a node at the origin."""
    rng = random.Random(seed)
    walk = simulate.browse(key(1), T0, 180, rng=random.Random(seed))
    out: list[tuple[float, float, float]] = []
    t = walk.start
    while t <= walk.end:
        x, y = walk.position(t)
        true = P1M - 20 * math.log10(max(0.3, math.hypot(x, y)))
        if rng.random() >= loss:
            out.append((t, round(true + rng.gauss(0, sigma)), true))
        t += 0.5
    return out


def rmse(make: Callable[[], RssiFilter], sigma: float, loss: float, seeds: int = 8) -> float:
    errors = []
    for seed in range(seeds):
        filt = make()
        for t, measured, true in _samples(sigma, loss, seed):
            errors.append((filt.update(t, measured) - true) ** 2)
    return math.sqrt(sum(errors) / len(errors))


MEDIAN_WINDOWS = (2.0, 3.0, 4.0, 6.0, 8.0)


def comparison() -> list[tuple[float, float, float, float]]:
    """(σ, loss, Kalman RMSE with the default tuning, the best median/IQR window's RMSE)."""
    settings = PresenceSettings()
    out = []
    for sigma, loss in TRACES:
        kalman = rmse(
            lambda: KalmanFilter(settings.kalman_process_var, settings.kalman_measurement_var),
            sigma,
            loss,
        )
        median = min(rmse(partial(MedianIqrFilter, w), sigma, loss) for w in MEDIAN_WINDOWS)
        out.append((sigma, loss, kalman, median))
    return out


def test_default_filter_is_the_better_one_on_every_trace() -> None:
    default = PresenceSettings().filter
    for sigma, loss, kalman, median in comparison():
        better = "kalman" if kalman < median else "median"
        assert better == default, f"σ={sigma} loss={loss}: kalman {kalman:.2f} median {median:.2f}"
        assert min(kalman, median) < sigma  # either filter beats the raw noise


@pytest.mark.parametrize("make", [KalmanFilter, MedianIqrFilter])
def test_filters_follow_a_step(make: type[RssiFilter]) -> None:
    filt = make()
    value = 0.0
    for i in range(60):
        value = filt.update(T0 + i * 0.5, -80 if i < 20 else -55)
    assert abs(value - -55) < 2
    assert filt.value == value


def test_median_iqr_rejects_a_burst() -> None:
    filt = MedianIqrFilter(window_s=10)
    for i in range(16):
        filt.update(T0 + i * 0.5, -60 + (i % 3) - 1)
    assert abs(filt.update(T0 + 8.0, -20) - -60) <= 1  # one wild reflection changes nothing


if __name__ == "__main__":  # prints the table in docs/edge.md
    for sigma, loss, kalman, median in comparison():
        print(f"| σ {sigma:.0f} dB, {loss:.0%} loss | {kalman:.2f} dB | {median:.2f} dB |")  # noqa: T201
