"""Config loading, `--validate-config`, the examples, the schemas and the CLI actions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edge_node.ble.app import build_source
from edge_node.ble.bleak_source import BleakSource
from edge_node.ble.config import (
    BeaconProfile,
    BleakSourceSettings,
    ReplaySourceSettings,
    load_node_config,
)
from edge_node.ble.replay import ReplaySource
from edge_node.cli import schema_texts
from mallnet.cli import main
from mallnet.config import load_config
from mallnet.errors import ConfigError
from tests.edge_node.helpers import PREFIX_HEX

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware_config"


def test_examples_are_valid() -> None:
    node = load_node_config(FIRMWARE / "node.example.yaml")
    assert isinstance(node.source, BleakSourceSettings)
    source = build_source(node)
    assert isinstance(source, BleakSource) and source.retry_first_start  # adapter may be late
    assert node.ibeacon.prefix_bytes == bytes.fromhex(PREFIX_HEX)
    for demo in sorted((FIRMWARE / "demo").glob("store-*.yaml")):
        config = load_node_config(demo)
        assert isinstance(config.source, ReplaySourceSettings)
        assert config.source.path.parent == demo.parent  # relative to the config file
        assert config.outbox.path.is_absolute()
    load_config(FIRMWARE / "beacon.example.yaml", BeaconProfile)


def test_committed_schemas_are_current() -> None:
    for name, text in schema_texts().items():
        assert (FIRMWARE / "schema" / name).read_text(encoding="utf-8") == text, name
    assert main(["edge", "schema", "--check"]) == 0


def test_validate_config_names_the_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (FIRMWARE / "node.example.yaml").read_text(encoding="utf-8")
    text = text.replace("radius_m: 4.0", "radius_m: -1").replace(
        "program_prefix: f7a3e1c2", "program_prefix: nothex"
    )
    text = text.replace("  batch_size: 100", "  batch_size: 100\n  colour: blue")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    lines = text.splitlines()
    assert main(["edge", "run", "--config", str(bad), "--validate-config"]) == 2
    err = capsys.readouterr().err
    for needle, field in (
        ("radius_m: -1", "presence.radius_m"),
        ("program_prefix: nothex", "ibeacon.program_prefix"),
        ("colour: blue", "outbox.colour"),
    ):
        line = next(i for i, ln in enumerate(lines, 1) if needle in ln)
        assert f"{bad}:{line}: {field}" in err
    assert (
        main(["edge", "run", "--config", str(FIRMWARE / "node.example.yaml"), "--validate-config"])
        == 0
    )


def test_unreadable_and_non_yaml_configs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_node_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("node: [unclosed\n", encoding="utf-8")
    assert main(["edge", "run", "--config", str(broken), "--validate-config"]) == 2


def test_simulate_writes_a_replayable_trace_with_rotating_ids(tmp_path: Path) -> None:
    import asyncio

    from edge_node.ble.ibeacon import IBeaconParser
    from mallnet import identity

    keys = [identity.new_beacon_key() for _ in range(2)]
    out = tmp_path / "sim.jsonl"
    start = 1_763_870_220.0  # 3 min before a window boundary: ids must rotate mid-walk
    code = main(
        [
            "edge",
            "simulate",
            "--out",
            str(out),
            "--prefix",
            PREFIX_HEX,
            "--key",
            keys[0],
            "--key",
            keys[1],
            "--passers",
            "2",
            "--start",
            str(start),
            "--seed",
            "3",
        ]
    )
    assert code == 0
    source = ReplaySource(out, speed=0)

    async def read() -> list[str]:
        parser = IBeaconParser(bytes.fromhex(PREFIX_HEX))
        tags = []
        async for advert in source.adverts():
            sighting = parser.sighting(advert.mfr)
            assert sighting is not None
            tags.append(sighting.tag)
        return tags

    tags = set(asyncio.run(read()))
    key0 = identity.parse_key(keys[0])
    window = identity.window_of(start)
    assert {identity.tag_id(key0, window), identity.tag_id(key0, window + 1)} <= tags
    assert len(tags) >= 6  # 2 shoppers × 2 windows + passers


def test_the_cli_runs_as_a_module_and_record_needs_an_adapter(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mallnet.cli",
            "edge",
            "run",
            "--config",
            str(FIRMWARE / "node.example.yaml"),
            "--validate-config",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # Without BlueZ (no system bus here), `record` says so and exits 2: no traceback.
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={tmp_path / 'no-bus'}")
    out = tmp_path / "capture.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "mallnet.cli", "edge", "record", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2, result.stderr
    assert "cannot reach BlueZ for hci0" in result.stderr
    assert "Traceback" not in result.stderr


def test_simulate_reports_an_unreadable_keys_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    args = ["edge", "simulate", "--out", str(tmp_path / "t.jsonl"), "--prefix", PREFIX_HEX]
    assert main([*args, "--keys-file", str(tmp_path / "missing.keys")]) == 2
    assert "cannot read --keys-file" in caplog.text
    assert not (tmp_path / "t.jsonl").exists()


def test_validate_config_warns_about_a_missing_password_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "store-a.yaml"
    config.write_text((FIRMWARE / "demo" / "store-a.yaml").read_text(encoding="utf-8"))
    assert main(["edge", "run", "--config", str(config), "--validate-config"]) == 0
    assert "warning: mqtt.password_file" in capsys.readouterr().err
    (tmp_path / "store-a.password").write_text("secret\n")
    assert main(["edge", "run", "--config", str(config), "--validate-config"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_tls_files_resolve_against_the_config_folder(tmp_path: Path) -> None:
    """`relative paths resolve against the config file's folder` holds for TLS files too."""
    data = yaml.safe_load((FIRMWARE / "node.example.yaml").read_text(encoding="utf-8"))
    data["mqtt"]["tls"] = {"ca_file": "certs/ca.crt", "cert_file": "node.crt", "key_file": "/k/n"}
    data["mqtt"]["password_file"] = "node.password"
    data["outbox"]["path"] = "outbox.sqlite"
    path = tmp_path / "etc" / "node.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    config = load_node_config(path)
    tls = config.mqtt.tls
    assert tls is not None
    assert tls.ca_file == path.parent / "certs" / "ca.crt"
    assert tls.cert_file == path.parent / "node.crt" and tls.key_file == Path("/k/n")
    assert config.mqtt.password_file == path.parent / "node.password"
