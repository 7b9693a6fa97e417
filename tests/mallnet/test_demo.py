"""The README's first command: a whole mall, and the verdict it ends with."""

from __future__ import annotations

import re
import subprocess
import sys

from mallnet.demo.verdict import TruthStay, judge

BUSINESS = {"bean-bar-l1": "bean-bar", "book-nook-l1": "book-nook"}


def _judge(stays, credits, stopped_at=1000.0):
    return judge(
        stays,
        credits,
        business_of=BUSINESS,
        stopped_at=stopped_at,
        min_dwell_s=45,
        settle_s=45,
    )


def test_a_finished_browse_must_be_credited_once() -> None:
    browse = TruthStay("Ann", "bean-bar-l1", 100, 200)
    assert _judge([browse], [("Ann", "bean-bar")]).ok
    missing = _judge([browse], [])
    assert missing.missing == [("Ann", "bean-bar")] and not missing.ok
    doubled = _judge([browse], [("Ann", "bean-bar")] * 2)
    assert doubled.doubled == [("Ann", "bean-bar")] and not doubled.ok


def test_a_glance_must_credit_nothing_and_a_cut_stay_may_go_either_way() -> None:
    glance = TruthStay("Ben", "book-nook-l1", 100, 108)
    assert _judge([glance], []).ok
    assert _judge([glance], [("Ben", "book-nook")]).unexpected == [("Ben", "book-nook")]
    cut = TruthStay("Cat", "bean-bar-l1", 900, 990)  # ended 10 s before the stop
    assert _judge([cut], []).ok and _judge([cut], [("Cat", "bean-bar")]).ok
    assert _judge([], [("Dan", "bean-bar")]).unexpected == [("Dan", "bean-bar")]


def test_the_demo_opens_a_whole_mall_and_closes_it_cleanly(tmp_path) -> None:
    """Broker, core, twelve store nodes, a gate and a kiosk as real processes: within the
    bounded run, visits are credited, offers delivered, the car's entry bonus given, and the
    verdict finds nothing missing, doubled or credited for no visit."""
    result = subprocess.run(
        [
            *(sys.executable, "-m", "mallnet.cli", "demo", "--workdir", str(tmp_path)),
            *("--duration", "150", "--quiet"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=400,
    )
    log = result.stderr
    assert result.returncode == 0, log[-4000:]
    summary = re.search(
        r"summary: (\d+) visit credits, (\d+) browses that had to be credited, 0 missing, "
        r"0 doubled, 0 for no visit; (\d+) offers pushed, 1 parking bonus, 1 kiosk check-in",
        log,
    )
    assert summary, log[-4000:]
    visits, _must, offers = (int(g) for g in summary.groups())
    assert visits >= 1 and offers >= 1
    assert "wallet Ann   mall=50" in log  # the entry bonus at the gate
    assert "the mall is open: API http://127.0.0.1:" in log
    assert "+44" not in log  # phone numbers never reach the logs
    # every process the demo started has stopped (each names a file in the workdir)
    pgrep = ["pgrep", "-f", str(tmp_path)]
    left = subprocess.run(pgrep, capture_output=True, text=True, check=False)
    assert left.stdout == "", left.stdout
