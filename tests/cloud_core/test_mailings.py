"""Mailings through the real core (uvicorn + HTTP, the dispatcher thread, a real Mosquitto for
the inbox): a selection's audience, a webhook that fails twice still gets the mailing once,
an SMTP server receives the e-mail, unsubscribe stops the next mailing, a tenant reaches its
own customers only, and the inbox channel goes through the notice outbox."""

from __future__ import annotations

import email
import email.policy
from typing import Any
from urllib.parse import urlsplit

import httpx

from cloud_core.app import CoreApp
from cloud_core.store import open_store
from mallnet.wire import decode
from mallnet.wire.payloads import MessageNotice
from mallnet.wire.topics import INBOX
from tests.cloud_core.api_helpers import KEYS, h
from tests.cloud_core.engagement_helpers import (
    ENGAGEMENT_KEYS,
    WEBHOOK_SECRET,
    mailing_settings,
    seed,
    signed,
    smtp_server,
    webhook_server,
)
from tests.cloud_core.helpers import START, add_campaign, api_config, serve_api
from tests.conftest import MALL, Collector, wait_until

BOTH_BACKENDS = True  # tests taking `database` run on SQLite and PostgreSQL

DAY = 86_400.0
BEAN = ("bean-bar-l1", "bean-bar")
SHOE = ("shoe-hub", "shoe-hub")


def mail(client: httpx.Client, who: str, **body: Any) -> dict[str, Any]:
    body.setdefault("title", "Saturday at the mall")
    body.setdefault("text", "Hot chocolate -20 % on Saturday.")
    r = client.post("/mailings", json=body, headers=h(who))
    assert r.status_code == 201, r.text
    mailing = r.json()
    r = client.post(f"/mailings/{mailing['id']}/send", headers=h(who))
    assert r.status_code == 200, r.text
    return dict(r.json())


def status(client: httpx.Client, mailing: str, who: str = "admin") -> dict[str, Any]:
    r = client.get(f"/mailings/{mailing}", headers=h(who))
    assert r.status_code == 200, r.text
    return dict(r.json())


def webhook(url: str) -> dict[str, Any]:
    return {"url": url, "secret": WEBHOOK_SECRET, "timeout_s": 5}


def test_a_webhook_that_fails_twice_still_receives_the_mailing_exactly_once(tmp_path) -> None:
    with (
        webhook_server(fail=2) as bot,
        serve_api(
            tmp_path, ENGAGEMENT_KEYS, mailings=mailing_settings(webhook=webhook(bot.url))
        ) as (client, app),
    ):
        ann = seed(app.config.database, "07911 100001", visits=((*BEAN, START - DAY),))
        sent = mail(client, "admin", channels=["webhook"])
        assert sent["audience"] == 1 and sent["deliveries"] == {"webhook": {"pending": 1}}
        clock = app.clock
        for attempt in (1, 2):  # each failure waits for its backoff (10 s, then 20 s)

            def attempts(n: int = attempt) -> bool:
                rows = client.get(f"/mailings/{sent['id']}/deliveries", headers=h("admin"))
                return len(bot.requests) >= n and rows.json()[0]["attempts"] == n

            wait_until(attempts, what=f"attempt {attempt} recorded")
            row = client.get(f"/mailings/{sent['id']}/deliveries", headers=h("admin")).json()
            assert row[0]["status"] == "pending" and "HTTP 500" in row[0]["last_error"]
            assert len(bot.requests) == attempt  # not before its next attempt is due
            clock.advance(10 * 2 ** (attempt - 1))  # type: ignore[attr-defined]
        wait_until(lambda: len(bot.delivered) == 1, what="the third attempt")
        wait_until(
            lambda: status(client, sent["id"])["deliveries"] == {"webhook": {"sent": 1}},
            what="the delivery recorded as sent",
        )
        clock.advance(3600)  # type: ignore[attr-defined]
        assert app.dispatcher is not None and app.dispatcher.turn() == 0  # nothing due
    assert len(bot.delivered) == 1 and len(bot.requests) == 3
    first = bot.delivered[0]
    assert signed(first) and first["key"] == f"{sent['id']}:{ann}:webhook"
    assert first["body"]["customer"] == ann and first["body"]["title"] == "Saturday at the mall"
    assert {r["key"] for r in bot.requests} == {first["key"]}  # every attempt the same key


