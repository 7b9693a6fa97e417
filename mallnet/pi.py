"""A Raspberry Pi's boot settings for a mallnet device: ``config.txt``, ``cmdline.txt`` and the
hardware watchdog, from a profile in ``firmware_config/pi/`` (``PiBoot``, a pydantic model whose
JSON schema is ``firmware_config/schema/pi-boot.schema.json``).

Store nodes need Bluetooth and no camera; gates a camera and no Bluetooth; kiosks a display that
never blanks, touch and a QR camera. Every device arms the SoC's hardware watchdog
(``dtparam=watchdog=on``) and lets systemd feed it (``RuntimeWatchdogSec``), so a hung kernel
reboots the Pi while a hung service is restarted by its own unit (``WatchdogSec``).

``mallnet pi boot-config`` writes the result into the Pi's files idempotently: a marked block
in ``config.txt`` (everything outside it is left alone), the profile's arguments in the single
line of ``cmdline.txt`` (others kept), and a systemd drop-in for the watchdog.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from mallnet.config import ConfigModel

BEGIN = "# BEGIN mallnet (written by `mallnet pi boot-config`; edit the profile, not this block)"
END = "# END mallnet"
BCM2835_WDT_MAX_S = 15  # the SoC's watchdog cannot wait longer

Sensor = Literal["auto", "imx708", "imx477", "imx296", "imx219", "ov5647"]


class CameraBoot(ConfigModel):
    enabled: bool = Field(default=False, description="A CSI camera is attached (gate, kiosk).")
    sensor: Sensor = Field(
        default="auto",
        description="auto: the firmware detects it (camera_auto_detect=1); else its overlay "
        "(camera_auto_detect=0, dtoverlay=<sensor>), e.g. imx708 for Camera Module 3.",
    )
    port: Literal["cam0", "cam1"] | None = Field(
        default=None, description="Pi 5 connector for a named sensor; None: the default one."
    )


class BluetoothBoot(ConfigModel):
    enabled: bool = Field(
        default=True, description="Keep the on-board Bluetooth (store nodes scan with it)."
    )
    disable_wifi: bool = Field(
        default=False, description="Turn Wi-Fi off (dtoverlay=disable-wifi): wired devices."
    )


class WatchdogBoot(ConfigModel):
    enabled: bool = Field(default=True, description="Arm the SoC's hardware watchdog.")
    timeout_s: int = Field(
        default=15,
        ge=1,
        le=BCM2835_WDT_MAX_S,
        description="systemd's RuntimeWatchdogSec: a kernel/systemd hang this long reboots.",
    )
    reboot_timeout_s: int = Field(
        default=600,
        ge=30,
        le=3600,
        description="RebootWatchdogSec: a reboot that hangs this long is forced.",
    )


class DisplayBoot(ConfigModel):
    enabled: bool = Field(default=False, description="A display is attached (the kiosk).")
    kms: bool = Field(default=True, description="The KMS driver (dtoverlay=vc4-kms-v3d).")
    disable_overscan: bool = Field(default=True, description="No black border (disable_overscan).")
    never_blank: bool = Field(
        default=True, description="The console never blanks the screen (consoleblank=0)."
    )


class Overlay(ConfigModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9,._-]*$", description="A dtoverlay name.")
    params: tuple[str, ...] = Field(
        default=(), description="Its parameters (key=value or flags), in order."
    )


class PiBoot(ConfigModel):
    """One device kind's boot settings (``firmware_config/pi/*.yaml``)."""

    role: Literal["store", "gate", "kiosk", "core", "broker"] = Field(
        description="The device kind this profile is for."
    )
    camera: CameraBoot = Field(default_factory=CameraBoot, description="The CSI camera.")
    bluetooth: BluetoothBoot = Field(default_factory=BluetoothBoot, description="Radios.")
    watchdog: WatchdogBoot = Field(default_factory=WatchdogBoot, description="Hardware watchdog.")
    display: DisplayBoot = Field(default_factory=DisplayBoot, description="The screen.")
    gpu_mem_mb: int | None = Field(
        default=None, ge=16, le=512, description="GPU memory split; None: the firmware's default."
    )
    overlays: tuple[Overlay, ...] = Field(default=(), description="Further dtoverlay lines.")
    params: tuple[str, ...] = Field(default=(), description="Further dtparam lines (key=value).")
    cmdline: tuple[str, ...] = Field(default=(), description="Further kernel arguments.")

    @model_validator(mode="after")
    def _consistent(self) -> PiBoot:
        if self.role == "store" and not self.bluetooth.enabled:
            raise ValueError("a store node scans with Bluetooth: bluetooth.enabled must be true")
        if self.role == "gate" and not self.camera.enabled:
            raise ValueError("a gate reads plates: camera.enabled must be true")
        if self.role == "kiosk" and not self.display.enabled:
            raise ValueError("a kiosk shows its screen: display.enabled must be true")
        if self.camera.port is not None and self.camera.sensor == "auto":
            raise ValueError("camera.port needs a named sensor (camera_auto_detect ignores it)")
        return self


