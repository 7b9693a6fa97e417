"""The PostgreSQL backend's own guarantees: start-up validation, one mall per schema with no
cross-mall reads, a rule check and its write serialised across workers, erasure off disk."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from cloud_core import customers
from cloud_core.config import load_core_config
from cloud_core.errors import StorageError
from cloud_core.ingest import Applier
from cloud_core.readiness import database_problem
from cloud_core.store import Conn, PgTarget, connect_store, open_store
from cloud_core.store.postgres import PgStore, to_psycopg
from mallnet.broker import free_port
from mallnet.errors import ConfigError
from tests.cloud_core.api_helpers import KEYS, h
from tests.cloud_core.helpers import (
    START,
    Clock,
    Walker,
    key_of,
    make_config,
    message,
    serve_api,
)
from tests.postgres import PgCluster


def test_a_postgresql_url_selects_the_backend_and_bad_settings_are_refused_at_start(tmp_path):
    config = make_config(tmp_path, database="postgresql://core:s3cret@db.example:5432/mallnet")
    assert config.database == PgTarget(
        "postgresql://core:s3cret@db.example:5432/mallnet", "mall_testmall"
    )
    assert "s3cret" not in str(config.database) and "s3cret" not in repr(config.database)
    named = make_config(
        tmp_path, database="postgresql://db.example/mallnet", database_schema="north_mall"
    )
    assert isinstance(named.database, PgTarget) and named.database.schema == "north_mall"
    assert make_config(tmp_path).database == tmp_path / "core.sqlite"  # the default: SQLite
    bad: dict[str, Any]
    for bad in (
        {"database": "postgresql://db/m", "database_schema": "North-Mall"},
        {"database_schema": "north_mall"},  # a schema for a SQLite file
        {"database": "postgresql://db/m?sslmode"},  # not a URL libpq can read
    ):
        with pytest.raises(ValueError, match=r"schema|postgresql|URL"):
            make_config(tmp_path, None, **bad)
    yaml_file = tmp_path / "core.yaml"
    yaml_file.write_text(
        "mall: north\ndatabase: postgresql://db.example/mallnet\n"
        "database_schema: Bad\nmqtt: {host: localhost}\n"
    )
    with pytest.raises(ConfigError, match=r"core\.yaml:3: database_schema"):
        load_core_config(yaml_file)


def test_placeholders_are_translated_outside_quotes_only():
    assert to_psycopg("SELECT ? WHERE a LIKE '%?%' AND b = :name -- ?") == (
        "SELECT %s WHERE a LIKE '%?%' AND b = %(name)s -- ?"
    )
    assert to_psycopg("SELECT x % 2, '::' FROM t WHERE y::text = ?") == (
        "SELECT x %% 2, '::' FROM t WHERE y::text = %s"
    )


def _mall_role(pg: PgCluster, url: str, role: str) -> str:
    """A login role owning schema ``role`` and nothing else: a mall's own database user."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        admin.execute(
            sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                sql.Identifier(role), sql.Identifier(role)
            )
        )
    return url.replace("postgresql://postgres@", f"postgresql://{role}@")


def _presence(config: Any, store: Any, clock: Clock, phone: str, n: int) -> tuple[str, Applier]:
    with store.transaction() as conn:
        customer, _ = customers.register_customer(conn, phone, default_region="GB")
        customers.attach_beacon_key(conn, customer, key_of(n).hex())
    applier = Applier(config, store, clock)
    walker = Walker("store-1")
    applier.apply([message(walker, walker.event(key_of(n), START))])
    assert applier.counters["credited"] == 1
    return customer, applier


def test_two_malls_share_one_database_and_neither_reads_the_other(tmp_path, pg_cluster):
    url = pg_cluster.new_database()
    north = make_config(
        tmp_path, database=_mall_role(pg_cluster, url, "mall_north"), database_schema="mall_north"
    )
    south = make_config(
        tmp_path, database=_mall_role(pg_cluster, url, "mall_south"), database_schema="mall_south"
    )
    clock = Clock(START + 300)
    north_store, south_store = open_store(north.database), open_store(south.database)
    try:
        ann, _ = _presence(north, north_store, clock, "+44 7911 123001", 1)
        bob, _ = _presence(south, south_store, clock, "+44 7911 123002", 2)
        for store, own, other in ((north_store, ann, bob), (south_store, bob, ann)):
            with store.read() as conn:
                assert [r["id"] for r in conn.execute("SELECT id FROM customers")] == [own]
                journal = conn.execute("SELECT DISTINCT customer_id FROM journal").fetchall()
                assert [r[0] for r in journal] == [own]
                assert not conn.execute(
                    "SELECT 1 FROM visits WHERE customer_id = ?", (other,)
                ).fetchall()
        # the same statements, but naming the other mall's schema: refused by the database
        for store, other_schema in ((north_store, "mall_south"), (south_store, "mall_north")):
            with pytest.raises(StorageError, match="permission denied"), store.read() as conn:
                conn.execute(f"SELECT id FROM {other_schema}.customers")
    finally:
        north_store.close()
        south_store.close()


class _PauseBeforeWrite:
    """A ``Conn`` that holds its first ``INSERT INTO visits`` until the other worker has
    made its checks too: both transactions read before either writes."""

    def __init__(self, conn: Conn, barrier: threading.Barrier) -> None:
        self._conn = conn
        self._barrier = barrier
        self.paused = False

    def execute(self, sql_text: str, parameters: Any = (), /) -> Any:
        if sql_text.startswith("INSERT INTO visits") and not self.paused:
            self.paused = True
            self._barrier.wait(timeout=10)
        return self._conn.execute(sql_text, parameters)

    def executemany(self, sql_text: str, parameters: Any, /) -> Any:
        return self._conn.executemany(sql_text, parameters)


