"""A mall's broker bridged to the platform's: two real Mosquitto processes from our config.

Every contract topic crosses in its own direction and only in it (retained ones arrive
retained), over plain TCP and over TLS with the rendered production variant; the bridge's
identity on the platform is confined to its own mall. The whole flow with the real core and
real nodes (receipts, notices, a platform killed mid-stream) is in
tests/cloud_core/test_bridge_flow.py.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import SecretStr

from mallnet.bridge import BridgeError, bridge_id, bridge_topics, render_bridge
from mallnet.broker import DevBroker, TlsFiles, free_port
from mallnet.cli import main
from mallnet.config import MqttSettings, TlsSettings
from mallnet.dynsec import BRIDGE_IN, BRIDGE_OUT, DynsecError, Role, add_device
from mallnet.mqtt import MqttClient
from mallnet.pki import CertRole
from mallnet.wire.topics import ALL_TOPICS, CORE_STATUS, PRESENCE, RECEIPTS, TopicSpec
from tests.conftest import MALL, Collector, settings_for, wait_until
from tests.mallnet.debian_layout import debian_layout, end, start

OTHER_MALL = "othermall"


def _client(broker: DevBroker, user: str, **kwargs: Any) -> MqttClient:
    settings = settings_for(broker, user)
    if broker.tls is not None:
        tls = TlsSettings(ca_file=broker.tls.ca_file)
        settings = settings.model_copy(update={"host": "localhost", "tls": tls})
    client = MqttClient(settings, user, **kwargs)
    client.start()
    assert client.wait_subscribed(10), f"{user} could not connect and subscribe"
    return client


@dataclass
class Pair:
    """A mall broker bridged to a platform broker, a publisher (core role: the whole mall)
    and a watcher (monitor role) on each side."""

    mall: DevBroker
    platform: DevBroker
    seen: dict[str, Collector] = field(default_factory=dict)
    clients: list[MqttClient] = field(default_factory=list)

    def watch(self, side: str) -> Collector:
        broker = self.mall if side == "mall" else self.platform
        collector = Collector()
        self.clients.append(
            _client(
                broker,
                f"monitor-{side}-{len(self.clients)}",
                subscriptions=[(f"mall/v1/{MALL}/#", 1)],
                on_message=collector,
            )
        )
        return collector

    def publisher(self, side: str) -> MqttClient:
        broker = self.mall if side == "mall" else self.platform
        client = _client(broker, f"core-pub-{side}-{len(self.clients)}")
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.stop()


def _bridged(
    tmp_path: Path, platform: DevBroker, remote: MqttSettings
) -> Generator[Pair, None, None]:
    mall = DevBroker(tmp_path / "mall-broker", mall=MALL, bridge=remote)
    mall.start()
    pair = Pair(mall, platform)
    try:
        yield pair
    finally:
        pair.close()
        mall.kill()


@pytest.fixture
def pair(tmp_path: Path, broker: DevBroker) -> Iterator[Pair]:
    """The test's broker is the platform; the mall broker bridges to it over plain TCP."""
    user = bridge_id(MALL)
    remote = MqttSettings(port=broker.port, username=user, password=broker.add_user(user))
    yield from _bridged(tmp_path, broker, remote)


def _entity(spec: TopicSpec) -> str:
    return {"nodes": "store-1", "kiosks": "kiosk-1", "customers": "c1", "core": "core-1"}[
        spec.scope.value
    ]


def _marker_arrives(pair: Pair, src: str, dst: Collector, spec: TopicSpec) -> None:
    """A message crossing after everything published before it: the bridge keeps order."""
    client = pair.publisher(src)
    topic = spec.topic(MALL, "marker")
    client.publish(topic, b"marker", qos=1).wait(10)
    wait_until(lambda: any(m.topic == topic for m in list(dst.messages)), 15, f"{topic} bridged")


