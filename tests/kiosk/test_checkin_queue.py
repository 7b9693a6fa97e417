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


def test_a_queue_file_from_before_receipts_keeps_its_check_ins(tmp_path) -> None:
    import sqlite3

    path = tmp_path / "queue.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE checkins (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
        " ts TEXT NOT NULL, token TEXT NOT NULL, store TEXT);"
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "INSERT INTO meta VALUES ('next_seq', 1), ('dropped', 0);"
        "INSERT INTO checkins VALUES (0, '01a22626-353d-72bc-b6d3-230b5f8f4379',"
        " '2026-11-23T10:00:00+00:00', 'customer:c1', NULL);"
    )
    old.commit()
    old.close()
    queue = CheckinQueue(path)
    [event] = queue.oldest(10, resend_before=0.0)  # never sent: due
    queue.mark_sent([event.id], 100.0)
    assert queue.oldest(10, resend_before=50.0) == []  # sent, not yet due again
    assert queue.oldest(10, resend_before=150.0) == [event]
    assert queue.remove([event.id]) == {event.id} and len(queue) == 0
    queue.close()
