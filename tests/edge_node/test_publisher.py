"""The publisher at its seam: a recording transport, contract receipts, explicit time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from edge_node.outbox import Outbox
from edge_node.publisher import Publisher
from mallnet.ids import new_event_id
from mallnet.mqtt import Inbound, PublishTicket
from mallnet.wire import decode, encode
from mallnet.wire.payloads import PresenceBatch, PresenceEvent, Receipt
from mallnet.wire.topics import PRESENCE, RECEIPTS

MALL, NODE = "testmall", "store-a"


class Recorder:
    """A Transport that records publishes; PUBACKs resolve at once."""

    def __init__(self) -> None:
        self.connected = True
        self.sent: list[tuple[str, bytes]] = []
        self.fail = False
        self.reason = 0  # the broker's PUBACK reason code for what is published now

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> PublishTicket:
        ticket = PublishTicket(len(self.sent) + 1, 4 if self.fail else 0)
        if not self.fail:
            self.sent.append((topic, payload))
            ticket._resolve(self.reason)
        return ticket

    def batches(self) -> list[list[int]]:
        out = []
        for topic, payload in self.sent:
            message = decode(topic, payload).message
            assert isinstance(message, PresenceBatch)
            out.append([e.seq for e in message.events])
        return out


def _event(event_id: str, seq: int) -> str:
    return PresenceEvent(
        id=event_id,
        seq=seq,
        ts=datetime(2026, 1, 1, tzinfo=UTC),
        kind="enter",
        tag="ab" * 16,
        rssi=-60.0,
        distance_m=1.0,
        inside_s=0.0,
    ).model_dump_json()


def _receipt(ids: list[str]) -> Inbound:
    payload = encode(Receipt(ts=datetime.now(UTC), ids=tuple(ids)))
    return Inbound(RECEIPTS.topic(MALL, NODE), payload, 1, False, 1)


def _setup(tmp_path: Path, **kwargs: int | float) -> tuple[Outbox, Publisher, Recorder]:
    box = Outbox(tmp_path / "o.sqlite")
    pub = Publisher(box, MALL, NODE, **kwargs)  # type: ignore[arg-type]
    rec = Recorder()
    pub.transport = rec
    return box, pub, rec


def test_one_receipted_window_at_a_time_in_seq_order(tmp_path: Path) -> None:
    box, pub, rec = _setup(tmp_path, batch_size=3)
    stored = [box.append("presence", _event, 0.0) for _ in range(7)]
    assert pub.pump(1.0) == 3
    assert pub.pump(1.1) == 0  # nothing more until the core receipts
    assert rec.sent[0][0] == PRESENCE.topic(MALL, NODE)
    pub.on_message(_receipt([s.id for s in stored[:3]]))
    assert pub.pump(1.2) == 3
    pub.on_message(_receipt([s.id for s in stored[3:6]]))
    pub.pump(1.3)
    pub.on_message(_receipt([stored[6].id]))
    pub.pump(1.4)
    assert rec.batches() == [[1, 2, 3], [4, 5, 6], [7]]
    assert box.depth == 0 and pub.stats.receipted == 7
    box.close()


def test_receipt_timeout_republishes_from_the_oldest(tmp_path: Path) -> None:
    box, pub, rec = _setup(tmp_path, batch_size=2, receipt_timeout_s=30, max_inflight_batches=2)
    stored = [box.append("presence", _event, 0.0) for _ in range(4)]
    pub.pump(100.0)
    pub.on_message(_receipt([stored[2].id, stored[3].id]))  # the later batch only
    pub.pump(110.0)
    assert rec.batches() == [[1, 2], [3, 4]]
    pub.pump(129.9)
    assert len(rec.sent) == 2
    pub.pump(130.0)
    assert rec.batches()[-1] == [1, 2] and pub.stats.republish_rounds == 1
    box.close()


def test_reconnect_republishes_everything_unreceipted(tmp_path: Path) -> None:
    box, pub, rec = _setup(tmp_path, batch_size=10)
    for _ in range(3):
        box.append("presence", _event, 0.0)
    pub.pump(1.0)
    rec.connected = False
    box.append("presence", _event, 0.0)
    assert pub.pump(2.0) == 0
    rec.connected = True
    pub.on_connected()
    pub.pump(3.0)
    assert rec.batches() == [[1, 2, 3], [1, 2, 3, 4]]
    box.close()


def test_bad_and_unknown_receipts_are_counted_and_change_nothing(tmp_path: Path) -> None:
    box, pub, _rec = _setup(tmp_path)
    box.append("presence", _event, 0.0)
    pub.pump(1.0)
    pub.on_message(Inbound(RECEIPTS.topic(MALL, NODE), b"{not json", 1, False, 1))
    pub.on_message(Inbound(RECEIPTS.topic(MALL, NODE), json.dumps({"v": 1}).encode(), 1, False, 2))
    pub.on_message(_receipt([new_event_id()]))
    pub.pump(2.0)
    assert pub.stats.bad_receipts == 2 and pub.stats.unknown_receipts == 1
    assert box.depth == 1
    box.close()


def test_a_local_publish_failure_keeps_the_events_unsent(tmp_path: Path) -> None:
    box, pub, rec = _setup(tmp_path)
    box.append("presence", _event, 0.0)
    rec.fail = True
    assert pub.pump(1.0) == 0 and box.inflight() == 0
    rec.fail = False
    assert pub.pump(2.0) == 1
    box.close()


def test_a_refused_batch_is_kept_and_sent_again_after_a_growing_backoff(tmp_path: Path) -> None:
    """PUBACK 16 (no matching subscribers, e.g. a broker restart forgot the core's shared
    subscription): the broker discarded the batch, so it is sent again well before the
    receipt timeout, with backoff, until it is taken and receipted."""
    box, pub, rec = _setup(
        tmp_path, batch_size=2, receipt_timeout_s=300, retry_min_s=0.5, retry_max_s=2
    )
    stored = [box.append("presence", _event, 0.0) for _ in range(3)]
    rec.reason = 16
    assert pub.pump(10.0) == 2
    assert pub.pump(10.1) == 0 and box.inflight() == 0  # refused: unsent again, backing off
    assert pub.pump(10.5) == 0
    assert pub.pump(10.6) == 2  # sent again 0.5 s after the refusal
    assert pub.pump(10.7) == 0  # refused again: backs off 1 s
    assert pub.pump(11.6) == 0
    assert pub.pump(11.7) == 2
    assert pub.pump(11.8) == 0  # and again: 2 s, the ceiling
    assert pub.pump(13.7) == 0
    assert pub.pump(13.8) == 2
    rec.reason = 0  # the core subscribed again
    assert pub.pump(13.9) == 0  # (the last refusal) still 2 s
    assert pub.pump(15.9) == 2
    assert pub.stats.refused_batches == 4 and box.depth == 3
    pub.on_message(_receipt([s.id for s in stored[:2]]))
    assert pub.pump(16.0) == 1
    pub.on_message(_receipt([stored[2].id]))
    pub.pump(16.1)
    assert box.depth == 0
    assert rec.batches() == [[1, 2]] * 5 + [[3]]
    box.close()
