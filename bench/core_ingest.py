"""Cloud core ingest: presence events applied per second with ack-after-commit, beside a bare
paho subscriber's received messages per second from the same broker in the same run; then the
p50/p99 latency from a node's publish to the customer's inbox notice at 1 000 events/s.

Workload: shoppers' walks through four stores as nodes report them (enter, a dwell report a
minute, exit; by default 4 dwell reports and half of the walks by strangers without the app),
10 events per message. `--dwell-reports 1 --strangers 0` is the worst case (a third of all events
are credits). Both throughput runs drain the same number of identical-shaped messages that wait in
the broker for an offline persistent session (so the publisher's speed does not limit either):
the bare subscriber only counts them (auto ack); the core decodes, resolves rotating ids,
applies the visit rules and ledger in batched transactions, commits, acks each message, and
publishes receipts and inbox notices.

`--backend postgres` keeps the core's data in a throwaway PostgreSQL 15 cluster started for the
run (Debian's binaries, stock durability: `synchronous_commit on`) instead of one SQLite file;
`--workers N` runs N core processes in one shared subscription on the same database (the
throughput run drains the queued messages with all of them; the latency run uses all of them).

    uv run python bench/core_ingest.py [--backend sqlite|postgres] [--workers 1]
        [--messages 1200] [--per-message 10] [--latency-s 3]
        [--dwell-reports 4] [--strangers 0.5] [--tcp-nodelay]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cloud_core import customers as customer_store  # noqa: E402
from cloud_core.config import CoreConfig  # noqa: E402
from cloud_core.store import open_store  # noqa: E402
from mallnet import identity  # noqa: E402
from mallnet.broker import DevBroker  # noqa: E402
from mallnet.config import MqttSettings  # noqa: E402
from mallnet.dynsec import Role  # noqa: E402
from mallnet.ids import UuidV7Factory  # noqa: E402
from mallnet.mqtt import Inbound, MqttClient  # noqa: E402
from mallnet.wire import decode, encode  # noqa: E402
from mallnet.wire.payloads import CreditNotice, PresenceBatch, PresenceEvent, Receipt  # noqa: E402
from mallnet.wire.topics import INBOX, PRESENCE, RECEIPTS  # noqa: E402

MALL = "bench"
PASSWORD = "bench-core-password-0123456789"
BENCH_CLIENTS = (
    "bench-core",
    "bench-publisher",
    "bench-bare",
    "bench-receipts",
    "bench-probe",
    "bench-inbox",
)
THROUGHPUT_STORES = 4
LATENCY_STORES = 3


class _NoDelayBroker(DevBroker):
    """The dev broker with Mosquitto's `set_tcp_nodelay true` (see docs/benchmarks.md)."""

    def _render(self) -> str:
        return super()._render() + "\nset_tcp_nodelay true\n"


def key_of(n: int) -> bytes:
    return n.to_bytes(4, "big") * 8


class Node:
    def __init__(self, name: str) -> None:
        self.name = name
        self.seq = 0
        self.ids = UuidV7Factory()

    def event(self, key: bytes, ts: float, kind: str, inside: float) -> PresenceEvent:
        self.seq += 1
        return PresenceEvent(
            id=self.ids(),
            seq=self.seq,
            ts=datetime.fromtimestamp(ts, UTC),
            kind=kind,  # type: ignore[arg-type]
            tag=identity.tag_id(key, identity.window_of(ts)),
            rssi=-60.0,
            distance_m=2.0,
            inside_s=inside,
        )


