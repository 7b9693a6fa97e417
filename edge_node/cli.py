"""``mallnet edge …``: the store node's commands (``ble/cli.py``) and the gate's (``camera/``)."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    """Add ``edge`` and its actions to the ``mallnet`` command."""
    from edge_node.ble.cli import add_store_commands
    from edge_node.camera.cli import add_camera_commands  # parking-gate commands (docs/parking.md)

    edge = subparsers.add_parser("edge", help="the in-store edge node (BLE presence)")
    sub = edge.add_subparsers(dest="edge_command", required=True, metavar="ACTION")
    add_store_commands(sub)
    add_camera_commands(sub)