def test_an_smtp_server_receives_the_email_with_an_unsubscribe_link(tmp_path) -> None:
    with smtp_server() as (sink, port):
        smtp = {
            "host": "127.0.0.1",
            "port": port,
            "starttls": False,
            "from_address": "offers@mall.example",
        }
        with serve_api(tmp_path, ENGAGEMENT_KEYS, mailings=mailing_settings(email=smtp)) as (
            client,
            app,
        ):
            seed(
                app.config.database,
                "07911 100001",
                email="ann@example.org",
                visits=((*BEAN, START - DAY),),
            )
            seed(app.config.database, "07911 100002", visits=((*BEAN, START - DAY),))  # no e-mail
            sent = mail(client, "admin", channels=["email"], title="Black Friday")
            assert sent["audience"] == 2  # both selected; only one has an address
            wait_until(lambda: len(sink.messages) == 1, what="the e-mail")
            wait_until(
                lambda: status(client, sent["id"])["deliveries"] == {"email": {"sent": 1}},
                what="the e-mail recorded as sent",
            )
    rcpt, content = sink.messages[0]
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert rcpt == ["ann@example.org"] and message["To"] == "ann@example.org"
    assert (message["Subject"], message["From"]) == ("Black Friday", "offers@mall.example")
    unsubscribe = str(message["List-Unsubscribe"])
    assert unsubscribe.startswith("<http://mall.example/unsubscribe?token=")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = message.get_body()
    assert body is not None and "Hot chocolate" in body.get_content()


def test_unsubscribe_stops_the_next_mailing_and_a_forged_token_is_refused(tmp_path) -> None:
    with (
        webhook_server() as bot,
        serve_api(
            tmp_path, ENGAGEMENT_KEYS, mailings=mailing_settings(webhook=webhook(bot.url))
        ) as (client, app),
    ):
        ann = seed(app.config.database, "07911 100001", visits=((*BEAN, START - DAY),))
        bob = seed(app.config.database, "07911 100002", visits=((*BEAN, START - DAY),))
        first = mail(client, "admin", channels=["webhook"])
        wait_until(lambda: len(bot.delivered) == 2, what="the first mailing")
        link = next(r for r in bot.delivered if r["body"]["customer"] == ann)
        url = urlsplit(link["body"]["unsubscribe_url"])
        assert url.netloc == "mall.example" and url.path == "/unsubscribe"
        forged = url.query.replace("token=", "token=x")
        assert client.get(f"/unsubscribe?{forged}").status_code == 422
        r = client.get(f"/unsubscribe?{url.query}")  # no key: the link in the message
        assert r.status_code == 200 and r.json() == {
            "channel": "webhook",
            "status": "unsubscribed",
        }
        second = mail(client, "admin", channels=["webhook"], title="Next week")
        wait_until(lambda: len(bot.delivered) == 3, what="the second mailing")
        wait_until(
            lambda: status(client, second["id"])["deliveries"] == {"webhook": {"sent": 1}},
            what="the second mailing recorded",
        )
    assert [r["body"]["customer"] for r in bot.delivered[2:]] == [bob]
    assert first["audience"] == 2


def test_consent_and_unsubscribe_are_checked_again_at_send_time(tmp_path) -> None:
    with (
        webhook_server(fail=1) as bot,
        serve_api(
            tmp_path, ENGAGEMENT_KEYS, mailings=mailing_settings(webhook=webhook(bot.url))
        ) as (client, app),
    ):
        seed(app.config.database, "07911 100001", visits=((*BEAN, START - DAY),))
        sent = mail(client, "admin", channels=["webhook"])
        wait_until(lambda: len(bot.requests) == 1, what="the first (failed) attempt")
        wait_until(
            lambda: (
                status(client, sent["id"])["deliveries"] == {"webhook": {"pending": 1}}
                and client.get(f"/mailings/{sent['id']}/deliveries", headers=h("admin")).json()[0][
                    "attempts"
                ]
                == 1
            ),
            what="the failure recorded",
        )
        link = urlsplit(bot.requests[0]["body"]["unsubscribe_url"])
        assert client.post(f"/unsubscribe?{link.query}").status_code == 200  # one-click
        app.clock.advance(60)  # type: ignore[attr-defined]
        wait_until(
            lambda: status(client, sent["id"])["deliveries"] == {"webhook": {"skipped": 1}},
            what="the retry skipped",
        )
        (row,) = client.get(f"/mailings/{sent['id']}/deliveries", headers=h("admin")).json()
        assert row["last_error"] == "unsubscribed"
    assert bot.delivered == [] and len(bot.requests) == 1


