"""The whole kiosk without a window, against the real core (ingest + API on uvicorn) and the real
broker: a QR code in a video file checks the shopper in and credits points (read back through
the API), offers pushed by the core arrive, and check-ins made while the broker is down go out
after a kiosk restart and are credited once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from cloud_core.app import CoreApp
from cloud_core.config import CoreConfig
from kiosk.app import KioskRuntime
from kiosk.config import load_kiosk_config
from tests.cloud_core.helpers import api_client, api_config, core_mqtt
from tests.conftest import MALL, wait_until
from tests.kiosk.media import blank_frame, qr_frame, write_video

KIOSK = "kiosk-atrium"
STORE = "bean-bar-l1"  # the kiosk stands in Bean Bar (tests/cloud_core/helpers.STORES)
KEYS = [
    {"name": "office", "role": "admin", "key": "k-admin-test-0123456789"},
    {"name": "atrium", "role": "kiosk", "key": "k-kiosk-test-0123456789"},
]


def write_config(tmp_path: Path, broker, api_url: str, video: Path | None) -> Path:
    (tmp_path / "kiosk.key").write_text(KEYS[1]["key"])
    (tmp_path / "kiosk.password").write_text(broker.credential(KIOSK))
    data: dict[str, object] = {
        "kiosk": {"id": KIOSK, "mall": MALL, "store": STORE},
        "core": {"url": api_url, "api_key_file": "kiosk.key", "timeout_s": 5},
        "mqtt": {
            "port": broker.port,
            "username": KIOSK,
            "password_file": "kiosk.password",
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 1,
        },
        "scanner": {"debounce_s": 60, "max_fps": 60},
    }
    if video is not None:
        data["camera"] = {"type": "file", "path": str(video)}
    path = tmp_path / "kiosk.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def core(tmp_path, broker) -> Iterator[tuple[CoreConfig, httpx.Client]]:
    """The real core (ingest and API, real clock) knowing the kiosk; an admin API client."""
    (tmp_path / "core").mkdir()
    config = api_config(
        tmp_path / "core",
        KEYS,
        core_mqtt(broker),
        kiosks=[{"id": KIOSK, "store": STORE}],
        ingest={"batch_wait_ms": 1, "expiry_interval_s": 3600, "kiosk_offers_interval_s": 0.1},
    )
    app = CoreApp(config)
    app.start()
    try:
        with api_client(config) as admin:
            admin.headers["X-API-Key"] = KEYS[0]["key"]
            yield config, admin
    finally:
        app.stop()


def balances(admin: httpx.Client, customer: str) -> dict[str, int]:
    answer = admin.get(f"/customers/{customer}/wallet")
    assert answer.status_code == 200, answer.text
    return {p["pocket"]: p["balance"] for p in answer.json()["pockets"]}


def test_a_qr_code_in_a_video_checks_the_shopper_in_and_credits_points(
    broker, core, tmp_path
) -> None:
    _config, admin = core
    now = datetime.now(UTC)
    campaign = {
        "id": "coffee",
        "business": "bean-bar",
        "title": "Coffee 2 for 1",
        "text": "Until noon",
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(days=1)).isoformat(),
    }
    assert admin.post("/campaigns", json=campaign).status_code == 201
    customer = admin.post("/customers", json={"phone": "+380671234567"}).json()["id"]
    code = f"mallnet:customer:{customer}"
    video = write_video(tmp_path / "shopper.avi", [blank_frame()] * 3 + [qr_frame(code)] * 10)
    config = load_kiosk_config(write_config(tmp_path, broker, str(admin.base_url), video))
    runtime = KioskRuntime(config)
    vm = runtime.start()
    try:

        def settled() -> bool:
            runtime.drain()
            return vm.screen == "wallet" and vm.wallet is not None and bool(vm.offers)

        wait_until(settled, what="the shopper's wallet and the pushed offers")
        assert vm.view()["offer_title"] == "Coffee 2 for 1"
        assert vm.shopper is not None and vm.shopper.customer == customer
        # the core commits the visit and receipts it: only then does it leave the queue
        wait_until(lambda: runtime.link is not None and runtime.link.waiting == 0)
        assert balances(admin, customer) == {"bean-bar": 10}
        assert runtime.link is not None and runtime.link.receipted == 1
    finally:
        runtime.stop()


def test_check_ins_queued_while_offline_are_sent_after_a_kiosk_restart_and_credited_once(
    broker, core, tmp_path
) -> None:
    _config, admin = core
    customer = admin.post("/customers", json={"phone": "+380671234567"}).json()["id"]
    other = admin.post("/customers", json={"phone": "+380671234568"}).json()["id"]
    settings_path = write_config(tmp_path, broker, "http://127.0.0.1:9", None)
    config = load_kiosk_config(settings_path)
    broker.stop()
    runtime = KioskRuntime(config)
    vm = runtime.start()
    vm.start()
    for digit in "0671234567":
        vm.press(digit)
    vm.submit_phone()  # the core is unreachable too: the phone check-in is queued

    def answered() -> bool:
        runtime.drain()
        return vm.screen == "message"

    wait_until(answered, what="the offline answer")
    assert vm.view()["message"].startswith("Saved, will be sent when the connection is back")
    vm.dismiss()
    vm.on_code(f"mallnet:customer:{other}")  # the app's QR needs no core to identify
    assert vm.view()["message"].startswith("Check-in saved")

    def wallet_refused() -> bool:
        runtime.drain()
        return vm.wallet_problem is not None

    wait_until(wallet_refused, what="the wallet to be reported unavailable")
    assert "not reachable" in vm.view()["wallet_lines"]
    runtime.stop()

    broker.start()
    again = KioskRuntime(config)  # the kiosk restarts with its queue file
    again.start()
    try:
        wait_until(lambda: again.link is not None and again.link.waiting == 0, timeout=30)
    finally:
        again.stop()
    # each shopper's check-in at Bean Bar counted once, however often it was sent
    assert balances(admin, customer) == {"bean-bar": 10}
    assert balances(admin, other) == {"bean-bar": 10}
    third = KioskRuntime(config)  # and a later restart has nothing left to send
    third.start()
    try:
        assert third.link is not None and third.link.waiting == 0
    finally:
        third.stop()
