"""One valid example per payload model: shown in docs/wire.md and round-tripped by tests."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel

from mallnet.wire import payloads as p

_TS = datetime(2026, 11, 23, 10, 15, 30, 250000, tzinfo=UTC)
_ID = "019aaf3c-4a10-7c3e-9f21-6b0e2d4c8a11"
_ID2 = "019aaf3c-4a11-7000-8a5b-2f9d0c1e3b42"
_TAG = "5f0c2a9be1d34c7a8b6e0f1d2c3b4a59"
_OFFER = p.OfferCard(
    campaign="winter-coffee",
    business="bean-bar",
    title="Hot chocolate -20 %",
    text="Show this at Bean Bar on level 1 before Sunday.",
    image_url="https://mall.example/img/cocoa.jpg",
    valid_until=datetime(2026, 11, 29, 21, 0, tzinfo=UTC),
)

EXAMPLES: dict[str, BaseModel] = {
    "PresenceBatch": p.PresenceBatch(
        node="store-bean-bar-1",
        events=(
            p.PresenceEvent(
                id=_ID,
                seq=41,
                ts=_TS,
                kind="enter",
                tag=_TAG,
                rssi=-67.5,
                distance_m=2.4,
                inside_s=0.0,
            ),
            p.PresenceEvent(
                id=_ID2,
                seq=42,
                ts=_TS,
                kind="dwell",
                tag=_TAG,
                rssi=-66.0,
                distance_m=2.1,
                inside_s=60.0,
            ),
        ),
    ),
    "FootfallBatch": p.FootfallBatch(
        node="store-bean-bar-1",
        events=(
            p.FootfallEvent(
                id=_ID,
                seq=43,
                ts=_TS,
                window_start=_TS.replace(second=0, microsecond=0),
                window_s=60,
                unique_tags=17,
                adverts=2210,
            ),
        ),
    ),
    "ParkingBatch": p.ParkingBatch(
        node="gate-north",
        events=(
            p.ParkingEvent(
                id=_ID,
                seq=7,
                ts=_TS,
                kind="entry",
                gate="north-in",
                plate="AA1234BC",
                confidence=0.97,
                country="UA",
            ),
        ),
    ),
    "HealthReport": p.HealthReport(
        id=_ID,
        seq=900,
        ts=_TS,
        node="store-bean-bar-1",
        uptime_s=86400.0,
        adverts_per_s=36.5,
        events_per_s=0.4,
        outbox_depth=3,
        outbox_oldest_age_s=1.2,
        outbox_dropped=0,
        scanner_restarts=1,
        adapter_resets=0,
        cpu_temp_c=51.2,
        load_1m=0.21,
    ),
    "DeviceStatus": p.DeviceStatus(
        state="online", device="store-bean-bar-1", since=_TS, software="0.1.0"
    ),
    "NodeConfig": p.NodeConfig(
        revision=12, presence=p.PresenceTuning(radius_m=6.0, enter_dwell_s=30.0)
    ),
    "Receipt": p.Receipt(ts=_TS, ids=(_ID, _ID2)),
    "CheckinBatch": p.CheckinBatch(
        node="kiosk-atrium",
        events=(
            p.CheckinEvent(
                id=_ID,
                seq=5,
                ts=_TS,
                token="mallnet:c:7f3a9b",  # noqa: S106 - a QR text, not a secret
                store=None,
            ),
        ),
    ),
    "KioskOffers": p.KioskOffers(ts=_TS, offers=(_OFFER,)),
    "KioskSettings": p.KioskSettings(
        revision=3, store="bean-bar-l1", language="uk", idle_timeout_s=45.0, carousel_s=6.0
    ),
    "InboxMessage": p.CreditNotice(
        id=_ID, ts=_TS, points=10, pocket="bean-bar", reason="visit", text="+10 points at Bean Bar"
    ),
}
