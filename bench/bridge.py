"""Mall broker → platform broker bridge: presence events/s carried through a real Mosquitto
bridge, beside the same publisher sending straight to one broker in the same run; then the
round trip a node sees (event out, receipt back) through the bridge and direct.

Two brokers from `mqtt_broker/` config (`DevBroker`): the platform, and the mall's broker
bridged to it as `mallnet broker bridge-conf` renders it (persistent session, QoS 1 both
ways; plain TCP on loopback here, no TLS). A node identity publishes `--messages` presence
batches of `--per-message` events at QoS 1 (at most `--window` unacknowledged), a monitor on
the platform counts their arrival. Baseline: the same publisher, the same messages, straight to
the platform broker. Each variant runs `--repeat` times, alternately; the best counts. Round
trip: one batch at a time, an echo client on the platform answers each with a receipt to the
node's receipts topic, p50/p99 over `--rtt` round trips.

    uv run python bench/bridge.py [--messages 10000] [--per-message 10] [--window 1000]
        [--repeat 3] [--rtt 500]

The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mallnet.bridge import bridge_id  # noqa: E402
from mallnet.broker import DevBroker  # noqa: E402
from mallnet.config import MqttSettings  # noqa: E402
from mallnet.ids import UuidV7Factory  # noqa: E402
from mallnet.wire import encode  # noqa: E402
from mallnet.wire.payloads import PresenceBatch, PresenceEvent, Receipt  # noqa: E402
from mallnet.wire.topics import PRESENCE, RECEIPTS  # noqa: E402

MALL = "bench"
NODE = "bench-node"


def payloads(messages: int, per_message: int) -> list[bytes]:
    """Presence batches shaped as a store node sends them (realistic sizes)."""
    ids = UuidV7Factory()
    now = datetime.now(UTC)
    out = []
    seq = 0
    for m in range(messages):
        events = []
        for _ in range(per_message):
            seq += 1
            tag = f"{(m * 7919 + seq) % 2**128:032x}"
            events.append(
                PresenceEvent(
                    id=ids(),
                    seq=seq,
                    ts=now,
                    kind="dwell",
                    tag=tag,
                    rssi=-67.5,
                    distance_m=2.4,
                    inside_s=60.0,
                )
            )
        out.append(encode(PresenceBatch(node=NODE, events=tuple(events))))
    return out


class Client:
    """A bare paho client (MQTT v5) with a callback per message."""

    def __init__(self, broker: DevBroker, user: str, on_message=None) -> None:
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=user,
            protocol=paho.MQTTv5,
        )
        self.client.username_pw_set(user, broker.credential(user))
        self.client.max_inflight_messages_set(65535)
        self.client.max_queued_messages_set(0)
        connected = threading.Event()
        self.client.on_connect = lambda *_a: connected.set()
        if on_message is not None:
            self.client.on_message = on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        if not connected.wait(10):
            raise RuntimeError(f"{user} could not connect")
        # as the brokers do (set_tcp_nodelay): no Nagle wait behind a delayed ACK
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_a: done.set()
        self.client.subscribe(topic, qos=1)
        if not done.wait(10):
            raise RuntimeError(f"no SUBACK for {topic}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def throughput(source: DevBroker, platform: DevBroker, data: list[bytes], window: int) -> float:
    """Messages/s from the first publish on ``source`` to the last arrival on the platform."""
    total = len(data)
    arrived = [0]
    done = threading.Event()

    def on_message(*_a: object) -> None:
        arrived[0] += 1
        if arrived[0] == total:
            done.set()

    watch = Client(platform, "monitor-bench", on_message)
    watch.subscribe(PRESENCE.filter(MALL))
    node = Client(source, NODE)
    acked = threading.Semaphore(window)
    node.client.on_publish = lambda *_a: acked.release()
    topic = PRESENCE.topic(MALL, NODE)
    start = time.perf_counter()
    for payload in data:
        acked.acquire()
        node.client.publish(topic, payload, qos=1)
    if not done.wait(120):
        raise RuntimeError(f"only {arrived[0]} of {total} messages arrived")
    elapsed = time.perf_counter() - start
    node.close()
    watch.close()
    return total / elapsed


def round_trips(source: DevBroker, platform: DevBroker, data: list[bytes]) -> list[float]:
    """Seconds from a node's publish to its receipt (an echo on the platform answers)."""
    echo_client: list[Client] = []
    receipt = encode(Receipt(ts=datetime.now(UTC), ids=("019aaf3c-4a10-7c3e-9f21-6b0e2d4c8a11",)))
    receipts_topic = RECEIPTS.topic(MALL, NODE)

    def echo(_c: object, _u: object, _msg: object) -> None:
        echo_client[0].client.publish(receipts_topic, receipt, qos=1)

    echo_client.append(Client(platform, "core-bench-echo", echo))
    echo_client[0].subscribe(PRESENCE.filter(MALL))
    back = threading.Event()
    node = Client(source, NODE, lambda *_a: back.set())
    node.subscribe(receipts_topic)
    topic = PRESENCE.topic(MALL, NODE)
    times = []
    for payload in data:
        back.clear()
        start = time.perf_counter()
        node.client.publish(topic, payload, qos=1)
        if not back.wait(10):
            raise RuntimeError("no receipt within 10 s")
        times.append(time.perf_counter() - start)
    node.close()
    echo_client[0].close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--per-message", type=int, default=10)
    parser.add_argument("--window", type=int, default=1000, help="unacknowledged publishes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rtt", type=int, default=500, help="round trips per variant")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data = payloads(args.messages, args.per_message)
    with tempfile.TemporaryDirectory(prefix="bench-bridge-") as tmp:
        platform = DevBroker(Path(tmp) / "platform", mall=MALL)
        platform.start()
        user = bridge_id(MALL)
        remote = MqttSettings(port=platform.port, username=user, password=platform.add_user(user))
        mall = DevBroker(Path(tmp) / "mall", mall=MALL, bridge=remote)
        mall.start()
        try:
            for broker in (platform, mall):
                broker.add_user(NODE)
            platform.add_user("monitor-bench")
            platform.add_user("core-bench-echo")
            # the bridge is up once a first message crosses
            throughput(mall, platform, data[:10], args.window)
            direct, bridged = [], []
            for _ in range(args.repeat):  # alternately, so load drift hits both alike
                direct.append(throughput(platform, platform, data, args.window))
                bridged.append(throughput(mall, platform, data, args.window))
            rtt_direct = round_trips(platform, platform, data[: args.rtt])
            rtt_bridged = round_trips(mall, platform, data[: args.rtt])
        finally:
            mall.stop()
            platform.stop()
    best_direct, best_bridged = max(direct), max(bridged)

    def pct(values: list[float], q: float) -> float:
        ms = sorted(v * 1000 for v in values)
        return ms[min(len(ms) - 1, int(len(ms) * q))]

    size = sum(len(p) for p in data) / len(data)
    print(
        f"workload: {args.messages} presence batches of {args.per_message} events "
        f"({size:.0f} bytes each), QoS 1, window {args.window}, best of {args.repeat}"
    )
    print(
        f"direct to one broker:        {best_direct:8.0f} msgs/s = "
        f"{best_direct * args.per_message:9.0f} events/s  (runs: "
        f"{', '.join(f'{r:.0f}' for r in direct)})"
    )
    print(
        f"through the bridge:          {best_bridged:8.0f} msgs/s = "
        f"{best_bridged * args.per_message:9.0f} events/s  (runs: "
        f"{', '.join(f'{r:.0f}' for r in bridged)})"
    )
    print(f"bridge ÷ direct: {best_bridged / best_direct:.0%}")
    rtt_d, rtt_b = statistics.median(rtt_direct) * 1000, statistics.median(rtt_bridged) * 1000
    print(
        f"round trip (event out, receipt back): direct p50 {rtt_d:.2f} / p99 "
        f"{pct(rtt_direct, 0.99):.2f} ms; bridged p50 {rtt_b:.2f} / p99 "
        f"{pct(rtt_bridged, 0.99):.2f} ms"
    )
    print(
        json.dumps(
            {
                "figure": "presence events/s through a mall→platform Mosquitto bridge",
                "bridged_events_per_s": round(best_bridged * args.per_message),
                "bridged_msgs_per_s": round(best_bridged),
                "baseline": "the same publisher straight to one broker, same run",
                "direct_events_per_s": round(best_direct * args.per_message),
                "direct_msgs_per_s": round(best_direct),
                "ratio_bridged_vs_direct": round(best_bridged / best_direct, 3),
                "runs_direct_msgs_per_s": [round(r) for r in direct],
                "runs_bridged_msgs_per_s": [round(r) for r in bridged],
                "events_per_msg": args.per_message,
                "bytes_per_msg": round(size),
                "rtt_direct_p50_ms": round(rtt_d, 2),
                "rtt_direct_p99_ms": round(pct(rtt_direct, 0.99), 2),
                "rtt_bridged_p50_ms": round(rtt_b, 2),
                "rtt_bridged_p99_ms": round(pct(rtt_bridged, 0.99), 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