def walks_payloads(
    customers: int, per_message: int, messages: int, dwell_reports: int, strangers: float
) -> list[tuple[str, bytes]]:
    """Walks through stores, batched per node as the edge publisher does: enter, a dwell
    report every 60 s (`dwell_reports` of them), exit. A `strangers` share of the walks are
    by tags no customer owns (shoppers without the app)."""
    now = time.time()
    out: list[tuple[str, bytes]] = []
    nodes = [Node(f"node-{s}") for s in range(THROUGHPUT_STORES)]
    pending: dict[str, list[PresenceEvent]] = {n.name: [] for n in nodes}
    length = 60.0 * (dwell_reports + 1)
    walk: list[tuple[str, float]] = [("enter", 0.0)]
    walk += [("dwell", 60.0 * (i + 1)) for i in range(dwell_reports)]
    walk += [("exit", length)]
    c = 0
    while len(out) < messages:
        node = nodes[c % THROUGHPUT_STORES]
        stranger = (c * 7919 % 1000) / 1000 < strangers  # spread evenly, deterministic
        customer = (c // THROUGHPUT_STORES) % customers + 1
        key = key_of(customer + (10**7 if stranger else 0))
        for kind, inside in walk:
            pending[node.name].append(node.event(key, now - length - 20 + inside, kind, inside))
            if len(pending[node.name]) == per_message:
                batch = PresenceBatch(node=node.name, events=tuple(pending[node.name]))
                out.append((node.name, encode(batch)))
                pending[node.name] = []
        c += 1
    return out[:messages]


def connect_raw(port: int, client_id: str, on_message=None, persistent: bool = False):
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
    )
    client.username_pw_set(client_id, PASSWORD)  # each bench client is its own identity
    client.max_inflight_messages_set(1000)
    if on_message is not None:
        client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600 if persistent else 0
    connected = threading.Event()
    client.on_connect = lambda *_a: connected.set()
    client.connect("127.0.0.1", port, clean_start=not persistent, properties=props)
    client.loop_start()
    if not connected.wait(10):
        raise RuntimeError("could not connect")
    return client


def publish_all(port: int, payloads: list[tuple[str, bytes]]) -> None:
    pub = connect_raw(port, "bench-publisher")
    infos = [pub.publish(PRESENCE.topic(MALL, node), data, qos=1) for node, data in payloads]
    for info in infos:
        info.wait_for_publish(30)
    pub.disconnect()
    pub.loop_stop()


def bare_rate(port: int, payloads: list[tuple[str, bytes]]) -> float:
    """Messages/s a bare paho subscriber drains from its queued persistent session."""
    shared = PRESENCE.shared_filter("bare", MALL)
    sub = connect_raw(port, "bench-bare", persistent=True)
    sub.subscribe(shared, qos=1)
    # make sure the subscription exists before the messages are queued for it
    time.sleep(0.2)
    sub.disconnect()
    sub.loop_stop()
    publish_all(port, payloads)
    done = threading.Event()
    count = [0]

    def on_message(*_args: object) -> None:
        count[0] += 1
        if count[0] == len(payloads):
            done.set()

    start = time.perf_counter()
    sub = connect_raw(port, "bench-bare", on_message=on_message, persistent=True)
    done.wait(60)
    elapsed = time.perf_counter() - start
    sub.unsubscribe(shared)
    sub.disconnect()
    sub.loop_stop()
    return count[0] / elapsed


def worker_ids(workers: int) -> list[str]:
    return ["bench-core", *(f"bench-core-{i}" for i in range(2, workers + 1))]


def make_config(workdir: Path, port: int, client_id: str, database: str) -> tuple[CoreConfig, Path]:
    stores = [
        {"id": f"store-{s}", "name": f"Store {s}", "business": f"biz-{s}", "nodes": [f"node-{s}"]}
        for s in range(THROUGHPUT_STORES + LATENCY_STORES)
    ]
    secret = workdir / "core.password"
    secret.write_text(PASSWORD)
    data = {
        "mall": MALL,
        "database": database,
        "mqtt": {"port": port, "username": client_id, "password_file": str(secret)},
        "ingest": {"client_id": client_id, "batch_max": 200, "batch_wait_ms": 1},
        "visits": {"points": 10, "min_dwell_s": 60, "cooldown_s": 3600, "daily_cap": 100},
        "stores": stores,
    }
    config_file = workdir / f"{client_id}.yaml"
    config_file.write_text(yaml.safe_dump(data))
    return CoreConfig.model_validate(data), config_file


def register(config: CoreConfig, customers: int) -> dict[str, int]:
    store = open_store(config.database)
    ids: dict[str, int] = {}
    try:
        with store.transaction() as conn:
            for n in range(1, customers + 1):
                cid, _ = customer_store.register_customer(
                    conn, f"+4479{n:08d}", default_region="GB"
                )
                customer_store.attach_beacon_key(conn, cid, key_of(n).hex())
                ids[cid] = n
    finally:
        store.close()
    return ids


