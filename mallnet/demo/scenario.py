"""The demo mall, step by step; every step talks to the parts as a user would.

``Demo`` starts the broker, the core, the shoppers' registrations, the simulated day
(``mallnet edge simulate-mall``), a node per store, the parking gate and the kiosk; the
mall then stays open until Ctrl-C, ``--duration`` or the end of the simulated period,
and ``close`` stops every process it started.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from mallnet.broker import DevBroker, free_port
from mallnet.config import MqttSettings
from mallnet.demo import cast, till
from mallnet.demo.inbox import Inbox
from mallnet.demo.processes import Api, DemoError, Processes, write_secret
from mallnet.demo.verdict import Verdict, judge, parse_truth
from mallnet.dynsec import Role
from mallnet.mqtt import MqttClient
from mallnet.resources import FIRMWARE_PACKAGE, data_dir
from mallnet.wire.topics import INBOX

log = logging.getLogger(__name__)

FIRMWARE_DEMO = data_dir(FIRMWARE_PACKAGE) / "demo"
SETTLE_S = cast.NODE_EXIT_TIMEOUT_S + 30  # an exit decided and carried to the core


class Demo:
    def __init__(self, workdir: Path, *, horizon_s: float, quiet: bool = False) -> None:
        self.workdir = workdir
        self.horizon_s = horizon_s
        self.broker = DevBroker(workdir / "broker", mall=cast.MALL)
        self.procs = Processes(workdir / "logs")
        self.inbox = Inbox(quiet=quiet)
        self.watcher: MqttClient | None = None
        self.keys: dict[str, str] = {}  # shopper name → beacon key
        self.customers: dict[str, str] = {}  # shopper name → customer id
        self.api_port = 0
        self.period_start = 0.0  # the simulated period's start (trace time)
        self.replay_started = 0.0  # wall time the nodes began replaying it (about)
        self.api: Api | None = None

    # -- the infrastructure --------------------------------------------------------------

    def start_broker(self) -> None:
        self.broker.start()
        log.info("broker: Mosquitto on 127.0.0.1:%s (config from mqtt_broker/)", self.broker.port)
        # the core worker's identity: clients core-1, core-1-out, core-1-api, one password
        write_secret(self.workdir / "core.password", self.broker.add_user(cast.CORE_ID))
        for device in [s.node for s in cast.STORES] + [cast.GATE_NODE, cast.KIOSK]:
            write_secret(self.workdir / f"{device}.password", self.broker.add_user(device))

    def start_core(self) -> Api:
        self.api_port = free_port()
        core_dir = self.workdir / "core"
        self.procs.run(
            "core",
            "demo-config",
            "--workdir",
            str(core_dir),
            "--mall",
            cast.MALL,
            "--mqtt-port",
            str(self.broker.port),
            "--mqtt-password-file",
            str(self.workdir / "core.password"),
            "--mqtt-user",
            cast.CORE_ID,
            "--api-port",
            str(self.api_port),
            *[
                arg
                for s in cast.STORES
                for arg in ("--store", f"{s.id}:{s.business}:{s.node}:{s.name}")
            ],
        )
        self._tune_core(core_dir / "core.yaml")
        core = self.procs.start("core", "core", "run", "--config", str(core_dir / "core.yaml"))
        api = Api(self.api_port, (core_dir / "admin.key").read_text().strip())
        api.wait_healthy(30, lambda: core.poll() is None)
        log.info("core: API on http://127.0.0.1:%s, consumer on $share/core", self.api_port)
        self.api = api
        return api

    def _tune_core(self, core_yaml: Path) -> None:
        """The demo's visit rules, car park and kiosk, in the core config (docs/core.md)."""
        config = yaml.safe_load(core_yaml.read_text(encoding="utf-8"))
        config["visits"].update({"points": cast.VISIT_POINTS, "min_dwell_s": cast.MIN_DWELL_S})
        secret = write_secret(core_yaml.with_name("parking-hash.secret"), secrets.token_hex(32))
        config["parking"] = {
            "car_parks": [{"id": "north", "name": "North car park", "nodes": [cast.GATE_NODE]}],
            "entry_bonus": cast.PARKING_BONUS,
            "hash_secret_file": secret.name,
        }
        config["spending"] = till.spending_rules()
        config["kiosks"] = [{"id": cast.KIOSK}]
        config["checkins"] = {"kiosk_visit_points": cast.KIOSK_VISIT_POINTS}
        core_yaml.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    # -- the people ----------------------------------------------------------------------

    def register_shoppers(self, api: Api) -> None:
        for index, name in enumerate(cast.SHOPPER_NAMES):
            customer = api.call("POST", "/customers", {"phone": cast.phone_of(index)})
            attached = api.call("POST", f"/customers/{customer['id']}/beacon-keys", {})
            self.keys[name] = attached["key"]
            self.customers[name] = customer["id"]
            self.inbox.names[customer["id"]] = name
        log.info("registered %d shoppers, each with a rotating beacon key", len(self.keys))
        driver = self.customers[cast.DRIVER]
        api.call(
            "POST", f"/customers/{driver}/vehicles", {"plate": cast.DRIVER_PLATE, "country": "UA"}
        )
        log.info("attached %s's car to her wallet", cast.DRIVER)
        now = datetime.now(UTC)
        for campaign in cast.CAMPAIGNS:
            api.call(
                "POST",
                "/campaigns",
                {
                    "id": campaign.id,
                    "business": campaign.business,
                    "title": campaign.title,
                    "text": campaign.text,
                    "stores": [campaign.store],
                    "starts_at": (now - timedelta(hours=1)).isoformat(),
                    "ends_at": (now + timedelta(days=7)).isoformat(),
                },
            )
            log.info("%s created the campaign %r", campaign.business, campaign.title)

    def watch_inboxes(self) -> None:
        # a read-only monitor identity bound to its own id, never the core's credential
        password = self.broker.add_user(cast.INBOX_WATCHER, role=Role.MONITOR)
        settings = MqttSettings(
            port=self.broker.port, username=cast.INBOX_WATCHER, password=password
        )
        self.watcher = MqttClient(
            settings,
            cast.INBOX_WATCHER,
            on_message=self.inbox.on_message,
            subscriptions=[(INBOX.filter(cast.MALL), 1)],
        )
        self.watcher.start()
        if not self.watcher.wait_connected(10):
            raise DemoError("the inbox watcher could not connect")

    # -- the devices ---------------------------------------------------------------------

    def simulate(self) -> None:
        """The period's shoppers and passers-by, one trace per node, and the truth."""
        shoppers = self.workdir / "shoppers.json"
        write_secret(shoppers, json.dumps([{"name": n, "key": k} for n, k in self.keys.items()]))
        self.period_start = time.time()
        self.procs.run(
            "edge",
            "simulate-mall",
            "--out",
            str(self.workdir / "traces"),
            "--prefix",
            cast.PROGRAM_PREFIX,
            "--shoppers",
            str(shoppers),
            "--horizon",
            str(self.horizon_s),
            "--start",
            str(self.period_start),
            *[a for s in cast.STORES for a in ("--store", f"{s.id}:{s.node}")],
        )

    def start_nodes(self) -> None:
        template = yaml.safe_load((FIRMWARE_DEMO / "mall-node.yaml").read_text(encoding="utf-8"))
        for store in cast.STORES:
            config = json.loads(json.dumps(template))  # a deep copy
            config["node"] = {"id": store.node, "mall": cast.MALL}
            config["mqtt"].update(
                {
                    "port": self.broker.port,
                    "username": store.node,
                    "password_file": str(self.workdir / f"{store.node}.password"),
                }
            )
            config["source"]["path"] = str(self.workdir / "traces" / f"{store.node}.jsonl")
            config["outbox"]["path"] = str(self.workdir / f"{store.node}.outbox.sqlite")
            path = self.workdir / f"{store.node}.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
            self.procs.start(store.node, "edge", "run", "--config", str(path))
        self.replay_started = time.time()
        log.info(
            "nodes: %d store nodes hear %d shoppers and passers-by walking the corridor",
            len(cast.STORES),
            len(self.keys),
        )

    def start_gate(self) -> subprocess.Popen[bytes]:
        frames = self.workdir / "gate-frames"
        self.procs.run("edge", "synth-frames", "--out", str(frames), "--plate", cast.DRIVER_PLATE)
        config = {
            "node": {"id": cast.GATE_NODE, "mall": cast.MALL},
            "mqtt": {
                "port": self.broker.port,
                "username": cast.GATE_NODE,
                "password_file": str(self.workdir / f"{cast.GATE_NODE}.password"),
            },
            "lanes": [
                {
                    "gate": "north-in",
                    "direction": "entry",
                    "camera": {"type": "file", "path": str(frames), "fps": 10},
                    "countries": ["UA"],
                }
            ],
            "outbox": {"path": str(self.workdir / f"{cast.GATE_NODE}.outbox.sqlite")},
            "at_end": "idle",
        }
        path = self.workdir / f"{cast.GATE_NODE}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        log.info("gate: %s reads %s's plate at the north entry", cast.GATE_NODE, cast.DRIVER)
        return self.procs.start(cast.GATE_NODE, "edge", "gate", "--config", str(path))

    def start_kiosk(self) -> subprocess.Popen[bytes]:
        """The kiosk as its own process; its camera sees Cat's app QR code."""
        shopper = self.customers[cast.KIOSK_SHOPPER]
        frames = self.workdir / "kiosk-frames"
        self.procs.run(
            "kiosk", "synth-frames", "--out", str(frames), "--text", f"mallnet:customer:{shopper}"
        )
        config = {
            "kiosk": {"id": cast.KIOSK, "mall": cast.MALL, "store": None, "idle_timeout_s": 30},
            "core": {
                "url": f"http://127.0.0.1:{self.api_port}",
                "api_key_file": str(self.workdir / "core" / "kiosk.key"),
            },
            "mqtt": {
                "port": self.broker.port,
                "username": cast.KIOSK,
                "password_file": str(self.workdir / f"{cast.KIOSK}.password"),
                "reconnect_min_s": 0.2,
                "reconnect_max_s": 2,
            },
            "camera": {"type": "file", "path": str(frames), "fps": 5},
            "scanner": {"debounce_s": 600, "max_fps": 10},
            "queue": {"path": str(self.workdir / f"{cast.KIOSK}.queue.sqlite")},
            "screen": {"fullscreen": False},
        }
        path = self.workdir / f"{cast.KIOSK}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        env = dict(os.environ, KIVY_HOME=str(self.workdir / "kivy-home"))
        where = "in a window"
        if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
            env["SDL_VIDEODRIVER"] = "offscreen"  # this child only: no display here
            where = "offscreen (no display)"
        log.info(
            "kiosk: %s runs %s; %s shows the app's QR code", cast.KIOSK, where, cast.KIOSK_SHOPPER
        )
        return self.procs.start(cast.KIOSK, "kiosk", "run", "--config", str(path), env=env)

    # -- while open ----------------------------------------------------------------------

    def announce(self) -> None:
        core = self.workdir / "core"
        keys = yaml.safe_load((core / "api-keys.yaml").read_text(encoding="utf-8"))["keys"]
        tenant = cast.STORES[0]
        tenant_key = next(k["key"] for k in keys if k.get("business") == tenant.business)
        write_secret(core / f"{tenant.business}.key", tenant_key)
        base = f"http://127.0.0.1:{self.api_port}"
        log.info(
            "the mall is open: control panel %s/panel — sign in with the key in %s (the mall's "
            "office) or in %s (%s, a tenant); API %s/docs; Ctrl-C closes it",
            base,
            core / "admin.key",
            core / f"{tenant.business}.key",
            tenant.name,
            base,
        )

    def till_sale(self) -> bool:
        """Once Ann's parking bonus is in, she pays part of an order with it (``till``)."""
        if not self.inbox.wait(lambda: self.inbox.count("parking") >= 1, 90):
            raise DemoError("the parking bonus did not arrive within 90 s")
        assert self.api is not None
        return till.till_sale(
            self.workdir / "core", self.api, cast.phone_of(cast.SHOPPER_NAMES.index(cast.DRIVER))
        )

    def progress(self) -> str:
        return (
            f"{self.inbox.count('visit')} visit credits, {len(self.inbox.offers)} offers, "
            f"{self.inbox.count('parking')} parking bonus, "
            f"{self.inbox.count('checkin')} kiosk check-in"
        )

    def stay_open(self, until: float) -> None:
        """Log progress every 20 s until ``until`` (monotonic); a process dying ends it."""
        next_report = time.monotonic() + 20
        while (now := time.monotonic()) < until:
            self.inbox.wait(lambda: False, min(until, next_report) - now)
            dead = [n for n, p in self.procs.procs.items() if p.poll() is not None]
            if dead:
                raise DemoError(f"{', '.join(dead)} exited early")
            if time.monotonic() >= next_report:
                log.info("so far: %s", self.progress())
                next_report += 20

    # -- closing -------------------------------------------------------------------------

    def judge(self) -> Verdict:
        """Stop the devices, let the last notices arrive, compare credits with the truth."""
        # trace time at the stop: the nodes replay the period from when they started
        stopped_at = self.period_start + (time.time() - self.replay_started)
        devices = [s.node for s in cast.STORES] + [cast.GATE_NODE, cast.KIOSK]
        self.procs.stop([d for d in devices if d in self.procs.procs])
        truth = parse_truth(json.loads((self.workdir / "traces" / "truth.json").read_text()))
        business_of = {s.id: s.business for s in cast.STORES}

        def verdict() -> Verdict:
            return judge(
                truth,
                self.inbox.visit_credits(),
                business_of=business_of,
                stopped_at=stopped_at,
                min_dwell_s=cast.MIN_DWELL_S,
                settle_s=SETTLE_S,
            )

        self.inbox.wait(lambda: not verdict().missing, 20)
        return verdict()

    def summary(self, verdict: Verdict) -> None:
        api = self.api
        assert api is not None
        for name in cast.SHOPPER_NAMES[:4]:
            wallet = api.call("GET", f"/customers/{self.customers[name]}/wallet")
            pockets = ", ".join(f"{p['pocket']}={p['balance']}" for p in wallet["pockets"])
            log.info("wallet %-5s %s", name, pockets or "(empty)")
        log.info(
            "summary: %d visit credits, %d browses that had to be credited, %d missing, "
            "%d doubled, %d for no visit; %d offers pushed, %d parking bonus, "
            "%d kiosk check-in; ingest %s",
            verdict.credited,
            verdict.expected,
            len(verdict.missing),
            len(verdict.doubled),
            len(verdict.unexpected),
            len(self.inbox.offers),
            self.inbox.count("parking"),
            self.inbox.count("checkin"),
            json.dumps(api.call("GET", "/ingest/stats")),
        )
        for label, pairs in (
            ("missing", verdict.missing),
            ("doubled", verdict.doubled),
            ("for no visit", verdict.unexpected),
        ):
            if pairs:
                log.error("visit credits %s: %s", label, pairs)

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        self.procs.stop_all()
        self.broker.stop()


