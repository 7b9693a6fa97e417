"""docs/wire.md is generated from the models and must be current."""

from __future__ import annotations

from pathlib import Path

from mallnet.wire.docs import render_wire_docs
from mallnet.wire.topics import ALL_TOPICS

WIRE_MD = Path(__file__).resolve().parents[2] / "docs" / "wire.md"


def test_wire_docs_are_current():
    assert WIRE_MD.read_text(encoding="utf-8") == render_wire_docs(), (
        "docs/wire.md is stale: run `uv run mallnet wire docs`"
    )


def test_every_topic_is_documented():
    text = WIRE_MD.read_text(encoding="utf-8")
    for spec in ALL_TOPICS:
        assert f"mall/v1/{{mall}}/{spec.scope.value}/{{id}}/{spec.leaf}" in text
