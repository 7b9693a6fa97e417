"""The shopper's wallet settings (``wallet:`` in the core's config): how sign-in codes are
sent, how long they and device tokens live, how hard guessing is throttled, the cookies of
the web wallet. No secret lives here: a code channel that needs one reads it from a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, HttpUrl

from mallnet.config import ConfigModel


class LogChannelSettings(ConfigModel):
    """The development channel: the code is written to the core's log (never use it where
    strangers can read the log; a real mall plugs in an SMS provider, docs/core.md)."""

    type: Literal["log"] = Field(default="log", description="Write codes to the log.")


class HttpChannelSettings(ConfigModel):
    """An SMS gateway behind an HTTP endpoint: the core POSTs ``{"to", "text"}`` as JSON with
    ``Authorization: Bearer <token>`` (docs/core.md, 'Plugging in an SMS provider')."""

    type: Literal["http"] = Field(description="POST each code to an SMS gateway.")
    url: HttpUrl = Field(description="The gateway's endpoint, e.g. https://sms.example/send.")
    token_file: Path | None = Field(
        default=None, description="File with the gateway's bearer token (mode 0600)."
    )
    text: str = Field(
        default="{code} is your mall wallet code. It works for {minutes} minutes.",
        min_length=6,
        max_length=300,
        description="The message; `{code}` and `{minutes}` are filled in.",
    )
    timeout_s: float = Field(default=5, gt=0, le=60, description="Give up on the gateway after.")


ChannelSettings = Annotated[LogChannelSettings | HttpChannelSettings, Field(discriminator="type")]


class WalletSettings(ConfigModel):
    channel: ChannelSettings = Field(
        default_factory=LogChannelSettings,
        description="How one-time sign-in codes reach the shopper (docs/core.md, 'Sign-in').",
    )
    code_ttl_s: float = Field(
        default=300, gt=0, le=3600, description="How long a sign-in code may be used."
    )
    code_attempts: int = Field(
        default=5, ge=1, le=20, description="Wrong guesses before a code is void."
    )
    codes_per_phone: int = Field(
        default=3, ge=1, le=1000, description="Codes one phone number may ask for per window."
    )
    codes_per_ip: int = Field(
        default=20, ge=1, le=100_000, description="Codes one client address may ask for per window."
    )
    tries_per_ip: int = Field(
        default=30,
        ge=1,
        le=100_000,
        description="Code checks (`POST /auth/token`) one client address may make per window.",
    )
    window_s: float = Field(
        default=900, gt=0, le=86_400, description="The window of the three limits (seconds)."
    )
    token_ttl_days: int = Field(
        default=180, ge=1, le=3650, description="How long a device stays signed in."
    )
    devices_max: int = Field(
        default=10, ge=1, le=100, description="Devices signed in at once; the oldest is dropped."
    )
    cookie_secure: bool | None = Field(
        default=None,
        description="Mark the web wallet's cookies Secure: true, false, or unset for 'when the "
        "request came over https'.",
    )
    inbox_poll_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often the live inbox (server-sent events) looks for new entries.",
    )
