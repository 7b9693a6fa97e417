"""Identities and per-role confinement on the real broker, with the dev AND the production config.

The production config runs inside Debian's own ``/etc/mosquitto/mosquitto.conf`` layout (copied
into a temp dir, its paths moved there) over TLS. Attackers are raw paho clients and
``mosquitto_sub``/``mosquitto_pub``: clients we did not write. (Past 400 lines because its two
helpers, the bare paho client and the Debian layout, serve only these tests.)
"""

from __future__ import annotations

import base64
import gc
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mallnet.broker import DevBroker, free_port
from mallnet.cli import main
from mallnet.config import MqttSettings, TlsSettings
from mallnet.dynsec import (
    PUBLISHES,
    READS,
    DynsecError,
    Role,
    add_device,
    check_identity,
    core_client_ids,
    hash_password,
    load_dynsec,
    remove_device,
)
from mallnet.mqtt import NOT_AUTHORIZED, MqttClient
from mallnet.pki import CertificateAuthority, CertRole
from mallnet.wire.topics import (
    ALL_TOPICS,
    KIOSK_CONFIG,
    KIOSK_STATUS,
    PRESENCE,
    RECEIPTS,
    STATUS,
    Direction,
    TopicSpec,
)
from tests.conftest import MALL, wait_until
from tests.mallnet.debian_layout import debian_layout, end, start

NODE, OTHER, GATE, KIOSK = "store-bean-bar-1", "store-book-nook-1", "gate-north", "kiosk-atrium"
CORE, CORE2, MONITOR = "core-1", "core-2", "monitor-ops"  # two core workers, an observer
CORE_OUT, CORE_API = f"{CORE}-out", f"{CORE}-api"
IDENTITIES = {CORE: Role.CORE, CORE2: Role.CORE, NODE: Role.STORE, OTHER: Role.STORE}
IDENTITIES |= {GATE: Role.GATE, KIOSK: Role.KIOSK, MONITOR: Role.MONITOR}
PEER = {NODE: OTHER, OTHER: NODE, GATE: "gate-south", KIOSK: "kiosk-food-court"}


@dataclass
class Target:
    """A running broker and how ``IDENTITIES`` log in: the dev broker by password (a core
    identity's password also under its other connections' usernames), the production one by
    client certificate (``issued/<user>.crt`` and ``.key``, CN = user)."""

    kind: str
    port: int
    passwords: dict[str, str]
    ca_file: Path | None = None
    certs: Path | None = None
    issued: Path | None = None  # client certificates (production)
    ca: CertificateAuthority | None = None

    def __post_init__(self) -> None:
        for user, role in IDENTITIES.items():
            if role is Role.CORE and user in self.passwords:
                self.passwords |= dict.fromkeys(core_client_ids(user), self.passwords[user])

    @property
    def host(self) -> str:
        return "localhost" if self.ca_file is not None else "127.0.0.1"

    def cert(self, user: str) -> tuple[Path, Path]:
        assert self.issued is not None
        return self.issued / f"{user}.crt", self.issued / f"{user}.key"

    def settings(self, user: str) -> MqttSettings:
        if self.issued is not None:
            assert self.ca_file is not None
            cert, key = self.cert(user)
            mutual = TlsSettings(ca_file=self.ca_file, cert_file=cert, key_file=key)
            return MqttSettings(host=self.host, port=self.port, tls=mutual)
        tls = TlsSettings(ca_file=self.ca_file) if self.ca_file is not None else None
        return MqttSettings(
            host=self.host, port=self.port, username=user, password=self.passwords[user], tls=tls
        )

    def cli(self, tool: str, user: str, client_id: str) -> list[str]:
        args = [tool, "-V", "5", "-h", self.host, "-p", str(self.port), "-q", "1"]
        if self.issued is not None:
            cert, key = self.cert(user)
            args += ["--cert", str(cert), "--key", str(key), "-i", client_id]
        else:
            args += ["-u", user, "-P", self.passwords[user], "-i", client_id]
        return args + (["--cafile", str(self.ca_file)] if self.ca_file is not None else [])


