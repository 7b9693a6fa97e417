"""Campaigns act only where they belong: a tenant's at its own stores, the mall's anywhere;
deliveries belong to one creation of a campaign, not to its reusable id."""

from __future__ import annotations

from cloud_core.store import open_store
from mallnet.wire import decode, encode
from mallnet.wire.payloads import OfferNotice
from mallnet.wire.topics import INBOX, PRESENCE
from tests.cloud_core.helpers import (
    START,
    Walker,
    add_campaign,
    api_client,
    api_config,
    key_of,
    receipts_collector,
    register,
    wallet,
)
from tests.conftest import MALL, Collector, wait_until

ADMIN = "k-admin-0123456789abcdef"
BEAN = "k-bean-bar-0123456789abcdef"


def deliveries(config) -> dict[str, int]:
    store = open_store(config.database)
    try:
        rows = store.conn.execute("SELECT campaign_id, COUNT(*) FROM deliveries GROUP BY 1")
        return {str(r[0]): int(r[1]) for r in rows}
    finally:
        store.close()


def test_a_tenants_zone_campaign_never_acts_at_a_competitors_store(
    core_config, run_core, connect, core_client
):
    ann = register(core_config, 1, "+44 7911 123001")
    # Bean Bar and Shoe Hub share zone level-1; Bean Bar targets the zone with bonus points
    add_campaign(core_config, id="bean-zone", zones=("level-1",), bonus_points=5)
    add_campaign(core_config, id="mall-zone", business="mall", zones=("level-1",))
    inbox = Collector()
    core_client("inbox", subscriptions=[(INBOX.topic(MALL, ann), 1)], on_message=inbox)
    run_core(core_config)
    receipts, node = receipts_collector(connect, "store-2")  # Shoe Hub's node
    walker = Walker("store-2")
    node.publish(
        PRESENCE.topic(MALL, "store-2"), encode(walker.batch([walker.event(key_of(1), START)]))
    ).wait(10)
    receipts.wait_for(1)
    wait_until(lambda: len(inbox.messages) >= 2, what="the visit's credit and the mall's offer")
    assert wallet(core_config, ann) == {"shoe-hub": 10}  # no Bean Bar points at Shoe Hub
    offered = [
        notice.offer.campaign
        for m in list(inbox.messages)
        if isinstance(notice := decode(m.topic, m.payload).message, OfferNotice)
    ]
    assert offered == ["mall-zone"]  # the mall's own campaign spans the zone
    assert deliveries(core_config) == {"mall-zone": 1}


def test_a_recreated_campaign_id_starts_with_no_deliveries(
    tmp_path, core_settings, run_core, connect, clock
):
    keys = [
        {"name": "office", "role": "admin", "key": ADMIN},
        {"name": "bean", "role": "tenant", "business": "bean-bar", "key": BEAN},
    ]
    config = api_config(tmp_path, keys, core_settings)
    ann = register(config, 1, "+44 7911 123001")
    run_core(config, only=None)
    receipts, node = receipts_collector(connect, "store-1")
    walker = Walker("store-1")
    spring = {
        "id": "spring",
        "title": "Spring blend",
        "text": "Double points.",
        "starts_at": "2026-11-01T00:00:00Z",
        "ends_at": "2026-12-31T00:00:00Z",
        "cap_count": 1,
        "bonus_points": 5,
    }
    with api_client(config) as api:
        api.headers["X-API-Key"] = BEAN
        assert api.post("/campaigns", json=spring).status_code == 201
        node.publish(
            PRESENCE.topic(MALL, "store-1"), encode(walker.batch([walker.event(key_of(1), START)]))
        ).wait(10)
        receipts.wait_for(1)
        assert wallet(config, ann) == {"bean-bar": 15}
        assert api.get("/campaigns/spring").json()["deliveries"] == 1
        # deleted and created again under the same id: a new campaign, nobody has had it
        assert api.delete("/campaigns/spring").status_code == 204
        assert api.post("/campaigns", json=spring).status_code == 201
        assert api.get("/campaigns/spring").json()["deliveries"] == 0
        later = clock.advance(7200)  # past the store's cooldown
        node.publish(
            PRESENCE.topic(MALL, "store-1"), encode(walker.batch([walker.event(key_of(1), later)]))
        ).wait(10)
        receipts.wait_for(2)
        assert wallet(config, ann) == {"bean-bar": 15 + 15}  # the new campaign's offer and bonus
        assert api.get("/campaigns/spring").json()["deliveries"] == 1
    assert deliveries(config) == {"spring": 2}  # the old instance's delivery is history
