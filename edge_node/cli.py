"""``mallnet edge …``: the store node's commands (``ble/cli.py``), the gate's (``camera/``) and
``schema``, which exports both nodes' config schemas (this module composes the two nodes)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mallnet.resources import FIRMWARE_PACKAGE, data_dir

if TYPE_CHECKING:
    from pydantic import BaseModel

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add ``edge`` and its actions to the ``mallnet`` command."""
    from edge_node.ble.cli import add_store_commands
    from edge_node.camera.cli import add_camera_commands  # parking-gate commands (docs/parking.md)

    edge = subparsers.add_parser("edge", help="the in-store edge node (BLE presence)")
    sub = edge.add_subparsers(dest="edge_command", required=True, metavar="ACTION")
    add_store_commands(sub)
    add_camera_commands(sub)
    schema = sub.add_parser(
        "schema", help="write (or check) the node, gate, beacon and Pi boot JSON schemas"
    )
    schema.add_argument(
        "--output", default=None, help="folder for the schemas (firmware_config/schema)"
    )
    schema.add_argument("--check", action="store_true", help="fail if the file is stale")
    schema.set_defaults(handler=_schema)


def schema_texts() -> dict[str, str]:
    """The JSON schemas of what a Pi is configured with, by file name: the store node's and the
    gate's configs, the tag's beacon profile, the Pi's boot profile (the kiosk's is
    ``mallnet kiosk schema``)."""
    from edge_node.ble.config import BeaconProfile, EdgeConfig
    from edge_node.camera.config import GateConfig
    from mallnet.pi import PiBoot

    models: tuple[tuple[str, type[BaseModel]], ...] = (
        ("node.schema.json", EdgeConfig),
        ("gate.schema.json", GateConfig),
        ("beacon.schema.json", BeaconProfile),
        ("pi-boot.schema.json", PiBoot),
    )
    return {
        name: json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"
        for name, model in models
    }


def _schema(args: argparse.Namespace) -> int:
    folder = Path(args.output) if args.output else data_dir(FIRMWARE_PACKAGE) / "schema"
    stale = 0
    for name, text in schema_texts().items():
        target = folder / name
        if args.check:
            if not target.exists() or target.read_text(encoding="utf-8") != text:
                log.error("%s is stale: run `mallnet edge schema`", target)
                stale += 1
            continue
        folder.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        log.info("wrote %s", target)
    return 1 if stale else 0
