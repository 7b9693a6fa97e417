"""The SQLite outbox on real files: durable seq, receipts, republish marks, the bound."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from edge_node.errors import OutboxError
from edge_node.outbox import Outbox


def _build(event_id: str, seq: int) -> str:
    return json.dumps({"id": event_id, "seq": seq})


def test_seq_is_monotonic_across_reopen_even_when_empty(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = Outbox(path)
    first = [box.append("presence", _build, 1.0) for _ in range(3)]
    assert [s.seq for s in first] == [1, 2, 3]
    assert box.receipt([s.id for s in first]) == 3
    assert box.depth == 0
    box.close()
    box = Outbox(path)
    assert box.append("presence", _build, 2.0).seq == 4
    assert box.last_seq == 4
    assert box.next_health_seq() == 1 and box.next_health_seq() == 2
    box.close()


def test_unsent_sent_and_reset_in_seq_order(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    for _ in range(5):
        box.append("presence", _build, 1.0)
    batch = box.unsent(3)
    assert [s.seq for s in batch] == [1, 2, 3]
    assert json.loads(batch[0].payload) == {"id": batch[0].id, "seq": 1}
    box.mark_sent([1, 2, 3], 10.0)
    assert [s.seq for s in box.unsent(10)] == [4, 5]
    assert box.inflight() == 3 and box.oldest_sent_at() == 10.0
    assert box.receipt([batch[1].id, "0190b3c2-0000-7000-8000-000000000000"]) == 1
    assert box.reset_sent() == 2
    assert [s.seq for s in box.unsent(10)] == [1, 3, 4, 5]
    assert box.oldest_age(11.0) == 10.0
    box.close()


def test_bound_drops_oldest_first_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = Outbox(path, max_events=10)
    for _ in range(25):
        box.append("presence", _build, 1.0)
    assert box.depth == 10 and box.dropped == 15
    assert [s.seq for s in box.unsent(100)] == list(range(16, 26))
    box.close()
    box = Outbox(path, max_events=10)
    assert (box.depth, box.dropped) == (10, 15)
    box.close()


def test_a_failed_build_writes_nothing_and_uses_no_seq(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")

    def broken(_id: str, _seq: int) -> str:
        raise ValueError("bad event")

    with pytest.raises(ValueError, match="bad event"):
        box.append("presence", broken, 1.0)
    assert box.depth == 0
    assert box.append("presence", _build, 1.0).seq == 1
    box.close()


def test_committed_events_are_visible_to_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = Outbox(path)
    box.append("footfall", _build, 1.0)
    other = sqlite3.connect(str(path))
    assert other.execute("SELECT seq, leaf FROM events").fetchall() == [(1, "footfall")]
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    other.close()
    box.close()


def test_unusable_path_is_an_outbox_error(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite").mkdir()
    with pytest.raises(OutboxError):
        Outbox(tmp_path / "dir.sqlite")


def test_append_many_is_one_transaction(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")

    def broken(_id: str, _seq: int) -> str:
        raise ValueError("bad event")

    with pytest.raises(ValueError, match="bad event"):
        box.append_many([("presence", _build), ("presence", broken)], 1.0)
    assert box.depth == 0 and box.last_seq == 0
    stored = box.append_many([("presence", _build), ("footfall", _build)], 1.0)
    assert [(s.seq, s.leaf) for s in stored] == [(1, "presence"), (2, "footfall")]
    box.close()


def test_the_pipeline_counts_a_decision_the_contract_rejects(tmp_path: Path) -> None:
    from edge_node.ble.config import PresenceSettings
    from edge_node.ble.ibeacon import IBeaconParser
    from edge_node.ble.pipeline import Pipeline
    from edge_node.ble.presence import FootfallCount, PresenceChange, PresenceEngine

    box = Outbox(tmp_path / "o.sqlite")
    engine = PresenceEngine(PresenceSettings())
    pipe = Pipeline(IBeaconParser(bytes(4)), engine, box)
    engine.pending += [
        PresenceChange("enter", "ab" * 16, 1e9, -60.0, 1.0, 0.0),
        PresenceChange("enter", "not-a-tag", 1e9, -60.0, 1.0, 0.0),
        FootfallCount(1e9, 60, 1, 2),
    ]
    pipe.store()
    assert (pipe.events, pipe.invalid, box.depth) == (2, 1, 2)
    box.close()
