"""Payload models of the v1 contract.

Every model is frozen and rejects unknown fields. Every event carries ``v`` (the
schema version), ``id`` (a UUIDv7 made at its source), ``seq`` (the source's
monotonic sequence number) and ``ts`` (UTC). Messages from devices are batches
of events with the sending device's id, which must match the topic.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from mallnet.wire.topics import ID_PATTERN

SCHEMA_VERSION: Literal[1] = 1
MAX_BATCH = 500


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


EntityId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
EventId = Annotated[
    str,
    StringConstraints(
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
    ),
]
UtcTime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
TagId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
Plate = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2,10}$")]
Version = Literal[1]


class WireModel(BaseModel):
    """Base of every payload: frozen, strict, unknown fields rejected, numbers finite
    (``NaN`` and ``Infinity`` are not JSON, and would poison sums and stored rows)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


class Event(WireModel):
    """Fields every event carries."""

    v: Version = Field(default=SCHEMA_VERSION, description="Schema version.")
    id: EventId = Field(description="UUIDv7 made at the source; the idempotency key everywhere.")
    seq: int = Field(ge=0, description="The source's monotonic sequence number.")
    ts: UtcTime = Field(description="When the event happened at the source (UTC).")


# --- node → core ---------------------------------------------------------------


class PresenceEvent(Event):
    kind: Literal["enter", "dwell", "exit"] = Field(description="What the tag did.")
    tag: TagId = Field(description="The rotating ephemeral id (hex) the shopper's beacon sent.")
    rssi: float = Field(ge=-127, le=20, description="Filtered RSSI in dBm.")
    distance_m: float = Field(ge=0, le=1000, description="Estimated distance from the node.")
    inside_s: float = Field(ge=0, description="Seconds since the enter (0 for enter).")


class PresenceBatch(WireModel):
    v: Version = SCHEMA_VERSION
    node: EntityId = Field(description="The sending node; must match the topic.")
    events: tuple[PresenceEvent, ...] = Field(min_length=1, max_length=MAX_BATCH)


class FootfallEvent(Event):
    window_start: UtcTime = Field(description="Start of the aggregation window (UTC).")
    window_s: int = Field(gt=0, le=3600, description="Length of the window in seconds.")
    unique_tags: int = Field(ge=0, description="Distinct ephemeral ids heard in the window.")
    adverts: int = Field(ge=0, description="Program adverts heard in the window.")


class FootfallBatch(WireModel):
    v: Version = SCHEMA_VERSION
    node: EntityId
    events: tuple[FootfallEvent, ...] = Field(min_length=1, max_length=MAX_BATCH)


class ParkingEvent(Event):
    kind: Literal["entry", "exit"] = Field(description="Direction of travel through the gate.")
    gate: EntityId = Field(description="The gate (a node may watch several lanes).")
    plate: Plate = Field(description="Normalised plate text: upper-case letters and digits.")
    confidence: float = Field(ge=0, le=1, description="Reader confidence after voting.")
    country: str | None = Field(
        default=None, pattern=r"^[A-Z]{2}$", description="ISO 3166 country the format matched."
    )


class ParkingBatch(WireModel):
    v: Version = SCHEMA_VERSION
    node: EntityId
    events: tuple[ParkingEvent, ...] = Field(min_length=1, max_length=MAX_BATCH)


class HealthReport(Event):
    node: EntityId
    uptime_s: float = Field(ge=0)
    adverts_per_s: float = Field(ge=0)
    events_per_s: float = Field(ge=0)
    outbox_depth: int = Field(ge=0, description="Events waiting for a receipt.")
    outbox_oldest_age_s: float = Field(ge=0, description="Age of the oldest waiting event.")
    outbox_dropped: int = Field(ge=0, description="Events dropped oldest-first to bound the disk.")
    scanner_restarts: int = Field(ge=0)
    adapter_resets: int = Field(ge=0)
    cpu_temp_c: float | None = Field(default=None, description="SoC temperature on a Pi.")
    load_1m: float | None = Field(default=None, ge=0)
    camera_ok: bool | None = Field(default=None, description="Camera gates only.")


class DeviceStatus(WireModel):
    v: Version = SCHEMA_VERSION
    state: Literal["online", "offline"]
    device: EntityId
    since: UtcTime = Field(description="When this connection started.")
    software: str = Field(max_length=64, description="mallnet version of the device.")


# --- core → node ---------------------------------------------------------------


class PresenceTuning(WireModel):
    radius_m: float | None = Field(default=None, gt=0, le=100)
    enter_dwell_s: float | None = Field(default=None, ge=0, le=3600)
    exit_timeout_s: float | None = Field(default=None, gt=0, le=3600)
    dwell_report_s: float | None = Field(default=None, gt=0, le=3600)
    rx_adjust_db: float | None = Field(default=None, ge=-30, le=30)


class NodeConfig(WireModel):
    v: Version = SCHEMA_VERSION
    revision: int = Field(ge=0, description="Increases with every change; older ones are ignored.")
    presence: PresenceTuning | None = None


