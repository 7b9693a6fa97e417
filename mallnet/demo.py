"""``mallnet demo``: a simulated mall on this machine, on embedded defaults.

The demo composes the real parts as separate processes, exactly as a mall runs
them, and talks to them only through their commands, the broker and the HTTP
API (never by importing them):

1. a real Mosquitto from ``mqtt_broker/`` config, with a credential per device;
2. the cloud core (``mallnet core run``) with two stores of two businesses;
3. three shoppers registered through the API, each with a beacon key, and a
   tenant campaign ("hot chocolate -20 %") at one store;
4. two store nodes (``mallnet edge run``) replaying noisy traces made by
   ``mallnet edge simulate`` from those keys — shoppers browsing, strangers
   walking past — at accelerated speed;
5. an inbox watcher that shows each credit notice and offer as it arrives;
6. a parking gate (``mallnet edge gate``) reading a car's plate from frames made by
   ``mallnet edge synth-frames``: Ann's registered car earns her the entry bonus;
7. a kiosk (``mallnet kiosk run``; in a window when a display is present, offscreen
   otherwise) whose camera is a folder of frames made by ``mallnet kiosk synth-frames``:
   Cat holds up her app's QR code and checks in, a kiosk visit worth mall points;
8. a sale at Bean Bar's till (the ``terminal`` API): the seller finds Ann by phone, quotes
   a 2 € order, is refused more coalition points than Bean Bar's 15 % cap, reserves and
   commits the capped share of Ann's parking bonus, registers the purchase (10 % cashback)
   and reads the settlement report: the mall owes Bean Bar what Ann's points paid.

It ends with every shopper's wallet read back from the API, and exits 0 only
if every expected visit was credited exactly once.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from mallnet.broker import DevBroker, free_port
from mallnet.config import MqttSettings
from mallnet.dynsec import Role
from mallnet.errors import MallnetError
from mallnet.mqtt import Inbound, MqttClient
from mallnet.resources import FIRMWARE_PACKAGE, data_dir
from mallnet.wire import WireError, decode
from mallnet.wire.payloads import CreditNotice, OfferNotice
from mallnet.wire.topics import INBOX

log = logging.getLogger(__name__)

MALL = "demo"
PROGRAM_PREFIX = "f7a3e1c2"
FIRMWARE_DEMO = data_dir(FIRMWARE_PACKAGE) / "demo"
REPLAY_SPEED = 20.0


@dataclass(frozen=True)
class Store:
    id: str
    business: str
    node: str
    template: str  # the committed node config this store's node starts from


@dataclass(frozen=True)
class Shopper:
    name: str
    phone: str  # Ofcom drama numbers (+44 20 7946 0xxx): reserved, never real
    visits: tuple[str, ...]  # store ids the shopper browses


STORES = (
    Store("bean-bar-l1", "bean-bar", "store-a", "store-a.yaml"),
    Store("book-nook-l2", "book-nook", "store-b", "store-b.yaml"),
)
SHOPPERS = (
    Shopper("Ann", "+44 20 7946 0001", ("bean-bar-l1",)),
    Shopper("Ben", "+44 20 7946 0002", ("bean-bar-l1", "book-nook-l2")),
    Shopper("Cat", "+44 20 7946 0003", ("book-nook-l2",)),
)
PASSERS_BY = 3
GATE_NODE = "gate-north"
CORE_ID = "core-1"  # the core worker's client id and broker identity
INBOX_WATCHER = "monitor-demo-inbox"  # read-only (monitor role)
DRIVER, DRIVER_PLATE = "Ann", "KA 7777 TX"
PARKING_BONUS = 50
KIOSK, KIOSK_SHOPPER = "kiosk-atrium", "Cat"
KIOSK_VISIT_POINTS = 5
TILL_STORE = STORES[0]  # Bean Bar: Ann (the driver) pays part of an order with her points
ORDER_CENTS = 200  # a 2 € order: 15 % is 30 points of Ann's 50 point parking bonus


class DemoError(MallnetError):
    """A part of the demo did not start or did not behave."""


@dataclass
class _Inbox:
    """Watches every customer inbox and remembers what arrived."""

    names: dict[str, str] = field(default_factory=dict)  # customer id → shopper name
    credits: list[tuple[str, CreditNotice]] = field(default_factory=list)
    offers: list[tuple[str, OfferNotice]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def on_message(self, message: Inbound) -> None:
        try:
            decoded = decode(message.topic, message.payload)
        except WireError as exc:
            log.warning("inbox: rejected %s: %s", message.topic, exc)
            return
        who = self.names.get(decoded.topic.entity, decoded.topic.entity)
        notice = decoded.message
        with self.cond:
            if isinstance(notice, CreditNotice):
                self.credits.append((who, notice))
                log.info("inbox %-3s ← %s", who, notice.text)
            elif isinstance(notice, OfferNotice):
                self.offers.append((who, notice))
                log.info("inbox %-3s ← offer: %s", who, notice.offer.title)
            self.cond.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)


class _Processes:
    """Child processes of the demo, each logging to its own file."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._files: list[Any] = []

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(  # noqa: S603 - our own command
            [sys.executable, "-m", "mallnet.cli", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise DemoError(
                f"`mallnet {' '.join(args[:2])}` failed: {result.stderr.strip()[-800:]}"
            )
        return result

    def start(
        self, name: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        out = (self.log_dir / f"{name}.log").open("wb")
        self._files.append(out)
        proc = subprocess.Popen(  # noqa: S603 - our own command
            [sys.executable, "-m", "mallnet.cli", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.procs[name] = proc
        return proc

    def tail(self, name: str, chars: int = 1500) -> str:
        try:
            return (self.log_dir / f"{name}.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop on SIGTERM; killing it", name)
                proc.kill()
                proc.wait(5)
        for handle in self._files:
            handle.close()


class _Api:
    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.key = key

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Any:
        return self.answer(method, path, body, idempotency_key=idempotency_key)[1]

    def answer(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        refused: tuple[int, ...] = (),
    ) -> tuple[int, Any]:
        """Status and JSON body; a status in ``refused`` is an answer, any other error raises."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"X-API-Key": self.key, "Content-Type": "application/json"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        request = urllib.request.Request(  # noqa: S310 - loopback http only
            self.base + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            text = exc.read()
            if exc.code in refused:
                return exc.code, json.loads(text or b"null")
            raise DemoError(f"API {method} {path}: {exc.code} {text[:300]!r}") from None

    def wait_healthy(self, timeout: float, alive: Callable[[], bool]) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while time.monotonic() < deadline:
            if not alive():
                raise DemoError("the core exited during start-up")
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=2):  # noqa: S310
                    return
            except OSError:
                time.sleep(delay)  # polling the API until it answers
                delay = min(delay * 2, 0.5)
        raise DemoError(f"the core's API did not answer within {timeout}s")


def _secret(path: Path, value: str) -> Path:
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(value + "\n", encoding="utf-8")
    return path


def _node_config(workdir: Path, store: Store, broker_port: int) -> Path:
    config = yaml.safe_load((FIRMWARE_DEMO / store.template).read_text(encoding="utf-8"))
    config["node"] = {"id": store.node, "mall": MALL}
    config["mqtt"].update(
        {
            "port": broker_port,
            "username": store.node,
            "password_file": str(workdir / f"{store.node}.password"),
        }
    )
    config["source"].update(
        {"path": str(workdir / f"{store.node}.jsonl"), "speed": REPLAY_SPEED, "at_end": "exit"}
    )
    config["outbox"]["path"] = str(workdir / f"{store.node}.outbox.sqlite")
    path = workdir / f"{store.node}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


class _Demo:
    """The scenario, step by step; every step talks to the parts as a user would."""

    def __init__(self, workdir: Path, timeout: float) -> None:
        self.workdir = workdir
        self.timeout = timeout
        self.broker = DevBroker(workdir / "broker", mall=MALL)
        self.procs = _Processes(workdir / "logs")
        self.inbox = _Inbox()
        self.watcher: MqttClient | None = None
        self.keys: dict[str, str] = {}
        self.api_port = 0

    def start_broker(self) -> None:
        self.broker.start()
        log.info("broker: Mosquitto on 127.0.0.1:%s (config from mqtt_broker/)", self.broker.port)
        # the core worker's identity: clients core-1, core-1-out, core-1-api, one password
        _secret(self.workdir / "core.password", self.broker.add_user(CORE_ID))
        for store in STORES:
            _secret(self.workdir / f"{store.node}.password", self.broker.add_user(store.node))
        _secret(self.workdir / f"{GATE_NODE}.password", self.broker.add_user(GATE_NODE))
        _secret(self.workdir / f"{KIOSK}.password", self.broker.add_user(KIOSK))

    def start_core(self) -> _Api:
        api_port = free_port()
        core_dir = self.workdir / "core"
        self.procs.run(
            "core",
            "demo-config",
            "--workdir",
            str(core_dir),
            "--mall",
            MALL,
            "--mqtt-port",
            str(self.broker.port),
            "--mqtt-password-file",
            str(self.workdir / "core.password"),
            "--mqtt-user",
            CORE_ID,
            "--api-port",
            str(api_port),
            *[arg for s in STORES for arg in ("--store", f"{s.id}:{s.business}:{s.node}")],
        )
        self._add_car_park(core_dir / "core.yaml")
        self._add_kiosk(core_dir / "core.yaml")
        self._add_spending(core_dir / "core.yaml")
        self.api_port = api_port
        core = self.procs.start("core", "core", "run", "--config", str(core_dir / "core.yaml"))
        api = _Api(api_port, (core_dir / "admin.key").read_text().strip())
        api.wait_healthy(30, lambda: core.poll() is None)
        log.info("core: API on http://127.0.0.1:%s, consumer on $share/core", api_port)
        return api

    @staticmethod
    def _add_car_park(core_yaml: Path) -> None:
        """The mall's car park with its gate, in the core config (docs/parking.md)."""
        config = yaml.safe_load(core_yaml.read_text(encoding="utf-8"))
        secret = _secret(core_yaml.with_name("parking-hash.secret"), secrets.token_hex(32))
        config["parking"] = {
            "car_parks": [{"id": "north", "name": "North car park", "nodes": [GATE_NODE]}],
            "entry_bonus": PARKING_BONUS,
            "hash_secret_file": secret.name,
        }
        core_yaml.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    @staticmethod
    def _add_spending(core_yaml: Path) -> None:
        """Bean Bar's till rules: 15 % of an order payable with coalition points, 10 %
        cashback into its own pocket (docs/core.md "Terminal")."""
        config = yaml.safe_load(core_yaml.read_text(encoding="utf-8"))
        config["spending"] = {
            "partners": {TILL_STORE.business: {"coalition_cap_pct": 15, "cashback_pct": 10}}
        }
        core_yaml.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    def till_sale(self, admin: _Api, driver_phone: str) -> bool:
        """Ann pays part of a 2 € order at Bean Bar with her parking bonus, capped at 15 %."""
        key = (self.workdir / "core" / f"terminal-{TILL_STORE.id}.key").read_text().strip()
        till = _Api(admin.port, key)
        who = till.call("POST", "/terminal/identify", {"phone": driver_phone})
        order = {"customer": who["customer"], "receipt": "DEMO-0001", "order_cents": ORDER_CENTS}
        quote = till.call("POST", "/terminal/quote", order)
        mall = next(p for p in who["pockets"] if p["pocket"] == "mall")["available"]
        status, over = till.answer(
            "POST",
            "/terminal/holds",
            order | {"coalition_points": quote["cap_points"] + 1},
            idempotency_key="demo-hold-over-cap",
            refused=(409,),
        )
        log.info(
            "till: %s's 2 € order at %s: cap %d points (15 %%), asking %d → %d %s",
            DRIVER,
            TILL_STORE.id,
            quote["cap_points"],
            quote["cap_points"] + 1,
            status,
            over.get("type", ""),
        )
        points = min(mall, quote["cap_left"])
        hold = till.call(
            "POST",
            "/terminal/holds",
            order | {"coalition_points": points},
            idempotency_key="demo-hold-1",
        )
        till.call("POST", f"/terminal/holds/{hold['id']}/commit", idempotency_key="demo-commit-1")
        bought = till.call(
            "POST",
            "/terminal/purchases",
            {
                "customer": who["customer"],
                "receipt": "DEMO-0001",
                "amount_cents": ORDER_CENTS - points,
            },
            idempotency_key="demo-purchase-1",
        )
        period = datetime.now(UTC).strftime("%Y-%m")
        report = admin.call("GET", f"/settlements/{period}")
        owed = sum(
            line["amount_cents"]
            for line in report["lines"]
            if (line["payer"], line["payee"]) == ("mall", TILL_STORE.business)
        )
        log.info(
            "till: %d points paid (of %d cents), %d points cashback; settlement: the mall owes "
            "%s %d cents",
            points,
            ORDER_CENTS,
            bought["cashback_points"],
            TILL_STORE.business,
            owed,
        )
        return status == 409 and points == quote["cap_points"] and owed == points

    @staticmethod
    def _add_kiosk(core_yaml: Path) -> None:
        """The atrium kiosk, in no store: a check-in there is a kiosk visit (docs/core.md)."""
        config = yaml.safe_load(core_yaml.read_text(encoding="utf-8"))
        config["kiosks"] = [{"id": KIOSK}]
        config["checkins"] = {"kiosk_visit_points": KIOSK_VISIT_POINTS}
        core_yaml.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    def register_shoppers(self, api: _Api) -> None:
        for shopper in SHOPPERS:
            customer = api.call("POST", "/customers", {"phone": shopper.phone})
            attached = api.call("POST", f"/customers/{customer['id']}/beacon-keys", {})
            self.keys[shopper.name] = attached["key"]
            self.inbox.names[customer["id"]] = shopper.name
            log.info(
                "registered %s as customer %s with a rotating beacon key",
                shopper.name,
                customer["id"],
            )
        driver = next(c for c, name in self.inbox.names.items() if name == DRIVER)
        api.call("POST", f"/customers/{driver}/vehicles", {"plate": DRIVER_PLATE, "country": "UA"})
        log.info("attached %s's car to her wallet", DRIVER)
        now = datetime.now(UTC)
        api.call(
            "POST",
            "/campaigns",
            {
                "id": "winter-cocoa",
                "business": "bean-bar",
                "title": "Hot chocolate -20 %",
                "text": "Show this at Bean Bar before Sunday.",
                "stores": ["bean-bar-l1"],
                "starts_at": (now - timedelta(hours=1)).isoformat(),
                "ends_at": (now + timedelta(days=7)).isoformat(),
            },
        )
        log.info("bean-bar created the campaign %r for its store", "Hot chocolate -20 %")

    def watch_inboxes(self) -> None:
        # a read-only monitor identity bound to its own id, never the core's credential
        password = self.broker.add_user(INBOX_WATCHER, role=Role.MONITOR)
        settings = MqttSettings(port=self.broker.port, username=INBOX_WATCHER, password=password)
        self.watcher = MqttClient(
            settings,
            INBOX_WATCHER,
            on_message=self.inbox.on_message,
            subscriptions=[(INBOX.filter(MALL), 1)],
        )
        self.watcher.start()
        if not self.watcher.wait_connected(10):
            raise DemoError("the inbox watcher could not connect")

    def start_nodes(self) -> list[subprocess.Popen[bytes]]:
        nodes = []
        for index, store in enumerate(STORES):
            visitor_keys = [self.keys[s.name] for s in SHOPPERS if store.id in s.visits]
            self.procs.run(
                "edge",
                "simulate",
                "--out",
                str(self.workdir / f"{store.node}.jsonl"),
                "--prefix",
                PROGRAM_PREFIX,
                *[arg for key in visitor_keys for arg in ("--key", key)],
                "--passers",
                str(PASSERS_BY),
                "--browse",
                "180",
                "--seed",
                str(index + 1),
            )
            config = _node_config(self.workdir, store, self.broker.port)
            nodes.append(self.procs.start(store.node, "edge", "run", "--config", str(config)))
        log.info(
            "nodes: %s replaying %d visits by %d shoppers and %d passers-by per store at %gx",
            ", ".join(s.node for s in STORES),
            EXPECTED_VISITS,
            len(SHOPPERS),
            PASSERS_BY,
            REPLAY_SPEED,
        )
        return nodes

    def start_gate(self) -> subprocess.Popen[bytes]:
        frames = self.workdir / "gate-frames"
        self.procs.run("edge", "synth-frames", "--out", str(frames), "--plate", DRIVER_PLATE)
        config = {
            "node": {"id": GATE_NODE, "mall": MALL},
            "mqtt": {
                "port": self.broker.port,
                "username": GATE_NODE,
                "password_file": str(self.workdir / f"{GATE_NODE}.password"),
            },
            "lanes": [
                {
                    "gate": "north-in",
                    "direction": "entry",
                    "camera": {"type": "file", "path": str(frames), "fps": 10},
                    "countries": ["UA"],
                }
            ],
            "outbox": {"path": str(self.workdir / f"{GATE_NODE}.outbox.sqlite")},
            "at_end": "exit",
        }
        path = self.workdir / f"{GATE_NODE}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        log.info("gate: %s reads a car's plate from %s", GATE_NODE, frames)
        return self.procs.start(GATE_NODE, "edge", "gate", "--config", str(path))

    def start_kiosk(self) -> subprocess.Popen[bytes]:
        """The kiosk as its own process; its camera sees Cat's app QR code."""
        shopper = next(c for c, name in self.inbox.names.items() if name == KIOSK_SHOPPER)
        frames = self.workdir / "kiosk-frames"
        self.procs.run(
            "kiosk", "synth-frames", "--out", str(frames), "--text", f"mallnet:customer:{shopper}"
        )
        config = {
            "kiosk": {"id": KIOSK, "mall": MALL, "store": None, "idle_timeout_s": 30},
            "core": {
                "url": f"http://127.0.0.1:{self.api_port}",
                "api_key_file": str(self.workdir / "core" / "kiosk.key"),
            },
            "mqtt": {
                "port": self.broker.port,
                "username": KIOSK,
                "password_file": str(self.workdir / f"{KIOSK}.password"),
                "reconnect_min_s": 0.2,
                "reconnect_max_s": 2,
            },
            "camera": {"type": "file", "path": str(frames), "fps": 5},
            "scanner": {"debounce_s": 60, "max_fps": 10},
            "queue": {"path": str(self.workdir / f"{KIOSK}.queue.sqlite")},
            "screen": {"fullscreen": False},
        }
        path = self.workdir / f"{KIOSK}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        env = dict(os.environ, KIVY_HOME=str(self.workdir / "kivy-home"))
        where = "in a window"
        if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
            env["SDL_VIDEODRIVER"] = "offscreen"  # this child only: no display here
            where = "offscreen (no display)"
        log.info("kiosk: %s runs %s; %s shows the app's QR code", KIOSK, where, KIOSK_SHOPPER)
        return self.procs.start(KIOSK, "kiosk", "run", "--config", str(path), env=env)

    def checkin_credits(self) -> int:
        return sum(1 for _, notice in self.inbox.credits if notice.reason == "checkin")

    def parking_credits(self) -> int:
        return sum(1 for _, notice in self.inbox.credits if notice.reason == "parking")

    def visit_credits(self) -> int:
        return sum(1 for _, notice in self.inbox.credits if notice.reason == "visit")

    def finish(
        self,
        api: _Api,
        nodes: list[subprocess.Popen[bytes]],
        gate: subprocess.Popen[bytes] | None = None,
        kiosk: subprocess.Popen[bytes] | None = None,
    ) -> bool:
        credited = self.inbox.wait(
            lambda: (
                self.visit_credits() >= EXPECTED_VISITS
                and (gate is None or self.parking_credits() >= 1)
                and (kiosk is None or self.checkin_credits() >= 1 or kiosk.poll() is not None)
            ),
            self.timeout,
        )
        if kiosk is not None:
            if kiosk.poll() is not None:
                raise DemoError(f"{KIOSK} exited with {kiosk.returncode}")
            log.info(
                "kiosk: %d check-in credited at %s (%s's app QR)",
                self.checkin_credits(),
                KIOSK,
                KIOSK_SHOPPER,
            )
        deadline = time.monotonic() + 60
        sold = True
        if gate is not None:
            try:
                code = gate.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise DemoError(f"{GATE_NODE} did not drain its outbox") from None
            if code != 0:
                raise DemoError(f"{GATE_NODE} exited with {code}")
            log.info("parking: %d entry bonus credited at the gate", self.parking_credits())
            driver = next(s for s in SHOPPERS if s.name == DRIVER)
            sold = self.till_sale(api, driver.phone)
        for store, node in zip(STORES, nodes, strict=True):
            try:
                code = node.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise DemoError(f"{store.node} did not drain its outbox") from None
            if code != 0:
                raise DemoError(f"{store.node} exited with {code}")
        log.info("nodes drained their outboxes: every event was receipted by the core")
        for shopper in SHOPPERS:
            customer_id = next(c for c, name in self.inbox.names.items() if name == shopper.name)
            wallet = api.call("GET", f"/customers/{customer_id}/wallet")
            pockets = ", ".join(f"{p['pocket']}={p['balance']}" for p in wallet["pockets"])
            log.info("wallet %-3s %s", shopper.name, pockets or "(empty)")
        log.info(
            "summary: %d visit credits (expected %d), %d kiosk check-in, %d offers pushed, "
            "ingest %s",
            self.visit_credits(),
            EXPECTED_VISITS,
            self.checkin_credits(),
            len(self.inbox.offers),
            json.dumps(api.call("GET", "/ingest/stats")),
        )
        parked = gate is None or (self.parking_credits() == 1 and sold)
        checked_in = kiosk is None or self.checkin_credits() == 1
        return credited and self.visit_credits() == EXPECTED_VISITS and parked and checked_in

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        self.procs.stop_all()
        self.broker.stop()


EXPECTED_VISITS = sum(len(s.visits) for s in SHOPPERS)


def run_demo(workdir: Path | None = None, duration_s: float | None = None) -> int:
    """Run the demo scenario; returns a process exit code."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="mallnet-demo-")
        workdir = Path(tmp.name)
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    demo = _Demo(workdir, duration_s if duration_s is not None else 180.0)
    try:
        demo.start_broker()
        api = demo.start_core()
        demo.register_shoppers(api)
        demo.watch_inboxes()
        nodes = demo.start_nodes()
        kiosk = demo.start_kiosk()
        ok = demo.finish(api, nodes, demo.start_gate(), kiosk)
        if not ok:
            log.error("demo: visits were not credited exactly once; logs in %s", demo.procs.log_dir)
        return 0 if ok else 1
    except DemoError as exc:
        log.error("demo failed: %s", exc)
        for name in demo.procs.procs:
            log.error("--- %s log tail ---\n%s", name, demo.procs.tail(name))
        return 1
    finally:
        demo.close()
        if tmp is not None:
            tmp.cleanup()
