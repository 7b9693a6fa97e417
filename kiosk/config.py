"""The kiosk's config: pydantic models, one per concern, loaded once by ``kiosk/app.py``.

``mallnet kiosk run --config F --validate-config`` reports every problem as
``F:line: field: problem`` (``mallnet.config``). Relative paths (API key,
queue, camera file, broker password and certificates) resolve against the
config file's folder. Secrets live in files, never in the YAML.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, HttpUrl

from mallnet.config import ConfigModel, MqttSettings, load_config
from mallnet.errors import ConfigError
from mallnet.frames.config import CameraConfig, FileCamera
from mallnet.wire.topics import ID_PATTERN


class KioskSettings(ConfigModel):
    id: str = Field(pattern=ID_PATTERN, description="This kiosk's id (its broker user name).")
    mall: str = Field(pattern=ID_PATTERN, description="The mall id in topics.")
    store: str | None = Field(
        default=None, pattern=ID_PATTERN, description="The store the kiosk stands in, if any."
    )
    country_code: str = Field(
        default="+380",
        pattern=r"^\+[1-9]\d{0,2}$",
        description="Put in front of numbers typed without one (e.g. +380, +44).",
    )
    idle_timeout_s: float = Field(
        default=60, ge=5, le=3600, description="No touch for this long: back to idle, forget."
    )
    carousel_s: float = Field(default=8, gt=0, le=600, description="Seconds per idle offer.")
    message_s: float = Field(default=10, gt=0, le=600, description="How long a notice shows.")
    expiry_warning_days: int = Field(
        default=30, ge=1, le=365, description="Show points expiring within this many days."
    )


class CoreSettings(ConfigModel):
    url: HttpUrl = Field(description="The core's API, e.g. http://core.mall.lan:8080.")
    api_key_file: Path = Field(description="File holding this kiosk's API key (mode 0600).")
    timeout_s: float = Field(default=3, gt=0, le=60, description="Longest wait for an answer.")

    def resolve_key(self) -> str:
        try:
            key = self.api_key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read API key file {self.api_key_file}: {exc.strerror}"
            ) from None
        if not key:
            raise ConfigError(f"API key file {self.api_key_file} is empty")
        return key


class QueueSettings(ConfigModel):
    path: Path = Field(
        default=Path("kiosk-queue.sqlite"), description="SQLite file of unsent check-ins."
    )
    max_rows: int = Field(
        default=100_000, ge=100, description="Bound; beyond it the oldest are dropped (counted)."
    )


class ScannerSettings(ConfigModel):
    debounce_s: float = Field(
        default=5, ge=0, le=600, description="The same code again within this time is ignored."
    )
    max_fps: float = Field(
        default=10, gt=0, le=60, description="Frames decoded per second at most (spares the CPU)."
    )


class ScreenSettings(ConfigModel):
    fullscreen: bool = Field(default=True, description="Full screen (a kiosk); False: a window.")
    width: int = Field(default=1280, ge=320, description="Window width when not full screen.")
    height: int = Field(default=800, ge=240, description="Window height when not full screen.")


class KioskConfig(ConfigModel):
    kiosk: KioskSettings = Field(description="Who and where the kiosk is, and its behaviour.")
    core: CoreSettings = Field(description="The core's HTTP API.")
    mqtt: MqttSettings = Field(description="The broker (user = the kiosk id).")
    camera: CameraConfig | None = Field(
        default=None, description="The QR camera: picamera2, opencv or file; none: no scanning."
    )
    scanner: ScannerSettings = Field(default_factory=ScannerSettings, description="QR reading.")
    queue: QueueSettings = Field(default_factory=QueueSettings, description="Offline queue.")
    screen: ScreenSettings = Field(default_factory=ScreenSettings, description="The display.")


def _under(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else base / path


def load_kiosk_config(path: Path | str) -> KioskConfig:
    """Load and validate a kiosk config; relative file paths resolve against its folder."""
    path = Path(path)
    config = load_config(path, KioskConfig)
    base = path.resolve().parent
    updates: dict[str, object] = {
        "core": config.core.model_copy(
            update={"api_key_file": _under(base, config.core.api_key_file)}
        ),
        "queue": config.queue.model_copy(update={"path": _under(base, config.queue.path)}),
        "mqtt": config.mqtt.relative_to(base),
    }
    if isinstance(config.camera, FileCamera):
        updates["camera"] = config.camera.model_copy(
            update={"path": _under(base, config.camera.path)}
        )
    return config.model_copy(update=updates)
