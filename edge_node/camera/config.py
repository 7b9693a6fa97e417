"""A parking gate node's configuration (``mallnet edge gate --config F``).

One model per concern, ``extra="forbid"``, a description on every field; the
node identity, MQTT, outbox and health sections are the store node's own
models, so a gate Pi is configured like any other edge node. Example:
docs/parking.md ("Gate node").
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge_node.camera.formats import formats_for
from edge_node.config import HealthSettings, NodeIdentity, OutboxSettings, rebase
from mallnet.config import ConfigModel, MqttSettings, load_config
from mallnet.frames.config import CameraConfig, FileCamera
from mallnet.wire.topics import ID_PATTERN


class LaneSettings(ConfigModel):
    """One camera watching one lane of a gate."""

    gate: str = Field(pattern=ID_PATTERN, description="The gate's id in parking events.")
    direction: Literal["entry", "exit"] = Field(description="Which way vehicles pass this lane.")
    camera: CameraConfig = Field(description="Where this lane's frames come from.")
    roi: tuple[float, float, float, float] = Field(
        default=(0.0, 0.0, 1.0, 1.0),
        description="Region of interest x, y, w, h as fractions of the frame (motion and plates).",
    )
    countries: tuple[str, ...] = Field(
        default=("EU", "US", "BR"),
        min_length=1,
        description="Plate formats preferred, in priority order: countries (UA, FR, IT, ES, PL, "
        "DE, GB, IN, US, BR) or EU. They rank reads; a plate of no listed format is still read.",
    )

    @field_validator("roi")
    @classmethod
    def _roi(cls, roi: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x, y, w, h = roi
        if not (0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 and 0 < h <= 1):
            raise ValueError("roi values are fractions of the frame between 0 and 1")
        return roi

    @field_validator("countries")
    @classmethod
    def _countries(cls, countries: tuple[str, ...]) -> tuple[str, ...]:
        formats_for(countries)  # raises ValueError naming the unknown one
        return countries


class ReaderSettings(ConfigModel):
    """How a frame's plate is read (``reader.read_frame``); the defaults suit a 720p gate camera."""

    accept: float = Field(
        default=0.75,
        gt=0,
        le=1,
        description="A read at least this sure ends the frame's reading (no escalation).",
    )
    min_confidence: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Abstention threshold: a frame's best read below this is no read.",
    )
    max_fixes: float = Field(
        default=2.0, ge=0, le=4, description="Confusable-fix cost allowed per read (O/0 = 0.25)."
    )
    fallback: bool = Field(
        default=True,
        description="Escalate: detect again at det_side_max when the first look is unsure.",
    )
    det_side: int = Field(
        default=640, ge=160, le=4096, description="Text detector input, longer side (px)."
    )
    det_side_max: int = Field(
        default=960, ge=160, le=4096, description="Detector input when escalating (px)."
    )
    crop_side: int = Field(
        default=480,
        ge=0,
        le=2048,
        description="Detector input for the second look inside the plate crop (px); 0: none.",
    )
    max_lines: int = Field(
        default=10, ge=1, le=64, description="Tallest text lines recognised per detection."
    )
    threads: int = Field(default=1, ge=1, le=8, description="ONNX Runtime threads for OCR.")


class PassSettings(ConfigModel):
    """How frames become vehicle passes (``gate.GateLane``, ``gate.MotionGate``)."""

    hold_s: float = Field(
        default=1.0, gt=0, le=30, description="A pass ends this long after motion."
    )
    max_pass_s: float = Field(default=30, gt=0, le=600, description="A pass is closed after this.")
    early_votes: int = Field(
        default=3, ge=1, le=20, description="Agreeing reads that end a pass's reading early."
    )
    early_confidence: float = Field(
        default=0.85, gt=0, le=1, description="Confidence each early vote needs."
    )
    min_confidence: float = Field(
        default=0.6, ge=0, le=1, description="A pass's voted read below this sends nothing."
    )
    repeat_s: float = Field(
        default=20, ge=0, le=3600, description="The same plate again within this is one vehicle."
    )
    motion_threshold: float = Field(
        default=0.01, gt=0, le=1, description="Fraction of the ROI that must change to be motion."
    )


class CropSettings(ConfigModel):
    """Plate crops kept on the node for disputes; never sent in wire v1."""

    dir: Path = Field(description="Folder for plate crops (relative to the config file).")
    retention_h: float = Field(
        default=24, ge=0, le=24 * 90, description="Hours a crop is kept; 0 keeps none."
    )


class GateConfig(ConfigModel):
    """One parking-gate node."""

    node: NodeIdentity = Field(description="Who this node is.")
    mqtt: MqttSettings = Field(description="Broker connection with this node's own credential.")
    lanes: tuple[LaneSettings, ...] = Field(min_length=1, description="The lanes this node reads.")
    reader: ReaderSettings = Field(default_factory=ReaderSettings, description="Plate reading.")
    passes: PassSettings = Field(default_factory=PassSettings, description="Vehicle passes.")
    crops: CropSettings | None = Field(default=None, description="Local plate crops; None: none.")
    outbox: OutboxSettings = Field(description="The durable outbox.")
    health: HealthSettings = Field(default_factory=HealthSettings, description="Heartbeat.")
    at_end: Literal["exit", "idle"] = Field(
        default="idle",
        description="When every camera is a file that has ended: exit after draining the outbox "
        "(tests, the demo) or idle.",
    )
    drain_timeout_s: float = Field(
        default=60, gt=0, description="How long `at_end: exit` waits for receipts."
    )

    @model_validator(mode="after")
    def _lanes_unique(self) -> GateConfig:
        seen = {(lane.gate, lane.direction) for lane in self.lanes}
        if len(seen) != len(self.lanes):
            raise ValueError("two lanes have the same gate and direction")
        return self


def load_gate_config(path: Path | str) -> GateConfig:
    """Load and validate a gate config; relative file paths resolve against its folder."""
    path = Path(path)
    config = load_config(path, GateConfig)
    base = path.resolve().parent
    lanes = []
    for lane in config.lanes:
        camera = lane.camera
        if isinstance(camera, FileCamera):
            camera = camera.model_copy(update={"path": rebase(camera.path, base)})
        lanes.append(lane.model_copy(update={"camera": camera}))
    updates: dict[str, object] = {
        "lanes": tuple(lanes),
        "outbox": config.outbox.model_copy(update={"path": rebase(config.outbox.path, base)}),
    }
    if config.crops is not None:
        updates["crops"] = config.crops.model_copy(update={"dir": rebase(config.crops.dir, base)})
    updates["mqtt"] = config.mqtt.relative_to(base)  # password file, TLS CA, cert and key
    return config.model_copy(update=updates)