def _cross_everything(pair: Pair) -> None:
    at_mall, at_platform = pair.watch("mall"), pair.watch("platform")
    # the bridge is up once one message crosses each way
    _marker_arrives(pair, "mall", at_platform, BRIDGE_OUT[0])
    _marker_arrives(pair, "platform", at_mall, BRIDGE_IN[0])
    on_mall, on_platform = pair.publisher("mall"), pair.publisher("platform")
    for spec in ALL_TOPICS:  # every topic published on BOTH sides, each to its own entity
        for side, client in (("mall", on_mall), ("platform", on_platform)):
            topic = spec.topic(MALL, f"{_entity(spec)}-{side}")
            client.publish(topic, spec.name.encode(), qos=1, retain=spec.retained).wait(10)
    _marker_arrives(pair, "mall", at_platform, BRIDGE_OUT[0])
    _marker_arrives(pair, "platform", at_mall, BRIDGE_IN[0])

    def crossed(collector: Collector, origin: str, *, retained: bool = False) -> set[str]:
        return {
            m.payload.decode()
            for m in list(collector.messages)
            if m.topic.split("/")[4].endswith(f"-{origin}") and (m.retain or not retained)
        }

    assert crossed(at_platform, "mall") == {s.name for s in BRIDGE_OUT}
    assert crossed(at_mall, "platform") == {s.name for s in BRIDGE_IN}
    assert CORE_STATUS not in BRIDGE_IN + BRIDGE_OUT  # the core's status stays on the platform
    # retained topics stay retained on the far side: a late subscriber is given them (all
    # at its SUBSCRIBE, so before a marker published after it)
    late_mall, late_platform = pair.watch("mall"), pair.watch("platform")
    _marker_arrives(pair, "mall", late_mall, BRIDGE_OUT[1])
    _marker_arrives(pair, "platform", late_platform, BRIDGE_IN[1])
    want_in = {s.name for s in BRIDGE_IN if s.retained}
    want_out = {s.name for s in BRIDGE_OUT if s.retained}
    assert want_in and want_out
    assert crossed(late_mall, "platform", retained=True) == want_in
    assert crossed(late_platform, "mall", retained=True) == want_out


def test_every_contract_topic_crosses_the_bridge_in_its_own_direction_only(pair):
    _cross_everything(pair)


def test_the_bridge_keeps_a_persistent_session_under_its_fixed_client_id(pair):
    """The platform knows the bridge as ``bridge-<mall>``, clean session off, QoS 1."""
    pair.watch("platform")
    _marker_arrives(pair, "mall", pair.watch("platform"), BRIDGE_OUT[0])
    log = (pair.platform.data_dir / "mosquitto.log").read_text()
    assert re.search(rf"New bridge connected from \S+ as {bridge_id(MALL)} \(p\d, c0,", log)
    conf = pair.mall.conf_file.read_text()
    assert pair.mall.conf_file.stat().st_mode & 0o777 == 0o600  # it holds the password
    for line in bridge_topics(MALL):
        assert line.endswith(" 1") and f"\n{line}\n" in conf


@pytest.fixture
def tls_platform(tmp_path: Path) -> Iterator[tuple[DevBroker, Path]]:
    certs = tmp_path / "certs"
    subprocess.run(["bash", "mqtt_broker/make-certs.sh", str(certs)], check=True)
    platform = DevBroker(
        tmp_path / "platform",
        mall=MALL,
        tls=TlsFiles(certs / "ca.crt", certs / "server.crt", certs / "server.key"),
    )
    platform.start()
    try:
        yield platform, certs
    finally:
        platform.kill()


def _remote_yaml(tmp_path: Path, platform: DevBroker, ca: Path) -> Path:
    user = bridge_id(MALL)
    secret = tmp_path / "remote" / f"{user}.secret"
    secret.parent.mkdir()
    secret.write_text(platform.add_user(user) + "\n")
    secret.chmod(0o600)
    remote = {
        "host": "localhost",
        "port": platform.port,
        "username": user,
        "password_file": secret.name,  # relative to the settings file, as elsewhere
        "tls": {"ca_file": str(ca)},
    }
    path = tmp_path / "remote" / "platform.yaml"
    path.write_text(yaml.safe_dump(remote))
    return path


def test_the_production_variant_bridges_over_tls_and_hides_its_password(
    tmp_path, tls_platform, capsys
):
    """``mallnet broker bridge-conf`` renders the TLS bridge; a mall broker running it carries
    the whole contract to a TLS-only platform; the password is in the 0600 file only."""
    platform, certs = tls_platform
    remote_file = _remote_yaml(tmp_path, platform, certs / "ca.crt")
    out = tmp_path / "conf.d" / "mallnet-bridge.conf"
    args = ["broker", "bridge-conf", "--mall", MALL, "--remote", str(remote_file)]
    assert main([*args, "--output", str(out)]) == 0
    password = (remote_file.parent / f"{bridge_id(MALL)}.secret").read_text().strip()
    text = out.read_text()
    assert out.stat().st_mode & 0o777 == 0o600
    assert f"remote_password {password}\n" in text and "bridge_cafile" in text
    assert "@" not in re.sub(r"(?m)^#.*$", "", text)  # every placeholder filled
    captured = capsys.readouterr()
    assert password not in captured.out + captured.err
    remote = MqttSettings(
        host="localhost",
        port=platform.port,
        username=bridge_id(MALL),
        password=password,
        tls=TlsSettings(ca_file=certs / "ca.crt"),
    )
    bridged = _bridged(tmp_path, platform, remote)
    pair = next(bridged)
    try:
        assert render_bridge(MALL, remote) in pair.mall.conf_file.read_text()
        _cross_everything(pair)
    finally:
        bridged.close()