def test_a_tenant_reaches_only_its_own_customers(tmp_path, database) -> None:
    with (
        webhook_server() as bot,
        serve_api(
            tmp_path,
            ENGAGEMENT_KEYS,
            database=database,
            mailings=mailing_settings(webhook=webhook(bot.url)),
        ) as (client, app),
    ):
        db = app.config.database
        ann = seed(db, "07911 100001", visits=((*BEAN, START - DAY),))
        cat = seed(db, "07911 100003", purchases=((*BEAN, START - 2 * DAY),))
        bob = seed(db, "07911 100002", visits=((*SHOE, START - DAY),))
        seed(db, "07911 100004", consent=False, visits=((*BEAN, START - DAY),))
        frequent = {"selection": {"min_visits": 1, "visits_within_days": 7}}

        def preview(who: str, **selection: Any) -> httpx.Response:
            return client.post("/mailings/preview", json={"selection": selection}, headers=h(who))

        assert preview("admin").json() == {"audience": 3}  # consent: 3 of 4
        assert preview("bean").json() == {"audience": 2}  # ann (visit) and cat (purchase)
        assert preview("bean", **frequent["selection"]).json() == {"audience": 1}
        assert preview("shoe").json() == {"audience": 1}
        assert preview("bean", store="shoe-hub").status_code == 403
        assert preview("bean", pocket="shoe-hub").status_code == 403
        assert preview("admin", last_visit_within_days=2).json() == {"audience": 2}
        sent = mail(client, "bean", channels=["webhook"])
        assert sent["sender"] == "bean-bar" and sent["audience"] == 2
        wait_until(lambda: len(bot.delivered) == 2, what="the tenant's mailing")
        assert client.get(f"/mailings/{sent['id']}", headers=h("shoe")).status_code == 404
        assert client.post(f"/mailings/{sent['id']}/send", headers=h("bean")).status_code == 409
        assert [m["id"] for m in client.get("/mailings", headers=h("shoe")).json()] == []
        wait_until(
            lambda: status(client, sent["id"], "bean")["deliveries"] == {"webhook": {"sent": 2}},
            what="both deliveries recorded",
        )
        for who, sees in (("bean", True), ("shoe", False)):  # the panel's delivery status
            with httpx.Client(base_url=client.base_url) as browser:
                r = browser.post("/panel/login", data={"key": KEYS[who]})
                assert r.status_code == 303, r.text
                page = browser.get("/panel/mailings")
                assert page.status_code == 200
                assert (f'data-mailing="{sent["id"]}"' in page.text) is sees
                assert ('<td class="num sent">2</td>' in page.text) is sees
    assert sorted(r["body"]["customer"] for r in bot.delivered) == sorted([ann, cat])
    assert bob not in {r["body"]["customer"] for r in bot.delivered}


def test_the_inbox_channel_publishes_a_message_notice_through_the_broker(
    tmp_path, core_settings, run_core, core_client
) -> None:
    config = api_config(tmp_path, ENGAGEMENT_KEYS, core_settings, mailings=mailing_settings())
    ann = seed(config.database, "07911 100001", visits=((*BEAN, START - DAY),))
    inbox = Collector()
    core_client("inbox", subscriptions=[(INBOX.topic(MALL, ann), 1)], on_message=inbox)
    app: CoreApp = run_core(config, only=None)
    with httpx.Client(base_url=f"http://127.0.0.1:{config.api.port}", timeout=10) as client:
        sent = mail(client, "admin", channels=["inbox"], title="Hello", text="Welcome back")
        inbox.wait_for(1)
        wait_until(
            lambda: status(client, sent["id"])["deliveries"] == {"inbox": {"sent": 1}},
            what="the inbox delivery recorded",
        )
    message = decode(inbox.messages[0].topic, inbox.messages[0].payload).message
    assert isinstance(message, MessageNotice)
    assert (message.kind, message.ref, message.title, message.text) == (
        "mailing",
        sent["id"],
        "Hello",
        "Welcome back",
    )
    assert app.dispatcher is not None


def test_the_weekly_digest_lists_the_running_offers_once_a_week(tmp_path) -> None:
    digest = {"weekday": 0, "hour": 11, "channels": ["webhook"]}  # Mondays from 11:00
    settings = mailing_settings(webhook={"url": "", "secret": WEBHOOK_SECRET}, digest=digest)
    with webhook_server() as bot:
        settings["webhook"]["url"] = bot.url
        with serve_api(tmp_path, ENGAGEMENT_KEYS, mailings=settings) as (client, app):
            ann = seed(app.config.database, "07911 100001")
            add_campaign(app.config)  # Bean Bar's "Hot chocolate -20 %", for a week
            assert client.get("/mailings", headers=h("admin")).json() == []  # 10:00: not yet
            app.clock.advance(3600)  # type: ignore[attr-defined]
            wait_until(lambda: len(bot.delivered) == 1, what="the digest")
            assert app.dispatcher is not None
            app.dispatcher.turn()  # the same week again: no second digest
            (sent,) = client.get("/mailings", headers=h("admin")).json()
            assert (sent["id"], sent["kind"], sent["sender"]) == (
                "digest-2026-w48",
                "digest",
                "mall",
            )
            body = bot.delivered[0]["body"]
            assert body["customer"] == ann and body["kind"] == "digest"
            assert "bean-bar: Hot chocolate -20 %" in body["text"]
            app.clock.advance(7 * DAY)  # type: ignore[attr-defined]
            wait_until(lambda: len(bot.delivered) == 2, what="next week's digest")
    assert bot.delivered[1]["body"]["mailing"] == "digest-2026-w49"


