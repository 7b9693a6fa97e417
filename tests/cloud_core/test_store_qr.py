"""Store QR check-ins (cloud_core/store_qr.py, rules/store_qr.py) through the real core: the
API on uvicorn, ingest on the real broker. A scan and a beacon visit in the same cooldown are
one visit whichever comes first; replayed, forged, altered and expired codes are refused; the
door's screen is a self-refreshing page served by the core."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import segno

from cloud_core import store_qr
from cloud_core.app import CoreApp
from cloud_core.store_qr import StoreQrRefused, code_for, verify_code
from mallnet.mqtt import MqttClient
from mallnet.wire import decode, encode
from mallnet.wire.payloads import CreditNotice
from mallnet.wire.topics import INBOX, PRESENCE
from tests.cloud_core.api_helpers import KEYS, h
from tests.cloud_core.helpers import START, Walker, api_client, api_config, key_of, register, wallet
from tests.conftest import MALL, Collector, wait_until

BOTH_BACKENDS = True  # tests using the ``database`` fixture run on SQLite and PostgreSQL
SECRET = "store-qr-test-secret-0123456789"
KEY = SECRET.encode()
WINDOW_S = 60
API_KEYS = [
    {"name": "office", "role": "admin", "key": KEYS["admin"]},
    {"name": "atrium", "role": "kiosk", "key": KEYS["kiosk"]},
    {"name": "bean", "role": "tenant", "business": "bean-bar", "key": KEYS["bean"]},
]


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


# --- the code itself -------------------------------------------------------------------------


def test_a_code_names_its_store_during_its_window_and_one_window_of_grace():
    code = code_for(KEY, MALL, "shoe-hub", at(START), window_s=WINDOW_S, grace_windows=1).code
    for later in (0, WINDOW_S - 1, WINDOW_S, 2 * WINDOW_S - 1):
        assert verify_code(KEY, MALL, code, at(START + later), window_s=60, grace_windows=1) == (
            "shoe-hub"
        )


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda c: c.replace("shoe-hub", "book-nook"), "signature"),  # altered store
        (lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"), "signature"),  # forged
        (lambda c: c.replace(c.split(".")[2], str(int(c.split(".")[2]) + 1)), "signature"),
        (lambda c: c + "x", "malformed"),
        (lambda c: "", "malformed"),
    ],
)
def test_forged_altered_and_malformed_codes_are_refused(change, why):
    code = code_for(KEY, MALL, "shoe-hub", at(START), window_s=WINDOW_S, grace_windows=1).code
    with pytest.raises(StoreQrRefused, match=why):
        verify_code(KEY, MALL, change(code), at(START), window_s=WINDOW_S, grace_windows=1)
    other_key = b"another-secret-0123456789abcdef"
    with pytest.raises(StoreQrRefused, match="signature"):  # signed with another mall's secret
        verify_code(other_key, MALL, code, at(START), window_s=WINDOW_S, grace_windows=1)


def test_a_photo_of_the_code_stops_working_after_the_grace_and_a_future_code_never_works():
    code = code_for(KEY, MALL, "shoe-hub", at(START), window_s=WINDOW_S, grace_windows=1).code
    late = START // WINDOW_S * WINDOW_S + 2 * WINDOW_S
    with pytest.raises(StoreQrRefused, match="expired"):
        verify_code(KEY, MALL, code, at(late), window_s=WINDOW_S, grace_windows=1)
    with pytest.raises(StoreQrRefused, match="not valid yet"):
        verify_code(KEY, MALL, code, at(START - WINDOW_S), window_s=WINDOW_S, grace_windows=1)


# --- through the real core -------------------------------------------------------------------


@pytest.fixture
def core(
    tmp_path, core_settings, run_core, clock, database
) -> Iterator[tuple[CoreApp, httpx.Client]]:
    config = api_config(
        tmp_path,
        API_KEYS,
        core_settings,
        database=database,
        store_qr={"secret": SECRET, "window_s": WINDOW_S, "grace_windows": 1},
    )
    app = run_core(config, only=None)
    with api_client(config) as client:
        yield app, client


def scan(client: httpx.Client, customer: str, code: str) -> httpx.Response:
    return client.post(
        "/checkins/store-qr", json={"customer": customer, "code": code}, headers=h("kiosk")
    )


def current(client: httpx.Client, store: str) -> dict[str, Any]:
    r = client.get(f"/stores/{store}/qr", headers=h("admin"))
    assert r.status_code == 200, r.text
    return dict(r.json())


def beacon_visit(app: CoreApp, publisher: MqttClient, node: str, key: bytes, start: float) -> None:
    """A stay long enough to qualify, through the broker, applied by ingest."""
    assert app.consumer is not None
    before = app.consumer.stats().get("events", 0)
    walker = Walker(node)
    events = walker.walk(key, start, dwell_s=180)
    batch = encode(walker.batch(events))
    assert publisher.publish(PRESENCE.topic(MALL, node), batch, 1).wait(10) == 0
    wait_until(
        lambda: app.consumer is not None and app.consumer.stats().get("events", 0) >= before + 3,
        what="the stay applied",
    )


def inbox(core_client, customer: str) -> Collector:
    collector = Collector()
    core_client(
        f"inbox-{customer[:8]}",
        subscriptions=[(INBOX.topic(MALL, customer), 1)],
        on_message=collector,
    )
    return collector


def test_a_store_qr_then_a_beacon_in_the_same_cooldown_credit_one_visit(
    core, core_client, connect, broker, clock
):
    app, client = core
    ann = register(app.config, 1, "+447911123001")
    notices = inbox(core_client, ann)
    node = connect("store-2")

    r = scan(client, ann, current(client, "shoe-hub")["code"])
    assert r.status_code == 200, r.text
    assert r.json() == {"outcome": "credited", "store": "shoe-hub", "points": 10}
    # the API kept the notice with the credit; the ingest worker published it
    first = notices.wait_for(1)[0]
    notice = decode(first.topic, first.payload).message
    assert isinstance(notice, CreditNotice) and notice.points == 10 and notice.reason == "visit"

    clock.advance(600)  # ten minutes later, the same cooldown: a stay seen by the beacon node
    beacon_visit(app, node, "store-2", key_of(1), START + 300)
    assert app.consumer is not None and app.consumer.stats().get("cooldown", 0) >= 1
    assert wallet(app.config, ann) == {"shoe-hub": 10}


def test_a_beacon_then_a_store_qr_in_the_same_cooldown_credit_one_visit(
    core, connect, broker, clock
):
    app, client = core
    bob = register(app.config, 2, "+447911123002")
    node = connect("store-2")

    beacon_visit(app, node, "store-2", key_of(2), START - 600)
    assert wallet(app.config, bob) == {"shoe-hub": 10}
    r = scan(client, bob, current(client, "shoe-hub")["code"])
    assert r.status_code == 200, r.text
    assert r.json() == {"outcome": "cooldown", "store": "shoe-hub", "points": 0}
    assert wallet(app.config, bob) == {"shoe-hub": 10}

    clock.advance(3600)  # past the cooldown: the next scan is a new visit
    r = scan(client, bob, current(client, "shoe-hub")["code"])
    assert r.json() == {"outcome": "credited", "store": "shoe-hub", "points": 10}
    assert wallet(app.config, bob) == {"shoe-hub": 20}


def test_replayed_forged_altered_and_expired_codes_are_refused_and_credit_nothing(core, clock):
    app, client = core
    cat = register(app.config, 3, "+447911123003")
    dan = register(app.config, 4, "+447911123004")
    code = current(client, "book-nook")["code"]

    assert scan(client, cat, code).json()["outcome"] == "credited"
    again = scan(client, cat, code)  # the same code, the same shopper
    assert again.status_code == 409, again.text
    assert again.headers["content-type"] == "application/problem+json"
    assert "already scanned" in again.json()["detail"]
    assert again.json()["type"] == "urn:mallnet:problem:store-qr-replayed"

    for bad, why in [
        (code.replace("book-nook", "shoe-hub"), "forged or altered"),
        (code[:-3] + "AAA", "forged or altered"),
        ("mq1.shoe-hub.1.AAAAAAAAAAAAAAAAAAAAAA", "forged or altered"),
        ("https://example.com/not-a-code", "malformed"),
    ]:
        r = scan(client, dan, bad)
        assert r.status_code == 422, r.text
        assert why in r.json()["detail"]
        assert r.json()["type"] == "urn:mallnet:problem:store-qr-refused"
        assert code not in r.text  # never echoed

    clock.advance(2 * WINDOW_S)  # a photo of the code, two windows later
    r = scan(client, dan, code)
    assert r.status_code == 422 and "expired" in r.json()["detail"]
    assert wallet(app.config, dan) == {}
    assert wallet(app.config, cat) == {"book-nook": 10}
    unknown = scan(client, "c-nobody", current(client, "book-nook")["code"])
    assert unknown.status_code == 404


def test_the_door_screen_is_a_self_refreshing_page_with_the_current_code(core, clock):
    _app, client = core
    r = client.get("/stores/bean-bar-l1/qr", headers=h("bean"))
    assert r.status_code == 200, r.text
    code = r.json()
    assert client.get("/stores/shoe-hub/qr", headers=h("bean")).status_code == 403
    assert client.get("/stores/shoe-hub/qr", headers=h("kiosk")).status_code == 403

    page = client.get(code["screen_path"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    text = page.text
    assert '<meta http-equiv="refresh"' in text
    assert f'data-code="{code["code"]}"' in text
    assert segno.make(code["code"], error="m").svg_inline(scale=8, border=4) in text
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in text  # no script, nothing from a CDN

    clock.advance(WINDOW_S)
    newer = client.get(code["screen_path"]).text
    assert f'data-code="{code["code"]}"' not in newer  # the next window's code

    wrong = client.get("/stores/shoe-hub/qr-screen", params={"screen": "x" * 22})
    assert wrong.status_code == 403
    other = code["screen_path"].replace("bean-bar-l1", "shoe-hub")  # another store's screen
    assert client.get(other).status_code == 403
    assert store_qr.screen_key(KEY, MALL, "shoe-hub") not in text


def test_without_a_store_qr_config_the_routes_answer_404(tmp_path):
    from tests.cloud_core.helpers import serve_api

    with serve_api(tmp_path, API_KEYS) as (client, _app):
        r = scan(client, "c0", "mq1.shoe-hub.1.AAAAAAAAAAAAAAAAAAAAAA")
        assert r.status_code == 404 and "not configured" in r.json()["detail"]


def test_validate_config_refuses_a_placeholder_or_missing_store_qr_secret(tmp_path, capsys):
    from mallnet.cli import main

    keys = tmp_path / "keys.yaml"
    keys.write_text("keys:\n  - {name: office, role: admin, key: k-admin-0123456789abcdef}\n")
    secret = tmp_path / "store-qr.secret"
    secret.write_text("changeme\n")
    config = tmp_path / "core.yaml"
    config.write_text(
        "mall: demo\ndatabase: core.sqlite\nmqtt:\n  port: 1883\n"
        f"api:\n  keys_file: {keys}\nstore_qr:\n  secret_file: store-qr.secret\n"
    )
    assert main(["core", "run", "--config", str(config), "--validate-config"]) == 2
    assert "store QR secret must be at least 16 bytes" in capsys.readouterr().err
    secret.unlink()
    assert main(["core", "run", "--config", str(config), "--validate-config"]) == 2
    assert "cannot read the store QR secret" in capsys.readouterr().err
    secret.write_text("a-real-store-qr-secret-0123456789\n")
    assert main(["core", "run", "--config", str(config), "--validate-config"]) == 0