def test_a_cooldown_check_and_its_write_are_serialised_across_workers(tmp_path, pg_cluster):
    """Two workers, each its own connection, apply two visits of one customer to one store
    (two nodes) at the same moment: with both checks made before either write, one
    transaction loses, runs again, and sees the other's visit — one credit, one cooldown."""
    target = PgTarget(pg_cluster.new_database(), "mall_testmall")
    config = make_config(tmp_path, database=target)
    setup = open_store(target)
    with setup.transaction() as conn:
        customer, _ = customers.register_customer(conn, "+44 7911 123001", default_region="GB")
        customers.attach_beacon_key(conn, customer, key_of(1).hex())
    setup.close()
    barrier = threading.Barrier(2)
    clock = Clock(START + 300)
    stores = [connect_store(target) for _ in range(2)]
    appliers = []
    for store in stores:
        assert isinstance(store, PgStore)
        store.conn = _PauseBeforeWrite(store.conn, barrier)
        appliers.append(Applier(config, store, clock))
    walkers = [Walker("store-1"), Walker("store-1b")]  # both nodes of Bean Bar
    batches = [[message(w, w.event(key_of(1), START + i))] for i, w in enumerate(walkers)]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            appliers[i].apply(batches[i])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert not errors
        outcomes: Counter[str] = Counter()
        for applier in appliers:
            outcomes.update(applier.snapshot())
        assert outcomes["conflict_retries"] >= 1  # the interleaving did happen
        assert outcomes["credited"] == 1 and outcomes["cooldown"] == 1
        with stores[0].read() as conn:
            (visits,) = conn.execute("SELECT COUNT(*) FROM visits").fetchone()
            (points,) = conn.execute("SELECT SUM(delta) FROM journal").fetchone()
        assert visits == 1 and points == 10
    finally:
        for store in stores:
            store.close()


def _files_holding(folder: Path, needle: bytes) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_erased_personal_data_leaves_the_database_files(tmp_path, pg_cluster):
    url = pg_cluster.new_database()
    store = open_store(PgTarget(url, "mall_testmall"))
    phone = b"+447911123456"
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT oid FROM pg_database WHERE datname = current_database()"
        ).fetchone()
        assert row is not None
        (oid,) = row
        folder = pg_cluster.data / "base" / str(oid)
        try:
            with store.transaction() as conn:
                customer, _ = customers.register_customer(
                    conn, "+44 7911 123456", default_region="GB"
                )
                customers.attach_beacon_key(conn, customer, key_of(1).hex())
            with store.transaction() as conn:  # an update leaves a dead copy of the row
                conn.execute(
                    "UPDATE customers SET email = 'a@example.com' WHERE id = ?", (customer,)
                )
            admin.execute("CHECKPOINT")  # the pages reach the files
            assert _files_holding(folder, phone)  # the scan does find it before
            with store.transaction() as conn:
                customers.erase_customer(conn, customer)
            assert store.checkpoint()
            admin.execute("CHECKPOINT")
            assert _files_holding(folder, phone) == []
            assert _files_holding(folder, customer.encode()) == []
        finally:
            store.close()


def test_the_api_serves_and_erases_from_postgresql(tmp_path, pg_cluster):
    target = PgTarget(pg_cluster.new_database(), "mall_testmall")
    keys = [
        {"name": "office", "role": "admin", "key": KEYS["admin"]},
        {"name": "atrium", "role": "kiosk", "key": KEYS["kiosk"]},
    ]
    with serve_api(tmp_path, keys, database=target) as (client, _app):
        r = client.post("/customers", json={"phone": "07911 123456"}, headers=h("kiosk"))
        assert r.status_code == 201
        customer = r.json()["id"]
        assert (
            client.post(
                "/customers", json={"phone": "+447911123456"}, headers=h("kiosk")
            ).status_code
            == 409
        )
        assert (
            client.post(
                f"/customers/{customer}/beacon-keys", json={}, headers=h("admin")
            ).status_code
            == 201
        )
        r = client.post(
            f"/customers/{customer}/vehicles", json={"plate": "ab12 cde"}, headers=h("admin")
        )
        assert r.json() == {"plate": "AB12CDE"}
        r = client.get(f"/customers/{customer}", headers=h("admin"))
        assert r.json()["beacon_keys"] == 1 and r.json()["vehicles"] == ["AB12CDE"]
        r = client.delete(f"/customers/{customer}", headers=h("admin"))
        assert r.status_code == 200 and r.json()["removed"]["customers"] == 1
        assert client.get(f"/customers/{customer}", headers=h("admin")).status_code == 404
    store = open_store(target)
    try:
        with store.read() as conn:
            assert conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0] == 0
            assert conn.execute("SELECT COUNT(*) FROM vehicles").fetchone()[0] == 0
    finally:
        store.close()


def test_readiness_says_when_postgresql_cannot_take_the_mall_s_writes(pg_cluster):
    url = pg_cluster.new_database()
    target = PgTarget(url, "mall_testmall")
    open_store(target).close()
    assert database_problem(target) is None
    missing = database_problem(PgTarget(url, "mall_elsewhere"))
    assert missing is not None and "mall_elsewhere" in missing
    down = database_problem(PgTarget(f"postgresql://postgres@127.0.0.1:{free_port()}/x", "m"))
    assert down is not None and down.startswith("the database cannot be reached")