def test_review_invitations_reach_the_inbox_once_per_shopper_and_store(tmp_path) -> None:
    settings = mailing_settings(review_invitations={"period_days": 30})
    reviews = {"invite_after_s": 3600, "invite_within_s": 14 * DAY}
    with serve_api(tmp_path, ENGAGEMENT_KEYS, mailings=settings, reviews=reviews) as (_, app):
        db = app.config.database
        ann = seed(db, "07911 100001", visits=((*BEAN, START - 7200), (*SHOE, START - 600)))
        bob = seed(db, "07911 100002", purchases=((*SHOE, START - 3 * 3600),))

        def told() -> list[tuple[str, str]]:
            store = open_store(db)
            try:
                with store.read() as conn:
                    rows = conn.execute(
                        "SELECT customer_id, payload FROM pending_notices ORDER BY seq"
                    ).fetchall()
            finally:
                store.close()
            out = []
            for row in rows:
                message = decode(INBOX.topic(MALL, row[0]), bytes(row[1])).message
                assert isinstance(message, MessageNotice) and message.kind == "review"
                out.append((str(row[0]), message.ref))
            return sorted(out)

        wait_until(lambda: len(told()) == 2, what="the invitations past the delay")
        assert told() == sorted([(ann, "bean-bar-l1"), (bob, "shoe-hub")])
        app.clock.advance(3600)  # type: ignore[attr-defined]
        wait_until(lambda: len(told()) == 3, what="the Shoe Hub visit's invitation")
        assert app.dispatcher is not None
        app.dispatcher.turn()  # again: once per shopper and store per period
        assert told() == sorted([(ann, "bean-bar-l1"), (ann, "shoe-hub"), (bob, "shoe-hub")])


def test_a_mailing_carries_a_coupon_valid_on_one_day_to_each_recipient(tmp_path) -> None:
    """Issue 12: "a coupon valid on a chosen day" in a mailing — one coupon of the sender's
    own series per recipient, named in the message, in the shopper's wallet."""
    with (
        webhook_server(fail=0) as bot,
        serve_api(
            tmp_path,
            ENGAGEMENT_KEYS,
            mailings=mailing_settings(webhook=webhook(bot.url)),
            coupons={"secret": "coupon-test-secret-0123456789"},
        ) as (client, app),
    ):
        ann = seed(app.config.database, "07911 100001", visits=((*BEAN, START - DAY),))
        series = {
            "id": "saturday-cocoa",
            "title": "Hot chocolate -20 %",
            "discount": "-20 % on hot chocolate",
            "emission_start": "2026-11-20T00:00:00Z",
            "emission_end": "2026-12-01T00:00:00Z",
            "total_cap": 100,
            "code_mode": "unique",
            "valid_day": "2026-11-28",
        }
        r = client.post("/coupons/series", json=series, headers=h("bean"))
        assert r.status_code == 201, r.text
        # a tenant's mailing carries its own series only
        other = client.post(
            "/mailings",
            json={
                "title": "x",
                "text": "y",
                "channels": ["webhook"],
                "coupon_series": "saturday-cocoa",
            },
            headers=h("shoe"),
        )
        assert other.status_code == 403, other.text
        sent = mail(client, "bean", channels=["webhook"], coupon_series="saturday-cocoa")
        assert sent["coupon_series"] == "saturday-cocoa" and sent["audience"] == 1
        wait_until(lambda: len(bot.delivered) == 1, what="the mailing with its coupon")
        wallet = client.get(f"/customers/{ann}/coupons", headers=h("admin")).json()
        assert [
            c["series"]["id"] if isinstance(c["series"], dict) else c["series"] for c in wallet
        ] == ["saturday-cocoa"]
        code = wallet[0]["code"]
        text = bot.delivered[0]["body"]["text"]
        assert f"Your coupon {code}: -20 % on hot chocolate (valid on 2026-11-28" in text
        # sending again is refused; the coupon was issued once
        again = client.post(f"/mailings/{sent['id']}/send", headers=h("bean"))
        assert again.status_code == 409
        assert len(client.get(f"/customers/{ann}/coupons", headers=h("admin")).json()) == 1
