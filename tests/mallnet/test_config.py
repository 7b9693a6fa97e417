"""Config loading names the file and line of every fault."""

from __future__ import annotations

import pytest
from pydantic import Field

from mallnet.config import ConfigModel, MqttSettings, load_config
from mallnet.errors import ConfigError


class Inner(ConfigModel):
    radius_m: float = Field(gt=0)


class Sample(ConfigModel):
    name: str
    inner: Inner
    mqtt: MqttSettings = MqttSettings()


def test_valid_file_loads(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("name: a\ninner:\n  radius_m: 3\nmqtt:\n  port: 8883\n")
    config = load_config(path, Sample)
    assert config.inner.radius_m == 3 and config.mqtt.port == 8883


def test_errors_point_at_the_bad_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: a\ninner:\n  radius_m: -1\n  colour: red\nmqtt:\n  port: 0\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, Sample)
    problems = info.value.problems
    assert f"{path}:3: inner.radius_m: Input should be greater than 0" in problems
    assert any(p.startswith(f"{path}:4: inner.colour: Extra inputs") for p in problems)
    assert any(p.startswith(f"{path}:6: mqtt.port") for p in problems)


def test_invalid_yaml_and_missing_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path, Sample)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml", Sample)


def test_password_file_is_read_and_never_shown(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    settings = MqttSettings(username="n", password_file=secret)
    assert settings.resolve_password() == "s3cret"
    assert "s3cret" not in repr(MqttSettings(password="s3cret"))
