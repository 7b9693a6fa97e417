"""The README's first command: a whole mall, and the verdict it ends with."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx

from mallnet.demo.verdict import TruthStay, judge
from tests.conftest import wait_until

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
    """Broker, core, twelve store nodes, a gate and a kiosk as real processes: while it is
    open, the control panel it prints shows every node online to the office; within the
    bounded run, visits are credited, offers delivered, the car's entry bonus given, and the
    verdict finds nothing missing, doubled or credited for no visit."""
    log_file = tmp_path / "demo.log"
    workdir = tmp_path / "mall"
    with log_file.open("w") as out:
        demo = subprocess.Popen(
            [
                *(sys.executable, "-m", "mallnet.cli", "demo", "--workdir", str(workdir)),
                *("--duration", "150", "--quiet"),
            ],
            stderr=out,
        )
    try:
        opened = re.compile(
            r"control panel (http://127\.0\.0\.1:\d+)/panel — sign in with the key in (\S+)"
        )
        wait_until(
            lambda: opened.search(log_file.read_text()) is not None or demo.poll() is not None,
            timeout=240,
            what="the mall to open",
        )
        found = opened.search(log_file.read_text())
        assert found, log_file.read_text()[-3000:]
        base, admin_key = found.group(1), Path(found.group(2)).read_text().strip()
        with httpx.Client(base_url=base, headers={"Origin": base}) as panel:
            signed_in = panel.post("/panel/login", data={"key": admin_key})
            assert signed_in.status_code == 303

            def stores_online() -> bool:
                nodes = panel.get("/panel/data/nodes").json()
                online = {n["id"] for n in nodes if n["kind"] == "store" and n["state"] == "online"}
                return len(online) == 12

            wait_until(stores_online, timeout=60, what="the twelve store nodes online")
        code = demo.wait(timeout=400)
    finally:
        if demo.poll() is None:
            demo.kill()
    log = log_file.read_text()
    assert code == 0, log[-4000:]
    summary = re.search(
        r"summary: (\d+) visit credits, (\d+) browses that had to be credited, 0 missing, "
        r"0 doubled, 0 for no visit; (\d+) offers pushed, 1 parking bonus, 1 kiosk check-in",
        log,
    )
    assert summary, log[-4000:]
    visits, _must, offers = (int(g) for g in summary.groups())
    assert visits >= 1 and offers >= 1
    # Ann pays part of an order at Bean Bar's till with her parking bonus, capped at 15 %
    assert "cap 30 points (15 %), asking 31 → 409 urn:mallnet:problem:cap-exceeded" in log
    assert (
        "till: 30 points paid (of 200 cents), 17 points cashback; settlement: the mall owes "
        "bean-bar 30 cents"
    ) in log
    assert re.search(r"wallet Ann   .*mall=20", log)  # the 50-point entry bonus, 30 spent
    assert "+44" not in log  # phone numbers never reach the logs
    assert admin_key not in log  # nor keys: the demo names the files that hold them
    # every process the demo started has stopped (each names a file in the workdir)
    pgrep = ["pgrep", "-f", str(workdir)]
    left = subprocess.run(pgrep, capture_output=True, text=True, check=False)
    assert left.stdout == "", left.stdout
