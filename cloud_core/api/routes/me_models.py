"""Request and response bodies of the shopper's own API (``/auth``, ``/me``), each with an
OpenAPI example."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue


def _example(**example: JsonValue) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})


class CodeIn(BaseModel):
    model_config = _example(phone="+44 7911 123456")
    phone: str = Field(
        min_length=3, max_length=32, description="The phone the wallet is registered with."
    )


class CodeOut(BaseModel):
    model_config = _example(
        challenge="m2fE4kq1x0ZQf3P1b9o6Jw3L", expires_at="2026-11-23T10:20:30Z", channel="sms"
    )
    challenge: str = Field(description="Send it back with the code (`POST /auth/token`).")
    expires_at: datetime = Field(description="The code works until then.")
    channel: str = Field(description="How the code was sent.")


class TokenIn(BaseModel):
    model_config = _example(
        challenge="m2fE4kq1x0ZQf3P1b9o6Jw3L", code="042917", device_name="Ann's phone"
    )
    challenge: str = Field(min_length=1, max_length=64, description="From `POST /auth/code`.")
    code: str = Field(pattern=r"^[0-9]{6}$", description="The six digits the shopper got.")
    device_name: str = Field(
        default="phone", min_length=1, max_length=64, description="Shown in the device list."
    )


class DeviceOut(BaseModel):
    model_config = _example(
        id="d1f2e3a4b5c6d7e8",
        name="Ann's phone",
        created_at="2026-11-23T10:16:00Z",
        expires_at="2027-05-22T10:16:00Z",
        current=True,
    )
    id: str = Field(description="The device's id (to sign it out).")
    name: str = Field(description="The name given at sign-in.")
    created_at: datetime = Field(description="When it signed in.")
    expires_at: datetime = Field(description="When its token stops working.")
    current: bool = Field(description="The device making this call.")


class TokenOut(BaseModel):
    model_config = _example(
        token="mw_3q2+example-token-shown-once",  # noqa: S106 - an example
        device={
            "id": "d1f2e3a4b5c6d7e8",
            "name": "Ann's phone",
            "created_at": "2026-11-23T10:16:00Z",
            "expires_at": "2027-05-22T10:16:00Z",
            "current": True,
        },
    )
    token: str = Field(description="`Authorization: Bearer <token>`; shown once, kept hashed.")
    device: DeviceOut = Field(description="The device it belongs to.")


class MeOut(BaseModel):
    model_config = _example(
        id="c5f0c2a9be1d34c7a8b6e0f1d",
        phone="+44*******456",
        created_at="2026-11-20T09:00:00Z",
        offers_consent=True,
    )
    id: str = Field(description="Your customer id.")
    phone: str = Field(description="Your phone, masked.")
    created_at: datetime = Field(description="When the wallet was made.")
    offers_consent: bool = Field(description="Whether you take personal offers.")


class ExpiryOut(BaseModel):
    model_config = _example(points=20, expires_at="2026-12-23T00:00:00Z")
    points: int = Field(description="Points that expire together.")
    expires_at: datetime | None = Field(description="When (null: never).")


class MyPocketOut(BaseModel):
    model_config = _example(
        pocket="mall",
        balance=500,
        available=500,
        next_expiry="2026-12-23T00:00:00Z",
        expiring=[{"points": 500, "expires_at": "2026-12-23T00:00:00Z"}],
    )
    pocket: str = Field(description="`mall` (spend anywhere in the mall) or a store's business.")
    balance: int = Field(description="Points in the pocket.")
    available: int = Field(description="Spendable now.")
    next_expiry: datetime | None = Field(description="When the next points expire.")
    expiring: list[ExpiryOut] = Field(description="The points by expiry date, soonest first.")


class MyWalletOut(BaseModel):
    model_config = _example(
        pockets=[
            {
                "pocket": "mall",
                "balance": 500,
                "available": 500,
                "next_expiry": None,
                "expiring": [{"points": 500, "expires_at": None}],
            }
        ]
    )
    pockets: list[MyPocketOut] = Field(description="One per pocket holding points.")


class InboxEntryOut(BaseModel):
    model_config = _example(
        id="j12",
        kind="credit",
        ts="2026-11-23T10:16:30Z",
        text="+500 points: North car park",
        pocket="mall",
        points=500,
        campaign=None,
    )
    id: str = Field(description="`j<journal id>` or `o<delivery id>`.")
    kind: Literal["credit", "debit", "offer"] = Field(description="What it is.")
    ts: datetime = Field(description="When.")
    text: str = Field(description="What to show.")
    pocket: str | None = Field(description="The pocket (credits and debits).")
    points: int | None = Field(description="Points added (+) or taken (−).")
    campaign: str | None = Field(description="The campaign (offers).")


class MyOfferOut(BaseModel):
    model_config = _example(
        campaign="winter-coffee",
        business="bean-bar",
        title="Hot chocolate -20 %",
        text="Show this at Bean Bar.",
        valid_until="2026-11-30T00:00:00Z",
        received=True,
    )
    campaign: str = Field(description="The campaign id.")
    business: str = Field(description="Whose offer (`mall` for the mall's own).")
    title: str = Field(description="Headline.")
    text: str = Field(description="Details.")
    valid_until: datetime = Field(description="When it ends.")
    received: bool = Field(description="Delivered to you (e.g. when you arrived).")


class CardOut(BaseModel):
    model_config = _example(
        token="mc1.c5f0c2a9be1d34c7a8b6e0f1d.1795430190.q0JtL3o4bW9uZXlfYmFjaw",  # noqa: S106
        expires_at="2026-11-23T10:18:30Z",
        refresh_in_s=90,
    )
    token: str = Field(description="What the card QR code holds (a till scans it).")
    expires_at: datetime = Field(description="When a till stops accepting it.")
    refresh_in_s: int = Field(description="Fetch a new one after this many seconds.")


class ConsentIn(BaseModel):
    model_config = _example(offers=False)
    offers: bool = Field(description="Take personal offers (in the inbox, at the kiosks).")


class ConsentOut(BaseModel):
    model_config = _example(offers=True)
    offers: bool = Field(description="Whether you take personal offers.")


class ErasedMeOut(BaseModel):
    model_config = _example(erased=True, removed={"customers": 1, "journal": 4})
    erased: bool = Field(description="Always true: everything about you is gone.")
    removed: dict[str, int] = Field(description="Rows removed per table.")