def test_the_bridge_refuses_plain_tcp_and_unsafe_values_unless_told(tmp_path):
    secret = tmp_path / "s"
    secret.write_text("pw\n")
    plain = MqttSettings(port=1883, username=bridge_id(MALL), password_file=secret)
    with pytest.raises(BridgeError, match="needs TLS"):
        render_bridge(MALL, plain)
    assert "bridge_cafile" not in render_bridge(MALL, plain, allow_plain=True)
    with pytest.raises(BridgeError, match="one word"):
        bad = plain.model_copy(update={"password_file": None, "password": SecretStr("a b")})
        render_bridge(MALL, bad, allow_plain=True)
    with pytest.raises(BridgeError, match="password"):
        render_bridge(MALL, plain.model_copy(update={"password_file": None}), allow_plain=True)
    with pytest.raises(DynsecError, match="reserved"):
        render_bridge(MALL, plain.model_copy(update={"username": "core-1"}), allow_plain=True)
    remote = tmp_path / "plain.yaml"
    remote.write_text(yaml.safe_dump({"port": 1883, "password_file": str(secret)}))
    out = tmp_path / "bridge.conf"
    args = ["broker", "bridge-conf", "--mall", MALL, "--remote", str(remote)]
    assert main([*args, "--output", str(out)]) == 2
    assert not out.exists()


