"""The real core process on the production broker, logging in with its client certificates:
the ingest connection (``core-1.crt``) receives a node's events and the publisher
(``core-1-out.crt``, found beside it) sends the receipts."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cloud_core.config import load_core_config
from mallnet.errors import ConfigError
from mallnet.wire import encode
from mallnet.wire.topics import PRESENCE, RECEIPTS
from tests.cloud_core.helpers import START, Walker, key_of
from tests.conftest import MALL, wait_until
from tests.mallnet.test_broker_roles import CORE, NODE, Raw, _end, debian_prod_broker

STORE = {
    "id": "bean-bar",
    "name": "Bean Bar",
    "business": "bean-bar",
    "zone": "l1",
    "nodes": [NODE],
}


def _config(tmp_path: Path, port: int, ca: Path, issued: Path, cert: str = CORE) -> Path:
    config = {
        "mall": MALL,
        "database": "core.sqlite",
        "mqtt": {
            "host": "localhost",
            "port": port,
            "tls": {
                "ca_file": str(ca),
                "cert_file": str(issued / f"{cert}.crt"),
                "key_file": str(issued / f"{cert}.key"),
            },
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 1,
        },
        "ingest": {"client_id": CORE, "batch_wait_ms": 1},
        "stores": [STORE],
    }
    path = tmp_path / "core.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_core_connects_with_its_certificates_and_receipts_a_nodes_events(tmp_path):
    proc, prod, _conf = debian_prod_broker(tmp_path)
    assert prod.ca_file is not None and prod.issued is not None
    config = _config(tmp_path, prod.port, prod.ca_file, prod.issued)
    log = tmp_path / "core.log"
    with log.open("ab") as out:
        core = subprocess.Popen(
            [sys.executable, "-m", "mallnet.cli", "core", "run", "--config", str(config),
             "--only", "ingest"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    node = Raw(prod, NODE, NODE, persistent=True)
    try:
        assert node.connect() == 0
        assert node.subscribe(RECEIPTS.topic(MALL, NODE)) == [1]
        walker = Walker(NODE)
        batch = walker.batch(walker.walk(key_of(1), START))
        topic = PRESENCE.topic(MALL, NODE)
        wait_until(lambda: node.publish(topic, encode(batch)) == 0, 30, "the core's subscription")
        wait_until(lambda: node.messages != [], 30, "a receipt from the core's publisher")
        assert core.poll() is None
    finally:
        core.terminate()
        core.wait(30)
        node.close()
        _end(proc)
        gc.collect()
    text = log.read_text()
    assert "Traceback" not in text, text


def test_a_core_certificate_not_named_after_the_client_id_is_refused(tmp_path):
    issued = tmp_path / "issued"
    path = _config(tmp_path, 8883, tmp_path / "ca.crt", issued, cert="store-bean-bar-1")
    with pytest.raises(ConfigError) as caught:
        load_core_config(path)
    assert "mqtt.tls.cert_file" in str(caught.value)
    good = load_core_config(_config(tmp_path, 8883, Path("ca.crt"), Path("pki")))
    settings, client_id = good.connection("-out")
    assert client_id == f"{CORE}-out"
    assert settings.tls is not None
    assert settings.tls.cert_file == tmp_path / "pki" / f"{CORE}-out.crt"  # relative to the file
    assert settings.tls.key_file == tmp_path / "pki" / f"{CORE}-out.key"
    assert settings.tls.ca_file == tmp_path / "ca.crt"