def _failure(demo: Demo, exc: BaseException) -> None:
    log.error("demo failed: %s", exc)
    for name in demo.procs.procs:
        log.error("--- %s log tail ---\n%s", name, demo.procs.tail(name))


def run(workdir: Path, duration_s: float | None, *, quiet: bool = False) -> int:
    """Open the mall, keep it open, close it; the exit code says whether it credited right."""
    horizon = duration_s if duration_s is not None else 3600.0
    demo = Demo(workdir, horizon_s=horizon, quiet=quiet)
    try:
        demo.start_broker()
        api = demo.start_core()
        demo.register_shoppers(api)
        demo.watch_inboxes()
        demo.simulate()
        demo.start_nodes()
        demo.start_gate()
        demo.start_kiosk()
        demo.announce()
        sold = demo.till_sale()
        try:
            demo.stay_open(time.monotonic() + horizon - (time.time() - demo.replay_started))
        except KeyboardInterrupt:
            log.info("Ctrl-C: closing the mall")
        verdict = demo.judge()
        demo.summary(verdict)
        parked = demo.inbox.count("parking") == 1
        checked_in = demo.inbox.count("checkin") == 1
        if not parked:
            log.error("the car at the gate earned %d entry bonuses", demo.inbox.count("parking"))
        if not checked_in:
            log.error("the kiosk credited %d check-ins", demo.inbox.count("checkin"))
        if not sold:
            log.error("the sale at %s's till did not go as the rules say", till.TILL_STORE.name)
        return 0 if verdict.ok and parked and checked_in and sold else 1
    except DemoError as exc:
        _failure(demo, exc)
        return 1
    finally:
        demo.close()
