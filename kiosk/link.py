"""The kiosk's MQTT link: pushed offers in, check-ins out through the on-disk queue.

``submit`` stores a check-in in the ``CheckinQueue`` first and wakes the
sender thread, which publishes waiting check-ins as ``CheckinBatch``es on the
kiosk's ``checkins`` topic (QoS 1) whenever the broker is connected — with the
ids and ``seq`` they were made with, even after a restart. A PUBACK marks them
sent (one saying "no matching subscribers" does not: the core's session would
not get them); they leave the queue when the core's ``Receipt`` on the kiosk's
``receipts`` topic names them (committed at the core), and those not receipted
within ``receipt_timeout_s`` are sent again (a broker that crashed before the
core took them; the core ignores a repeat and receipts it again). Offers arrive as the
retained ``KioskOffers`` on the kiosk's ``offers`` topic, the core's settings for this kiosk
as the retained ``KioskSettings`` on its ``config`` topic (one older than the last applied is
ignored; a malformed one is logged, counted in ``configs_rejected`` and changes nothing). A retained
``online``/``offline`` status (birth message and Last Will) is kept on
``…/kiosks/{id}/status``. Events for the UI (offers, delivered ids) go to
callbacks that the composition root points at the UI thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from kiosk.checkin_queue import CheckinQueue
from kiosk.errors import QueueError
from kiosk.ports import Offer, Submitted
from mallnet import __version__
from mallnet.errors import MqttError
from mallnet.mqtt import NOT_AUTHORIZED, Inbound, MqttClient, Will
from mallnet.wire.codec import WireError, decode, encode
from mallnet.wire.payloads import CheckinBatch, DeviceStatus, KioskOffers, KioskSettings, Receipt
from mallnet.wire.topics import (
    CHECKINS,
    KIOSK_CONFIG,
    KIOSK_OFFERS,
    KIOSK_RECEIPTS,
    KIOSK_STATUS,
)

log = logging.getLogger(__name__)

BATCH = 100
NO_SUBSCRIBERS = 16


def status_message(kiosk: str, state: str, since: datetime) -> bytes:
    return encode(
        DeviceStatus(state=state, device=kiosk, since=since, software=__version__)  # type: ignore[arg-type]
    )


def offers_from(message: KioskOffers) -> tuple[Offer, ...]:
    return tuple(
        Offer(c.campaign, c.business, c.title, c.text, c.valid_until) for c in message.offers
    )


class MqttLink:
    """``CheckinSink`` over MQTT with the durable queue; also receives pushed offers."""

    def __init__(
        self,
        client_factory: Callable[..., MqttClient],
        queue: CheckinQueue,
        *,
        mall: str,
        kiosk: str,
        on_offers: Callable[[tuple[Offer, ...]], None] = lambda _offers: None,
        on_delivered: Callable[[set[str]], None] = lambda _ids: None,
        on_config: Callable[[KioskSettings], None] = lambda _settings: None,
        ack_timeout_s: float = 10.0,
        retry_s: float = 5.0,
        receipt_timeout_s: float = 30.0,
    ) -> None:
        self._queue = queue
        self._mall = mall
        self._kiosk = kiosk
        self._on_offers = on_offers
        self._on_delivered = on_delivered
        self._on_config = on_config
        self._config_revision = -1
        self.configs_rejected = 0
        self._ack_timeout_s = ack_timeout_s
        self._retry_s = retry_s
        self._receipt_timeout_s = receipt_timeout_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.refused = 0
        self.receipted = 0
        since = datetime.now(UTC)
        status_topic = KIOSK_STATUS.topic(mall, kiosk)
        self._offline = Will(status_topic, status_message(kiosk, "offline", since))
        self._client = client_factory(
            subscriptions=[
                (KIOSK_OFFERS.topic(mall, kiosk), 1),
                (KIOSK_RECEIPTS.topic(mall, kiosk), 1),
                (KIOSK_CONFIG.topic(mall, kiosk), 1),
            ],
            on_message=self._handle,
            will=self._offline,
            birth=Will(status_topic, status_message(kiosk, "online", since)),
            on_connected=self._wake.set,
        )

    # -- CheckinSink -----------------------------------------------------------------------

    @property
    def online(self) -> bool:
        return self._client.connected

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def submit(self, token: str, store: str | None) -> Submitted:
        event = self._queue.add(token, store)
        online = self.online
        self._wake.set()
        log.info("check-in %s queued (%s)", event.id, "sending" if online else "offline")
        return Submitted(event.id, online)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._client.start()
        self._thread = threading.Thread(target=self._send_loop, name="kiosk-sender", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self._ack_timeout_s + 1)
        self._client.stop(farewell=self._offline)

    # -- traffic ---------------------------------------------------------------------------

    def _handle(self, message: Inbound) -> None:
        try:
            decoded = decode(message.topic, message.payload)
        except WireError as exc:
            if message.topic == KIOSK_CONFIG.topic(self._mall, self._kiosk):
                self.configs_rejected += 1
                log.error("rejected a malformed config from the core (kept ours): %s", exc)
            else:
                log.warning("ignored a bad message on %s: %s", message.topic, exc)
            return
        if isinstance(decoded.message, KioskOffers):
            offers = offers_from(decoded.message)
            log.info("%d offers pushed by the core", len(offers))
            self._on_offers(offers)
        elif isinstance(decoded.message, KioskSettings):
            self._config(decoded.message)
        elif isinstance(decoded.message, Receipt):
            try:
                gone = self._queue.remove(decoded.message.ids)
            except QueueError:
                log.exception("a receipt could not be applied to the queue (sent again later)")
                return
            if gone:
                self.receipted += len(gone)
                log.info("%d check-ins receipted by the core", len(gone))
                self._on_delivered(gone)

    def _config(self, settings: KioskSettings) -> None:
        if settings.revision < self._config_revision:
            log.warning(
                "ignored config revision %d (have %d)", settings.revision, self._config_revision
            )
            return
        self._config_revision = settings.revision
        log.info("config revision %d pushed by the core", settings.revision)
        self._on_config(settings)

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._retry_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                while self.online and self._send_one_batch():
                    pass
            except QueueError:
                log.exception("the check-in queue failed; retrying")

    def _send_one_batch(self) -> bool:
        """Publish the oldest waiting check-ins; True if there may be more to send now."""
        events = self._queue.oldest(BATCH, resend_before=time.time() - self._receipt_timeout_s)
        if not events:
            return False
        batch = CheckinBatch(node=self._kiosk, events=tuple(events))
        ticket = self._client.publish(CHECKINS.topic(self._mall, self._kiosk), encode(batch), 1)
        try:
            reason = ticket.wait(self._ack_timeout_s)
        except MqttError:
            log.warning("check-in batch not acknowledged; keeping %d queued", len(events))
            return False
        if reason == NO_SUBSCRIBERS:  # the core's session is not there: nobody would get them
            log.warning("no consumer subscribed to check-ins; keeping %d queued", len(events))
            return False
        if reason != 0:
            self.refused += 1
            what = "not authorised" if reason == NOT_AUTHORIZED else f"reason {reason}"
            log.error("broker refused %d check-ins (%s); keeping them", len(events), what)
            return False
        ids = {e.id for e in events}
        self._queue.mark_sent(ids, time.time())  # kept until the core's receipt names them
        self.sent += len(ids)
        return len(events) == BATCH
