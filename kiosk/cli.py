"""``mallnet kiosk …``: the kiosk's commands."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    kiosk = subparsers.add_parser("kiosk", help="the touch kiosk")
    sub = kiosk.add_subparsers(dest="kiosk_command", required=True, metavar="ACTION")
    scan = sub.add_parser("scan", help="read QR codes and barcodes from image files")
    scan.add_argument("images", nargs="+", help="image files (PNG, JPEG, …)")
    scan.set_defaults(handler=_scan)
    synth = sub.add_parser(
        "synth-frames", help="write PNG frames of a QR code held up to the camera (demo, trials)"
    )
    synth.add_argument("--out", required=True, help="folder for the frames")
    synth.add_argument("--text", required=True, help="the QR code's text (mallnet:customer:ID …)")
    synth.set_defaults(handler=_synth)
    run = sub.add_parser("run", help="run the touch kiosk (Kivy, full screen)")
    run.add_argument("--config", required=True, help="the kiosk's YAML config")
    run.add_argument(
        "--validate-config", action="store_true", help="check the config and exit (0 if valid)"
    )
    run.set_defaults(handler=_run)
    schema = sub.add_parser("schema", help="write (or check) the kiosk config's JSON schema")
    schema.add_argument(
        "--output",
        default=None,
        help="the schema file (default: firmware_config/schema/kiosk.schema.json)",
    )
    schema.add_argument("--check", action="store_true", help="fail if the file is stale")
    schema.set_defaults(handler=_schema)


def schema_text() -> str:
    """The JSON schema of ``KioskConfig`` (``firmware_config/schema/kiosk.schema.json``)."""
    from kiosk.config import KioskConfig

    return json.dumps(KioskConfig.model_json_schema(), indent=2, sort_keys=True) + "\n"


def _schema(args: argparse.Namespace) -> int:
    from mallnet.resources import FIRMWARE_PACKAGE, data_dir

    target = Path(args.output or data_dir(FIRMWARE_PACKAGE) / "schema" / "kiosk.schema.json")
    text = schema_text()
    if args.check:
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            log.error("%s is stale: run `mallnet kiosk schema`", target)
            return 1
        return 0
    target.write_text(text, encoding="utf-8")
    log.info("wrote %s", target)
    return 0


def _run(args: argparse.Namespace) -> int:
    from kiosk.config import load_kiosk_config
    from mallnet.errors import ConfigError

    try:
        config = load_kiosk_config(args.config)
    except ConfigError as exc:
        for problem in exc.problems or [str(exc)]:
            sys.stderr.write(problem + "\n")
        return 2
    if args.validate_config:
        for check in (config.mqtt.resolve_password, config.core.resolve_key):
            try:
                check()
            except ConfigError as exc:  # may be provisioned later (ansible): warn, not fail
                sys.stderr.write(f"{args.config}: warning: {exc}\n")
        sys.stdout.write(f"{args.config}: ok (kiosk {config.kiosk.id})\n")
        return 0
    from kiosk.app import KioskRuntime
    from mallnet.systemd import Notifier

    return KioskRuntime(config, notifier=Notifier.from_environment()).run()  # Type=notify


def _synth(args: argparse.Namespace) -> int:
    from kiosk.errors import KioskError
    from kiosk.synth import write_frames

    try:
        paths = write_frames(Path(args.out), args.text)
    except KioskError as exc:
        log.error("%s", exc)
        return 1
    log.info("wrote %d frames to %s", len(paths), args.out)
    return 0


def _scan(args: argparse.Namespace) -> int:
    from kiosk.errors import ImageError
    from kiosk.scanner import check_available, load_image, scan

    check_available()  # no libzbar: one error line from `mallnet`, exit 2, before any output
    failures = 0
    for name in args.images:
        record: dict[str, Any] = {"image": name}
        try:
            codes = scan(load_image(Path(name)))
            record["codes"] = [{"type": c.kind, "text": c.text, "box": list(c.box)} for c in codes]
        except ImageError as exc:
            failures += 1
            record["error"] = str(exc)
            log.error("%s", exc)
        sys.stdout.write(json.dumps(record) + "\n")
    return 1 if failures == len(args.images) else 0
