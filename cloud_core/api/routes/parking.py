"""The parking routes: free-parking validation, a customer's sessions, occupancy per car park.

Validation codes are checked against the mall's validation secret; a tenant may only
redeem its own business's codes. Unregistered drivers validate by plate, which is only
ever turned into its keyed hash here. Routes answer 404 when the core runs without a
``parking`` config.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from cloud_core import customers, parking_codes, parking_sessions, reports
from cloud_core.api.auth import ApiContext
from cloud_core.api.deps import Admin, AdminOrKiosk, AdminOrTenant, Ctx, Staff, own_business
from cloud_core.api.models import Problem
from cloud_core.errors import InvalidInput
from cloud_core.parking_config import ParkingSettings
from mallnet.plates import normalise_plate

router = APIRouter(
    prefix="/parking",
    tags=["parking"],
    responses={
        401: {"model": Problem, "description": "Missing or unknown API key."},
        403: {"model": Problem, "description": "Your role or business may not do this."},
        404: {"model": Problem, "description": "No such thing, or parking is not configured."},
    },
)


def _example(**example: JsonValue) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})


class CodesIn(BaseModel):
    model_config = _example(business="cinema", minutes=180, serials=["A0001", "A0002"])
    business: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="The partner.")
    minutes: int = Field(ge=1, le=9999, description="Free minutes each code gives.")
    serials: list[str] = Field(
        min_length=1, max_length=1000, description="The partner's serial numbers (A–Z, 0–9)."
    )


class CodesOut(BaseModel):
    model_config = _example(codes=["P180-cinema-A0001-3f9c2a7b1d04"])
    codes: list[str] = Field(description="Printable coupon codes, one per serial.")


class ValidationIn(BaseModel):
    model_config = _example(
        code="P180-cinema-A0001-3f9c2a7b1d04", customer="c5f0c2a9be1d34c7a8b6e0f1"
    )
    code: str = Field(min_length=8, max_length=120, description="The coupon code as printed.")
    customer: str | None = Field(default=None, description="The driver's customer id …")
    plate: str | None = Field(default=None, max_length=16, description="… or the car's plate.")

    @model_validator(mode="after")
    def _one(self) -> ValidationIn:
        if (self.customer is None) == (self.plate is None):
            raise ValueError("give either customer or plate")
        return self


class ValidationOut(BaseModel):
    model_config = _example(outcome="validated", minutes=180)
    outcome: Literal["validated", "invalid", "used", "no_session"] = Field(
        description="validated: minutes added to the open session; used: the code was redeemed "
        "before; no_session: the car is not parked in the mall now."
    )
    minutes: int = Field(description="Free minutes this code added.")


class SessionOut(BaseModel):
    model_config = _example(
        car_park="north",
        status="closed",
        entry="2026-11-23T10:15:30Z",
        exit="2026-11-23T12:05:00Z",
        duration_s=6570.0,
        free_minutes=180,
        free=True,
        match="exact",
    )
    car_park: str = Field(description="The car park's id.")
    status: str = Field(description="open, closed, superseded (entry without exit) or exit_only.")
    entry: datetime | None = Field(description="When the car entered (None: exit only).")
    exit: datetime | None = Field(description="When it left (None: still parked).")
    duration_s: float | None = Field(description="Length of the stay, once closed.")
    free_minutes: int = Field(description="Minutes validated by coupons.")
    free: bool | None = Field(description="On exit: whether validated minutes covered the stay.")
    match: str = Field(
        description="How the entry read was matched to the customer's plate, for audit: exact, "
        "confusable (only OCR look-alikes differ), or none/ambiguous/low_confidence."
    )


class OccupancyPoint(BaseModel):
    model_config = _example(ts="2026-11-23T10:15:30Z", occupied=212)
    ts: datetime = Field(description="When an entry or exit changed the count.")
    occupied: int = Field(description="Vehicles inside after it.")


def _settings(ctx: ApiContext) -> ParkingSettings:
    settings = ctx.config.parking
    if settings is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "parking is not configured")
    return settings


@router.post("/codes", summary="Make free-parking coupon codes for a partner")
def make_codes(body: CodesIn, ctx: Ctx, caller: AdminOrTenant) -> CodesOut:
    """Codes are signed, not stored: each can be redeemed once, by anyone holding it."""
    settings = _settings(ctx)
    own_business(caller, body.business)
    for serial in body.serials:
        if not (serial.isascii() and serial.isalnum() and len(serial) <= 32):
            raise InvalidInput(f"bad serial {serial!r}: letters and digits, at most 32")
    key = settings.validation_key()
    return CodesOut(
        codes=[
            parking_codes.make_validation_code(key, body.business, serial, body.minutes)
            for serial in body.serials
        ]
    )


@router.post("/validations", summary="Redeem a free-parking coupon")
def validate(body: ValidationIn, ctx: Ctx, caller: Staff) -> ValidationOut:
    settings = _settings(ctx)
    business = parking_codes.code_business(body.code)
    if business is None:
        return ValidationOut(outcome="invalid", minutes=0)
    own_business(caller, business)
    vehicle = (
        parking_sessions.plate_hash(settings.plate_key(), body.plate)
        if body.plate is not None
        else None
    )
    with ctx.store.transaction() as conn:
        if body.customer is not None:
            customers.require_customer(conn, body.customer)
        elif body.plate is not None:
            owner = customers.customer_of_plate(conn, normalise_plate(body.plate))
            vehicle = normalise_plate(body.plate) if owner else vehicle
        result = parking_codes.validate_free_parking(
            conn,
            settings.validation_key(),
            code=body.code,
            now=datetime.fromtimestamp(ctx.clock(), UTC),
            customer=body.customer,
            vehicle=vehicle,
        )
    return ValidationOut(outcome=result.outcome, minutes=result.minutes)


@router.get("/customers/{customer}/sessions", summary="A customer's parking sessions")
def sessions(
    customer: str,
    ctx: Ctx,
    _caller: AdminOrKiosk,
    limit: Annotated[int, Query(ge=1, le=500, description="Most sessions, newest first.")] = 50,
) -> list[SessionOut]:
    _settings(ctx)
    with ctx.store.read() as conn:
        customers.require_customer(conn, customer)
        found = reports.sessions_of(conn, customer, limit)
    return [
        SessionOut(
            car_park=s.car_park,
            status=s.status,
            entry=s.entry_ts,
            exit=s.exit_ts,
            duration_s=s.duration_s,
            free_minutes=s.free_minutes,
            free=s.free,
            match=s.match,
        )
        for s in found
    ]


@router.get("/car-parks/{car_park}/occupancy", summary="Occupancy time series of a car park")
def occupancy(
    car_park: str,
    ctx: Ctx,
    _caller: Admin,
    since: Annotated[datetime | None, Query(description="Only changes from this time.")] = None,
) -> list[OccupancyPoint]:
    settings = _settings(ctx)
    if car_park not in {park.id for park in settings.car_parks}:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no car park {car_park!r}")
    with ctx.store.read() as conn:
        series = reports.occupancy_series(conn, car_park, since)
    return [OccupancyPoint(ts=ts, occupied=n) for ts, n in series]
