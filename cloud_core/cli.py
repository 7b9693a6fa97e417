"""``mallnet core …``: run the cloud core, validate its config, and small admin tasks."""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import yaml

from cloud_core.config import load_core_config

if TYPE_CHECKING:
    from cloud_core.app import CoreApp
    from mallnet.systemd import Notifier

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    core = subparsers.add_parser("core", help="the cloud core (ingest, ledger, API)")
    sub = core.add_subparsers(dest="core_command", required=True, metavar="ACTION")

    run = sub.add_parser("run", help="run the API and the MQTT consumer")
    run.add_argument("--config", required=True, help="core config YAML")
    run.add_argument(
        "--only", choices=["api", "ingest"], default=None, help="run one half in this process"
    )
    run.add_argument(
        "--validate-config", action="store_true", help="check the config (and API keys), exit"
    )
    run.set_defaults(handler=_run)

    expire = sub.add_parser("expire", help="run the points and till-hold expiry job once")
    expire.add_argument("--config", required=True, help="core config YAML")
    expire.set_defaults(handler=_expire)

    add = sub.add_parser(
        "add-customer", help="register a customer (and a beacon key); prints JSON with its id"
    )
    add.add_argument("--config", required=True, help="core config YAML")
    add.add_argument("--phone", required=True, help="phone number (any common format)")
    add.add_argument("--email", default=None, help="optional e-mail")
    add.add_argument("--beacon-key", action="append", default=[], help="64 hex digits; repeatable")
    add.add_argument("--new-beacon-key", action="store_true", help="make and attach a new key")
    add.set_defaults(handler=_add_customer)

    verify = sub.add_parser(
        "lottery-verify",
        help="recompute a drawn lottery's winners from its published seed and entries",
    )
    verify.add_argument(
        "file", help="the lottery as published (the JSON of GET /lotteries/{id}); - for stdin"
    )
    verify.add_argument(
        "--customer", default=None, help="your customer id: is your entry in, did it win"
    )
    verify.set_defaults(handler=_lottery_verify)

    demo = sub.add_parser(
        "demo-config", help="write a development config and API keys into a directory"
    )
    demo.add_argument("--workdir", required=True, help="directory for config, keys, database")
    demo.add_argument("--mall", default="demo", help="mall id")
    demo.add_argument("--mqtt-port", type=int, required=True, help="broker port on 127.0.0.1")
    demo.add_argument(
        "--mqtt-user",
        default="core-1",
        help="the core's broker identity (`mallnet broker add-device ID --role core`), "
        "written as both mqtt.username and ingest.client_id",
    )
    demo.add_argument("--mqtt-password-file", required=True, help="file with its password")
    demo.add_argument("--api-port", type=int, default=8080, help="HTTP port of the API")
    demo.add_argument(
        "--store",
        action="append",
        default=[],
        metavar="STORE:BUSINESS:NODE[,NODE][:NAME]",
        help="a store with its business, nodes and display name; repeatable "
        "(default: one demo store)",
    )
    demo.set_defaults(handler=_demo_config)


def _run(args: argparse.Namespace) -> int:
    from cloud_core.api.auth import load_api_keys

    config = load_core_config(args.config)  # a ConfigError: `mallnet` says it, exit 2
    if args.only != "ingest":
        load_api_keys(config.api)
        if config.store_qr is not None:
            config.store_qr.key()  # readable, long enough, not a placeholder (or exit 2)
        if config.coupons is not None:
            config.coupons.key()
    if args.validate_config:
        log.info("%s is valid", args.config)
        return 0
    from cloud_core.app import CoreApp
    from mallnet.systemd import Notifier

    return serve(CoreApp(config, only=args.only), Notifier.from_environment())


def serve(app: CoreApp, notifier: Notifier | None = None) -> int:
    """Start ``app`` and run it until SIGTERM or SIGINT, then stop it (exit code 0).

    Under systemd (``notifier``, ``Type=notify``) it says READY=1 once started and, from this
    loop, WATCHDOG=1 while ``app.health_problems()`` is empty."""
    from mallnet.systemd import Notifier, Watchdog

    # The network threads and the ingest worker hand the GIL to each other for every
    # message; a 1 ms switch interval (default 5 ms) keeps that from adding latency.
    sys.setswitchinterval(0.001)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    app.start()
    what = app.only or "api and ingest"
    log.info("core running for mall %s (%s)", app.config.mall, what)
    watchdog = Watchdog(
        notifier or Notifier(None), [lambda: "; ".join(app.health_problems()) or None]
    )
    watchdog.ready(
        f"core {app.config.ingest.client_id} running for mall {app.config.mall} ({what})"
    )
    period = min(watchdog.interval_s or 1.0, 1.0)
    try:
        while not stop.wait(period):
            watchdog.tick()
    finally:
        watchdog.stopping()
        app.stop()
    return 0


