"""Lotteries with an auditable seed (rules/lottery.py): the procedure is deterministic in the
seed and the entries; through the API on uvicorn, a draw publishes what anyone needs to
recompute the winners, credits each prize once, and `mallnet core lottery-verify` checks it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from cloud_core.app import CoreApp
from cloud_core.rules import lottery
from tests.cloud_core.api_helpers import h
from tests.cloud_core.helpers import START, serve_api, wallet
from tests.cloud_core.test_store_qr import API_KEYS, SECRET, scan

BOTH_BACKENDS = True  # tests using the ``database`` fixture run on SQLite and PostgreSQL
ENTRIES = sorted(lottery.entry_of("winter", f"c{n:024x}") for n in range(50))
SEED = "a" * 64


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


# --- the procedure ---------------------------------------------------------------------------


def test_winners_follow_from_the_seed_and_the_entries_alone():
    first = lottery.winners(SEED, ENTRIES, 3)
    assert len(set(first)) == 3 and set(first) <= set(ENTRIES)
    assert lottery.winners(SEED, list(reversed(ENTRIES)), 3) == first  # order given: no matter
    scores = sorted(hashlib.sha256(f"{SEED}:{e}".encode()).hexdigest() for e in ENTRIES)
    assert [hashlib.sha256(f"{SEED}:{e}".encode()).hexdigest() for e in first] == scores[:3]
    assert lottery.winners("b" * 64, ENTRIES, 3) != first  # another seed, another result
    assert lottery.winners(SEED, ENTRIES[:2], 3) == lottery.ranking(SEED, ENTRIES[:2])
    assert lottery.entry_of("winter", "c1") == hashlib.sha256(b"winter:c1").hexdigest()


def published(seed: str = SEED, winners: list[str] | None = None) -> dict[str, object]:
    picked = lottery.winners(seed, ENTRIES, 2) if winners is None else winners
    return {
        "id": "winter",
        "procedure": lottery.PROCEDURE,
        "seed_sha256": hashlib.sha256(seed.encode()).hexdigest(),
        "seed": seed,
        "entries": ENTRIES,
        "prizes": [{"rank": 1}, {"rank": 2}],
        "winners": [{"rank": i, "entry": e} for i, e in enumerate(picked, start=1)],
    }


def test_verify_finds_a_swapped_seed_swapped_winners_and_unsorted_entries():
    assert lottery.verify(published()) == []
    other_seed = {**published(), "seed": "b" * 64}
    assert any("SHA-256" in p for p in lottery.verify(other_seed))
    rigged = published(winners=[ENTRIES[0], ENTRIES[1]])
    assert lottery.winners(SEED, ENTRIES, 2) != [ENTRIES[0], ENTRIES[1]]
    assert any("winners" in p for p in lottery.verify(rigged))
    shuffled = {**published(), "entries": list(reversed(ENTRIES))}
    assert any("sorted" in p for p in lottery.verify(shuffled))
    assert lottery.verify({**published(), "seed": None}) != []


# --- through the API -------------------------------------------------------------------------


@pytest.fixture
def api(tmp_path, database) -> Iterator[tuple[httpx.Client, CoreApp]]:
    with serve_api(tmp_path, API_KEYS, database=database, store_qr={"secret": SECRET}) as served:
        yield served


def test_a_draw_is_announced_with_the_seeds_hash_drawn_once_and_recomputable(api, tmp_path):
    client, app = api
    shoppers = []
    for n in range(1, 6):  # five shoppers visit a store by its door QR code
        r = client.post("/customers", json={"phone": f"+4479111230{n:02d}"}, headers=h("kiosk"))
        shoppers.append(str(r.json()["id"]))
    outsider = client.post("/customers", json={"phone": "+447911123099"}, headers=h("kiosk"))
    body = {
        "id": "winter",
        "title": "Winter draw",
        "stores": ["shoe-hub"],
        "opens_at": iso(START - 3600),
        "closes_at": iso(START + 3600),
        "prizes": [
            {"title": "500 points", "points": 500},
            {"title": "cinema tickets", "points": 0},
        ],
    }
    r = client.post("/lotteries", json=body, headers=h("admin"))
    assert r.status_code == 201, r.text
    announced = r.json()
    assert announced["status"] == "announced" and announced["seed"] is None
    assert announced["entries"] is None and re_hex(announced["seed_sha256"])
    assert client.post("/lotteries", json=body, headers=h("admin")).status_code == 409
    assert client.post("/lotteries", json=body, headers=h("kiosk")).status_code == 403

    code = client.get("/stores/shoe-hub/qr", headers=h("admin")).json()["code"]
    for customer in shoppers:
        assert scan(client, customer, code).json()["outcome"] == "credited"
    book = client.get("/stores/book-nook/qr", headers=h("admin")).json()["code"]
    assert scan(client, outsider.json()["id"], book).status_code == 200  # another store

    early = client.post("/lotteries/winter/draw", headers=h("admin"))
    assert early.status_code == 409 and "takes entries until" in early.json()["detail"]
    app.clock.advance(3600)
    r = client.post("/lotteries/winter/draw", headers=h("admin"))
    assert r.status_code == 200, r.text
    drawn = r.json()
    assert drawn["status"] == "drawn"
    assert hashlib.sha256(drawn["seed"].encode()).hexdigest() == announced["seed_sha256"]
    assert drawn["entries"] == sorted(lottery.entry_of("winter", c) for c in shoppers)
    expected = lottery.winners(drawn["seed"], drawn["entries"], 2)
    assert [w["entry"] for w in drawn["winners"]] == expected
    first = next(c for c in shoppers if lottery.entry_of("winter", c) == expected[0])
    assert wallet(app.config, first) == {"shoe-hub": 10, "mall": 500}

    again = client.post("/lotteries/winter/draw", headers=h("admin"))
    assert again.status_code == 409  # drawn once: the prize is credited once
    assert wallet(app.config, first) == {"shoe-hub": 10, "mall": 500}
    assert client.get("/lotteries/winter", headers=h("kiosk")).json() == drawn

    # anyone recomputes it from what was published
    doc = tmp_path / "winter.json"
    doc.write_text(json.dumps(drawn))
    ok = verify_cli(doc, "--customer", first)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "verified" in ok.stdout and "won prize 1" in ok.stdout
    doc.write_text(json.dumps({**drawn, "seed": "0" * 64}))
    bad = verify_cli(doc)
    assert bad.returncode == 1 and "NOT verified" in bad.stdout


def test_a_lottery_refuses_unknown_stores_pockets_and_an_empty_period(api):
    client, _app = api
    body = {
        "id": "spring",
        "title": "Spring",
        "opens_at": iso(START),
        "closes_at": iso(START + 60),
        "prizes": [{"title": "x", "points": 1}],
    }
    assert (
        client.post("/lotteries", json={**body, "stores": ["nope"]}, headers=h("admin")).status_code
        == 422
    )
    bad_pocket = {**body, "prizes": [{"title": "x", "points": 1, "pocket": "nobody"}]}
    assert client.post("/lotteries", json=bad_pocket, headers=h("admin")).status_code == 422
    backwards = {**body, "closes_at": iso(START - 60)}
    assert client.post("/lotteries", json=backwards, headers=h("admin")).status_code == 422
    assert (
        client.post("/lotteries", json={**body, "campaign": "none"}, headers=h("admin")).status_code
        == 404
    )
    assert client.get("/lotteries/none", headers=h("admin")).status_code == 404


def re_hex(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def verify_cli(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mallnet.cli", "core", "lottery-verify", str(path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