class Receipt(WireModel):
    v: Version = SCHEMA_VERSION
    ts: UtcTime
    ids: tuple[EventId, ...] = Field(
        min_length=1, max_length=MAX_BATCH * 4, description="Event ids now committed at the core."
    )


# --- kiosk ↔ core --------------------------------------------------------------


class CheckinEvent(Event):
    token: str = Field(
        min_length=1,
        max_length=512,
        description="Who checks in: `customer:<id>`, `phone:<E.164>` or `receipt:<id>:<text>` "
        "(docs/kiosk.md).",
    )
    store: EntityId | None = Field(
        default=None,
        description="The store visited (the kiosk's own, or a scanned store QR); none: a visit "
        "to the kiosk itself.",
    )


class CheckinBatch(WireModel):
    v: Version = SCHEMA_VERSION
    node: EntityId = Field(description="The sending kiosk; must match the topic.")
    events: tuple[CheckinEvent, ...] = Field(min_length=1, max_length=MAX_BATCH)


class OfferCard(WireModel):
    campaign: EntityId
    business: EntityId
    title: str = Field(max_length=120)
    text: str = Field(max_length=1000)
    image_url: str | None = Field(default=None, max_length=500)
    valid_until: UtcTime


class KioskOffers(WireModel):
    v: Version = SCHEMA_VERSION
    ts: UtcTime
    offers: tuple[OfferCard, ...] = Field(max_length=200)


class KioskSettings(WireModel):
    """What the core sets for one kiosk: its store always (the core counts its check-ins
    by it); any other field left out keeps the kiosk's own setting."""

    v: Version = SCHEMA_VERSION
    revision: int = Field(ge=0, description="Increases with every change; older ones are ignored.")
    store: EntityId | None = Field(
        default=None,
        description="The store the kiosk stands in as the core sees it (None: the mall).",
    )
    language: Literal["en", "uk", "ru"] | None = Field(
        default=None, description="The language the kiosk returns to when idle."
    )
    idle_timeout_s: float | None = Field(
        default=None, ge=5, le=3600, description="No touch for this long: back to idle, forget."
    )
    carousel_s: float | None = Field(
        default=None, gt=0, le=600, description="Seconds per offer on the idle screen."
    )


# --- core → customer -----------------------------------------------------------


class CreditNotice(WireModel):
    v: Version = SCHEMA_VERSION
    type: Literal["credit"] = "credit"
    id: EventId
    ts: UtcTime
    points: int = Field(description="Positive for credits, negative for spends and expiries.")
    pocket: EntityId = Field(description="`mall` for the coalition pocket, else the business.")
    reason: Literal[
        "visit",
        "game",
        "parking",
        "checkin",
        "expiry",
        "spend",
        "adjustment",
        "cashback",
        "redemption",
        "release",
        "refund",
        "reversal",
        "certificate",
        "gift",
        "goods",
        "referral",
        "lottery",
        "showcase",
    ] = Field(
        description="Why: a credit (visit, game, parking, checkin, cashback, certificate: a "
        "paper bonus certificate scanned, gift: a prepaid gift certificate's money activated; "
        "goods: items of a goods account, `points` counting items; referral: a friend you invited "
        "made their first visit; lottery: a prize), "
        "a write-off "
        "(spend, redemption at a till, expiry, reversal of a refunded purchase's cashback) or "
        "points back (release of an unused hold, refund of a purchase); showcase: a gift of "
        "the mall's showcase bought with points (its promo code in `text`)."
    )
    text: str = Field(max_length=300, description="Ready to show, e.g. '+10 points at Store X'.")


class ExpiringNotice(WireModel):
    """Points of one pocket that expire soon (sent once per lot, `spending.expiring_notice_days`
    before)."""

    v: Version = SCHEMA_VERSION
    type: Literal["expiring"] = "expiring"
    id: EventId
    ts: UtcTime
    points: int = Field(gt=0, description="Points that will expire.")
    pocket: EntityId = Field(description="`mall` for the coalition pocket, else the business.")
    expires_at: UtcTime = Field(description="When they expire.")
    text: str = Field(max_length=300, description="Ready to show.")


class MessageNotice(WireModel):
    """A message the mall or a tenant sent (a mailing, the weekly digest, an invitation to
    review a store); a repeat carries the same id."""

    v: Version = SCHEMA_VERSION
    type: Literal["message"] = "message"
    id: EventId
    ts: UtcTime
    kind: Literal["mailing", "digest", "review"] = Field(description="What sent it.")
    ref: str = Field(max_length=64, description="The mailing's id (`review`: the store to review).")
    title: str = Field(max_length=120, description="Ready to show.")
    text: str = Field(max_length=2000, description="Ready to show.")


class OfferNotice(WireModel):
    v: Version = SCHEMA_VERSION
    type: Literal["offer"] = "offer"
    id: EventId
    ts: UtcTime
    trigger: Literal["visit", "parking", "checkin"]
    offer: OfferCard


InboxMessage = Annotated[
    CreditNotice | OfferNotice | ExpiringNotice | MessageNotice, Field(discriminator="type")
]