class CoreProcess:
    """`mallnet core run --only ingest` as its own process, as in production."""

    def __init__(self, config_file: Path, log: Path) -> None:
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mallnet.cli",
                "--log-level",
                "INFO",
                "core",
                "run",
                "--config",
                str(config_file),
                "--only",
                "ingest",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self._log.close()


class Receipts:
    """Collects receipted event ids; remembers when the last receipt arrived."""

    def __init__(self, port: int) -> None:
        self.ids: set[str] = set()
        self.last = 0.0
        self.client = MqttClient(
            MqttSettings(port=port, username="bench-receipts", password=PASSWORD),
            "bench-receipts",
            subscriptions=[(RECEIPTS.filter(MALL), 1)],
            on_message=self._on,
        )
        self.client.start()
        self.client.wait_connected(10)

    def _on(self, message: Inbound) -> None:
        receipt = decode(message.topic, message.payload).message
        assert isinstance(receipt, Receipt)
        self.ids.update(receipt.ids)
        self.last = time.time()


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def wait_ready(port: int, receipts: Receipts, log: Path) -> str:
    """Publish a probe event until the core receipts it (it is then subscribed)."""
    probe_event = Node("node-0").event(key_of(10**6), time.time(), "enter", 0.0)
    data = encode(PresenceBatch(node="node-0", events=(probe_event,)))
    pub = connect_raw(port, "bench-probe")

    def subscribed() -> bool:
        pub.publish(PRESENCE.topic(MALL, "node-0"), data, qos=1)
        time.sleep(0.05)
        return probe_event.id in receipts.ids

    try:
        if not wait_for(subscribed, 60):
            raise RuntimeError(f"core did not start: {log.read_text()[-2000:]}")
    finally:
        pub.disconnect()
        pub.loop_stop()
    return probe_event.id


def core_rate(
    config: CoreConfig,
    config_files: list[Path],
    log: Path,
    payloads: list[tuple[str, bytes]],
    event_ids: set[str],
) -> tuple[list[CoreProcess], Receipts, float, float, dict[str, int]]:
    """Events/s and messages/s the core processes apply (ack after commit) from their queued
    sessions: from the start of the first batch to the arrival of the last receipt."""
    port = config.mqtt.port
    receipts = Receipts(port)
    probes = []
    for config_file in config_files:  # one at a time: each one's session and subscription
        core = CoreProcess(config_file, log)
        probes.append(wait_ready(port, receipts, log))
        core.stop()  # its session (and shared subscription) stays: messages queue for it
    publish_all(port, payloads)
    cores = [CoreProcess(config_file, log) for config_file in config_files]
    if not wait_for(lambda: event_ids <= receipts.ids, 120):
        raise RuntimeError(f"core did not apply everything: {log.read_text()[-2000:]}")
    end = receipts.last
    store = open_store(config.database)
    try:
        marks = ", ".join("?" for _ in probes)
        rows = store.conn.execute(
            "SELECT outcome, COUNT(*), MIN(ts) FROM processed_events"
            f" WHERE event_id NOT IN ({marks}) GROUP BY outcome",
            probes,
        ).fetchall()
    finally:
        store.close()
    stats = {r[0]: r[1] for r in rows}
    start = min(datetime.fromisoformat(r[2]).timestamp() for r in rows)
    elapsed = end - start
    return cores, receipts, len(event_ids) / elapsed, len(payloads) / elapsed, stats


@contextlib.contextmanager
def database_for(backend: str, workdir: Path) -> Iterator[str]:
    """The core's database for this run: a SQLite file, or a throwaway PostgreSQL cluster."""
    if backend == "sqlite":
        yield str(workdir / "core.sqlite")
        return
    from tests.postgres import cluster, missing

    reason = missing()
    if reason is not None:
        raise SystemExit(f"--backend postgres: {reason}")
    with cluster() as pg:
        yield pg.new_database()


