"""The real broker from mqtt_broker/ config: round trip, ACL confinement, authentication, TLS.

Roles, client-id binding and the production config: test_broker_roles.py."""

from __future__ import annotations

import gc
import subprocess

import pytest

from mallnet.broker import DevBroker, TlsFiles, free_port
from mallnet.config import MqttSettings, TlsSettings
from mallnet.mqtt import NOT_AUTHORIZED, MqttClient, Will
from mallnet.wire import decode, encode
from mallnet.wire.examples import EXAMPLES
from mallnet.wire.topics import NODE_CONFIG, PRESENCE, RECEIPTS, STATUS
from tests.conftest import MALL, Collector, settings_for, wait_until

NODE = "store-bean-bar-1"


def test_contract_message_round_trips_through_the_broker(connect):
    inbox = Collector()
    connect("core", subscriptions=[(PRESENCE.shared_filter("core", MALL), 1)], on_message=inbox)
    node = connect(NODE)
    sent = EXAMPLES["PresenceBatch"]
    assert node.publish(PRESENCE.topic(MALL, NODE), encode(sent), qos=1).wait(10) == 0
    [message] = inbox.wait_for(1)
    decoded = decode(message.topic, message.payload)
    assert decoded.message == sent
    assert decoded.topic.entity == NODE


def test_device_cannot_publish_outside_its_own_topics(connect):
    inbox = Collector()
    connect("core", subscriptions=[(PRESENCE.filter(MALL), 1)], on_message=inbox)
    node = connect(NODE)
    other = PRESENCE.topic(MALL, "store-other")
    assert node.publish(other, encode(EXAMPLES["PresenceBatch"]), qos=1).wait(10) == NOT_AUTHORIZED
    # nor can it push config or receipts to itself, which only the core may do
    assert node.publish(NODE_CONFIG.topic(MALL, NODE), b"{}", qos=1).wait(10) == NOT_AUTHORIZED
    assert node.publish(RECEIPTS.topic(MALL, NODE), b"{}", qos=1).wait(10) == NOT_AUTHORIZED
    # the connection survives the denials and its own topic still works
    assert node.publish(PRESENCE.topic(MALL, NODE), encode(EXAMPLES["PresenceBatch"])).wait(10) == 0
    messages = inbox.wait_for(1)
    assert [m.topic for m in messages] == [PRESENCE.topic(MALL, NODE)]


def test_device_cannot_read_another_devices_receipts(connect):
    spy = Collector()
    connect(
        NODE,
        subscriptions=[(RECEIPTS.topic(MALL, "store-other"), 1), (RECEIPTS.topic(MALL, NODE), 1)],
        on_message=spy,
    )
    core = connect("core")
    assert core.publish(RECEIPTS.topic(MALL, "store-other"), b"secret", qos=1).wait(10) in (0, 16)
    assert core.publish(RECEIPTS.topic(MALL, NODE), b"mine", qos=1).wait(10) == 0
    messages = spy.wait_for(1)
    assert [m.payload for m in messages] == [b"mine"]


@pytest.mark.parametrize("who", ["unknown user", "wrong password"])
def test_unauthenticated_clients_cannot_connect(broker, who):
    settings_for(broker, NODE)
    user = "intruder" if who == "unknown user" else NODE
    settings = MqttSettings(port=broker.port, username=user, password="not-the-password")
    client = MqttClient(settings, "intruder")
    client.start()
    try:
        assert client.first_connect_reason(10) in (134, 135)  # bad credentials / not authorised
        assert not client.connected
    finally:
        client.stop()


def test_last_will_and_birth_are_retained_status(broker, connect):
    watcher = Collector()
    connect("core", subscriptions=[(STATUS.filter(MALL), 1)], on_message=watcher)
    online, offline = (
        EXAMPLES["DeviceStatus"],
        EXAMPLES["DeviceStatus"].model_copy(update={"state": "offline"}),
    )
    topic = STATUS.topic(MALL, NODE)
    node = MqttClient(
        settings_for(broker, NODE),
        NODE,
        birth=Will(topic, encode(online)),
        will=Will(topic, encode(offline)),
    )
    node.start()
    assert node.wait_connected(10)
    watcher.wait_for(1)
    node._client._sock.close()  # type: ignore[union-attr]  # drop the TCP link like a power cut
    msgs = watcher.wait_for(2)
    assert decode(msgs[1].topic, msgs[1].payload).message.state == "offline"  # type: ignore[attr-defined]
    late = Collector()
    connect("monitor-late", subscriptions=[(STATUS.filter(MALL), 1)], on_message=late)
    assert late.wait_for(1)[0].retain
    node.stop()


def test_client_reconnects_and_resubscribes_after_broker_restart(broker, connect):
    inbox = Collector()
    core = connect("core", subscriptions=[(PRESENCE.filter(MALL), 1)], on_message=inbox)
    node = connect(NODE)
    broker.restart()
    wait_until(
        lambda: core.counters.connects >= 2 and node.counters.connects >= 2,
        20,
        "both clients to reconnect",
    )
    assert node.publish(PRESENCE.topic(MALL, NODE), encode(EXAMPLES["PresenceBatch"])).wait(10) == 0
    inbox.wait_for(1)


@pytest.fixture
def tls_broker(tmp_path):
    certs = tmp_path / "certs"
    subprocess.run(["bash", "mqtt_broker/make-certs.sh", str(certs)], check=True)
    instance = DevBroker(
        tmp_path / "tls-broker",
        mall=MALL,
        port=free_port(),
        tls=TlsFiles(certs / "ca.crt", certs / "server.crt", certs / "server.key"),
    )
    instance.start()
    yield instance, certs
    instance.stop()


# paho leaks the socket of a failed TLS handshake; it is collected inside this test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_tls_listener_accepts_the_right_ca_and_refuses_a_rogue_one(tls_broker):
    broker, certs = tls_broker
    password = broker.add_user(NODE)
    base = MqttSettings(host="localhost", port=broker.port, username=NODE, password=password)
    good = MqttClient(base.model_copy(update={"tls": TlsSettings(ca_file=certs / "ca.crt")}), NODE)
    good.start()
    try:
        assert good.wait_connected(10)
    finally:
        good.stop()
    rogue = MqttClient(
        base.model_copy(update={"tls": TlsSettings(ca_file=certs / "rogue-ca.crt")}), "rogue"
    )
    rogue.start()
    try:
        assert not rogue.wait_connected(2)  # the handshake fails: no CONNACK ever arrives
        assert rogue.first_connect_reason(0) == -1
    finally:
        rogue.stop()
        gc.collect()


def test_asking_for_a_credential_again_does_not_kick_its_clients(broker, connect):
    first = connect(NODE)
    settings_for(broker, NODE)  # the same password: the identity is left as it is
    broker.add_user(NODE, broker.credential(NODE))
    connect("core-second")
    assert first.connected
    assert (
        first.publish(PRESENCE.topic(MALL, NODE), encode(EXAMPLES["PresenceBatch"])).wait(10)
        in (0, 16)  # 16: accepted, no subscriber
    )
    assert first.counters.connects == 1