def _expire(args: argparse.Namespace) -> int:
    from cloud_core import holds, ledger
    from cloud_core.store import open_store

    config = load_core_config(args.config)
    store = open_store(config.database)
    try:
        with store.transaction() as conn:
            changes = ledger.expire_due(conn, datetime.now(UTC))
            changes += holds.expire_due(conn, datetime.now(UTC))
    finally:
        store.close()
    log.info("expired %d lots", len(changes))
    return 0


def _add_customer(args: argparse.Namespace) -> int:
    from cloud_core import customers
    from cloud_core.store import open_store

    config = load_core_config(args.config)
    store = open_store(config.database)
    try:
        with store.transaction() as conn:
            customer, phone = customers.register_customer(
                conn, args.phone, default_region=config.default_region, email=args.email
            )
            keys = [customers.attach_beacon_key(conn, customer, k)[1] for k in args.beacon_key]
            if args.new_beacon_key:
                keys.append(customers.attach_beacon_key(conn, customer)[1])
    finally:
        store.close()
    log.info("registered customer %s with %d beacon keys", customer, len(keys))
    sys.stdout.write(json.dumps({"id": customer, "phone": phone, "beacon_keys": keys}) + "\n")
    return 0


def _lottery_verify(args: argparse.Namespace) -> int:
    """Exit 0 when the published winners are the procedure's (docs/core.md), 1 otherwise."""
    from cloud_core.rules import lottery

    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    try:
        published = json.loads(text)
    except json.JSONDecodeError as exc:
        log.error("%s is not JSON: %s", args.file, exc)
        return 2
    if not isinstance(published, dict):
        log.error("%s is not a published lottery (a JSON object)", args.file)
        return 2
    problems = lottery.verify(published)
    lines = [f"lottery {published.get('id')!r}: seed SHA-256 {published.get('seed_sha256')}"]
    for winner in published.get("winners") or []:
        lines.append(f"  prize {winner.get('rank')}: entry {winner.get('entry')}")
    if args.customer is not None:
        entry = lottery.entry_of(str(published.get("id")), args.customer)
        won = [w.get("rank") for w in published.get("winners") or [] if w.get("entry") == entry]
        took_part = entry in (published.get("entries") or [])
        lines.append(
            f"  your entry {entry}: {'in the draw' if took_part else 'NOT in the draw'}"
            + (f", won prize {won[0]}" if won else "")
        )
    lines += [f"  PROBLEM: {p}" for p in problems]
    lines.append("verified: the winners follow from the seed" if not problems else "NOT verified")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0 if not problems else 1


def _write_secret(path: Path, text: str) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text, encoding="utf-8")


def _demo_config(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    stores = []
    for spec in args.store or ["bean-bar-l1:bean-bar:store-bean-bar-1"]:
        parts = spec.split(":", 3)
        if len(parts) < 3:
            log.error("--store wants STORE:BUSINESS:NODE[,NODE][:NAME], got %r", spec)
            return 2
        store_id, business, nodes = parts[:3]
        name = parts[3] if len(parts) == 4 else store_id
        stores.append(
            {"id": store_id, "name": name, "business": business, "nodes": nodes.split(",")}
        )
    keys = {role: f"k-{role}-{secrets.token_urlsafe(24)}" for role in ("admin", "kiosk")}
    tenant_keys = {s["business"]: f"k-tenant-{secrets.token_urlsafe(24)}" for s in stores}
    key_entries = [{"name": role, "role": role, "key": key} for role, key in keys.items()]
    key_entries += [
        {"name": business, "role": "tenant", "business": business, "key": key}
        for business, key in tenant_keys.items()
    ]
    till_keys = {s["id"]: f"k-till-{secrets.token_urlsafe(24)}" for s in stores}
    key_entries += [
        {
            "name": f"till-{s['id']}",
            "role": "terminal",
            "business": s["business"],
            "store": s["id"],
            "seller": "demo-seller",
            "key": till_keys[s["id"]],
        }
        for s in stores
    ]
    _write_secret(workdir / "api-keys.yaml", yaml.safe_dump({"keys": key_entries}))
    for role, key in keys.items():
        _write_secret(workdir / f"{role}.key", key + "\n")
    for store_id, key in till_keys.items():
        _write_secret(workdir / f"terminal-{store_id}.key", key + "\n")
    config = {
        "mall": args.mall,
        "database": str(workdir / "core.sqlite"),
        "mqtt": {
            "host": "127.0.0.1",
            "port": args.mqtt_port,
            "username": args.mqtt_user,
            "password_file": str(Path(args.mqtt_password_file).resolve()),
        },
        "ingest": {"client_id": args.mqtt_user},
        "api": {"port": args.api_port, "keys_file": str(workdir / "api-keys.yaml")},
        "visits": {"points": 10, "min_dwell_s": 30, "cooldown_s": 3600, "daily_cap": 100},
        "stores": stores,
    }
    (workdir / "core.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    log.info(
        "wrote %s, %s and the admin/kiosk/terminal keys",
        workdir / "core.yaml",
        workdir / "api-keys.yaml",
    )
    return 0
