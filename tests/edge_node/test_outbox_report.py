"""`mallnet edge outbox`: what a rolling update waits on (pending 0), read without touching."""

from __future__ import annotations

import json

from edge_node.outbox import Outbox
from mallnet.cli import main


def _config(tmp_path, outbox_path: str):
    config = tmp_path / "node.yaml"
    config.write_text(f"outbox:\n  path: {outbox_path}\n", encoding="utf-8")
    return config


def test_outbox_reports_pending_events_and_the_last_seq(tmp_path, capsys):
    outbox = Outbox(tmp_path / "state" / "outbox.sqlite")
    stored = [
        outbox.append("presence", lambda i, s: json.dumps({"id": i, "seq": s}), now=100.0)
        for _ in range(3)
    ]
    outbox.receipt([stored[0].id])
    config = _config(tmp_path, "state/outbox.sqlite")  # relative to the config file

    assert main(["edge", "outbox", "--config", str(config)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["pending"] == 2 and report["last_seq"] == 3 and report["dropped"] == 0
    assert report["oldest_age_s"] > 0

    outbox.receipt([s.id for s in stored[1:]])
    assert main(["edge", "outbox", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out)["pending"] == 0
    outbox.close()


def test_a_missing_outbox_is_an_error_and_is_not_created(tmp_path, capsys):
    config = _config(tmp_path, "nowhere/outbox.sqlite")
    assert main(["edge", "outbox", "--config", str(config)]) == 2
    assert not (tmp_path / "nowhere").exists()
    assert capsys.readouterr().out == ""
