"""The seller's terminal: quote + reserve + commit round trips per second and the p99 of one
such redemption, through the real core API (``mallnet core run --only api``, its own process,
SQLite in WAL), beside a bare FastAPI endpoint (the same three POSTs to a handler that only
echoes JSON, its own uvicorn process) measured in the same run.

Each client thread is one till with its own keep-alive HTTP connection and its own shopper
(registered and given points straight in the database before the clock starts); a redemption
is a quote of a 40 € order, a hold of 60 coalition points (within the 15 % cap) and its
commit, every write with its own Idempotency-Key. Wall time is ``time.perf_counter``; the last
line is one JSON object with every figure.

    uv run python bench/terminal.py [--seconds 5] [--tills 4]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cloud_core import customers as customer_store  # noqa: E402
from cloud_core import ledger  # noqa: E402
from cloud_core.store import open_store  # noqa: E402
from mallnet.broker import free_port  # noqa: E402

TARGET_PER_S = 1000
TARGET_P99_MS = 50.0

BARE_APP = textwrap.dedent(
    """
    import sys
    import uvicorn
    from fastapi import FastAPI, Request

    app = FastAPI()

    @app.post("/{path:path}")
    async def echo(path: str, request: Request) -> dict:
        body = await request.body()
        return {"path": path, "bytes": len(body), "customer": "c" + "0" * 24, "points": 60}

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                access_log=False)
    """
)


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


def core_setup(workdir: Path, tills: int) -> tuple[Path, int, list[tuple[str, str]]]:
    """A core config with one pizzeria and a terminal key per till; a shopper per till with
    plenty of coalition points. Returns the config, its port and (key, customer) per till."""
    port = free_port()
    keys = [f"k-bench-till-{n}-{secrets.token_hex(8)}" for n in range(tills)]
    entries = [
        {
            "name": f"till-{n}",
            "role": "terminal",
            "business": "pizzeria",
            "store": "pizzeria-l2",
            "till": f"till-{n}",
            "seller": f"seller-{n}",
            "key": key,
        }
        for n, key in enumerate(keys)
    ]
    (workdir / "keys.yaml").write_text(yaml.safe_dump({"keys": entries}))
    config = {
        "mall": "bench",
        "database": str(workdir / "core.sqlite"),
        "mqtt": {"port": free_port()},  # no broker: the API alone (readiness is not asked)
        "api": {"port": port, "keys_file": str(workdir / "keys.yaml")},
        "stores": [
            {"id": "pizzeria-l2", "name": "Pizzeria", "business": "pizzeria", "nodes": ["n1"]}
        ],
        "spending": {"partners": {"pizzeria": {"coalition_cap_pct": 15}}},
    }
    path = workdir / "core.yaml"
    path.write_text(yaml.safe_dump(config))
    store = open_store(workdir / "core.sqlite")
    shoppers = []
    now = datetime.now(UTC)
    try:
        with store.transaction() as conn:
            for n in range(tills):
                customer, _ = customer_store.register_customer(
                    conn, f"+44 7911 {200000 + n}", default_region="GB"
                )
                ledger.grant(
                    conn,
                    customer=customer,
                    pocket="mall",
                    points=100_000_000,
                    reason="adjustment",
                    idem_key=f"bench-{n}",
                    now=now,
                )
                shoppers.append(customer)
    finally:
        store.close()
    return path, port, list(zip(keys, shoppers, strict=True))


Redeem = Callable[[httpx.Client, str, str, int], None]


def core_redemption(client: httpx.Client, key: str, customer: str, n: int) -> None:
    receipt = f"R-{key[-6:]}-{n}"
    order = {"customer": customer, "receipt": receipt, "order_cents": 4000}
    headers = {"X-API-Key": key}
    r = client.post("/terminal/quote", json=order, headers=headers)
    assert r.status_code == 200, r.text
    r = client.post(
        "/terminal/holds",
        json=order | {"coalition_points": 60},
        headers=headers | {"Idempotency-Key": f"{receipt}-hold"},
    )
    assert r.status_code == 201, r.text
    r = client.post(
        f"/terminal/holds/{r.json()['id']}/commit",
        headers=headers | {"Idempotency-Key": f"{receipt}-commit"},
    )
    assert r.status_code == 200, r.text


def bare_redemption(client: httpx.Client, key: str, customer: str, n: int) -> None:
    order = {"customer": customer, "receipt": f"R-{n}", "order_cents": 4000}
    for path in ("terminal/quote", "terminal/holds", "terminal/holds/h1/commit"):
        r = client.post(f"/{path}", json=order, headers={"X-API-Key": key})
        assert r.status_code == 200, r.text


def run_load(
    base: str, tills: list[tuple[str, str]], redeem: Redeem, seconds: float
) -> dict[str, Any]:
    times: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    counter = itertools.count()

    def till(key: str, customer: str) -> None:
        mine = []
        with httpx.Client(base_url=base, timeout=30) as client:
            redeem(client, key, customer, next(counter))  # warm the connection, not timed
            while time.perf_counter() < stop:
                started = time.perf_counter()
                redeem(client, key, customer, next(counter))
                mine.append((time.perf_counter() - started) * 1000)
        with lock:
            times.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=till, args=pair) for pair in tills]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    times.sort()
    return {
        "redemptions": len(times),
        "per_s": round(len(times) / elapsed, 1),
        "p50_ms": round(statistics.median(times), 2),
        "p99_ms": round(times[int(0.99 * (len(times) - 1))], 2),
        "max_ms": round(times[-1], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="load per side")
    parser.add_argument("--tills", type=int, default=4, help="concurrent tills (threads)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-terminal-") as tmp:
        workdir = Path(tmp)
        config, core_port, tills = core_setup(workdir, args.tills)
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, "-c", BARE_APP, str(bare_port)])
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
        try:
            wait_up(f"http://127.0.0.1:{bare_port}/docs", bare)
            wait_up(f"http://127.0.0.1:{core_port}/health", core)
            base_bare = run_load(
                f"http://127.0.0.1:{bare_port}", tills, bare_redemption, args.seconds
            )
            through_core = run_load(
                f"http://127.0.0.1:{core_port}", tills, core_redemption, args.seconds
            )
        finally:
            for proc in (core, bare):
                proc.terminate()
                proc.wait(10)
        result = {
            "bench": "terminal",
            "tills": args.tills,
            "seconds": args.seconds,
            "bare_fastapi": base_bare,
            "core": through_core,
            "core_vs_bare": round(through_core["per_s"] / base_bare["per_s"], 3),
            "targets": {"per_s": TARGET_PER_S, "p99_ms": TARGET_P99_MS},
            "machine": f"{platform.machine()} {platform.python_version()}",
        }
    print(
        f"bare FastAPI: {base_bare['per_s']} round trips (3 POSTs)/s, "
        f"p50 {base_bare['p50_ms']} ms, p99 {base_bare['p99_ms']} ms"
    )
    print(
        f"core API:     {through_core['per_s']} redemptions (quote+hold+commit)/s, "
        f"p50 {through_core['p50_ms']} ms, p99 {through_core['p99_ms']} ms "
        f"(targets ≥ {TARGET_PER_S}/s, p99 ≤ {TARGET_P99_MS} ms)"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