def latency(port: int, ids: dict[str, int], seconds: float) -> list[float]:
    """Publish 100 messages/s of 10 qualifying events; time publish → inbox credit notice."""
    by_number = {n: cid for cid, n in ids.items()}
    sent: dict[tuple[str, str], float] = {}
    got: list[float] = []
    lock = threading.Lock()

    def settings(client_id: str) -> MqttSettings:
        return MqttSettings(port=port, username=client_id, password=PASSWORD)

    def on_inbox(message: Inbound) -> None:
        now = time.perf_counter()
        notice = decode(message.topic, message.payload).message
        if isinstance(notice, CreditNotice) and notice.reason == "visit":
            customer = message.topic.split("/")[4]
            with lock:
                t0 = sent.get((customer, notice.pocket))
            if t0 is not None:
                got.append(now - t0)

    inbox = MqttClient(
        settings("bench-inbox"),
        "bench-inbox",
        subscriptions=[(INBOX.filter(MALL), 1)],
        on_message=on_inbox,
    )
    inbox.start()
    inbox.wait_connected(10)
    node_clients = {}
    for s in range(THROUGHPUT_STORES, THROUGHPUT_STORES + LATENCY_STORES):
        node_clients[s] = MqttClient(settings(f"bench-node-{s}"), f"bench-node-{s}")
        node_clients[s].start()
        node_clients[s].wait_connected(10)
    time.sleep(0.3)  # let the inbox subscription settle
    nodes = {s: Node(f"node-{s}") for s in node_clients}
    total_msgs = int(seconds * 100)
    customers = len(ids)
    planned = time.time() + 1.0
    prepared = []  # built before the clock starts, stamped with their planned send times
    for i in range(total_msgs):
        s = THROUGHPUT_STORES + i % LATENCY_STORES
        first = (i // LATENCY_STORES) * 10
        events = []
        batch_keys = []
        for j in range(10):
            n = (first + j) % customers + 1
            events.append(nodes[s].event(key_of(n), planned + i / 100, "dwell", 90.0))
            batch_keys.append((by_number[n], f"biz-{s}"))
        data = encode(PresenceBatch(node=f"node-{s}", events=tuple(events)))
        prepared.append((s, data, batch_keys))
    time.sleep(max(0.0, planned - time.time()))
    start = time.perf_counter()
    for i, (s, data, batch_keys) in enumerate(prepared):
        t0 = time.perf_counter()
        with lock:
            for k in batch_keys:
                sent[k] = t0
        node_clients[s].publish(PRESENCE.topic(MALL, f"node-{s}"), data)
        pause = start + (i + 1) / 100 - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    deadline = time.monotonic() + 10
    while len(got) < total_msgs * 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    for client in (inbox, *node_clients.values()):
        client.stop()
    return got


def report(
    args: argparse.Namespace,
    *,
    bare: float,
    core_events: float,
    core_msgs: float,
    stats: dict[str, int],
    lat: list[float],
    inside: dict[str, int],
) -> None:
    lat_ms = sorted(x * 1000 for x in lat)
    p50 = statistics.median(lat_ms) if lat_ms else float("nan")
    p99 = lat_ms[min(len(lat_ms) - 1, int(len(lat_ms) * 0.99))] if lat_ms else float("nan")
    print(f"backend: {args.backend}, {args.workers} core worker(s) on one database")
    print(
        f"workload: walks of enter + {args.dwell_reports} dwell reports + exit, "
        f"{args.strangers:.0%} by strangers, {args.per_message} events/message, "
        f"{args.messages} messages"
    )
    print(f"bare paho subscriber:       {bare:10.0f} msgs/s received")
    print(
        f"core, ack after commit:     {core_msgs:10.0f} msgs/s = {core_events:.0f} events/s "
        f"applied ({args.per_message} events/msg; outcomes {stats})"
    )
    print(
        f"core events/s vs bare msgs/s: {core_events / bare:.0%}   msgs/s vs msgs/s: "
        f"{core_msgs / bare:.0%}"
    )
    print(
        f"publish → inbox notice at 1000 events/s: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        f"({len(lat_ms)} notices)"
    )
    print(
        "  of which inside the core (received → notices published), last 2000 batches: "
        f"p50 {inside.get('delay_p50_us', 0) / 1000:.1f} ms, "
        f"p99 {inside.get('delay_p99_us', 0) / 1000:.1f} ms"
    )
    print(
        json.dumps(
            {
                "figure": "core presence events/s applied (ack after commit)",
                "backend": args.backend,
                "workers": args.workers,
                "core_events_per_s": round(core_events),
                "core_msgs_per_s": round(core_msgs),
                "baseline": "bare paho subscriber msgs/s, same broker, same run",
                "bare_msgs_per_s": round(bare),
                "ratio_events_vs_bare_msgs": round(core_events / bare, 3),
                "ratio_msgs_vs_bare_msgs": round(core_msgs / bare, 3),
                "events_per_msg": args.per_message,
                "dwell_reports": args.dwell_reports,
                "strangers": args.strangers,
                "latency_p50_ms": round(p50, 2),
                "latency_p99_ms": round(p99, 2),
                "latency_rate_events_per_s": 1000,
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--workers", type=int, default=1, help="core processes, one database")
    parser.add_argument("--messages", type=int, default=1200)
    parser.add_argument("--per-message", type=int, default=10)
    parser.add_argument("--latency-s", type=float, default=3.0)
    parser.add_argument(
        "--dwell-reports", type=int, default=4, help="dwell events per walk (one per minute)"
    )
    parser.add_argument(
        "--strangers", type=float, default=0.5, help="share of walks by tags nobody registered"
    )
    parser.add_argument(
        "--tcp-nodelay",
        action="store_true",
        help="run the broker with set_tcp_nodelay true (no Nagle delay before manual acks)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with (
        tempfile.TemporaryDirectory(prefix="bench-core-") as tmp,
        database_for(args.backend, Path(tmp)) as database,
    ):
        workdir = Path(tmp)
        workers = worker_ids(args.workers)
        broker_class = _NoDelayBroker if args.tcp_nodelay else DevBroker
        broker = broker_class(workdir / "broker", mall=MALL)
        broker.start()
        # every client is a core-role identity bound to its own client id (the core's own
        # user refuses any id but its worker's: bench-core, -out, -api)
        latency_nodes = range(THROUGHPUT_STORES, THROUGHPUT_STORES + LATENCY_STORES)
        clients = (*BENCH_CLIENTS, *workers[1:], *(f"bench-node-{s}" for s in latency_nodes))
        for client_id in clients:
            broker.add_user(client_id, PASSWORD, role=Role.CORE)
        cores: list[CoreProcess] = []
        try:
            configs = [make_config(workdir, broker.port, w, database) for w in workers]
            config = configs[0][0]
            config_files = [path for _, path in configs]
            customers = max(1000, int(args.latency_s * 100 * 10 / LATENCY_STORES) + 10)
            ids = register(config, customers)
            workload = (args.per_message, args.messages, args.dwell_reports, args.strangers)
            payloads = walks_payloads(customers, *workload)
            event_ids = {
                e.id for _, data in payloads for e in PresenceBatch.model_validate_json(data).events
            }
            bare = bare_rate(broker.port, walks_payloads(customers, *workload))
            cores, receipts, core_events, core_msgs, stats = core_rate(
                config, config_files, workdir / "core.log", payloads, event_ids
            )
            for core in cores:  # fresh core processes for the latency run: their own figures
                core.stop()
            cores = [CoreProcess(path, workdir / "core.log") for path in config_files]
            for _ in cores:
                wait_ready(broker.port, receipts, workdir / "core.log")
            receipts.client.stop()
            lat = latency(broker.port, ids, args.latency_s)
        finally:
            for core in cores:
                core.stop()
            broker.stop()
        totals = [
            line
            for line in (workdir / "core.log").read_text().splitlines()
            if "ingest totals: " in line
        ]
        inside = json.loads(totals[-1].split("ingest totals: ", 1)[1]) if totals else {}
    report(
        args,
        bare=bare,
        core_events=core_events,
        core_msgs=core_msgs,
        stats=stats,
        lat=lat,
        inside=inside,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
