"""The store node's configuration: pydantic models loaded once from YAML at the composition root.

One model per concern, ``extra="forbid"``, a description on every field; the
node identity, outbox and health sections are every edge node's own
(``edge_node/config.py``). The
beacon source is a discriminated union on ``type`` (``bleak`` or ``replay``).
``load_node_config`` maps every error to its YAML line (``mallnet.config``).
Examples: ``firmware_config/node.example.yaml``; JSON schema:
``firmware_config/schema/node.schema.json`` (``mallnet edge schema`` writes it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from edge_node.config import HealthSettings, NodeIdentity, OutboxSettings, rebase
from mallnet import identity
from mallnet.config import ConfigModel, MqttSettings, load_config
from mallnet.wire.payloads import PresenceTuning


class BleakSourceSettings(ConfigModel):
    type: Literal["bleak"] = Field(description="Scan with bleak on Linux/BlueZ.")
    adapter: str = Field(default="hci0", pattern=r"^hci[0-9]+$", description="BlueZ adapter.")
    scanning_mode: Literal["auto", "passive", "active"] = Field(
        default="auto",
        description=(
            "passive = BlueZ advertisement monitor with or_patterns for Apple iBeacon data "
            "(needs BlueZ >= 5.56 with --experimental); active = discovery with duplicate "
            "data; auto tries passive and falls back to active."
        ),
    )
    watchdog_s: float = Field(
        default=30, gt=0, le=3600, description="Restart the scanner after this long with no advert."
    )
    restarts_before_reset: int = Field(
        default=2,
        ge=0,
        le=100,
        description="Consecutive fruitless restarts after which the adapter is power-cycled.",
    )


class ReplaySourceSettings(ConfigModel):
    type: Literal["replay"] = Field(description="Replay a recorded JSONL trace.")
    path: Path = Field(description="The trace (relative paths are relative to the config file).")
    speed: float = Field(
        default=1.0, ge=0, description="Times real time; 0 replays as fast as possible."
    )
    at_end: Literal["exit", "idle"] = Field(
        default="exit",
        description="exit: drain the outbox (see drain_timeout_s), then stop; idle: keep running.",
    )
    drain_timeout_s: float = Field(
        default=60, gt=0, description="How long `at_end: exit` waits for receipts."
    )


SourceSettings = Annotated[BleakSourceSettings | ReplaySourceSettings, Field(discriminator="type")]


class IBeaconSettings(ConfigModel):
    program_prefix: str = Field(
        description="The mall program's 4-byte UUID prefix as 8 hex digits; others are ignored."
    )

    @field_validator("program_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        try:
            identity.parse_prefix(value)
        except identity.IdentityError as exc:
            raise ValueError(str(exc)) from None
        return value.replace("-", "").lower()

    @property
    def prefix_bytes(self) -> bytes:
        return identity.parse_prefix(self.program_prefix)


class PresenceSettings(ConfigModel):
    filter: Literal["kalman", "median"] = Field(
        default="kalman", description="RSSI filter (see docs/edge.md for the comparison)."
    )
    radius_m: float = Field(default=4.0, gt=0, le=100, description="The store's radius.")
    exit_hysteresis_m: float = Field(
        default=1.5, ge=0, le=50, description="A tag counts as out of range beyond radius + this."
    )
    enter_dwell_s: float = Field(
        default=45, ge=0, le=3600, description="Time within the radius before an enter."
    )
    exit_timeout_s: float = Field(
        default=40, gt=0, le=3600, description="Time out of range or unseen before an exit."
    )
    dwell_report_s: float = Field(
        default=60, gt=0, le=3600, description="Interval of dwell events while inside."
    )
    rx_adjust_db: float = Field(
        default=0, ge=-30, le=30, description="Added to the filtered RSSI (antenna calibration)."
    )
    path_loss_exponent: float = Field(
        default=2.0, ge=1.0, le=5.0, description="n in d = 10^((P1m - RSSI) / (10 n))."
    )
    kalman_process_var: float = Field(
        default=3.0, gt=0, description="Kalman process variance per second (dB²/s)."
    )
    kalman_measurement_var: float = Field(
        default=25.0, gt=0, description="Kalman measurement variance (dB²), ≈ σ² of indoor RSSI."
    )
    median_window_s: float = Field(default=4, gt=0, description="Median/IQR filter window.")
    max_tags: int = Field(
        default=20000, ge=10, description="Tracked tags at most (the oldest-seen are forgotten)."
    )

    @model_validator(mode="after")
    def _timeouts(self) -> PresenceSettings:
        if self.dwell_report_s < 1:
            raise ValueError("dwell_report_s must be at least 1")
        return self

    def tuned(self, tuning: PresenceTuning | None) -> PresenceSettings:
        """These settings with the core's pushed tuning applied over them."""
        if tuning is None:
            return self
        update = {k: v for k, v in tuning.model_dump().items() if v is not None}
        return self.model_validate({**self.model_dump(), **update})


class FootfallSettings(ConfigModel):
    window_s: int = Field(default=60, gt=0, le=3600, description="Aggregation window.")


class EdgeConfig(ConfigModel):
    """One store node."""

    node: NodeIdentity = Field(description="Who this node is.")
    mqtt: MqttSettings = Field(description="Broker connection with this node's own credential.")
    source: SourceSettings = Field(description="Where adverts come from.")
    ibeacon: IBeaconSettings = Field(description="Which frames belong to the mall program.")
    presence: PresenceSettings = Field(
        default_factory=PresenceSettings, description="Presence thresholds."
    )
    footfall: FootfallSettings = Field(
        default_factory=FootfallSettings, description="Footfall aggregation."
    )
    outbox: OutboxSettings = Field(description="The durable outbox.")
    health: HealthSettings = Field(default_factory=HealthSettings, description="Heartbeat.")


def load_node_config(path: Path | str) -> EdgeConfig:
    """Load and validate a node config; relative file paths resolve against its folder."""
    path = Path(path)
    config = load_config(path, EdgeConfig)
    base = path.resolve().parent
    updates: dict[str, object] = {
        "outbox": config.outbox.model_copy(update={"path": rebase(config.outbox.path, base)})
    }
    if isinstance(config.source, ReplaySourceSettings):
        updates["source"] = config.source.model_copy(
            update={"path": rebase(config.source.path, base)}
        )
    updates["mqtt"] = config.mqtt.relative_to(base)  # password file, TLS CA, cert and key
    return config.model_copy(update=updates)


class BeaconProfile(ConfigModel):
    """A shopper tag's settings (``firmware_config/beacon.example.yaml``)."""

    program_prefix: str = Field(
        pattern=r"^[0-9a-fA-F]{8}$", description="The program's 4-byte UUID prefix (8 hex)."
    )
    beacon_key_file: Path = Field(description="File with the tag's 64-hex-digit beacon key.")
    window_s: Literal[600] = Field(
        default=600, description="Rotation window; fixed by mallnet.identity.WINDOW_S."
    )
    advert_interval_ms: int = Field(
        default=500, ge=100, le=10_000, description="Advertising interval."
    )
    measured_power_dbm: int = Field(
        default=-59, ge=-100, le=0, description="RSSI at 1 m, sent in every frame."
    )
    tx_power_dbm: int = Field(default=0, ge=-40, le=20, description="Radio transmit power.")
