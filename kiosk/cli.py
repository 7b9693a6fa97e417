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
