"""The whole kiosk without a window: a QR code in a video file becomes a check-in on the real
broker, the wallet comes from the real core API with the kiosk key, offers pushed by the core
arrive, and check-ins made while the broker is down go out after a kiosk restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from kiosk.app import KioskRuntime
from kiosk.config import load_kiosk_config
from mallnet.wire.codec import decode, encode
from mallnet.wire.payloads import CheckinBatch, KioskOffers, OfferCard
from mallnet.wire.topics import CHECKINS, KIOSK_OFFERS
from tests.cloud_core.helpers import serve_api
from tests.conftest import MALL, Collector, wait_until
from tests.kiosk.media import blank_frame, qr_frame, write_video

KIOSK = "kiosk-atrium"
KEYS = [
    {"name": "office", "role": "admin", "key": "k-admin-test-0123456789"},
    {"name": "atrium", "role": "kiosk", "key": "k-kiosk-test-0123456789"},
]


def write_config(tmp_path: Path, broker, api_url: str, video: Path | None) -> Path:
    (tmp_path / "kiosk.key").write_text(KEYS[1]["key"])
    (tmp_path / "kiosk.password").write_text(broker.credential(KIOSK))
    data: dict[str, object] = {
        "kiosk": {"id": KIOSK, "mall": MALL, "store": "atrium"},
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


def test_a_qr_code_in_a_video_checks_the_shopper_in_through_the_real_broker(
    broker, connect, tmp_path
) -> None:
    checkins = Collector()
    core_mqtt = connect("core", subscriptions=[(CHECKINS.filter(MALL), 1)], on_message=checkins)
    card = OfferCard(
        campaign="coffee",
        business="cafe",
        title="Coffee 2 for 1",
        text="Until noon",
        valid_until=datetime.now(UTC) + timedelta(days=1),
    )
    offers = encode(KioskOffers(ts=datetime.now(UTC), offers=(card,)))
    core_mqtt.publish(KIOSK_OFFERS.topic(MALL, KIOSK), offers, 1, retain=True).wait(5)
    (tmp_path / "core").mkdir()
    with serve_api(tmp_path / "core", KEYS) as (admin, _app):
        admin.headers["X-API-Key"] = KEYS[0]["key"]
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
            [message] = checkins.wait_for(1)
            batch = decode(message.topic, message.payload).message
            assert isinstance(batch, CheckinBatch)
            assert [(e.token, e.store) for e in batch.events] == [
                (f"customer:{customer}", "atrium")
            ]
            wait_until(lambda: runtime.link is not None and runtime.link.waiting == 0)
        finally:
            runtime.stop()


def test_check_ins_queued_while_offline_are_sent_after_a_kiosk_restart(
    broker, connect, tmp_path
) -> None:
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
    vm.on_code("mallnet:customer:c0001")  # the app's QR needs no core to identify
    assert vm.view()["message"].startswith("Check-in saved")

    def wallet_refused() -> bool:
        runtime.drain()
        return vm.wallet_problem is not None

    wait_until(wallet_refused, what="the wallet to be reported unavailable")
    assert "not reachable" in vm.view()["wallet_lines"]
    runtime.stop()

    broker.start()
    checkins = Collector()
    connect("core", subscriptions=[(CHECKINS.filter(MALL), 1)], on_message=checkins)
    again = KioskRuntime(config)
    again.start()
    try:
        [message] = checkins.wait_for(1)
        batch = decode(message.topic, message.payload).message
        assert isinstance(batch, CheckinBatch)
        assert [e.token for e in batch.events] == ["phone:+380671234567", "customer:c0001"]
        assert [e.seq for e in batch.events] == [0, 1]
        wait_until(lambda: again.link is not None and again.link.waiting == 0)
    finally:
        again.stop()