def config_txt_lines(boot: PiBoot) -> list[str]:
    """The ``config.txt`` lines of a profile (inside the marked block)."""
    lines = ["[all]"]
    camera = boot.camera
    if camera.enabled and camera.sensor == "auto":
        lines.append("camera_auto_detect=1")
    elif camera.enabled:
        lines.append("camera_auto_detect=0")
        port = f",{camera.port}" if camera.port else ""
        lines.append(f"dtoverlay={camera.sensor}{port}")
    else:
        lines.append("camera_auto_detect=0")
    if not boot.bluetooth.enabled:
        lines.append("dtoverlay=disable-bt")
    if boot.bluetooth.disable_wifi:
        lines.append("dtoverlay=disable-wifi")
    if boot.watchdog.enabled:
        lines.append("dtparam=watchdog=on")
    display = boot.display
    if display.enabled and display.kms:
        lines.append("dtoverlay=vc4-kms-v3d")
    if display.enabled and display.disable_overscan:
        lines.append("disable_overscan=1")
    if boot.gpu_mem_mb is not None:
        lines.append(f"gpu_mem={boot.gpu_mem_mb}")
    for overlay in boot.overlays:
        lines.append(f"dtoverlay={','.join((overlay.name, *overlay.params))}")
    lines += [f"dtparam={param}" for param in boot.params]
    return lines


def cmdline_args(boot: PiBoot) -> list[str]:
    args = ["consoleblank=0"] if boot.display.enabled and boot.display.never_blank else []
    return args + list(boot.cmdline)


def watchdog_dropin(boot: PiBoot) -> str | None:
    """``/etc/systemd/system.conf.d/mallnet-watchdog.conf``: systemd feeds the hardware
    watchdog (None when the profile leaves it off)."""
    if not boot.watchdog.enabled:
        return None
    return (
        "# written by `mallnet pi boot-config`: systemd feeds the SoC watchdog\n"
        "[Manager]\n"
        f"RuntimeWatchdogSec={boot.watchdog.timeout_s}\n"
        f"RebootWatchdogSec={boot.watchdog.reboot_timeout_s}\n"
    )


def apply_config_txt(text: str, boot: PiBoot) -> str:
    """``config.txt`` with the profile's block added or replaced; the rest unchanged."""
    block = "\n".join([BEGIN, *config_txt_lines(boot), END]) + "\n"
    lines = text.splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip("\n") == BEGIN)
        end = next(i for i in range(start, len(lines)) if lines[i].rstrip("\n") == END)
    except StopIteration:
        body = "".join(lines)
        if body and not body.endswith("\n"):
            body += "\n"
        return body + ("\n" if body else "") + block
    return "".join(lines[:start]) + block + "".join(lines[end + 1 :])


def apply_cmdline(text: str, boot: PiBoot) -> str:
    """``cmdline.txt`` (one line) with the profile's arguments set; others kept in order."""
    ours = cmdline_args(boot)
    keys = {arg.split("=", 1)[0] for arg in ours}
    kept = [arg for arg in text.split() if arg.split("=", 1)[0] not in keys]
    return " ".join(kept + ours) + "\n"


def update(path: Path, new_text: str) -> bool:
    """Write ``new_text`` to ``path`` if it differs; True if the file changed."""
    old = path.read_text(encoding="utf-8") if path.exists() else None
    if old == new_text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new_text, encoding="utf-8")
    tmp.replace(path)
    return True
