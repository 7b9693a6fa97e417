"""Offers target places: stores and car parks alike, a car park being the mall's own place
(not a store in disguise)."""

from __future__ import annotations

from datetime import UTC, datetime

from cloud_core import ledger
from cloud_core.offers import Campaign, CarParkPlace
from cloud_core.parking_config import CarPark


def campaign(business: str, *, stores: tuple[str, ...] = (), zones: tuple[str, ...] = ()):
    return Campaign(
        id="c",
        business=business,
        title="t",
        text="x",
        image_url=None,
        starts_at=datetime(2026, 1, 1, tzinfo=UTC),
        ends_at=datetime(2027, 1, 1, tzinfo=UTC),
        stores=stores,
        zones=zones,
        segment="all",
        cap_count=1,
        cap_period_s=None,
    )


def test_a_car_park_is_a_place_of_the_mall_that_campaigns_target_by_id_or_zone():
    park = CarPark(id="p1", name="North car park", nodes=["gate-1"], zone="north")
    place = CarParkPlace.of(park)
    assert (place.id, place.zone, place.business) == ("p1", "north", ledger.COALITION)
    assert campaign("mall").targets(place)
    assert campaign("mall", zones=("north",)).targets(place)
    assert campaign("mall", stores=("p1",)).targets(place)
    assert not campaign("mall", zones=("south",)).targets(place)
    assert not campaign("bean-bar").targets(place)  # a tenant's offer never acts there
    assert not campaign("bean-bar", zones=("north",)).targets(place)
