"""Request and response bodies of the HTTP API, each with an OpenAPI example."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

from cloud_core.config import Ident


def _example(**example: JsonValue) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})


class FieldProblem(BaseModel):
    model_config = _example(loc=["body", "phone"], msg="Field required", type="missing")
    loc: list[str | int] = Field(
        description="Where: `body`, `query`, `path` or `header`, then the field's path."
    )
    msg: str = Field(description="What is wrong with it.")
    type: str = Field(description="A stable error kind (pydantic's), e.g. `missing`.")


class Problem(BaseModel):
    """An RFC 9457 problem (`application/problem+json`): every 4xx and 5xx answer."""

    model_config = _example(
        type="about:blank",
        title="Not Found",
        status=404,
        detail="no customer 'c0123'",
        instance="/customers/c0123",
    )
    type: str = Field(default="about:blank", description="A URI naming the problem kind.")
    title: str = Field(description="The status's short text, e.g. `Unprocessable Content`.")
    status: int = Field(ge=400, le=599, description="The HTTP status code.")
    detail: str = Field(description="What was wrong, in words.")
    instance: str = Field(description="The path of the request.")
    errors: list[FieldProblem] | None = Field(
        default=None, description="Validation errors (422), one per field."
    )
    reasons: list[str] | None = Field(
        default=None, description="Why the core is not ready (`/ready` 503), one per problem."
    )


class CustomerIn(BaseModel):
    model_config = _example(phone="+44 7911 123456", email="ann@example.com")
    phone: str = Field(min_length=3, max_length=32, description="Any common format; stored E.164.")
    email: str | None = Field(default=None, max_length=254, description="Optional e-mail.")
    referral_code: str | None = Field(
        default=None,
        min_length=4,
        max_length=32,
        description="A friend's referral code: the friend is rewarded on this shopper's first "
        "visit (404 if nobody has it, and nothing is registered).",
    )


class CustomerOut(BaseModel):
    model_config = _example(
        id="c5f0c2a9be1d34c7a8b6e0f1d",
        phone="+447911123456",
        email="ann@example.com",
        created_at="2026-11-23T10:15:30Z",
        beacon_keys=1,
        vehicles=["AB12CDE"],
    )
    id: str = Field(description="Opaque customer id (the inbox topic's id).")
    phone: str = Field(description="E.164 phone number.")
    email: str | None = Field(description="E-mail, if given.")
    created_at: datetime = Field(description="Registration time (UTC).")
    beacon_keys: int = Field(description="How many beacon keys are attached.")
    vehicles: list[str] = Field(description="Attached plates.")


class BeaconKeyIn(BaseModel):
    model_config = _example(key=None)
    key: str | None = Field(
        default=None,
        pattern=r"^[0-9a-fA-F]{64}$",
        description="A 32-byte key as 64 hex digits (a pre-programmed tag); omit to get a new one.",
    )


class BeaconKeyOut(BaseModel):
    model_config = _example(key_id=7, key="9c" * 32)
    key_id: int = Field(description="Id of the attachment.")
    key: str = Field(description="The beacon key (64 hex digits); give it to the app or tag.")


class VehicleIn(BaseModel):
    model_config = _example(plate="AB12 CDE", country="GB")
    plate: str = Field(min_length=2, max_length=16, description="Plate as written.")
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", description="ISO country.")


class VehicleOut(BaseModel):
    model_config = _example(plate="AB12CDE")
    plate: str = Field(description="Normalised plate.")


class PocketOut(BaseModel):
    model_config = _example(
        pocket="bean-bar", balance=30, available=20, next_expiry="2026-11-24T00:00:00Z"
    )
    pocket: str = Field(description="`mall` (coalition) or a business id.")
    balance: int = Field(description="Sum of the pocket's journal.")
    available: int = Field(description="Spendable now (unexpired lots).")
    next_expiry: datetime | None = Field(description="When the next lot expires.")


class WalletOut(BaseModel):
    model_config = _example(
        customer="c5f0c2a9be1d34c7a8b6e0f1d",
        pockets=[{"pocket": "mall", "balance": 50, "available": 50, "next_expiry": None}],
    )
    customer: str = Field(description="Customer id.")
    pockets: list[PocketOut] = Field(description="One entry per pocket with points.")


class CreditOut(BaseModel):
    model_config = _example(
        ts="2026-11-23T10:15:30Z", pocket="bean-bar", points=10, text="Visit: Bean Bar"
    )
    ts: datetime = Field(description="When the points were credited.")
    pocket: str = Field(description="`mall` (coalition) or a business id.")
    points: int = Field(description="Points credited.")
    text: str = Field(description="What the shopper is shown for it.")


class ExpiringOut(BaseModel):
    model_config = _example(pocket="mall", points=20, earliest="2026-11-25T00:00:00Z")
    pocket: str = Field(description="`mall` (coalition) or a business id.")
    points: int = Field(description="Points of the pocket expiring within the window.")
    earliest: datetime = Field(description="The first of those expiries.")


class WalletSummaryOut(BaseModel):
    model_config = _example(
        customer="c5f0c2a9be1d34c7a8b6e0f1d",
        recent=[{"ts": "2026-11-23T10:15:30Z", "pocket": "mall", "points": 10, "text": "Visit"}],
        expiring=[{"pocket": "mall", "points": 20, "earliest": "2026-11-25T00:00:00Z"}],
        expiring_days=7,
    )
    customer: str = Field(description="Customer id.")
    recent: list[CreditOut] = Field(description="The last credits, newest first (at most 5).")
    expiring: list[ExpiringOut] = Field(
        description="Per pocket, points expiring within `expiring_days` days from now."
    )
    expiring_days: int = Field(description="The expiry window in days.")


class KioskCustomerOut(BaseModel):
    model_config = _example(
        id="c5f0c2a9be1d34c7a8b6e0f1d",
        phone="+44*******456",
        pockets=[{"pocket": "mall", "balance": 50, "available": 50, "next_expiry": None}],
    )
    id: str = Field(description="Opaque customer id (the inbox topic's id).")
    phone: str = Field(description="The phone number, masked but for the last digits.")
    pockets: list[PocketOut] = Field(description="The wallet: one entry per pocket with points.")


class JournalEntry(BaseModel):
    model_config = _example(
        id=12,
        ts="2026-11-23T10:16:30Z",
        pocket="bean-bar",
        delta=10,
        kind="grant",
        reason="visit",
        text="+10 points at Bean Bar",
    )
    id: int = Field(description="Journal row id (increasing).")
    ts: datetime = Field(description="When it was written (event time for credits).")
    pocket: str = Field(description="Pocket.")
    delta: int = Field(description="Points added (positive) or removed (negative).")
    kind: Literal["grant", "spend", "expire"] = Field(description="Kind of change.")
    reason: str = Field(description="Why: visit, game, spend, expiry, …")
    text: str = Field(description="Shown to the shopper.")


class SpendIn(BaseModel):
    model_config = _example(points=15, idempotency_key="till-3-receipt-88121", text="Coffee")
    points: int = Field(gt=0, le=1_000_000, description="Points to spend.")
    idempotency_key: str = Field(
        min_length=8, max_length=128, description="Unique per spend; a retry with it is a no-op."
    )
    text: str = Field(default="", max_length=200, description="What for.")


class SpendOut(BaseModel):
    model_config = _example(outcome="spent", points=15, available=5)
    outcome: Literal["spent", "duplicate"] = Field(description="`duplicate`: key seen before.")
    points: int = Field(description="Points spent now (0 for a duplicate).")
    available: int = Field(description="Spendable points left in the pocket.")


class StoreOut(BaseModel):
    model_config = _example(
        id="bean-bar-l1", name="Bean Bar", business="bean-bar", zone="level-1", nodes=["store-1"]
    )
    id: str = Field(description="Store id.")
    name: str = Field(description="Display name.")
    business: str = Field(description="Owning business (its pocket id).")
    zone: str | None = Field(description="Zone.")
    nodes: list[str] = Field(description="Nodes covering it.")


class NodeOut(BaseModel):
    model_config = _example(
        id="store-1",
        store="bean-bar-l1",
        state="online",
        since="2026-11-23T08:00:00Z",
        software="0.1.0",
        last_seen="2026-11-23T10:15:30Z",
        health={"outbox_depth": 0},
    )
    id: str = Field(description="Node id.")
    store: str | None = Field(description="Store it covers (from config).")
    state: str | None = Field(description="Last status: online/offline.")
    since: datetime | None = Field(description="Start of that connection.")
    software: str | None = Field(description="Reported mallnet version.")
    last_seen: datetime | None = Field(description="Last status or health message.")
    health: dict[str, object] | None = Field(description="Last health report.")


CAMPAIGN_EXAMPLE: dict[str, JsonValue] = {
    "id": "winter-coffee",
    "business": "bean-bar",
    "title": "Hot chocolate -20 %",
    "text": "Show this at Bean Bar before Sunday.",
    "image_url": "https://mall.example/img/cocoa.jpg",
    "starts_at": "2026-11-23T00:00:00Z",
    "ends_at": "2026-11-30T00:00:00Z",
    "stores": ["bean-bar-l1"],
    "zones": [],
    "segment": "all",
    "cap_count": 1,
    "cap_period_s": 86400,
    "bonus_points": 5,
}


class CampaignIn(BaseModel):
    model_config = _example(**CAMPAIGN_EXAMPLE)
    id: Ident = Field(description="Campaign id (unique).")
    business: Ident | None = Field(
        default=None, description="Owning business; a tenant's key sets its own."
    )
    title: str = Field(min_length=1, max_length=120, description="Title.")
    text: str = Field(min_length=1, max_length=1000, description="Body text.")
    image_url: str | None = Field(default=None, max_length=500, description="Image URL.")
    starts_at: AwareDatetime = Field(description="Start of validity.")
    ends_at: AwareDatetime = Field(description="End of validity.")
    stores: list[Ident] = Field(
        default=[], description="Target stores (of this business; the mall's: any, or car parks)."
    )
    zones: list[Ident] = Field(default=[], description="Target zones.")
    segment: Literal["all", "new", "returning", "drivers"] = Field(
        default="all", description="Customer segment."
    )
    cap_count: int = Field(default=1, ge=1, le=1000, description="Deliveries per customer …")
    cap_period_s: float | None = Field(
        default=None, gt=0, description="… per this period (none: per campaign)."
    )
    bonus_points: int = Field(
        default=0,
        ge=0,
        le=100_000,
        description="Points credited to the business's pocket with each delivery on a visit.",
    )


class CampaignOut(BaseModel):
    model_config = _example(**CAMPAIGN_EXAMPLE, deliveries=3)
    id: str = Field(description="Campaign id.")
    business: str = Field(description="Owning business.")
    title: str = Field(description="Title.")
    text: str = Field(description="Body text.")
    image_url: str | None = Field(description="Image URL.")
    starts_at: datetime = Field(description="Start of validity.")
    ends_at: datetime = Field(description="End of validity.")
    stores: list[str] = Field(description="Target stores.")
    zones: list[str] = Field(description="Target zones.")
    segment: str = Field(description="Customer segment.")
    cap_count: int = Field(description="Deliveries per customer …")
    cap_period_s: float | None = Field(description="… per this period (none: per campaign).")
    bonus_points: int = Field(description="Points credited with each delivery on a visit.")
    deliveries: int = Field(description="Offers delivered so far.")


class OfferOut(BaseModel):
    model_config = _example(
        campaign="winter-coffee",
        business="bean-bar",
        title="Hot chocolate -20 %",
        text="Show this at Bean Bar before Sunday.",
        image_url=None,
        valid_until="2026-11-30T00:00:00Z",
    )
    campaign: str = Field(description="Campaign id.")
    business: str = Field(description="Business.")
    title: str = Field(description="Title.")
    text: str = Field(description="Text.")
    image_url: str | None = Field(description="Image.")
    valid_until: datetime = Field(description="End of validity.")


class VisitStats(BaseModel):
    model_config = _example(
        store="bean-bar-l1", day="2026-11-23", visits=42, customers=37, points=400
    )
    store: str = Field(description="Store.")
    day: str = Field(description="Local day.")
    visits: int = Field(description="Qualifying visits.")
    customers: int = Field(description="Distinct customers.")
    points: int = Field(description="Visit points credited.")


class FootfallStats(BaseModel):
    model_config = _example(
        node="store-1", hour="2026-11-23T10:00Z", unique_tags=120, adverts=9000, windows=60
    )
    node: str = Field(description="Node.")
    hour: str = Field(description="UTC hour.")
    unique_tags: int = Field(description="Sum of per-window unique tags.")
    adverts: int = Field(description="Adverts heard.")
    windows: int = Field(description="Aggregation windows received.")


class DeadLetterOut(BaseModel):
    model_config = _example(
        id=1,
        ts="2026-11-23T10:15:30Z",
        node="x",
        topic="mall/v1/demo/nodes/x/presence",
        kind="json",
        reason="not JSON",
        size=1,
        sha256="a" * 64,
        kept=1,
        payload="{",
    )
    id: int = Field(description="Row id (increasing; page with `before_id`).")
    ts: datetime = Field(description="When it was rejected.")
    node: str = Field(description="The node the topic names (empty if none).")
    topic: str = Field(description="Topic it came on.")
    kind: str = Field(description="Wire error kind, or `unauthorised`, `mall`, `error`.")
    reason: str = Field(description="Why.")
    size: int = Field(description="Size of the payload as received (bytes).")
    sha256: str = Field(description="SHA-256 (hex) of the payload as received.")
    kept: int = Field(description="Bytes of it kept (`ingest.dead_letters.payload_max_bytes`).")
    payload: str = Field(
        description="The kept bytes as UTF-8 (undecodable bytes replaced); in lists only the "
        "first `preview` bytes."
    )


class ErasedOut(BaseModel):
    model_config = _example(
        customer="c5f0c2a9be1d34c7a8b6e0f1d", removed={"customers": 1, "journal": 4}
    )
    customer: str = Field(description="Erased customer id.")
    removed: dict[str, int] = Field(description="Rows removed per table.")


class IngestStats(BaseModel):
    model_config = _example(
        outcomes={"credited": 10, "short": 30},
        dead_letters=1,
        dead_letters_by_node={"store-1": {"kept": 3, "truncated": 1, "evicted": 2}},
        api_refused={"401": 2, "422": 1},
    )
    outcomes: dict[str, int] = Field(description="Processed events by outcome.")
    dead_letters: int = Field(description="Dead letters kept.")
    dead_letters_by_node: dict[str, dict[str, int]] = Field(
        description="Per node: dead letters `kept`, payloads `truncated` (and "
        "`truncated_bytes`), rows `evicted` by the row bound or `expired` by age, retained "
        "`repeat`s not kept again, and retained event messages ignored (`retained_ignored`)."
    )
    api_refused: dict[str, int] = Field(
        description="API requests refused (4xx) by status, since this API process started."
    )


AnyCustomerOut = CustomerOut | KioskCustomerOut
"""The admin's full view, or a kiosk's view of the customer who just identified."""
