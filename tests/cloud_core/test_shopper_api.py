"""The shopper's own API over real uvicorn: sign-in by a one-time code (hashed, short-lived,
attempts and requests limited), a token per device (hashed, listed, revocable), and /me
seeing only the signed-in shopper — wallet, history, inbox (also live), offers, card token,
consent and erasure."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cloud_core import ledger, offers, shoppers
from cloud_core.api.routes.me_state import KeyedLimiter
from cloud_core.cards import verify_card_token
from cloud_core.errors import CardTokenError
from cloud_core.store import open_store
from cloud_core.wallet_web.messages import LANGUAGES, MESSAGES, pick_language
from tests.cloud_core.helpers import START
from tests.cloud_core.shopper_helpers import (
    ANN,
    BOB,
    CARD_SECRET,
    T0,
    add_shopper,
    bearer,
    catch_codes,
    sign_in,
    wallet_api,
)


def test_a_shopper_signs_in_with_a_code_and_sees_their_own_wallet(tmp_path):
    with catch_codes() as codes, wallet_api(tmp_path) as (client, app):
        ann = add_shopper(app.config.database, ANN, points=500)
        token = sign_in(client, codes, ANN, "Ann's phone")
        me = client.get("/me", headers=bearer(token)).json()
        assert me == {
            "id": ann,
            "phone": "+44*******456",
            "created_at": T0.isoformat().replace("+00:00", "Z"),
            "offers_consent": True,
        }
        wallet = client.get("/me/wallet", headers=bearer(token)).json()
        expiry = (T0 + timedelta(days=30)).isoformat().replace("+00:00", "Z")
        assert wallet == {
            "pockets": [
                {
                    "pocket": "mall",
                    "balance": 500,
                    "available": 500,
                    "next_expiry": expiry,
                    "expiring": [{"points": 500, "expires_at": expiry}],
                }
            ]
        }
        history = client.get("/me/history", headers=bearer(token)).json()
        assert [(h["delta"], h["reason"]) for h in history] == [(500, "parking")]
        inbox = client.get("/me/inbox", headers=bearer(token)).json()
        assert [(e["kind"], e["points"], e["text"]) for e in inbox] == [
            ("credit", 500, "+500 points: North car park")
        ]
        devices = client.get("/me/devices", headers=bearer(token)).json()
        assert [(d["name"], d["current"]) for d in devices] == [("Ann's phone", True)]


def test_codes_and_tokens_are_kept_hashed_only(tmp_path):
    with catch_codes() as codes, wallet_api(tmp_path) as (client, app):
        add_shopper(app.config.database, ANN)
        token = sign_in(client, codes, ANN)
        client.post("/auth/code", json={"phone": ANN})  # a live code in the table
        live_code = codes.last(2)
        raw = b"".join(
            path.read_bytes()
            for path in app.config.database.parent.iterdir()
            if path.name.startswith(app.config.database.name)
        )
        assert token.encode() not in raw
        assert token.removeprefix("mw_").encode() not in raw
        store = open_store(app.config.database)
        try:
            with store.read() as conn:
                rows = [tuple(r) for r in conn.execute("SELECT * FROM signin_codes")]
        finally:
            store.close()
        assert len(rows) == 1 and all(live_code != str(value) for value in rows[0])


def test_a_token_reads_only_its_own_shopper_and_forged_tokens_read_nothing(tmp_path):
    with catch_codes() as codes, wallet_api(tmp_path) as (client, app):
        ann = add_shopper(app.config.database, ANN, points=500)
        bob = add_shopper(app.config.database, BOB, points=70)
        ann_token = sign_in(client, codes, ANN)
        bob_token = sign_in(client, codes, BOB)
        assert client.get("/me", headers=bearer(ann_token)).json()["id"] == ann
        assert client.get("/me", headers=bearer(bob_token)).json()["id"] == bob
        ann_wallet = client.get("/me/wallet", headers=bearer(ann_token)).json()
        assert [p["balance"] for p in ann_wallet["pockets"]] == [500]
        ann_history = client.get("/me/history", headers=bearer(ann_token)).json()
        assert [h["delta"] for h in ann_history] == [500]
        # Bob's device is not Ann's to sign out (and she cannot tell it exists)
        (bob_device,) = client.get("/me/devices", headers=bearer(bob_token)).json()
        r = client.delete(f"/me/devices/{bob_device['id']}", headers=bearer(ann_token))
        assert r.status_code == 404
        assert client.get("/me", headers=bearer(bob_token)).status_code == 200
        # an API key is no shopper token, and made-up or altered tokens are refused
        for headers in (
            {},
            {"X-API-Key": "k-admin-0123456789abcdef"},
            bearer("k-admin-0123456789abcdef"),
            bearer(ann_token[:-2] + "xx"),
            bearer("mw_" + "A" * 43),
        ):
            r = client.get("/me/wallet", headers=headers)
            assert r.status_code == 401, headers
            assert r.headers["content-type"] == "application/problem+json"
        # the card names the shopper of the token
        card = client.get("/me/card", headers=bearer(bob_token)).json()
        now = datetime.fromtimestamp(START, UTC)
        assert verify_card_token(CARD_SECRET.encode(), card["token"], now) == bob


def test_a_card_token_expires_and_a_forged_one_fails(tmp_path):
    with catch_codes() as codes, wallet_api(tmp_path) as (client, app):
        ann = add_shopper(app.config.database, ANN)
        token = sign_in(client, codes, ANN)
        card = client.get("/me/card", headers=bearer(token)).json()
        assert ann in card["token"] and ANN.replace(" ", "") not in card["token"]
        assert 0 < card["refresh_in_s"] < 120
        key = CARD_SECRET.encode()
        issued = datetime.fromtimestamp(START, UTC)
        assert verify_card_token(key, card["token"], issued + timedelta(seconds=119)) == ann
        with pytest.raises(CardTokenError, match="expired"):
            verify_card_token(key, card["token"], issued + timedelta(seconds=120))
        with pytest.raises(CardTokenError, match="signature"):
            verify_card_token(b"another-mall-card-secret-0123456", card["token"], issued)
        bob_id = "c" + "0" * 24
        forged = card["token"].replace(ann, bob_id)  # someone else's id, Ann's signature
        with pytest.raises(CardTokenError, match="signature"):
            verify_card_token(key, forged, issued)
        # the wallet's next card is fresh again
        app.clock.advance(200)
        card = client.get("/me/card", headers=bearer(token)).json()
        now = issued + timedelta(seconds=200)
        assert verify_card_token(key, card["token"], now) == ann


def test_guessing_codes_is_bounded_per_code_per_phone_and_per_address(tmp_path):
    wallet = {"code_attempts": 5, "codes_per_phone": 3, "codes_per_ip": 50, "tries_per_ip": 12}
    with catch_codes() as codes, wallet_api(tmp_path, wallet=wallet) as (client, app):
        add_shopper(app.config.database, ANN)
        challenge = client.post("/auth/code", json={"phone": ANN}).json()["challenge"]
        right = codes.last()
        wrong = f"{(int(right) + 1) % 1_000_000:06d}"
        answers = []
        for _ in range(5):
            r = client.post("/auth/token", json={"challenge": challenge, "code": wrong})
            answers.append((r.status_code, r.json()["detail"]))
        assert [status for status, _ in answers] == [401] * 5
        assert answers[0][1] == "wrong code (4 tries left)"
        assert answers[-1][1] == "wrong code, and no tries left; ask for a new one"
        # the right code no longer helps: the code is void
        r = client.post("/auth/token", json={"challenge": challenge, "code": right})
        assert r.status_code == 401 and "unknown or used" in r.json()["detail"]
        # two more codes for the phone, then 429 with Retry-After (per phone)
        assert client.post("/auth/code", json={"phone": ANN}).status_code == 202
        assert client.post("/auth/code", json={"phone": "07911 123456"}).status_code == 202
        r = client.post("/auth/code", json={"phone": ANN})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert r.headers["content-type"] == "application/problem+json"
        # code checks from one address are limited too (12 in the window: 6 made so far)
        for _ in range(6):
            client.post("/auth/token", json={"challenge": "nope", "code": "000000"})
        r = client.post("/auth/token", json={"challenge": "nope", "code": "000000"})
        assert r.status_code == 429
        # a window later, the phone may ask again
        app.clock.advance(app.config.wallet.window_s)
        assert client.post("/auth/code", json={"phone": ANN}).status_code == 202


def test_a_code_expires_and_works_once(tmp_path):
    with catch_codes() as codes, wallet_api(tmp_path) as (client, app):
        add_shopper(app.config.database, ANN)
        challenge = client.post("/auth/code", json={"phone": ANN}).json()["challenge"]
        code = codes.last()
        app.clock.advance(app.config.wallet.code_ttl_s)
        r = client.post("/auth/token", json={"challenge": challenge, "code": code})
        assert r.status_code == 401 and "expired" in r.json()["detail"]
        challenge = client.post("/auth/code", json={"phone": ANN}).json()["challenge"]
        code = codes.last(2)
        body = {"challenge": challenge, "code": code}
        assert client.post("/auth/token", json=body).status_code == 201
        assert client.post("/auth/token", json=body).status_code == 401


def test_an_unknown_phone_gets_the_same_answer_and_no_code(tmp_path):
    with catch_codes() as codes, wallet_api(tmp_path) as (client, _app):
        r = client.post("/auth/code", json={"phone": BOB})
        assert r.status_code == 202 and set(r.json()) == {"challenge", "expires_at", "channel"}
        body = {"challenge": r.json()["challenge"], "code": "123456"}
        assert client.post("/auth/token", json=body).status_code == 401
        assert codes.codes == []
        r = client.post("/auth/code", json={"phone": "not a phone"})
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"


def test_a_device_is_signed_out_and_its_token_stops_working(tmp_path):
    with catch_codes() as codes, wallet_api(tmp_path) as (client, app):
        add_shopper(app.config.database, ANN)
        phone = sign_in(client, codes, ANN, "phone")
        app.clock.advance(1)
        tablet = sign_in(client, codes, ANN, "tablet")
        devices = client.get("/me/devices", headers=bearer(phone)).json()
        assert [(d["name"], d["current"]) for d in devices] == [("phone", True), ("tablet", False)]
        r = client.delete(f"/me/devices/{devices[1]['id']}", headers=bearer(phone))
        assert r.status_code == 204
        assert client.get("/me", headers=bearer(tablet)).status_code == 401
        assert client.get("/me", headers=bearer(phone)).status_code == 200


def test_consent_withdrawn_stops_personal_offers(tmp_path):
    with catch_codes() as codes, wallet_api(tmp_path) as (client, app):
        ann = add_shopper(app.config.database, ANN)
        token = sign_in(client, codes, ANN)
        r = client.put("/me/consent", json={"offers": False}, headers=bearer(token))
        assert r.status_code == 200 and r.json() == {"offers": False}
        assert client.get("/me", headers=bearer(token)).json()["offers_consent"] is False
        store = open_store(app.config.database)
        try:
            with store.transaction() as conn:
                campaign = offers.Campaign(
                    id="winter-coffee",
                    business="mall",
                    title="Hot chocolate -20 %",
                    text="Show this at Bean Bar.",
                    image_url=None,
                    starts_at=T0 - timedelta(days=1),
                    ends_at=T0 + timedelta(days=7),
                    stores=(),
                    zones=(),
                    segment="all",
                    cap_count=1,
                    cap_period_s=None,
                )
                offers.create_campaign(conn, campaign, {}, T0)

                calls = iter(range(1_000))

                def earned() -> int:
                    return len(
                        offers.offers_for_visit(
                            conn,
                            customer=ann,
                            place=offers.CarParkPlace("north", None),
                            ts=T0,
                            day="2026-11-23",
                            event_id=f"e-{next(calls)}",
                            trigger="parking",
                        )
                    )

                assert earned() == 0
        finally:
            store.close()
        r = client.put("/me/consent", json={"offers": True}, headers=bearer(token))
        store = open_store(app.config.database)
        try:
            with store.transaction() as conn:
                assert earned() == 1
        finally:
            store.close()
        listed = client.get("/me/offers", headers=bearer(token)).json()
        assert [(o["campaign"], o["received"]) for o in listed] == [("winter-coffee", True)]


def test_a_shopper_erases_themselves_from_the_tables_and_the_files(tmp_path):
    with catch_codes() as codes, wallet_api(tmp_path) as (client, app):
        ann = add_shopper(app.config.database, ANN, points=500)
        token = sign_in(client, codes, ANN)
        r = client.delete("/me", headers=bearer(token))
        assert r.status_code == 200, r.text
        removed = r.json()["removed"]
        assert removed["customers"] == 1 and removed["customer_devices"] == 1
        assert removed["journal"] == 1 and removed["lots"] == 1
        assert client.get("/me", headers=bearer(token)).status_code == 401
        raw = b"".join(
            path.read_bytes()
            for path in app.config.database.parent.iterdir()
            if path.name.startswith(app.config.database.name)
        )
        assert ann.encode() not in raw and b"+447911123456" not in raw


def test_the_inbox_is_live_over_server_sent_events(tmp_path):
    with (
        catch_codes() as codes,
        wallet_api(tmp_path, wallet={"inbox_poll_s": 0.05}) as (
            client,
            app,
        ),
    ):
        ann = add_shopper(app.config.database, ANN, points=500)
        token = sign_in(client, codes, ANN)
        with client.stream("GET", "/me/inbox/events", headers=bearer(token)) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines) == "retry: 2000"
            cursor = next(lines).removeprefix("id: ")
            store = open_store(app.config.database)
            try:
                with store.transaction() as conn:
                    ledger.grant(
                        conn,
                        customer=ann,
                        pocket="bean-bar",
                        points=10,
                        reason="visit",
                        idem_key="live-1",
                        now=T0,
                        text="+10 points at Bean Bar",
                    )
            finally:
                store.close()
            event: list[str] = []
            for line in lines:
                if line == "" and any(x.startswith("data:") for x in event):
                    break
                if line and not line.startswith(":"):
                    event.append(line)
        fields = dict(line.split(": ", 1) for line in event if not line.startswith("retry"))
        assert fields["event"] == "inbox" and fields["id"] != cursor
        entry = json.loads(fields["data"])
        assert (entry["kind"], entry["pocket"], entry["points"]) == ("credit", "bean-bar", 10)


class Gateway:
    """A real HTTP server standing in for an SMS provider: records what it is sent."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[str, dict[str, str]]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                gateway.received.append((self.headers.get("Authorization", ""), json.loads(body)))
                self.send_response(gateway.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/send"

    def __enter__(self) -> Gateway:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_sms_gateway_plugs_in_as_an_http_channel_and_the_code_stays_out_of_the_log(tmp_path):
    token_file = tmp_path / "sms-token"
    token_file.write_text("sms-gateway-token-0123456789\n")
    with Gateway() as gateway, catch_codes() as logged:
        channel = {"type": "http", "url": gateway.url, "token_file": str(token_file)}
        with wallet_api(tmp_path, wallet={"channel": channel}) as (client, app):
            ann = add_shopper(app.config.database, ANN)
            r = client.post("/auth/code", json={"phone": "07911 123456"})
            assert r.status_code == 202 and r.json()["channel"] == "sms"
            ((authorization, body),) = gateway.received
            assert authorization == "Bearer sms-gateway-token-0123456789"
            assert body["to"] == "+447911123456"
            code = re.fullmatch(
                r"(\d{6}) is your mall wallet code\. It works for 5 minutes\.", body["text"]
            )
            assert code is not None
            answer = client.post(
                "/auth/token", json={"challenge": r.json()["challenge"], "code": code.group(1)}
            )
            assert answer.status_code == 201
            token = answer.json()["token"]
            assert client.get("/me", headers=bearer(token)).json()["id"] == ann
            # the gateway fails: the shopper is told to retry, nothing claims it was sent
            gateway.status = 500
            r = client.post("/auth/code", json={"phone": ANN})
            assert r.status_code == 503 and r.headers["retry-after"] == "30"
            assert r.headers["content-type"] == "application/problem+json"
        assert logged.codes == []  # only the development channel writes codes to the log


def test_the_web_wallet_has_every_word_in_every_language():
    english = set(MESSAGES["en"])
    for lang in LANGUAGES:
        assert set(MESSAGES[lang]) == english, lang
        assert all(MESSAGES[lang].values()), lang
    assert pick_language(None, "uk-UA,uk;q=0.9,en;q=0.5") == "uk"
    assert pick_language("ru", "uk") == "ru"
    assert pick_language("de", "de-DE") == "en"


def test_codes_from_one_address_are_limited_whatever_the_phones(tmp_path):
    wallet = {"codes_per_ip": 4, "codes_per_phone": 100}
    with catch_codes(), wallet_api(tmp_path, wallet=wallet) as (client, _app):
        phones = [f"+44 7911 12{n:04d}" for n in range(5)]
        answers = [client.post("/auth/code", json={"phone": p}).status_code for p in phones]
        assert answers == [202, 202, 202, 202, 429]


def test_the_rate_limits_remember_a_bounded_number_of_strangers():
    now = [0.0]
    limiter = KeyedLimiter(2, 60, lambda: now[0], max_keys=100)
    for n in range(10_000):  # a flood of made-up phone numbers
        assert limiter.take(f"+44790000{n:04d}") is None
    assert len(limiter) == 100
    assert limiter.take("+447911123456") is None
    assert limiter.take("+447911123456") is None
    assert limiter.take("+447911123456") == 60  # the third within the window waits
    now[0] = 60
    assert limiter.take("+447911123456") is None


def test_a_live_reader_resumes_after_its_cursor_in_batches_and_misses_nothing(tmp_path):
    with wallet_api(tmp_path) as (_client, app):
        ann = add_shopper(app.config.database, ANN, points=5)
        store = open_store(app.config.database)
        try:
            with store.read() as conn:
                _entries, cursor = shoppers.inbox(conn, ann)
            with store.transaction() as conn:
                for n in range(250):
                    ledger.grant(
                        conn,
                        customer=ann,
                        pocket="mall",
                        points=1,
                        reason="visit",
                        idem_key=f"burst-{n}",
                        now=T0,
                        text=f"burst {n}",
                    )
            seen = []
            with store.read() as conn:
                more = True
                while more:
                    entries, cursor, more = shoppers.inbox_since(conn, ann, cursor, limit=100)
                    seen += [e.text for e in entries]
        finally:
            store.close()
        assert seen == [f"burst {n}" for n in range(250)]
