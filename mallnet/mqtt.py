"""The one MQTT client wrapper every process uses (paho-mqtt 2.x, MQTT v5).

Built at a process's composition root and injected into whatever publishes or
consumes; there is no module-level client. It connects in the background with
exponential reconnect backoff (sub-second delays included), re-subscribes on every
connect, publishes a retained birth message once connected, registers a Last Will,
and tells the caller the broker's reason code for each QoS 1 publish (16 = no
matching subscribers, 135 = not authorised).

A failed connection attempt is never silent: the first of a run is logged at WARNING
with host, port and reason, later ones at most once per ``FAILURE_LOG_INTERVAL_S``
with a count, and the recovery at INFO; ``problem`` says what is wrong right now.

Past 400 lines on purpose: the connection lifecycle (connect, subscribe and SUBACKs,
publish tickets, failures and their logging) is one concern around one paho client,
and splitting it would spread paho's callbacks over several modules.
"""

from __future__ import annotations

import logging
import ssl
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from mallnet.config import MqttSettings
from mallnet.errors import MqttError

log = logging.getLogger(__name__)

NOT_AUTHORIZED = 135
NO_MATCHING_SUBSCRIBERS = 16
#: After the first failed connection attempt of a run, at most one log line per this many s.
FAILURE_LOG_INTERVAL_S = 30.0


class FailureLog:
    """Rate-limited logging of failed connection attempts (logic only: takes the time).

    The first failure of a run is logged at WARNING; later ones are counted and logged
    at most once per ``interval_s``, or at once when the reason changes (the broker came
    back but refuses the credentials); ``recovered`` logs how many attempts failed.
    """

    def __init__(self, what: str, interval_s: float = FAILURE_LOG_INTERVAL_S) -> None:
        self.what = what
        self.interval_s = interval_s
        self.failures = 0  # in the current run of failures
        self.total = 0
        self.last_reason: str | None = None
        self._first_at = 0.0
        self._logged_at = 0.0
        self._unlogged = 0
        self._logged_reason: str | None = None

    def failed(self, reason: str, now: float) -> bool:
        """Record a failure; True if it was logged."""
        self.failures += 1
        self.total += 1
        self.last_reason = reason
        if self.failures == 1:
            self._first_at = self._logged_at = now
            self._unlogged = 0
            self._logged_reason = reason
            log.warning("cannot connect to %s: %s; retrying with backoff", self.what, reason)
            return True
        self._unlogged += 1
        changed = reason != self._logged_reason
        if not changed and now - self._logged_at < self.interval_s:
            return False
        self._logged_reason = reason
        log.warning(
            "still cannot connect to %s: %s (%d failed attempts in %.0fs)",
            self.what,
            reason,
            self._unlogged,
            now - self._logged_at,
        )
        self._logged_at = now
        self._unlogged = 0
        return True

    def recovered(self, now: float) -> None:
        if self.failures:
            log.info(
                "connected to %s after %d failed attempts in %.1fs",
                self.what,
                self.failures,
                now - self._first_at,
            )
        self.failures = 0
        self.last_reason = None


@dataclass(frozen=True)
class Will:
    """A message to publish on connect (birth) or by the broker on loss (Last Will)."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True)
class Inbound:
    """A received message. With manual acknowledgement, pass it to ``MqttClient.ack``."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int


class PublishTicket:
    """Completes when the broker acknowledges a publish (or at once for QoS 0)."""

    def __init__(self, mid: int, local_rc: int) -> None:
        self.mid = mid
        self.local_rc = local_rc  # paho's error code for the local send (0 = queued/sent)
        self._done = threading.Event()
        self._reason = -1

    def _resolve(self, reason: int) -> None:
        self._reason = reason
        self._done.set()

    def wait(self, timeout: float | None = None) -> int:
        """The broker's reason code (0 success, 16 no subscribers, 135 not authorised).

        Raises ``MqttError`` if no acknowledgement arrives within ``timeout``.
        """
        if not self._done.wait(timeout):
            raise MqttError(f"publish mid={self.mid} not acknowledged within {timeout}s")
        return self._reason

    @property
    def done(self) -> bool:
        return self._done.is_set()


@dataclass
class _Counters:
    connects: int = 0
    disconnects: int = 0
    received: int = 0


