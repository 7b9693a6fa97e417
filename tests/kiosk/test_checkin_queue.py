"""The on-disk check-in queue: ids made at source survive a restart; bounded; no leftovers."""

from __future__ import annotations

import sqlite3

from kiosk.checkin_queue import CheckinQueue


def test_check_ins_survive_a_restart_with_their_ids_and_seq(tmp_path) -> None:
    path = tmp_path / "q.sqlite"
    queue = CheckinQueue(path)
    first = queue.add("customer:c1", "atrium")
    second = queue.add("phone:+380671234567", None)
    queue.close()

    reopened = CheckinQueue(path)
    assert reopened.oldest(10) == [first, second]
    assert [e.seq for e in reopened.oldest(10)] == [0, 1]
    reopened.remove([first.id])
    third = reopened.add("customer:c2", None)
    assert third.seq == 2  # the counter never goes back
    assert [e.id for e in reopened.oldest(10)] == [second.id, third.id]
    assert len(reopened) == 2


def test_the_queue_is_bounded_and_counts_what_it_drops(tmp_path) -> None:
    queue = CheckinQueue(tmp_path / "q.sqlite", max_rows=3)
    made = [queue.add(f"customer:c{i}", None) for i in range(5)]
    assert [e.id for e in queue.oldest(10)] == [e.id for e in made[2:]]
    assert queue.dropped == 2


def test_a_sent_phone_number_is_not_left_readable_in_the_file(tmp_path) -> None:
    path = tmp_path / "q.sqlite"
    queue = CheckinQueue(path)
    event = queue.add("phone:+380671234567", None)
    queue.remove([event.id])
    queue.close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    leftovers = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"380671234567" not in leftovers