@dataclass
class Raw:
    """A bare MQTT v5 paho client that records the broker's reason codes."""

    port: int
    user: str
    password: str
    client_id: str
    connack: int = -1
    acks: dict[int, list[int]] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=paho.MQTTv5,
        )
        self.client.username_pw_set(self.user, self.password)
        c = self.client
        c.on_connect = lambda *a: self._note(lambda: setattr(self, "connack", int(a[3].value)))
        c.on_subscribe = lambda _c, _u, mid, rs, _p: self._note(
            lambda: self.acks.__setitem__(mid, [int(r.value) for r in rs])
        )
        c.on_publish = lambda _c, _u, mid, r, _p: self._note(
            lambda: self.acks.__setitem__(mid, [int(r.value)])
        )
        c.on_message = lambda _c, _u, msg: self._note(lambda: self.messages.append(msg.topic))

    def _note(self, update: Any) -> None:
        with self.cond:
            update()
            self.cond.notify_all()

    def _wait(self, predicate: Any, what: str) -> None:
        with self.cond:
            assert self.cond.wait_for(predicate, 10), f"{self.client_id}: no {what}"

    def connect(self) -> int:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        self._wait(lambda: self.connack >= 0, "CONNACK")
        return self.connack

    def subscribe(self, topic_filter: str) -> int:
        mid = self.client.subscribe(topic_filter, qos=1)[1] or 0
        self._wait(lambda: mid in self.acks, "SUBACK")
        return self.acks[mid][0]

    def publish(self, topic: str) -> int:
        mid: int = self.client.publish(topic, b"{}", qos=1).mid
        self._wait(lambda: mid in self.acks, "PUBACK")
        return self.acks[mid][0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_malls_bridge_identity_cannot_write_or_read_another_malls_topics(broker):
    """On the platform, bridge-A may publish A's device events and read what the core sends
    to A's devices, nothing else: not B's topics, not the core's share group, not A's
    receipts as a forger, not under another client id."""
    user_a, user_b = bridge_id(MALL), bridge_id(OTHER_MALL)
    password_a = broker.add_user(user_a, role=Role.BRIDGE)
    broker.add_user(user_b, role=Role.BRIDGE, mall=OTHER_MALL)
    core_b = "core-b"
    broker.add_user(core_b, "core-b-password-0123456789", role=Role.CORE, mall=OTHER_MALL)
    wrong_id = Raw(broker.port, user_a, password_a, "store-1")
    assert wrong_id.connect() == 135  # bound to its own client id
    wrong_id.close()
    raw = Raw(broker.port, user_a, password_a, user_a)
    assert raw.connect() == 0
    try:
        for spec in BRIDGE_OUT:
            assert raw.publish(spec.topic(MALL, _entity(spec))) in (0, 16), spec.name
            assert raw.publish(spec.topic(OTHER_MALL, _entity(spec))) == 135, spec.name
            assert raw.subscribe(spec.filter(MALL)) == 135, spec.name  # no reading events
        for spec in BRIDGE_IN:
            assert raw.subscribe(spec.filter(MALL)) == 1, spec.name
            assert raw.subscribe(spec.filter(OTHER_MALL)) == 135, spec.name
            assert raw.publish(spec.topic(MALL, _entity(spec))) == 135, spec.name  # no forging
            assert raw.publish(spec.topic(OTHER_MALL, _entity(spec))) == 135, spec.name
        for wide in ("#", "mall/v1/#", "mall/v1/+/nodes/+/receipts", f"$share/core/{MALL}/#"):
            assert raw.subscribe(wide) == 135, wide
        assert raw.subscribe(f"$share/core/{BRIDGE_OUT[0].filter(MALL)}") == 135
        assert raw.publish(CORE_STATUS.topic(MALL, "core-1")) == 135
        # what mall B's core sends to B's nodes never reaches A's bridge; A's own does
        settings = MqttSettings(
            port=broker.port, username=core_b, password="core-b-password-0123456789"
        )
        core = MqttClient(settings, core_b)
        core.start()
        try:
            assert core.wait_connected(10)
            receipts = BRIDGE_IN[[s.name for s in BRIDGE_IN].index("receipts")]
            core.publish(receipts.topic(OTHER_MALL, "store-1"), b"{}", qos=1).wait(10)
            own = MqttClient(settings_for(broker, "core-a"), "core-a")
            own.start()
            try:
                assert own.wait_connected(10)
                own.publish(receipts.topic(MALL, "store-1"), b"{}", qos=1).wait(10)
                with raw.cond:
                    assert raw.cond.wait_for(lambda: raw.messages, 10)
            finally:
                own.stop()
        finally:
            core.stop()
        assert raw.messages == [receipts.topic(MALL, "store-1")]
    finally:
        raw.close()


def test_the_production_bridge_runs_in_debians_layout_next_to_the_production_config(
    tmp_path, tls_platform
):
    """The mall's broker as installed: Debian's ``mosquitto.conf``, ``mallnet.conf`` (TLS only)
    and the rendered ``mallnet-bridge.conf`` in ``conf.d``; a node on it reaches the TLS platform
    and gets the platform's answer back."""
    platform, certs = tls_platform
    layout = debian_layout(tmp_path / "mall", free_port())
    out = layout.conf_d / "mallnet-bridge.conf"
    remote = _remote_yaml(tmp_path, platform, certs / "ca.crt")
    assert (
        main(
            ["broker", "bridge-conf", "--mall", MALL, "--remote", str(remote), "--output", str(out)]
        )
        == 0
    )
    # production: the node logs in with its certificate (CN = identity = client id)
    add_device(layout.dynsec_file, MALL, "store-1", Role.STORE, certificate=True)
    [issued] = layout.ca.issue("store-1", CertRole.STORE, out=tmp_path / "issued")
    proc = start(layout.conf, layout.port)
    try:
        receipts = Collector()
        node_settings = MqttSettings(
            host="localhost",
            port=layout.port,
            username="store-1",
            tls=TlsSettings(
                ca_file=layout.certs / "ca.crt", cert_file=issued.cert, key_file=issued.key
            ),
        )
        node = MqttClient(
            node_settings,
            "store-1",
            subscriptions=[(RECEIPTS.topic(MALL, "store-1"), 1)],
            on_message=receipts,
        )
        node.start()
        assert node.wait_subscribed(10)
        at_platform = Collector()
        watch = _client(
            platform,
            "monitor-platform",
            subscriptions=[(PRESENCE.filter(MALL), 1)],
            on_message=at_platform,
        )
        core = _client(platform, "core-answer")
        try:
            # until the bridge is up, what the node publishes waits in the mall broker's queue
            node.publish(PRESENCE.topic(MALL, "store-1"), b"batch", qos=1).wait(10)
            at_platform.wait_for(1, timeout=30)

            def answered() -> bool:  # the bridge subscribes right after it connects
                if receipts.messages:
                    return True
                core.publish(RECEIPTS.topic(MALL, "store-1"), b"receipt", qos=1).wait(10)
                return False

            wait_until(answered, 15, "the platform's receipt on the mall broker")
        finally:
            for client in (node, watch, core):
                client.stop()
    finally:
        end(proc)
    log = (layout.data.parent / "log" / "mosquitto.log").read_text()
    assert "Connecting bridge" in log
