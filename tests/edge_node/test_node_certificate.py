"""A store node logs in to the production broker with its own client certificate (no username,
no password in its config) and publishes as itself."""

from __future__ import annotations

import asyncio
import gc
import threading
from pathlib import Path

import yaml

from edge_node.ble.app import EdgeApp
from edge_node.ble.config import load_node_config
from mallnet.wire import decode
from mallnet.wire.payloads import DeviceStatus
from mallnet.wire.topics import STATUS
from tests.conftest import MALL, wait_until
from tests.edge_node.helpers import PREFIX_HEX, browse_trace
from tests.mallnet.test_broker_roles import MONITOR, NODE, Raw, _end, debian_prod_broker


def test_a_store_node_connects_with_its_certificate(tmp_path: Path) -> None:
    proc, prod, _conf = debian_prod_broker(tmp_path)
    assert prod.ca_file is not None and prod.issued is not None
    trace = tmp_path / "trace.jsonl"
    browse_trace(trace, shoppers=1)
    config = {
        "node": {"id": NODE, "mall": MALL},
        "mqtt": {
            "host": "localhost",
            "port": prod.port,
            "tls": {
                "ca_file": str(prod.ca_file),
                "cert_file": str(prod.issued / f"{NODE}.crt"),
                "key_file": str(prod.issued / f"{NODE}.key"),
            },
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 1,
        },
        "source": {"type": "replay", "path": str(trace), "speed": 0, "at_end": "idle"},
        "ibeacon": {"program_prefix": PREFIX_HEX},
        "outbox": {"path": str(tmp_path / "outbox.sqlite")},
        "health": {"interval_s": 1},
    }
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(config))
    monitor = Raw(prod, MONITOR, MONITOR)
    app = EdgeApp(load_node_config(path))
    runner = threading.Thread(target=lambda: asyncio.run(app.run()))
    try:
        assert monitor.connect() == 0
        assert monitor.subscribe(STATUS.topic(MALL, NODE)) == [1]
        runner.start()

        def online() -> bool:
            for topic, payload, _retained in list(monitor.messages):
                status = decode(topic, payload).message
                if isinstance(status, DeviceStatus) and status.state == "online":
                    return True
            return False

        wait_until(online, 30, "the node's online status, published with its certificate")
        assert app.client.connected
    finally:
        app.request_stop()
        runner.join(30)
        monitor.close()
        _end(proc)
        gc.collect()