@dataclass
class Raw:
    """A bare paho client that records what the broker answers."""

    target: Target
    user: str
    client_id: str
    persistent: bool = False
    connack: int = -1
    disconnects: int = 0
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    _acks: dict[int, list[int]] = field(default_factory=dict)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    client: paho.Client = field(init=False)

    def __post_init__(self) -> None:
        c = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=paho.MQTTv5,
        )
        if self.target.issued is not None:  # the certificate is the identity
            cert, key = self.target.cert(self.user)
            c.tls_set(ca_certs=str(self.target.ca_file), certfile=str(cert), keyfile=str(key))
        else:
            c.username_pw_set(self.user, self.target.passwords[self.user])
            if self.target.ca_file is not None:
                c.tls_set(ca_certs=str(self.target.ca_file), cert_reqs=ssl.CERT_REQUIRED)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        self.client = c

    def _note(self, update: Any) -> None:
        with self._cond:
            update()
            self._cond.notify_all()

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._note(lambda: setattr(self, "connack", int(reason.value)))

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, _reason: Any, _p: Any) -> None:
        self._note(lambda: setattr(self, "disconnects", self.disconnects + 1))

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, reasons: Any, _p: Any) -> None:
        self._note(lambda: self._acks.__setitem__(mid, [int(r.value) for r in reasons]))

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        self._note(lambda: self._acks.__setitem__(mid, [int(reason.value)]))

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        self._note(lambda: self.messages.append((msg.topic, bytes(msg.payload), msg.retain)))

    def _wait(self, predicate: Any, what: str) -> None:
        with self._cond:
            assert self._cond.wait_for(predicate, 10), f"{self.client_id}: no {what}"

    def connect(self) -> int:
        """The CONNACK reason code (0 accepted, 135 not authorised; -1: the TLS handshake
        failed, no CONNACK); a refused client stops."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600 if self.persistent else 0
        try:
            self.client.connect(
                self.target.host,
                self.target.port,
                clean_start=not self.persistent,
                properties=props,
            )
        except (ssl.SSLError, OSError):
            self.close()
            return -1
        self.client.loop_start()
        self._wait(lambda: self.connack >= 0 or self.disconnects > 0, "CONNACK")
        if self.connack != 0:
            self.close()
        return self.connack

    def subscribe(self, *filters: str) -> list[int]:
        """One SUBACK reason code per filter (1 granted QoS 1, >= 0x80 refused)."""
        mids = [self.client.subscribe(f, qos=1)[1] or 0 for f in filters]
        self._wait(lambda: all(m in self._acks for m in mids), "SUBACK")
        return [self._acks[m][0] for m in mids]

    def publish(self, topic: str, payload: bytes = b"{}", retain: bool = False) -> int:
        """The PUBACK reason code (0 delivered, 16 no subscribers, 135 not authorised)."""
        mid: int = self.client.publish(topic, payload, qos=1, retain=retain).mid
        self._wait(lambda: mid in self._acks, "PUBACK")
        return self._acks[mid][0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        sock = self.client.socket()  # a refused client's socket is not always closed by paho
        if sock is not None:
            sock.close()


def debian_prod_broker(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Target, Path]:
    """``mosquitto.prod.conf`` in the conf.d of Debian's stock ``mosquitto.conf``, every path
    moved into ``tmp_path``; certificates from ``mallnet.pki`` (the broker's, one per identity,
    a rogue CA's), identities written by the same code as ``mallnet broker add-device --cert``.
    Returns the process, the target and the main config file."""
    layout = debian_layout(tmp_path, free_port())  # the broker's certificate, the CA's CRL
    certs, issued, ca = layout.certs, tmp_path / "issued", layout.ca
    rogue = CertificateAuthority(tmp_path / "rogue-ca")
    rogue.init("rogue CA")
    shutil.copyfile(rogue.ca_cert, certs / "rogue-ca.crt")
    for user, role in IDENTITIES.items():
        ca.issue(user, CertRole(role.value), out=issued)
        add_device(layout.dynsec_file, MALL, user, role, certificate=True)
    conf, port = layout.conf, layout.port
    prod_target = Target("prod", port, {}, certs / "ca.crt", certs, issued, ca)
    return _start(conf, prod_target), prod_target, conf


def _start(conf: Path, target: Target) -> subprocess.Popen[bytes]:
    return start(conf, target.port)


def _end(proc: subprocess.Popen[bytes]) -> None:
    end(proc)


@pytest.fixture(params=["dev", "prod"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "dev":
        broker: DevBroker = request.getfixturevalue("broker")
        passwords = {user: broker.add_user(user, role=role) for user, role in IDENTITIES.items()}
        yield Target("dev", broker.port, passwords)
        return
    proc, prod, _conf = debian_prod_broker(tmp_path)
    try:
        yield prod
    finally:
        _end(proc)
        gc.collect()


@pytest.fixture
def raw(target: Target) -> Iterator[Any]:
    clients: list[Raw] = []

    def make(user: str, client_id: str | None = None, persistent: bool = False) -> Raw:
        client = Raw(target, user, client_id or user, persistent)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
    gc.collect()  # anything left open shows up in the test that opened it


def _sub_attacker(
    target: Target, user: str, *filters: str
) -> tuple[subprocess.Popen[str], list[str], threading.Thread]:
    """``mosquitto_sub -d`` subscribed to ``filters``; returns it, its output so far and the
    thread reading it."""
    args = ["stdbuf", "-oL", *target.cli("mosquitto_sub", user, user), "-d"]  # line-buffered
    for f in filters:
        args += ["-t", f]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        lines.extend(iter(proc.stdout.readline, ""))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return proc, lines, reader


def test_a_device_cannot_join_the_cores_share_nor_subscribe_to_everything(target, raw):
    """Issue 8.1: the core gets 100 % of the stream while two devices try to swallow it."""
    share = PRESENCE.shared_filter("core", MALL)
    core = raw(CORE)
    assert core.connect() == 0
    assert core.subscribe(share) == [1]
    attacker = raw(NODE)
    assert attacker.connect() == 0
    refused = attacker.subscribe(share, "#", PRESENCE.filter(MALL), RECEIPTS.topic(MALL, OTHER))
    assert all(code >= 0x80 for code in refused), refused
    assert attacker.subscribe(f"$share/core/{RECEIPTS.topic(MALL, NODE)}")[0] >= 0x80
    assert attacker.subscribe(RECEIPTS.topic(MALL, NODE)) == [1]  # its own topic still works
    sub, lines, reader = _sub_attacker(target, GATE, RECEIPTS.topic(MALL, GATE), share, "#")
    try:
        wait_until(lambda: any("Subscribed" in line for line in lines), 10, "mosquitto_sub SUBACK")
        [suback] = [line for line in lines if "Subscribed" in line]
        assert suback.strip().endswith(": 1, 135, 135"), suback  # granted, refused, refused
        sender = raw(OTHER)
        assert sender.connect() == 0
        sent = 40
        for i in range(sent):
            assert sender.publish(PRESENCE.topic(MALL, OTHER), str(i).encode()) == 0
        wait_until(lambda: len(core.messages) >= sent, 10, "every event at the core")
        assert sorted(int(p) for _t, p, _r in core.messages) == list(range(sent))
        assert attacker.messages == []
        assert sub.poll() is None  # still connected the whole time
    finally:
        sub.terminate()
        sub.wait(10)
        reader.join(10)
        if sub.stdout is not None:
            sub.stdout.close()
    assert not [line for line in lines if f"Client {GATE} received PUBLISH" in line]


def test_a_device_cannot_take_over_the_cores_or_another_devices_session(target, raw):
    """Issue 8.2: client ids are bound to identities; the core's session is untouched."""
    core = raw(CORE, persistent=True)
    assert core.connect() == 0
    assert core.subscribe(PRESENCE.filter(MALL)) == [1]
    victim = raw(OTHER)
    assert victim.connect() == 0
    # by password (dev) a foreign client id is refused; by certificate (production) the
    # broker replaces it with the certificate's CN: the device gets its own session, bound
    bound = target.kind == "prod"
    for stolen in ("core-1", "core-1-out", OTHER, "anything-else"):
        assert raw(NODE, stolen).connect() == (0 if bound else NOT_AUTHORIZED), stolen
    pub = subprocess.run(
        [*target.cli("mosquitto_pub", NODE, "core-1"), "-t", PRESENCE.topic(MALL, NODE), "-m", "x"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (pub.returncode == 0) == bound, pub.stdout + pub.stderr
    assert raw(NODE).connect() == 0  # its own id is fine
    assert core.disconnects == 0 and victim.disconnects == 0
    assert victim.publish(PRESENCE.topic(MALL, OTHER), b"after") == 0
    wait_until(lambda: len(core.messages) >= 1 + bound, 10, "the core's messages")
    # bound: mosquitto_pub published as the node itself, on its own topic
    assert [p for _t, p, _r in core.messages] == [b"x", b"after"][not bound :]


def test_the_cores_user_connects_only_with_its_own_bound_ids(target, raw):
    """Issue 8.2 for the core: each of a worker's connections is its own client bound to one
    id; the core's user with any other id, or another identity with one of its ids, gets
    CONNACK 135, and the worker's live sessions are untouched."""
    ingest = raw(CORE, persistent=True)
    assert ingest.connect() == 0
    assert ingest.subscribe(PRESENCE.filter(MALL)) == [1]
    out, api = raw(CORE_OUT), raw(CORE_API)
    assert out.connect() == 0 and api.connect() == 0  # all three at once
    if target.kind == "prod":  # bound, not refused: test_a_certificate_is_bound_to_its_cn…
        return
    for user, client_id in [
        (CORE, "core-1-watch"),  # the core's user under an id of its choosing
        (CORE, "core"),
        (CORE, CORE2),
        (CORE, CORE_OUT),  # the ingest credential cannot take the publisher's session
        (CORE_OUT, CORE),  # nor the publisher's the ingest's
        (CORE_API, CORE),
        (CORE2, CORE),  # another core worker
        (MONITOR, CORE),
        (NODE, CORE_API),
    ]:
        assert raw(user, client_id).connect() == NOT_AUTHORIZED, (user, client_id)
    assert (ingest.disconnects, out.disconnects, api.disconnects) == (0, 0, 0)
    assert out.publish(PRESENCE.topic(MALL, NODE), b"from-out") == 0
    wait_until(lambda: ingest.messages != [], 10, "the publisher's message at the ingest")
    assert [p for _t, p, _r in ingest.messages] == [b"from-out"]


def test_a_certificate_is_bound_to_its_cn_whatever_client_id_it_presents(tmp_path):
    """Production: the CN of the certificate is the client id. Another identity presenting one
    of the core's ids gets its own session (and only its own rights); the worker's three
    sessions are untouched."""
    proc, prod, _conf = debian_prod_broker(tmp_path)
    raws: list[Raw] = []

    def raw(user: str, client_id: str | None = None, persistent: bool = False) -> Raw:
        raws.append(Raw(prod, user, client_id or user, persistent))
        return raws[-1]

    try:
        ingest = raw(CORE, persistent=True)
        assert ingest.connect() == 0
        assert ingest.subscribe(PRESENCE.filter(MALL)) == [1]
        out, api = raw(CORE_OUT), raw(CORE_API)
        assert out.connect() == 0 and api.connect() == 0
        for user, client_id in [(CORE2, CORE), (MONITOR, CORE), (NODE, CORE_API), (NODE, CORE_OUT)]:
            intruder = raw(user, client_id)
            assert intruder.connect() == 0, (user, client_id)
            if user != CORE2:  # bound to its own CN: its own rights, never the core's
                assert intruder.publish(RECEIPTS.topic(MALL, NODE)) == NOT_AUTHORIZED
        assert (ingest.disconnects, out.disconnects, api.disconnects) == (0, 0, 0)
        node = raw(NODE, "core-1")
        assert node.connect() == 0
        assert node.publish(PRESENCE.topic(MALL, NODE), b"as-itself") == 0
        wait_until(lambda: ingest.messages != [], 10, "the node's message at the ingest")
        assert [p for _t, p, _r in ingest.messages] == [b"as-itself"]
        assert ingest.disconnects == 0
    finally:
        for client in raws:
            client.close()
        _end(proc)
        gc.collect()


def test_the_monitor_role_reads_the_mall_and_nothing_else(target, raw):
    """A monitor (test observers, operators) subscribes to the mall's topics, never to the
    core's shared group, and publishes nothing."""
    core = raw(CORE)
    assert core.connect() == 0
    assert core.subscribe(PRESENCE.shared_filter("core", MALL)) == [1]
    monitor = raw(MONITOR)
    assert monitor.connect() == 0
    assert monitor.subscribe(f"mall/v1/{MALL}/#") == [1]
    assert monitor.subscribe(PRESENCE.shared_filter("core", MALL), "#")[0] >= 0x80
    assert monitor.subscribe("#") == [0x87]
    for spec in ALL_TOPICS:
        assert monitor.publish(spec.topic(MALL, NODE)) == NOT_AUTHORIZED, spec.name
    node = raw(NODE)
    assert node.connect() == 0
    assert node.publish(PRESENCE.topic(MALL, NODE), b"seen") == 0
    wait_until(lambda: monitor.messages != [] and core.messages != [], 10, "both copies")
    assert [p for _t, p, _r in monitor.messages] == [b"seen"]
    assert [p for _t, p, _r in core.messages] == [b"seen"]  # the share lost nothing to it


def test_a_core_identity_is_one_bound_client_per_connection_in_the_file(tmp_path):
    dynsec = tmp_path / "dynsec.json"
    password = add_device(dynsec, MALL, CORE, Role.CORE)
    add_device(dynsec, MALL, CORE2, Role.CORE)
    clients = {c["username"]: c for c in load_dynsec(dynsec)["clients"]}
    assert set(clients) == {*core_client_ids(CORE), *core_client_ids(CORE2)}
    assert all(c["clientid"] == name for name, c in clients.items())
    salted = {(c["salt"], c["password"]) for c in clients.values()}
    assert len(salted) == 6  # one password, each hash with its own salt
    assert {r["rolename"] for c in clients.values() for r in c["roles"]} == {f"mallnet-{MALL}-core"}
    assert password not in dynsec.read_text()
    assert remove_device(dynsec, CORE)
    assert {c["username"] for c in load_dynsec(dynsec)["clients"]} == set(core_client_ids(CORE2))
    with pytest.raises(DynsecError):
        check_identity(CORE_OUT, Role.CORE)  # the connections belong to core-1
    with pytest.raises(DynsecError):
        check_identity("core-9-api", Role.CORE)


def _may_publish(user: str, spec: TopicSpec, entity: str) -> bool:
    return entity == user and spec in PUBLISHES[IDENTITIES[user]]


@pytest.mark.parametrize("user", [NODE, GATE, KIOSK])
def test_each_role_publishes_only_its_own_topics(target, raw, user):
    """Issue 8.3: a kiosk cannot make a fake node, a store node cannot act as a gate or a
    kiosk; every contract topic, for the device itself and for a peer."""
    device = raw(user)
    assert device.connect() == 0
    allowed = []
    for spec in ALL_TOPICS:
        for entity in (user, PEER[user]):
            code = device.publish(spec.topic(MALL, entity), b"{}", retain=spec.retained)
            if _may_publish(user, spec, entity):
                assert code in (0, 16), (spec.name, entity, code)
                allowed.append(spec.topic(MALL, entity))
            else:
                assert code == NOT_AUTHORIZED, (spec.name, entity, code)
    assert device.disconnects == 0
    # only the allowed retained messages exist: no fake `nodes/{kiosk}/status`
    core = raw(MONITOR)
    assert core.connect() == 0
    assert core.subscribe(STATUS.filter(MALL), f"mall/v1/{MALL}/kiosks/+/status") == [1, 1]
    probe = raw(CORE_OUT)
    assert probe.connect() == 0
    assert probe.publish(STATUS.topic(MALL, "zz-probe"), b"probe") == 0
    probed = STATUS.topic(MALL, "zz-probe")
    wait_until(lambda: any(t == probed for t, _p, _r in core.messages), 10, "the probe")
    retained = {t for t, _p, r in core.messages if r}
    assert retained == {t for t in allowed if t.endswith("/status")}


@pytest.mark.parametrize("user", [NODE, GATE, KIOSK])
def test_each_role_subscribes_only_to_what_it_reads(target, raw, user):
    device = raw(user)
    assert device.connect() == 0
    for spec in ALL_TOPICS:
        mine, peers = device.subscribe(spec.topic(MALL, user), spec.topic(MALL, PEER[user]))
        assert peers >= 0x80, spec.name
        assert (mine == 1) == (spec in READS[IDENTITIES[user]]), (spec.name, mine)


def test_a_kiosk_reads_its_own_config_and_no_other_kiosks(target, raw):
    """The core's retained settings for each kiosk reach that kiosk only."""
    core = raw(CORE_OUT)
    assert core.connect() == 0
    for kiosk in (KIOSK, PEER[KIOSK]):
        assert core.publish(KIOSK_CONFIG.topic(MALL, kiosk), kiosk.encode(), retain=True) in (0, 16)
    device = raw(KIOSK)
    assert device.connect() == 0
    mine, peers = device.subscribe(
        KIOSK_CONFIG.topic(MALL, KIOSK), KIOSK_CONFIG.topic(MALL, PEER[KIOSK])
    )
    assert mine == 1 and peers >= 0x80
    assert device.subscribe(KIOSK_CONFIG.filter(MALL))[0] >= 0x80  # no wildcard either
    own = KIOSK_CONFIG.topic(MALL, KIOSK)
    wait_until(lambda: any(t == own for t, _p, _r in device.messages), 10, "the kiosk's config")
    assert [(t, p, r) for t, p, r in device.messages] == [(own, KIOSK.encode(), True)]
    # a kiosk cannot write its own (or another's) config
    assert device.publish(own, b"{}", retain=True) == NOT_AUTHORIZED


def test_every_device_topic_of_the_contract_belongs_to_a_role():
    up, down = (Direction.NODE_TO_CORE, Direction.KIOSK_TO_CORE), (Direction.CORE_TO_NODE,)
    sent = {s for s in ALL_TOPICS if s.direction in up}
    read = {s for s in ALL_TOPICS if s.direction in (*down, Direction.CORE_TO_KIOSK)}
    assert set().union(*PUBLISHES.values()) == sent
    assert set().union(*READS.values()) == read


def test_device_ids_cannot_take_the_cores_names():
    for reserved in ("core", "core-1", "core-2-out"):
        with pytest.raises(DynsecError):
            check_identity(reserved, Role.STORE)
    with pytest.raises(DynsecError):
        check_identity("mallnet-admin", Role.CORE)
    assert check_identity("core-1", Role.CORE) == "core-1"
    assert check_identity("corner-shop-1", Role.STORE) == "corner-shop-1"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_production_config_in_debians_layout_is_tls_only(tmp_path):
    """Issue 9.7: dropped into Debian's conf.d it starts; plain TCP and a rogue CA get nowhere;
    a TLS client with a device identity connects."""
    proc, prod, _conf = debian_prod_broker(tmp_path)
    assert prod.certs is not None
    base = prod.settings(NODE)
    clients = {
        "plain": MqttClient(base.model_copy(update={"tls": None}), NODE),
        "rogue": MqttClient(
            base.model_copy(update={"tls": TlsSettings(ca_file=prod.certs / "rogue-ca.crt")}), NODE
        ),
        "good": MqttClient(base, NODE),
    }
    try:
        for client in clients.values():
            client.start()
        assert clients["good"].wait_connected(10)
        assert not clients["plain"].wait_connected(2)  # no CONNACK ever arrives
        assert clients["plain"].first_connect_reason(0) == -1
        assert clients["rogue"].first_connect_reason(0) == -1
    finally:
        for client in clients.values():
            client.stop()
        _end(proc)
        gc.collect()


def test_a_revoked_device_is_disconnected_at_once_and_cannot_return(broker):
    """``remove_user`` on a running dev broker goes through the plugin's control topic."""
    password = broker.add_user(NODE, role=Role.STORE)
    device = MqttClient(
        MqttSettings(port=broker.port, username=NODE, password=password, reconnect_min_s=0.1),
        NODE,
    )
    device.start()
    try:
        assert device.wait_connected(10)
        broker.remove_user(NODE)
        wait_until(lambda: not device.connected, 10, "the revoked device to be disconnected")
        wait_until(lambda: device.counters.disconnects >= 1, 10, "the disconnect")
        assert not device.wait_connected(1.5)  # its reconnects are refused
        assert device.counters.connects == 1
    finally:
        device.stop()


def _security_lines(text: str) -> set[str]:
    keys = ("allow_anonymous", "per_listener_settings", "plugin", "password_file", "acl_file")
    lines = [line.split() for line in text.splitlines() if line.split()]
    found = {" ".join(words) for words in lines if words[0] in keys and words[0] != "plugin"}
    return found | {f"plugin {Path(words[1]).name}" for words in lines if words[0] == "plugin"}


def test_dev_and_prod_configs_carry_the_same_protections(tmp_path):
    dev = _security_lines(DevBroker(tmp_path / "dev", mall=MALL)._render())
    prod = _security_lines(Path("mqtt_broker/mosquitto.prod.conf").read_text())
    assert (
        dev
        == prod
        == {
            "per_listener_settings false",
            "allow_anonymous false",
            "plugin mosquitto_dynamic_security.so",
        }
    )  # no password_file/acl_file: they would not check subscriptions


def test_password_hashes_match_the_ones_mosquitto_ctrl_makes(tmp_path):
    made = tmp_path / "ctrl.json"
    subprocess.run(["mosquitto_ctrl", "dynsec", "init", str(made), "admin", "pw-1234"], check=True)
    [client] = json.loads(made.read_text())["clients"]
    salt = base64.b64decode(client["salt"])
    assert hash_password("pw-1234", salt, client["iterations"]) == client["password"]


def test_live_add_and_revoke_on_the_production_layout(tmp_path):
    """`--live`: the admin identity (made once, before a restart; it logs in with its own
    certificate) changes the running broker through `$CONTROL/dynamic-security/v1`: a new
    device gets its rights at once, a removed one is disconnected at once and comes back
    with none, and the plugin keeps its file current for the next start. (Refusing the
    device's certificate itself is the CRL's job: tests/mallnet/test_pki.py.)"""
    proc, prod, conf = debian_prod_broker(tmp_path)
    assert prod.ca is not None and prod.issued is not None
    dynsec = tmp_path / "var-lib" / "mallnet-dynsec.json"
    live = tmp_path / "broker-admin.yaml"
    new = "kiosk-live-1"
    try:
        add_admin = ["broker", "add-admin", "--dynsec-file", str(dynsec)]
        assert main([*add_admin, "--secret-out", str(tmp_path / "admin.secret")]) == 0
        prod.ca.issue("mallnet-admin", CertRole.ADMIN, out=prod.issued)
        _end(proc)
        proc = _start(conf, prod)
        admin_cert, admin_key = prod.cert("mallnet-admin")
        live.write_text(
            f"host: localhost\nport: {prod.port}\n"
            f"tls: {{ca_file: {prod.ca_file}, cert_file: {admin_cert}, key_file: {admin_key}}}\n"
        )
        prod.ca.issue(new, CertRole.KIOSK, out=prod.issued)
        add = ["broker", "add-device", new, "--role", "kiosk", "--mall", MALL, "--cert"]
        assert main([*add, "--live", str(live)]) == 0
        device = Raw(prod, new, new)
        assert device.connect() == 0  # no restart needed
        assert device.publish(KIOSK_STATUS.topic(MALL, new)) in (0, 16)
        assert device.publish(STATUS.topic(MALL, new)) == NOT_AUTHORIZED  # a kiosk, not a node
        assert new in dynsec.read_text()  # the plugin saved it
        assert main(["broker", "remove-device", new, "--live", str(live)]) == 0
        device._wait(lambda: device.disconnects >= 1, "disconnect of the removed kiosk")
        device.close()
        back = Raw(prod, new, new)
        assert back.connect() == 0  # its certificate is still valid (revoke it: CRL) ...
        assert back.publish(KIOSK_STATUS.topic(MALL, new)) == NOT_AUTHORIZED  # ... no rights
        back.close()
        assert new not in dynsec.read_text()
        # a core identity live: its three bound clients, one certificate each
        core = "core-live"
        prod.ca.issue(core, CertRole.CORE, out=prod.issued)
        add = ["broker", "add-device", core, "--role", "core", "--mall", MALL, "--cert"]
        assert main([*add, "--live", str(live)]) == 0
        ids = core_client_ids(core)
        connections = [Raw(prod, cid, cid) for cid in ids]
        assert [c.connect() for c in connections] == [0, 0, 0]
        assert [c.publish(RECEIPTS.topic(MALL, NODE)) for c in connections] == [16, 16, 16]
        assert main(["broker", "remove-device", core, "--live", str(live)]) == 0
        for connection in connections:
            connection._wait(lambda c=connection: c.disconnects >= 1, "removed core disconnect")
            connection.close()
        assert core not in dynsec.read_text()
        # the admin identity may manage identities, nothing else
        admin = Raw(prod, "mallnet-admin", "mallnet-admin")
        assert admin.connect() == 0
        assert admin.publish(PRESENCE.topic(MALL, NODE)) == NOT_AUTHORIZED
        assert admin.subscribe("#", PRESENCE.filter(MALL)) == [0x87, 0x87]
        admin.close()
    finally:
        _end(proc)
        gc.collect()
