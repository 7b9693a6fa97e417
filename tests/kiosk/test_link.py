"""The kiosk's MQTT link on a real Mosquitto: the offline queue, original ids, pushed offers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from kiosk.checkin_queue import CheckinQueue
from kiosk.link import MqttLink
from mallnet.mqtt import Inbound, MqttClient
from mallnet.wire.codec import decode, encode
from mallnet.wire.payloads import CheckinBatch, KioskOffers, OfferCard, Receipt
from mallnet.wire.topics import CHECKINS, KIOSK_OFFERS, KIOSK_RECEIPTS, KIOSK_STATUS
from tests.conftest import MALL, Collector, settings_for, wait_until

KIOSK = "kiosk-atrium"


def make_link(broker, queue: CheckinQueue, **kwargs) -> MqttLink:
    def factory(**client_kwargs) -> MqttClient:
        return MqttClient(settings_for(broker, KIOSK), KIOSK, **client_kwargs)

    return MqttLink(factory, queue, mall=MALL, kiosk=KIOSK, retry_s=0.2, **kwargs)


class ReceiptingCore(Collector):
    """Stands in for the core: collects check-ins and receipts them (unless told not to)."""

    def __init__(self, connect: Callable[..., MqttClient], *, receipt: bool = True) -> None:
        super().__init__()
        self.receipt = receipt
        self.client = connect(
            "core-receipts", subscriptions=[(CHECKINS.filter(MALL), 1)], on_message=self
        )

    def __call__(self, message: Inbound) -> None:
        super().__call__(message)
        batch = decode(message.topic, message.payload).message
        if self.receipt and isinstance(batch, CheckinBatch):
            receipt = Receipt(ts=datetime.now(UTC), ids=tuple(e.id for e in batch.events))
            self.client.publish(KIOSK_RECEIPTS.topic(MALL, batch.node), encode(receipt), 1)


def test_check_ins_made_offline_survive_a_restart_and_go_out_with_their_ids(
    broker, connect, tmp_path
) -> None:
    settings_for(broker, KIOSK)  # the kiosk's credential exists before the outage
    broker.stop()
    queue = CheckinQueue(tmp_path / "queue.sqlite")
    link = make_link(broker, queue)
    link.start()
    first = link.submit("customer:c1", "atrium")
    second = link.submit("phone:+380671234567", None)
    assert not first.online and link.waiting == 2
    link.stop()
    queue.close()

    broker.start()  # the connection is back; the kiosk restarts
    checkins = ReceiptingCore(connect)
    queue = CheckinQueue(tmp_path / "queue.sqlite")
    delivered: list[set[str]] = []
    link = make_link(broker, queue, on_delivered=delivered.append)
    link.start()
    try:
        [message] = checkins.wait_for(1)
        batch = decode(message.topic, message.payload).message
        assert isinstance(batch, CheckinBatch) and batch.node == KIOSK
        assert [(e.id, e.seq, e.token, e.store) for e in batch.events] == [
            (first.id, 0, "customer:c1", "atrium"),
            (second.id, 1, "phone:+380671234567", None),
        ]
        wait_until(lambda: link.waiting == 0, what="the queue to empty")
        third = link.submit("customer:c2", None)
        assert third.online
        messages = checkins.wait_for(2)
        later = decode(messages[1].topic, messages[1].payload).message
        assert isinstance(later, CheckinBatch)
        assert [e.id for e in later.events] == [third.id]
        wait_until(lambda: {first.id, second.id, third.id} == set().union(*delivered))
    finally:
        link.stop()
        queue.close()


def test_a_check_in_stays_queued_until_receipted_and_is_sent_again_with_its_id(
    broker, connect, tmp_path
) -> None:
    core = ReceiptingCore(connect, receipt=False)  # the broker takes it, the core never commits
    queue = CheckinQueue(tmp_path / "queue.sqlite")
    delivered: list[set[str]] = []
    link = make_link(broker, queue, on_delivered=delivered.append, receipt_timeout_s=0.3)
    link.start()
    try:
        wait_until(lambda: link.online, what="the kiosk to connect")
        made = link.submit("customer:c1", None)
        core.wait_for(2)  # acknowledged by the broker, not receipted: sent again
        ids = [e.id for m in core.messages for e in decode(m.topic, m.payload).message.events]  # type: ignore[attr-defined]
        assert set(ids) == {made.id} and link.waiting == 1 and delivered == []
        core.receipt = True  # the core commits it now
        wait_until(lambda: link.waiting == 0, what="the receipt to empty the queue")
        assert delivered == [{made.id}] and link.receipted == 1
    finally:
        link.stop()
        queue.close()


def test_check_ins_stay_queued_while_no_consumer_is_subscribed(broker, tmp_path) -> None:
    queue = CheckinQueue(tmp_path / "queue.sqlite")
    link = make_link(broker, queue)
    link.start()
    try:
        wait_until(lambda: link.online, what="the kiosk to connect")
        link.submit("customer:c1", None)
        wait_until(lambda: link.waiting == 1 and queue.oldest(1) != [])
        assert link.sent == 0
    finally:
        link.stop()
        queue.close()


def test_pushed_offers_reach_the_kiosk_and_its_status_is_retained(
    broker, connect, tmp_path
) -> None:
    core = connect("core")
    card = OfferCard(
        campaign="coffee",
        business="cafe",
        title="Coffee 2 for 1",
        text="Until noon",
        valid_until=datetime.now(UTC) + timedelta(days=1),
    )
    payload = encode(KioskOffers(ts=datetime.now(UTC), offers=(card,)))
    core.publish(KIOSK_OFFERS.topic(MALL, KIOSK), payload, 1, retain=True).wait(5)
    received: list[tuple[object, ...]] = []
    queue = CheckinQueue(tmp_path / "queue.sqlite")
    link = make_link(broker, queue, on_offers=received.append)
    link.start()
    try:
        wait_until(lambda: len(received) == 1, what="the retained offers")
        [offer] = received[0]
        assert offer.title == "Coffee 2 for 1"  # type: ignore[attr-defined]
        statuses = Collector()
        connect(
            "monitor-kiosk-status",
            subscriptions=[(KIOSK_STATUS.filter(MALL), 1)],
            on_message=statuses,
        )
        [status] = statuses.wait_for(1)
        assert b'"state":"online"' in status.payload.replace(b" ", b"") and status.retain
    finally:
        link.stop()
        queue.close()
