"""The config sections every edge node has, whatever it senses: identity, outbox, heartbeat.

The store node's ``EdgeConfig`` (``ble/config.py``) and the gate node's
``GateConfig`` (``camera/config.py``) both use these models (with
``mallnet.config.MqttSettings``), so every Pi is configured alike; one model per
concern, ``extra="forbid"``, a description on every field.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from mallnet.config import ConfigModel
from mallnet.wire.topics import ID_PATTERN


class NodeIdentity(ConfigModel):
    id: str = Field(pattern=ID_PATTERN, description="This node's id; also its broker user name.")
    mall: str = Field(pattern=ID_PATTERN, description="The mall id in every topic.")


class OutboxSettings(ConfigModel):
    path: Path = Field(description="The SQLite outbox file (relative to the config file).")
    max_events: int = Field(
        default=200_000,
        ge=10,
        description="Bound on disk: beyond this many waiting events the oldest are dropped.",
    )
    batch_size: int = Field(default=100, ge=1, le=500, description="Events per MQTT message.")
    max_inflight: int = Field(
        default=2000, ge=1, description="Published but not yet receipted events at most."
    )
    max_inflight_batches: int = Field(
        default=1,
        ge=1,
        le=100,
        description=(
            "Batches published and not yet receipted. 1 keeps strict per-node order even when "
            "a crashing broker loses acknowledged messages; more trades that for throughput."
        ),
    )
    receipt_timeout_s: float = Field(
        default=30, gt=0, description="Republish (in order) when no receipt came in this long."
    )


class HealthSettings(ConfigModel):
    interval_s: float = Field(default=30, gt=0, le=3600, description="Heartbeat interval.")
    stall_s: float = Field(
        default=120,
        gt=0,
        le=3600,
        description="Under systemd (WatchdogSec), withhold the watchdog ping once the BLE scan "
        "or a camera has made no progress for this long, so systemd restarts the service.",
    )
    thermal_zone: Path = Field(
        default=Path("/sys/class/thermal/thermal_zone0/temp"),
        description="Where the SoC temperature is read (millidegrees).",
    )


def rebase(path: Path, base: Path) -> Path:
    """``path`` as written in a config file in ``base``: relative paths resolve against it."""
    return path if path.is_absolute() else base / path
