"""Replay of JSONL traces: speed, trace time, bad lines, the recorded format."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge_node.ble.replay import ReplaySource
from edge_node.ble.sources import Advert, TraceFormatError, advert_from_json
from edge_node.errors import SourceError

A = Advert(1000.0, "AA:BB:CC:DD:EE:01", -60, bytes.fromhex("4c000215") + bytes(21), None)


class FakeTime:
    """A clock that only moves when the replay sleeps."""

    def __init__(self) -> None:
        self.now = 50.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay


def _trace(path: Path, times: list[float]) -> None:
    lines = [Advert(t, A.address, A.rssi, A.mfr, -4).to_json() for t in times]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def _collect(source: ReplaySource) -> list[Advert]:
    return [advert async for advert in source.adverts()]


@pytest.mark.parametrize(("speed", "expected"), [(1.0, [0.0, 2.0, 8.0]), (10.0, [0.0, 0.2, 0.8])])
def test_replay_waits_scaled_trace_time(
    tmp_path: Path, speed: float, expected: list[float]
) -> None:
    trace = tmp_path / "t.jsonl"
    _trace(trace, [1000.0, 1002.0, 1010.0])
    fake = FakeTime()
    source = ReplaySource(trace, speed=speed, clock=fake.clock, sleep=fake.sleep)
    adverts = asyncio.run(_collect(source))
    assert [a.t for a in adverts] == [1000.0, 1002.0, 1010.0]
    assert fake.sleeps == pytest.approx(expected[1:])
    assert source.now() == 1010.0 and source.finished
    assert adverts[0].tx_power == -4 and source.stats.adverts == 3


def test_fast_replay_does_not_wait_and_bad_lines_are_counted(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    good = A.to_json()
    trace.write_text(
        "\n".join(
            [
                good,
                "{not json",
                '{"t": 1}',
                "[1,2]",
                good.replace('"rssi":-60', '"rssi":5000'),
                "",
                good,
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    fake = FakeTime()
    source = ReplaySource(trace, speed=0, clock=fake.clock, sleep=fake.sleep)
    assert len(asyncio.run(_collect(source))) == 2
    assert source.stats.bad_lines == 4
    assert all(d == 0 for d in fake.sleeps)


def test_missing_trace_is_a_source_error(tmp_path: Path) -> None:
    source = ReplaySource(tmp_path / "nope.jsonl", speed=0)
    with pytest.raises(SourceError):
        asyncio.run(_collect(source))
    with pytest.raises(SourceError):
        ReplaySource(tmp_path / "x", speed=-1)


def test_trace_line_round_trip_and_errors() -> None:
    assert advert_from_json(A.to_json()) == A
    for bad in [
        '{"t":"x","addr":"a","rssi":-1,"mfr":""}',
        '{"t":1,"addr":"a","rssi":-1,"mfr":"zz"}',
        '{"t":1,"addr":"a","rssi":true,"mfr":""}',
        '{"t":1,"addr":"a","rssi":-1,"mfr":"","tx":"x"}',
    ]:
        with pytest.raises(TraceFormatError):
            advert_from_json(bad)


def test_lines_that_are_not_utf8_or_not_a_time_are_counted_and_skipped(tmp_path: Path) -> None:
    """A corrupt byte or an impossible time spoils one line, never the replay (or the node)."""
    good = A.to_json().encode()
    bad_times = [
        good.replace(b'"t":1000.0', b'"t":' + value) for value in (b"NaN", b"Infinity", b"1e300")
    ]
    assert all(line != good for line in bad_times)
    trace = tmp_path / "t.jsonl"
    trace.write_bytes(b"\n".join([good, b"\xff\xfe{garbage", *bad_times, good]) + b"\n")
    fake = FakeTime()
    source = ReplaySource(trace, speed=1, clock=fake.clock, sleep=fake.sleep)
    adverts = asyncio.run(_collect(source))
    assert [a.t for a in adverts] == [1000.0, 1000.0]
    assert source.stats.bad_lines == 4
    for line in bad_times:
        with pytest.raises(TraceFormatError, match="Unix time"):
            advert_from_json(line.decode())
