"""Reviews and ratings (cloud_core/reviews.py) over the API on uvicorn: a visit invites a
review after a delay, a table QR invites one without a visit, the mall moderates, the tenant
replies, and a store's rating counts published reviews only."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cloud_core.app import CoreApp
from cloud_core.reviews import table_code
from tests.cloud_core.api_helpers import KEYS, h
from tests.cloud_core.helpers import serve_api
from tests.cloud_core.test_store_qr import API_KEYS, KEY, SECRET, scan
from tests.conftest import MALL

BOTH_BACKENDS = True  # tests using the ``database`` fixture run on SQLite and PostgreSQL
KEYS_WITH_SHOE = [
    *API_KEYS,
    {"name": "shoe", "role": "tenant", "business": "shoe-hub", "key": KEYS["shoe"]},
]


@pytest.fixture
def api(tmp_path, database) -> Iterator[tuple[httpx.Client, CoreApp]]:
    with serve_api(
        tmp_path,
        KEYS_WITH_SHOE,
        database=database,
        store_qr={"secret": SECRET},
        reviews={"invite_after_s": 3600, "invite_within_s": 86400},
    ) as served:
        yield served


def shopper(client: httpx.Client, n: int) -> str:
    r = client.post("/customers", json={"phone": f"+4479111230{n:02d}"}, headers=h("kiosk"))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def review(client: httpx.Client, **body: object) -> httpx.Response:
    return client.post("/reviews", json=body, headers=h("kiosk"))


def test_a_visit_invites_a_review_after_the_delay_and_the_rating_counts_published_ones(api):
    client, app = api
    ann, bob = shopper(client, 1), shopper(client, 2)
    code = client.get("/stores/shoe-hub/qr", headers=h("admin")).json()["code"]
    for customer in (ann, bob):
        assert scan(client, customer, code).json()["outcome"] == "credited"

    assert client.get(f"/customers/{ann}/review-invitations", headers=h("kiosk")).json() == []
    early = review(client, customer=ann, store="shoe-hub", stars=5, text="Great")
    assert early.status_code == 409  # not yet: the delay has not passed
    app.clock.advance(3600)
    invited = client.get(f"/customers/{ann}/review-invitations", headers=h("kiosk")).json()
    assert [(i["store"], i["name"]) for i in invited] == [("shoe-hub", "Shoe Hub")]
    assert review(client, customer=ann, store="book-nook", stars=1).status_code == 409  # no visit

    first = review(client, customer=ann, store="shoe-hub", stars=5, text=" Great service ")
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "pending" and first.json()["text"] == "Great service"
    assert review(client, customer=ann, store="shoe-hub", stars=1).status_code == 409  # once
    assert client.get(f"/customers/{ann}/review-invitations", headers=h("kiosk")).json() == []
    second = review(client, customer=bob, store="shoe-hub", stars=2, text="Slow")
    third_bad = review(client, customer=bob, store="shoe-hub", stars=6)
    assert third_bad.status_code == 422

    rating = client.get("/stores/shoe-hub/rating", headers=h("kiosk")).json()
    assert rating == {"store": "shoe-hub", "reviews": 0, "average": None, "histogram": [0] * 5}
    ann_id, bob_id = first.json()["id"], second.json()["id"]
    publish = {"decision": "publish"}
    assert (
        client.post(f"/reviews/{ann_id}/moderation", json=publish, headers=h("shoe")).status_code
        == 403
    )  # moderation is the mall's
    r = client.post(f"/reviews/{ann_id}/moderation", json=publish, headers=h("admin"))
    assert r.status_code == 200 and r.json()["status"] == "published"
    reject = {"decision": "reject", "note": "off-topic"}
    r = client.post(f"/reviews/{bob_id}/moderation", json=reject, headers=h("admin"))
    assert r.json()["status"] == "rejected" and r.json()["moderation_note"] == "off-topic"
    rating = client.get("/stores/shoe-hub/rating", headers=h("kiosk")).json()
    assert rating == {
        "store": "shoe-hub",
        "reviews": 1,
        "average": 5.0,
        "histogram": [0, 0, 0, 0, 1],
    }

    # the tenant replies to its own store's reviews, not to another business's
    r = client.post(f"/reviews/{ann_id}/reply", json={"text": "Thank you!"}, headers=h("shoe"))
    assert r.status_code == 200 and r.json()["reply"] == "Thank you!"
    other = client.post(f"/reviews/{ann_id}/reply", json={"text": "x"}, headers=h("bean"))
    assert other.status_code == 403
    mine = client.get("/reviews", headers=h("shoe")).json()
    assert {x["id"] for x in mine} == {ann_id, bob_id}
    assert client.get("/reviews", headers=h("bean")).json() == []
    pending = client.get("/reviews", params={"status": "pending"}, headers=h("admin")).json()
    assert pending == []


def test_a_table_qr_invites_a_review_without_a_visit_and_a_forged_one_is_refused(api):
    client, _app = api
    cat = shopper(client, 3)
    r = client.get("/stores/bean-bar-l1/table-qr", params={"table": "t12"}, headers=h("bean"))
    assert r.status_code == 200, r.text
    code = r.json()["code"]
    assert code == table_code(KEY, MALL, "bean-bar-l1", "t12")
    shoe = client.get("/stores/shoe-hub/table-qr", params={"table": "t1"}, headers=h("bean"))
    assert shoe.status_code == 403

    forged = review(client, customer=cat, store="bean-bar-l1", stars=4, table_code=code[:-2] + "AA")
    assert forged.status_code == 422 and "forged or altered" in forged.json()["detail"]
    elsewhere = review(client, customer=cat, store="shoe-hub", stars=4, table_code=code)
    assert elsewhere.status_code == 422 and "another store" in elsewhere.json()["detail"]
    ok = review(client, customer=cat, store="bean-bar-l1", stars=4, text="Nice", table_code=code)
    assert ok.status_code == 201, ok.text
    assert ok.json()["source"] == "table"


def test_a_purchase_at_a_till_invites_a_review_after_the_delay(tmp_path):
    from tests.cloud_core.terminal_helpers import serve_terminal, tk

    with serve_terminal(tmp_path, reviews={"invite_after_s": 3600}) as (client, app):
        eve = shopper(client, 5)
        body = {"customer": eve, "receipt": "R-9", "amount_cents": 2500}
        assert client.post("/terminal/purchases", json=body, headers=tk("pizza")).status_code == 201
        assert client.get(f"/customers/{eve}/review-invitations", headers=h("kiosk")).json() == []
        app.clock.advance(3600)  # type: ignore[attr-defined]  # the test Clock
        invited = client.get(f"/customers/{eve}/review-invitations", headers=h("kiosk")).json()
        assert [i["store"] for i in invited] == ["pizzeria-l2"]
        r = review(client, customer=eve, store="pizzeria-l2", stars=4, text="Good pizza")
        assert r.status_code == 201, r.text
