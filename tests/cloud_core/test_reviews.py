"""Reviews and ratings through the real core (uvicorn + HTTP, the invitation job on the
dispatcher thread): only an invited shopper may review, once; a visit invites after the
delay and once per period; a table's signed QR invites, a forged one does not; the tenant
replies to its own store's reviews; the mall hides a review and the ratings drop it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cloud_core.app import CoreApp
from cloud_core.store import open_store
from tests.cloud_core.api_helpers import h
from tests.cloud_core.engagement_helpers import ENGAGEMENT_KEYS, REVIEW_SECRET, seed
from tests.cloud_core.helpers import START, serve_api
from tests.cloud_core.shopper_helpers import ANN, BOB, CARD_SECRET, bearer, catch_codes, sign_in
from tests.conftest import wait_until

HOUR = 3600.0
BEAN = ("bean-bar-l1", "bean-bar")
SHOE = ("shoe-hub", "shoe-hub")


BOTH_BACKENDS = True  # every test here runs on SQLite and PostgreSQL


@pytest.fixture
def mall(tmp_path, database) -> Iterator[tuple[httpx.Client, CoreApp, Any]]:
    reviews = {
        "secret": REVIEW_SECRET,
        "invite_delay_s": HOUR,
        "invite_period_days": 30,
        "text_max": 200,
    }
    with (
        catch_codes() as codes,
        serve_api(
            tmp_path,
            ENGAGEMENT_KEYS,
            database=database,
            reviews=reviews,
            cards={"secret": CARD_SECRET},
        ) as (client, app),
    ):
        yield client, app, codes


def invitations(client: httpx.Client, token: str) -> list[dict[str, Any]]:
    r = client.get("/me/review-invitations", headers=bearer(token))
    assert r.status_code == 200, r.text
    return list(r.json())


def review(client: httpx.Client, token: str, invitation: str, stars: int, text: str = "") -> Any:
    body = {"invitation": invitation, "stars": stars, "text": text}
    return client.post("/me/reviews", json=body, headers=bearer(token))


def test_only_the_invited_shopper_reviews_once_after_a_visits_delay(mall) -> None:
    client, app, codes = mall
    db = app.config.database
    seed(db, ANN, visits=((*BEAN, START - 2 * HOUR), (*SHOE, START - 600)))
    seed(db, BOB, purchases=((*SHOE, START - 3 * HOUR),))
    ann, bob = sign_in(client, codes, ANN), sign_in(client, codes, BOB)
    wait_until(lambda: len(invitations(client, ann)) == 1, what="the visit's invitation")
    (invited,) = invitations(client, ann)
    assert (invited["store"], invited["source"]) == ("bean-bar-l1", "visit")
    (bobs,) = invitations(client, bob)  # after his purchase, at Shoe Hub only
    assert (bobs["store"], bobs["source"]) == ("shoe-hub", "purchase")
    # the Shoe Hub visit is 10 minutes old: invited only once the delay has passed
    app.clock.advance(HOUR)
    wait_until(lambda: len(invitations(client, ann)) == 2, what="the second visit's invitation")
    assert app.dispatcher is not None
    app.dispatcher.turn()  # again: once per shopper and store per period
    assert sorted(i["store"] for i in invitations(client, ann)) == ["bean-bar-l1", "shoe-hub"]
    store = open_store(db)
    try:
        with store.read() as conn:
            kinds = [bytes(r[0]) for r in conn.execute("SELECT payload FROM pending_notices")]
    finally:
        store.close()
    assert len(kinds) == 3 and all(b'"kind":"review"' in k for k in kinds)  # to the inbox

    assert review(client, bob, invited["id"], 5).status_code == 404  # not his invitation
    assert review(client, ann, invited["id"], 6).status_code == 422
    assert review(client, ann, invited["id"], 4, "x" * 201).status_code == 422
    r = review(client, ann, invited["id"], 4, "Good coffee")
    assert r.status_code == 201, r.text
    assert (r.json()["stars"], r.json()["text"], r.json()["hidden"]) == (4, "Good coffee", False)
    assert review(client, ann, invited["id"], 1).status_code == 409  # once
    assert [i["store"] for i in invitations(client, ann)] == ["shoe-hub"]


def test_a_table_qr_invites_the_tenant_replies_and_the_mall_moderates(mall) -> None:
    client, app, codes = mall
    ann_id = seed(app.config.database, ANN, visits=((*BEAN, START - 2 * HOUR),))
    seed(app.config.database, BOB)
    ann, bob = sign_in(client, codes, ANN), sign_in(client, codes, BOB)
    assert client.get("/stores/bean-bar-l1/review-code", headers=h("shoe")).status_code == 403
    r = client.get("/stores/bean-bar-l1/review-code", headers=h("bean"))
    assert r.status_code == 200, r.text
    code = r.json()["code"]
    forged = code[:-1] + ("0" if code[-1] != "0" else "1")
    for bad in (forged, code.replace("bean-bar-l1", "shoe-hub")):
        r = client.post("/me/review-invitations", json={"code": bad}, headers=bearer(bob))
        assert r.status_code == 422, r.text
    r = client.post("/me/review-invitations", json={"code": code}, headers=bearer(bob))
    assert r.status_code == 201 and r.json()["source"] == "qr"
    again = client.post("/me/review-invitations", json={"code": code}, headers=bearer(bob))
    assert again.json()["id"] == r.json()["id"]  # one a day
    bobs = review(client, bob, r.json()["id"], 2, "Cold soup").json()
    wait_until(lambda: len(invitations(client, ann)) == 1, what="ann's invitation")
    anns = review(client, ann, invitations(client, ann)[0]["id"], 4, "Good").json()

    def rating(who: str = "kiosk") -> dict[str, Any]:
        r = client.get("/stores/bean-bar-l1/ratings", headers=h(who))
        assert r.status_code == 200, r.text
        return dict(r.json())

    dist = {"1": 0, "2": 1, "3": 0, "4": 1, "5": 0}
    assert rating() == {"store": "bean-bar-l1", "count": 2, "average": 3.0, "distribution": dist}

    reply = {"text": "Sorry, we fixed the soup."}
    assert (
        client.post(f"/reviews/{bobs['id']}/reply", json=reply, headers=h("shoe")).status_code
        == 403
    )
    r = client.post(f"/reviews/{bobs['id']}/reply", json=reply, headers=h("bean"))
    assert r.status_code == 200 and r.json()["reply"] == reply["text"]

    hide = {"hidden": True, "reason": "offensive language"}
    assert (
        client.post(f"/reviews/{bobs['id']}/moderation", json=hide, headers=h("bean")).status_code
        == 403
    )
    r = client.post(f"/reviews/{bobs['id']}/moderation", json=hide, headers=h("admin"))
    assert r.status_code == 200 and r.json()["hidden"] is True
    dist = {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}
    assert rating() == {"store": "bean-bar-l1", "count": 1, "average": 4.0, "distribution": dist}
    public = client.get("/stores/bean-bar-l1/reviews", headers=h("kiosk")).json()
    assert [x["id"] for x in public] == [anns["id"]]
    office = client.get("/stores/bean-bar-l1/reviews", headers=h("admin")).json()
    hidden = next(x for x in office if x["id"] == bobs["id"])
    assert hidden["hidden"] and hidden["moderation_reason"] == "offensive language"
    assert hidden["reply"] == reply["text"]
    show = {"hidden": False, "reason": "edited by the shopper"}
    client.post(f"/reviews/{bobs['id']}/moderation", json=show, headers=h("admin"))
    assert rating()["count"] == 2
    # erasure takes a shopper's reviews and invitations with them
    assert client.delete(f"/customers/{ann_id}", headers=h("admin")).status_code in (200, 204)
    assert rating()["count"] == 1
