"""Promo-code pool claims per second under N concurrent clients, through the real core API
(``mallnet core run --only api``, its own process, SQLite in WAL), beside a bare insert
baseline measured in the same run: N threads, each with its own SQLite connection to a
database file with the core's settings (WAL, ``synchronous=NORMAL``), each doing one
``BEGIN IMMEDIATE; INSERT; COMMIT`` per operation — the floor of one write transaction per
claim, with no HTTP, no parsing and no checks.

The pool gets ``--codes`` codes through the API's own CSV upload (its time is reported too);
one shopper per code is registered straight in the database before the clock starts. Each
client is one kiosk with its own keep-alive HTTP connection, claiming one code for each of
its shoppers in turn; after the run every code given is checked against the database: the
number of duplicates (a code given to two shoppers, or two codes to one) must be zero. A
last round of claims past the end checks that each answers "exhausted". Wall time is
``time.perf_counter``; the last line is one JSON object with every figure.

    uv run python bench/pool_claims.py [--clients 8] [--codes 5000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cloud_core import customers as customer_store  # noqa: E402
from cloud_core.store import open_store  # noqa: E402
from mallnet.broker import free_port  # noqa: E402

TARGET_PER_S = 500
POOL = "bench-pool"


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)  # polling until the server answers
    raise SystemExit(f"{url} did not answer within {timeout}s")


def core_setup(workdir: Path, codes: int) -> tuple[Path, int, str, str, list[str]]:
    """A core config with an admin and a kiosk key; a shopper per code. Returns the config,
    its port, the two keys and the shoppers."""
    port = free_port()
    admin, kiosk = (f"k-bench-{role}-{secrets.token_hex(8)}" for role in ("admin", "kiosk"))
    entries = [
        {"name": "office", "role": "admin", "key": admin},
        {"name": "kiosk", "role": "kiosk", "key": kiosk},
    ]
    (workdir / "keys.yaml").write_text(yaml.safe_dump({"keys": entries}))
    config = {
        "mall": "bench",
        "database": str(workdir / "core.sqlite"),
        "mqtt": {"port": free_port()},  # no broker: the API alone (readiness is not asked)
        "api": {"port": port, "keys_file": str(workdir / "keys.yaml")},
        "stores": [{"id": "bean-bar", "name": "Bean Bar", "business": "bean-bar", "nodes": ["n1"]}],
    }
    path = workdir / "core.yaml"
    path.write_text(yaml.safe_dump(config))
    store = open_store(workdir / "core.sqlite")
    shoppers = []
    try:
        with store.transaction() as conn:
            for n in range(codes):
                customer, _ = customer_store.register_customer(
                    conn, f"+44 7911 {100000 + n}", default_region="GB"
                )
                shoppers.append(customer)
    finally:
        store.close()
    return path, port, admin, kiosk, shoppers


def bare_inserts(workdir: Path, clients: int, total: int) -> dict[str, Any]:
    """``total`` one-row write transactions from ``clients`` threads, one connection each."""
    path = workdir / "bare.sqlite"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, code TEXT NOT NULL, who TEXT)")
    setup.close()
    per_client = total // clients
    ready = threading.Barrier(clients + 1)

    def client(n: int) -> None:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        ready.wait()
        for i in range(per_client):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (code, who) VALUES (?, ?)", (f"C-{n}-{i}", f"c{n}"))
            conn.execute("COMMIT")
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    ready.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"inserts": per_client * clients, "per_s": round(per_client * clients / elapsed, 1)}


def upload(base: str, admin: str, codes: int) -> float:
    """Create the pool and upload its codes through the API; the seconds the upload took."""
    headers = {"X-API-Key": admin}
    now = datetime.now(UTC)
    with httpx.Client(base_url=base, timeout=60) as client:
        r = client.post(
            "/promo-codes/pools",
            json={
                "id": POOL,
                "business": "bean-bar",
                "title": "Bench",
                "valid_from": (now - timedelta(days=1)).isoformat(),
                "valid_until": (now + timedelta(days=1)).isoformat(),
                "low_stock": 10,
            },
            headers=headers,
        )
        assert r.status_code == 201, r.text
        text = "code\n" + "".join(f"B-{i:07d}-{secrets.token_hex(3)}\n" for i in range(codes))
        started = time.perf_counter()
        r = client.post(
            f"/promo-codes/pools/{POOL}/uploads",
            content=text.encode(),
            headers=headers | {"content-type": "text/csv"},
        )
        assert r.status_code == 202, r.text
        location = r.headers["location"]
        while True:
            report = client.get(location, headers=headers).json()
            if report["state"] != "running":
                break
            time.sleep(0.05)  # polling the upload's progress
        elapsed = time.perf_counter() - started
        assert report["state"] == "done" and report["added"] == codes, report
    return elapsed


def claims(
    base: str, kiosk: str, shoppers: list[str], clients: int, seconds: float
) -> dict[str, Any]:
    given: list[tuple[str, str]] = []
    refused: list[int] = []
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)
    stop = [0.0]

    def client(mine: list[str]) -> None:
        got = []
        with httpx.Client(base_url=base, timeout=30) as http:
            http.get("/health")  # open the keep-alive connection before the clock
            ready.wait()
            for customer in mine:
                if time.perf_counter() > stop[0]:
                    break
                r = http.post(
                    f"/promo-codes/pools/{POOL}/claims",
                    json={"customer": customer},
                    headers={"X-API-Key": kiosk},
                )
                if r.status_code == 201:
                    got.append((customer, r.json()["code"]))
                else:
                    with lock:
                        refused.append(r.status_code)
        with lock:
            given.extend(got)

    threads = [
        threading.Thread(target=client, args=(shoppers[n::clients],)) for n in range(clients)
    ]
    for t in threads:
        t.start()
    stop[0] = time.perf_counter() + seconds
    ready.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {
        "claims": len(given),
        "per_s": round(len(given) / elapsed, 1),
        "refused": len(refused),
        "given": given,
    }


def check(database: Path, given: list[tuple[str, str]]) -> dict[str, int]:
    """Duplicates in the answers and in the database (must be zero)."""
    codes = [code for _, code in given]
    conn = sqlite3.connect(database)
    try:
        (db_dups,) = conn.execute(
            "SELECT COUNT(*) FROM (SELECT customer_id FROM promo_codes WHERE pool_id = ?"
            " AND customer_id IS NOT NULL GROUP BY customer_id HAVING COUNT(*) > 1)",
            (POOL,),
        ).fetchone()
        (claimed,) = conn.execute(
            "SELECT COUNT(*) FROM promo_codes WHERE pool_id = ? AND customer_id IS NOT NULL",
            (POOL,),
        ).fetchone()
        holders = dict(
            conn.execute(
                "SELECT code, customer_id FROM promo_codes WHERE pool_id = ?", (POOL,)
            ).fetchall()
        )
    finally:
        conn.close()
    wrong = sum(1 for customer, code in given if holders.get(code) != customer)
    return {
        "duplicate_codes_answered": len(codes) - len(set(codes)),
        "shoppers_with_two_codes": int(db_dups),
        "answers_not_matching_db": wrong,
        "claimed_in_db": int(claimed),
    }


def exhausted(base: str, kiosk: str, shoppers: list[str], codes: int) -> int:
    """Claim for shoppers who got nothing until the pool is empty; then the answers of a few
    more (each must be the 409 'exhausted' problem). Returns those that were."""
    seen = 0
    with httpx.Client(base_url=base, timeout=30) as http:
        for customer in shoppers:
            r = http.post(
                f"/promo-codes/pools/{POOL}/claims",
                json={"customer": customer},
                headers={"X-API-Key": kiosk},
            )
            if r.status_code == 409:
                seen += r.json()["type"] == "urn:mallnet:problem:promo-codes-exhausted"
                if seen >= 5:
                    break
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent kiosks (threads)")
    parser.add_argument("--codes", type=int, default=5000, help="codes in the pool")
    parser.add_argument("--seconds", type=float, default=20.0, help="most time for the claims")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-pool-") as tmp:
        workdir = Path(tmp)
        # 5 extra shoppers find the pool exhausted
        config, port, admin, kiosk, shoppers = core_setup(workdir, args.codes + 5)
        bare = bare_inserts(workdir, args.clients, args.codes)
        core = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mallnet.cli",
                "core",
                "run",
                "--only",
                "api",
                "--config",
                str(config),
            ],
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "core.log").open("w"),
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_up(f"{base}/health", core)
            upload_s = upload(base, admin, args.codes)
            run = claims(base, kiosk, shoppers[: args.codes], args.clients, args.seconds)
            given = run.pop("given")
            got = {customer for customer, _ in given}
            rest = [s for s in shoppers if s not in got]
            exhausted_ok = exhausted(base, kiosk, rest, args.codes)
        finally:
            core.terminate()
            core.wait(10)
        checks = check(workdir / "core.sqlite", given)
        result = {
            "bench": "pool_claims",
            "clients": args.clients,
            "codes": args.codes,
            "upload_s": round(upload_s, 3),
            "upload_codes_per_s": round(args.codes / upload_s, 1),
            "bare_insert": bare,
            "core": run,
            "core_vs_bare": round(run["per_s"] / bare["per_s"], 3),
            "duplicates": checks["duplicate_codes_answered"]
            + checks["shoppers_with_two_codes"]
            + checks["answers_not_matching_db"],
            "checks": checks,
            "exhausted_answers": exhausted_ok,
            "target_per_s": TARGET_PER_S,
            "machine": f"{platform.machine()} {platform.python_version()}",
        }
    print(
        f"bare insert:  {bare['per_s']} one-row write transactions/s "
        f"({args.clients} threads, own connections)"
    )
    print(
        f"core API:     {run['per_s']} claims/s ({args.clients} clients; target ≥ "
        f"{TARGET_PER_S}/s), duplicates {result['duplicates']}, "
        f"upload {args.codes} codes in {upload_s:.2f} s"
    )
    print(json.dumps(result))
    return 0 if result["duplicates"] == 0 and exhausted_ok == 5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
