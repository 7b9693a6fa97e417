"""`mallnet broker status`: a rolling update reads a node's retained status as a monitor."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import yaml

from mallnet.cli import main
from mallnet.wire.payloads import DeviceStatus
from mallnet.wire.topics import STATUS
from tests.conftest import MALL, settings_for


def _settings_file(broker, tmp_path, user: str):
    settings = settings_for(broker, user)
    secret = tmp_path / f"{user}.secret"
    secret.write_text(settings.resolve_password() or "", encoding="utf-8")
    path = tmp_path / f"{user}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "host": "127.0.0.1",
                "port": broker.port,
                "username": user,
                "password_file": secret.name,
            }
        ),
        encoding="utf-8",
    )
    return path


def test_status_prints_the_retained_status_and_fails_without_one(broker, connect, tmp_path, capsys):
    node = connect("store-status-1")
    status = DeviceStatus(
        state="online", device="store-status-1", since=datetime.now(UTC), software="9.9.9"
    )
    node.publish(
        STATUS.topic(MALL, "store-status-1"), status.model_dump_json().encode(), qos=1, retain=True
    ).wait(10)
    settings = _settings_file(broker, tmp_path, "monitor-deploy")

    assert (
        main(["broker", "status", "store-status-1", "--settings", str(settings), "--mall", MALL])
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed["state"] == "online" and printed["software"] == "9.9.9"

    assert (
        main(
            [
                "broker",
                "status",
                "store-never-seen",
                "--settings",
                str(settings),
                "--mall",
                MALL,
                "--timeout",
                "5",
            ]
        )
        == 1
    )
    assert capsys.readouterr().out == ""


def test_status_names_the_problem_when_the_monitor_is_refused(broker, tmp_path, caplog):
    settings = _settings_file(broker, tmp_path, "monitor-deploy")
    data = yaml.safe_load(settings.read_text(encoding="utf-8"))
    (tmp_path / data["password_file"]).write_text("wrong", encoding="utf-8")
    code = main(
        [
            "broker",
            "status",
            "store-x",
            "--settings",
            str(settings),
            "--mall",
            MALL,
            "--timeout",
            "3",
        ]
    )
    assert code == 2
    assert "cannot read mall/v1/" in caplog.text
