"""The store node's ``mallnet edge`` subcommands: ``run`` (or validate) a node, ``record`` and
``simulate`` traces (``schema`` is in ``edge_node/cli.py``: it covers the gate too)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from mallnet import identity
from mallnet.errors import ConfigError

log = logging.getLogger(__name__)


def _run(args: argparse.Namespace) -> int:
    from edge_node.ble.config import load_node_config
    from edge_node.config_check import load_or_report, report_valid

    config = load_or_report(load_node_config, args.config)
    if config is None:
        return 2
    if args.validate_config:
        return report_valid(args.config, config.mqtt, f"node {config.node.id}")
    from edge_node.ble.app import EdgeApp
    from mallnet.systemd import Notifier

    app = EdgeApp(config, notifier=Notifier.from_environment())  # systemd's Type=notify
    return asyncio.run(app.run())


def _outbox(args: argparse.Namespace) -> int:
    from edge_node.outbox import outbox_report
    from mallnet.config import parse_yaml, read_text_file

    config = Path(args.config)
    data, _lines = parse_yaml(read_text_file(config), str(config))
    try:
        path = Path(data["outbox"]["path"])
    except (KeyError, TypeError):
        log.error("%s: no outbox.path", config)
        return 2
    report = outbox_report(config.parent / path, time.time())
    sys.stdout.write(json.dumps(report, sort_keys=True) + "\n")
    return 0


def _record(args: argparse.Namespace) -> int:
    from edge_node.ble.bleak_source import BleakSource
    from edge_node.ble.config import BleakSourceSettings

    settings = BleakSourceSettings(
        type="bleak", adapter=args.adapter, scanning_mode=args.mode, watchdog_s=args.watchdog
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    async def record(handle: TextIO) -> int:
        source = BleakSource(settings)
        count = 0
        deadline = time.monotonic() + args.duration if args.duration else None
        stream = aiter(source.adverts())
        try:
            while deadline is None or time.monotonic() < deadline:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    advert = await asyncio.wait_for(anext(stream), timeout)
                except TimeoutError:
                    break
                handle.write(advert.to_json() + "\n")
                handle.flush()
                count += 1
                if args.max_adverts and count >= args.max_adverts:
                    break
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()
        return count

    with out.open("a", encoding="utf-8") as handle:
        count = asyncio.run(record(handle))
    log.info("recorded %d Apple adverts to %s", count, out)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from edge_node.ble import simulate

    prefix = identity.parse_prefix(args.prefix)
    keys = [identity.parse_key(k) for k in args.key]
    if args.keys_file:
        try:
            lines = Path(args.keys_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read --keys-file {args.keys_file}: {exc}") from None
        keys += [identity.parse_key(line.strip()) for line in lines if line.strip()]
    rng = random.Random(args.seed)
    start = time.time() if args.start == "now" else float(args.start)
    walks: list[simulate.Walk] = []
    for index, key in enumerate(keys):
        walk = simulate.browse(key, start + index * args.stagger, args.browse, rng=rng)
        walks.append(_with_address(walk, rng))
    for index in range(args.passers):
        key = bytes(rng.randrange(256) for _ in range(identity.KEY_BYTES))
        walk = simulate.pass_by(key, start + index * args.stagger + args.stagger / 2)
        walks.append(_with_address(walk, rng))
    radio = simulate.Radio(sigma_db=args.sigma, loss=args.loss, rate_hz=args.rate)
    scene = simulate.Scene(prefix, {"node": (0.0, 0.0)}, radio)
    adverts = scene.adverts(walks, seed=args.seed)["node"]
    simulate.write_trace(Path(args.out), adverts)
    log.info("wrote %d adverts of %d shoppers to %s", len(adverts), len(walks), args.out)
    return 0


def _simulate_mall(args: argparse.Namespace) -> int:
    from edge_node.ble import mall_sim, simulate

    pairs = []
    for spec in args.store:
        store, _, node = spec.partition(":")
        if not store or not node:
            raise ConfigError(f"--store wants STORE:NODE, got {spec!r}")
        pairs.append((store, node))
    if not pairs:
        raise ConfigError("give at least one --store STORE:NODE")
    shoppers: list[mall_sim.Shopper] = []
    if args.shoppers:
        try:
            entries = json.loads(Path(args.shoppers).read_text(encoding="utf-8"))
            shoppers = [
                mall_sim.Shopper(str(e["name"]), identity.parse_key(str(e["key"]))) for e in entries
            ]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"--shoppers {args.shoppers}: want a JSON list of {{name, key}}: {exc}"
            ) from None
    start = time.time() if args.start == "now" else float(args.start)
    plan = mall_sim.MallPlan(
        start=start,
        horizon_s=args.horizon,
        passers_per_min=args.passers_per_min,
        trips_per_shopper=args.trips,
    )
    radio = simulate.Radio(
        sigma_db=args.sigma, loss=args.loss, rate_hz=args.rate, sensitivity_dbm=args.sensitivity
    )
    result = mall_sim.simulate_mall(
        mall_sim.corridor_layout(pairs),
        shoppers,
        plan,
        prefix=identity.parse_prefix(args.prefix),
        radio=radio,
        seed=args.seed,
    )
    out = Path(args.out)
    for node, adverts in result.adverts.items():
        simulate.write_trace(out / f"{node}.jsonl", adverts)
    truth = {
        "start": start,
        "horizon_s": args.horizon,
        "stays": [
            {"shopper": s.shopper, "store": s.store, "enter": s.enter, "leave": s.leave}
            for s in result.stays
        ],
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=1), encoding="utf-8")
    log.info(
        "wrote traces for %d nodes (%d adverts, %d walks, %d stays) and truth.json to %s",
        len(result.adverts),
        sum(len(a) for a in result.adverts.values()),
        result.walks,
        len(result.stays),
        out,
    )
    return 0


def _with_address(walk: Any, rng: random.Random) -> Any:
    from dataclasses import replace

    from edge_node.ble.simulate import random_address

    return replace(walk, address=random_address(rng))


def add_store_commands(sub: Any) -> None:
    """Add the store node's commands to the ``mallnet edge`` sub-parser group."""
    run = sub.add_parser("run", help="run a node from its YAML config")
    run.add_argument("--config", required=True, help="the node's YAML config")
    run.add_argument(
        "--validate-config", action="store_true", help="check the config, print problems, exit"
    )
    run.set_defaults(handler=_run)

    outbox = sub.add_parser("outbox", help="print what a node's outbox holds (JSON, read-only)")
    outbox.add_argument("--config", required=True, help="the node's or gate's YAML config")
    outbox.set_defaults(handler=_outbox)
    record = sub.add_parser("record", help="write live Apple adverts to a JSONL trace")
    record.add_argument("--out", required=True, help="JSONL file (appended to)")
    record.add_argument("--adapter", default="hci0")
    record.add_argument("--mode", default="auto", choices=["auto", "passive", "active"])
    record.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    record.add_argument("--max-adverts", type=int, default=None, help="stop after N adverts")
    record.add_argument("--watchdog", type=float, default=30.0, help="scanner watchdog (s)")
    record.set_defaults(handler=_record)

    sim = sub.add_parser("simulate", help="synthetic noisy shopper walks → JSONL trace")
    sim.add_argument("--out", required=True, help="JSONL trace to write")
    sim.add_argument("--prefix", required=True, help="program UUID prefix (8 hex digits)")
    sim.add_argument("--key", action="append", default=[], help="a browsing shopper's beacon key")
    sim.add_argument("--keys-file", help="beacon keys, one per line (browsing shoppers)")
    sim.add_argument("--passers", type=int, default=0, help="anonymous shoppers passing by")
    sim.add_argument("--browse", type=float, default=180.0, help="seconds each shopper browses")
    sim.add_argument("--stagger", type=float, default=20.0, help="seconds between arrivals")
    sim.add_argument("--start", default="now", help="Unix time of the first walk, or 'now'")
    sim.add_argument("--sigma", type=float, default=5.0, help="RSSI noise σ (dB)")
    sim.add_argument("--loss", type=float, default=0.25, help="advert loss probability")
    sim.add_argument("--rate", type=float, default=2.0, help="adverts per second per beacon")
    sim.add_argument("--seed", type=int, default=0)
    sim.set_defaults(handler=_simulate)

    mall = sub.add_parser(
        "simulate-mall",
        help="a whole mall's shoppers walking between stores → one JSONL trace per node",
    )
    mall.add_argument("--out", required=True, help="folder for <node>.jsonl and truth.json")
    mall.add_argument("--prefix", required=True, help="program UUID prefix (8 hex digits)")
    mall.add_argument(
        "--store", action="append", default=[], help="STORE:NODE, in corridor order (repeat)"
    )
    mall.add_argument("--shoppers", help="JSON list of {name, key}: registered shoppers")
    mall.add_argument("--trips", type=int, default=1, help="trips per registered shopper")
    mall.add_argument("--horizon", type=float, default=1800.0, help="seconds simulated")
    mall.add_argument("--passers-per-min", type=float, default=4.0, help="anonymous passers-by")
    mall.add_argument("--start", default="now", help="Unix time the period starts, or 'now'")
    mall.add_argument("--sigma", type=float, default=5.0, help="RSSI noise σ (dB)")
    mall.add_argument("--loss", type=float, default=0.25, help="advert loss probability")
    mall.add_argument("--rate", type=float, default=2.0, help="adverts per second per beacon")
    mall.add_argument(
        "--sensitivity", type=int, default=-90, help="weakest RSSI a node receives (dBm)"
    )
    mall.add_argument("--seed", type=int, default=0)
    mall.set_defaults(handler=_simulate_mall)