@dataclass
class ConnectResult:
    reason: int = -1
    event: threading.Event = field(default_factory=threading.Event)


class MqttClient:
    """A paho client with the lifecycle mallnet needs."""

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        *,
        subscriptions: Sequence[tuple[str, int]] = (),
        on_message: Callable[[Inbound], None] | None = None,
        will: Will | None = None,
        birth: Will | None = None,
        manual_ack: bool = False,
        persistent_session: bool = False,
        session_expiry_s: int = 24 * 3600,
        on_connected: Callable[[], None] | None = None,
        receive_maximum: int | None = None,
    ) -> None:
        self._settings = settings
        self._receive_maximum = receive_maximum
        self._client_id = client_id
        self._subscriptions = list(subscriptions)
        self._on_message = on_message
        self._birth = birth
        self._manual_ack = manual_ack
        self._persistent = persistent_session
        self._session_expiry_s = session_expiry_s
        self._on_connected = on_connected
        self._tickets: dict[int, PublishTicket] = {}
        self._early_acks: dict[int, int] = {}
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._disconnected = threading.Event()
        self._subscribed = threading.Event()  # every subscription of this connection granted
        self._suback_pending: set[int] = set()
        self._sub_lock = threading.Lock()
        self._stopping = False
        self._first_connect = ConnectResult()
        self.counters = _Counters()
        self.failures = FailureLog(f"broker {settings.host}:{settings.port} as {client_id}")
        self._problem: str | None = "not connected yet"
        self._client = self._build(will)

    # -- construction ---------------------------------------------------------------

    def _build(self, will: Will | None) -> paho.Client:
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=paho.MQTTv5,
            manual_ack=self._manual_ack,
        )
        password = self._settings.resolve_password()
        if self._settings.username is not None:
            client.username_pw_set(self._settings.username, password)
        tls = self._settings.tls
        if tls is not None:
            client.tls_set(
                ca_certs=str(tls.ca_file),
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if will is not None:
            client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        # paho's hints say int, but its wait is float arithmetic: 0.1 s means 0.1 s
        # (rounding it up to 1 s made every reconnect after a broker restart 10x slower).
        client.reconnect_delay_set(
            min_delay=self._settings.reconnect_min_s,  # type: ignore[arg-type]
            max_delay=max(self._settings.reconnect_min_s, self._settings.reconnect_max_s),  # type: ignore[arg-type]
        )
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(0)
        client.on_connect = self._handle_connect
        client.on_connect_fail = self._handle_connect_fail
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_publish = self._handle_publish
        client.on_subscribe = self._handle_subscribe
        return client

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; reconnects with backoff until ``stop``."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._session_expiry_s if self._persistent else 0
        if self._receive_maximum is not None:  # unacked QoS 1/2 messages the broker may send
            props.ReceiveMaximum = self._receive_maximum
        try:
            self._client.connect_async(
                self._settings.host,
                self._settings.port,
                keepalive=self._settings.keepalive_s,
                clean_start=not self._persistent,
                properties=props,
            )
        except (OSError, ValueError) as exc:
            raise MqttError(f"cannot connect to {self._settings.host}: {exc}") from exc
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        """True once connected (or again connected), False on timeout."""
        return self._connected.wait(timeout)

    def wait_subscribed(self, timeout: float) -> bool:
        """True once connected and the broker has answered every subscription made on this
        connection (a message published elsewhere after this will be delivered)."""
        deadline = time.monotonic() + timeout
        if not self._connected.wait(timeout):
            return False
        return self._subscribed.wait(max(0.0, deadline - time.monotonic()))

    def first_connect_reason(self, timeout: float) -> int:
        """The reason code of the first CONNACK (0 success, 134/135 refused); -1 if none."""
        self._first_connect.event.wait(timeout)
        return self._first_connect.reason

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def problem(self) -> str | None:
        """Why the client is not connected now (None when it is), for readiness checks."""
        return None if self.connected else self._problem

    def stop(self, farewell: Will | None = None, timeout: float = 5.0) -> None:
        """Publish ``farewell`` (e.g. a retained ``offline``) if connected, then disconnect."""
        if farewell is not None and self.connected:
            ticket = self.publish(farewell.topic, farewell.payload, farewell.qos, farewell.retain)
            try:
                ticket.wait(timeout)
            except MqttError:
                log.warning("farewell message not acknowledged before disconnect")
        self._stopping = True
        was_connected = self._connected.is_set()
        self._disconnected.clear()
        self._client.disconnect()
        if was_connected:  # let the loop send DISCONNECT and close the socket itself
            self._disconnected.wait(min(timeout, 2.0))
        self._client.loop_stop()
        sock = self._client.socket()
        if sock is not None:  # stopped before the loop closed it (e.g. never connected)
            sock.close()
        self._connected.clear()

    # -- traffic --------------------------------------------------------------------

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> PublishTicket:
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        ticket = PublishTicket(info.mid, info.rc)
        with self._lock:
            early = self._early_acks.pop(info.mid, None)
            if early is None:
                self._tickets[info.mid] = ticket
        if early is not None:
            ticket._resolve(early)
        return ticket

    def ack(self, message: Inbound) -> None:
        """Acknowledge a message received with ``manual_ack`` (after its commit)."""
        if message.qos > 0:
            self._client.ack(message.mid, message.qos)

    def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        """Add a subscription now and on every later reconnect."""
        self._subscriptions.append((topic_filter, qos))
        if self.connected:
            self._client.subscribe(topic_filter, qos=qos)

    # -- paho callbacks (network thread) ---------------------------------------------

    def _handle_connect(
        self, client: paho.Client, _userdata: Any, flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        code = int(reason.value)
        if not self._first_connect.event.is_set():
            self._first_connect.reason = code
            self._first_connect.event.set()
        if code != 0:
            self._problem = f"broker refused the connection: {reason} ({code})"
            self.failures.failed(self._problem, time.monotonic())
            return
        self.failures.recovered(time.monotonic())
        self._problem = None
        self.counters.connects += 1
        log.info(
            "connected to %s:%s as %s (session present: %s)",
            self._settings.host,
            self._settings.port,
            self._client_id,
            getattr(flags, "session_present", False),
        )
        with self._sub_lock:
            self._subscribed.clear()
            self._suback_pending.clear()
            for topic_filter, qos in self._subscriptions:
                _rc, mid = client.subscribe(topic_filter, qos=qos)
                if mid is not None:
                    self._suback_pending.add(mid)
            if not self._suback_pending:
                self._subscribed.set()
        if self._birth is not None:
            self.publish(
                self._birth.topic, self._birth.payload, self._birth.qos, self._birth.retain
            )
        self._connected.set()
        if self._on_connected is not None:
            self._on_connected()

    def _handle_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._subscribed.clear()
        self._disconnected.set()
        self.counters.disconnects += 1
        if self._stopping:
            return
        if was_connected:
            self._problem = f"disconnected: {reason}"
            log.warning(
                "disconnected from %s:%s (%s); reconnecting with backoff",
                self._settings.host,
                self._settings.port,
                reason,
            )

    def _handle_subscribe(
        self, _client: paho.Client, _userdata: Any, mid: int, reasons: Any, _props: Any
    ) -> None:
        refused = [r for r in reasons if int(r.value) >= 128]
        if refused:
            log.error("broker refused a subscription of %s: %s", self._client_id, refused)
        with self._sub_lock:
            self._suback_pending.discard(mid)
            if not self._suback_pending:
                self._subscribed.set()

    def _handle_connect_fail(self, _client: paho.Client, _userdata: Any) -> None:
        """A connection attempt failed before any CONNACK (refused, unreachable, TLS…).

        paho calls this from inside its ``except OSError``, so the error is at hand.
        """
        exc = sys.exc_info()[1]
        reason = f"{type(exc).__name__}: {exc}" if exc is not None else "connection failed"
        self._problem = reason
        self.failures.failed(reason, time.monotonic())

    def _handle_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        self.counters.received += 1
        if self._on_message is None:
            return
        inbound = Inbound(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain), msg.mid)
        try:
            self._on_message(inbound)
        except Exception:  # a handler bug must not kill the network thread
            log.exception("message handler failed for %s", msg.topic)

    def _handle_publish(
        self, _client: paho.Client, _userdata: Any, mid: int, reason: ReasonCode, _props: Any
    ) -> None:
        code = int(reason.value) if reason is not None else 0
        with self._lock:
            ticket = self._tickets.pop(mid, None)
            if ticket is None:
                self._early_acks[mid] = code
        if ticket is not None:
            ticket._resolve(code)
