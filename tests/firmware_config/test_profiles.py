"""Every file in firmware_config/ validates against the pydantic model the device loads it with,
and the JSON schemas it names (exported from those models) are current."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_node.ble.config import BeaconProfile, load_node_config
from edge_node.camera.config import load_gate_config
from edge_node.cli import schema_texts
from kiosk.cli import schema_text as kiosk_schema_text
from kiosk.config import load_kiosk_config
from mallnet.cli import main
from mallnet.config import load_config
from mallnet.errors import ConfigError
from mallnet.pi import PiBoot, apply_cmdline, apply_config_txt, cmdline_args, config_txt_lines

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware_config"
Loader = Callable[[Path], Any]
KINDS: dict[str, tuple[Loader, str]] = {
    "nodes": (load_node_config, "node.schema.json"),
    "gates": (load_gate_config, "gate.schema.json"),
    "kiosks": (load_kiosk_config, "kiosk.schema.json"),
    "tags": (lambda p: load_config(p, BeaconProfile), "beacon.schema.json"),
    "pi": (lambda p: load_config(p, PiBoot), "pi-boot.schema.json"),
}
OTHERS: dict[str, str] = {  # files outside the kind folders: their kind
    "node.example.yaml": "nodes",
    "beacon.example.yaml": "tags",
    "demo/store-a.yaml": "nodes",
    "demo/store-b.yaml": "nodes",
    "demo/mall-node.yaml": "nodes",
}


def _kind(path: Path) -> str:
    rel = path.relative_to(FIRMWARE).as_posix()
    folder = rel.split("/", 1)[0]
    return folder if folder in KINDS else OTHERS[rel]


ALL_YAML = sorted(FIRMWARE.rglob("*.yaml"))


def test_every_yaml_file_has_a_known_kind():
    unknown = [p for p in ALL_YAML if p.relative_to(FIRMWARE).parts[0] not in KINDS]
    assert {p.relative_to(FIRMWARE).as_posix() for p in unknown} == set(OTHERS)
    for kind in KINDS:
        assert list((FIRMWARE / kind).glob("*.yaml")), f"firmware_config/{kind}/ has no profile"


@pytest.mark.parametrize("path", ALL_YAML, ids=lambda p: p.relative_to(FIRMWARE).as_posix())
def test_each_file_validates_against_its_model(path: Path):
    loader, _schema = KINDS[_kind(path)]
    loader(path)  # raises ConfigError with file:line problems


def _current_schemas() -> dict[str, str]:
    return {**schema_texts(), "kiosk.schema.json": kiosk_schema_text()}


def test_the_exported_schemas_are_current_and_named_by_the_profiles():
    current = _current_schemas()
    for name, text in current.items():
        assert (FIRMWARE / "schema" / name).read_text() == text, f"{name}: run the schema command"
    assert main(["edge", "schema", "--check"]) == 0
    assert main(["kiosk", "schema", "--check"]) == 0
    for kind, (_loader, schema) in KINDS.items():
        assert schema in current
        for path in (FIRMWARE / kind).glob("*.yaml"):
            first = path.read_text().splitlines()[0]
            assert first == f"# yaml-language-server: $schema=../schema/{schema}", path


def test_production_profiles_use_certificates_and_the_units_state_directories():
    for path in (FIRMWARE / "nodes").glob("*.yaml"):
        node = load_node_config(path)
        assert node.mqtt.tls is not None and node.mqtt.tls.cert_file is not None, path
        assert node.mqtt.tls.cert_file.stem == node.node.id  # CN = node id
        assert node.mqtt.password_file is None and node.mqtt.password is None
        assert node.outbox.path.parent == Path("/var/lib/mallnet-edge")
    gate = load_gate_config(FIRMWARE / "gates" / "gate-north.yaml")
    assert gate.mqtt.tls is not None and gate.mqtt.tls.cert_file is not None
    assert gate.outbox.path.parent == Path("/var/lib/mallnet-gate")
    kiosk = load_kiosk_config(FIRMWARE / "kiosks" / "kiosk-atrium.yaml")
    assert kiosk.mqtt.tls is not None and kiosk.mqtt.tls.cert_file is not None
    assert kiosk.queue.path.parent == Path("/var/lib/mallnet-kiosk")
    assert kiosk.screen.fullscreen
    # every node listens for the program the tags advertise
    prefixes = {load_config(p, BeaconProfile).program_prefix for p in FIRMWARE.glob("tags/*.yaml")}
    nodes = {load_node_config(p).ibeacon.program_prefix for p in FIRMWARE.glob("nodes/*.yaml")}
    assert prefixes == nodes
    radii = {load_node_config(p).presence.radius_m for p in FIRMWARE.glob("nodes/*.yaml")}
    assert len(radii) > 1  # per-node radius and calibration, not one size for all


def _profile(name: str) -> PiBoot:
    return load_config(FIRMWARE / "pi" / f"{name}.yaml", PiBoot)


def test_pi_boot_profiles_render_what_each_device_needs():
    store, gate, kiosk = _profile("store-node"), _profile("gate"), _profile("kiosk")
    for boot in (store, gate, kiosk):
        assert "dtparam=watchdog=on" in config_txt_lines(boot)  # every Pi arms the SoC watchdog
    assert "dtoverlay=disable-bt" not in config_txt_lines(store)
    assert {"camera_auto_detect=0", "dtoverlay=imx708", "dtoverlay=disable-bt"} <= set(
        config_txt_lines(gate)
    )
    assert {"dtoverlay=vc4-kms-v3d", "camera_auto_detect=1", "dtoverlay=rpi-ft5406"} <= set(
        config_txt_lines(kiosk)
    )
    assert cmdline_args(kiosk) == ["consoleblank=0"]  # the kiosk's screen never blanks
    assert cmdline_args(store) == []


def test_applying_a_profile_is_idempotent_and_keeps_the_rest_of_the_files(tmp_path):
    kiosk = _profile("kiosk")
    stock = "# stock Raspberry Pi OS\ndtparam=audio=on\n[pi4]\narm_boost=1\n"
    once = apply_config_txt(stock, kiosk)
    assert once.startswith(stock) and "dtoverlay=vc4-kms-v3d" in once
    assert apply_config_txt(once, kiosk) == once
    assert apply_config_txt(once, _profile("gate")).count("# BEGIN mallnet") == 1
    cmdline = "console=serial0,115200 console=tty1 root=PARTUUID=1-02 rootwait consoleblank=600\n"
    applied = apply_cmdline(cmdline, kiosk)
    assert applied == (
        "console=serial0,115200 console=tty1 root=PARTUUID=1-02 rootwait consoleblank=0\n"
    )
    assert apply_cmdline(applied, kiosk) == applied
    # the command: changes the files once, then reports nothing to do
    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / "config.txt").write_text(stock)
    (boot / "cmdline.txt").write_text(cmdline)
    dropin = tmp_path / "system.conf.d" / "mallnet-watchdog.conf"
    args = ["pi", "boot-config", str(FIRMWARE / "pi" / "kiosk.yaml")]
    args += ["--config-txt", str(boot / "config.txt"), "--cmdline", str(boot / "cmdline.txt")]
    args += ["--watchdog-conf", str(dropin)]
    assert main(args) == 0
    assert "RuntimeWatchdogSec=15" in dropin.read_text()
    before = {p: p.read_text() for p in (boot / "config.txt", boot / "cmdline.txt", dropin)}
    assert main(args) == 0
    assert {p: p.read_text() for p in before} == before


def test_a_bad_profile_is_refused_with_its_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("role: store\nwatchdog:\n  timeout_s: 20\n")  # the SoC's limit is 15 s
    with pytest.raises(ConfigError) as caught:
        load_config(bad, PiBoot)
    assert any(re.search(r"bad\.yaml:3: watchdog\.timeout_s", p) for p in caught.value.problems)
    bad.write_text("role: store\nbluetooth: {enabled: false}\n")
    with pytest.raises(ConfigError, match="scans with Bluetooth"):
        load_config(bad, PiBoot)
    bad.write_text("role: kiosk\nsplash: true\n")
    with pytest.raises(ConfigError):
        load_config(bad, PiBoot)
