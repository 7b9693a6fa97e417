"""Configuration of the mall's shopper schemes: store QR check-ins and referrals.

Sections of the core config (``store_qr:``, ``referrals:``), apart from ``config.py`` so
the scheme modules import them without a cycle. The store QR secret never lives in the
YAML: it comes from ``store_qr.secret_file`` (or, in development only, ``secret``), read
and checked as the parking secrets are (at least 16 bytes, not a placeholder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator

from cloud_core.parking_config import MIN_SECRET_BYTES, PLACEHOLDERS
from mallnet.config import ConfigModel
from mallnet.errors import ConfigError


class StoreQrSettings(ConfigModel):
    """Printed or on-screen QR codes at the doors of stores with no beacon node: a shopper
    scans one from the app and gets a pay-per-visit visit (docs/core.md, "Store QR
    check-ins"). Each code is signed and lives one ``window_s`` (plus ``grace_windows``)."""

    secret_file: Path | None = Field(
        default=None, description="File with the secret that signs the store QR codes."
    )
    secret: SecretStr | None = Field(
        default=None, description="Inline secret; development only, prefer secret_file."
    )
    window_s: int = Field(
        default=60,
        ge=10,
        le=86_400,
        description="A code belongs to one time window of this length: a screen at the door "
        "shows the current one (it refreshes itself); a photo of it stops working once "
        "the window and the grace are over.",
    )
    grace_windows: int = Field(
        default=1,
        ge=0,
        le=10,
        description="Windows a code is still accepted after its own (a shopper who scanned "
        "just before the screen changed).",
    )

    @model_validator(mode="after")
    def _has_secret(self) -> Self:
        if self.secret_file is None and self.secret is None:
            raise ValueError("store_qr needs secret_file (or secret in development)")
        return self

    def key(self) -> bytes:
        """The HMAC key of the codes; raises ``ConfigError`` if it is unusable."""
        if self.secret_file is not None:
            try:
                secret = self.secret_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read the store QR secret {self.secret_file}: {exc.strerror}"
                ) from None
        else:
            assert self.secret is not None  # the validator requires one
            secret = self.secret.get_secret_value()
        if len(secret.encode()) < MIN_SECRET_BYTES or secret.lower() in PLACEHOLDERS:
            raise ConfigError(
                f"the store QR secret must be at least {MIN_SECRET_BYTES} bytes and not a "
                "placeholder"
            )
        return secret.encode()


class ReferralSettings(ConfigModel):
    """A shopper's referral code: a new shopper who joins with it earns the referrer
    points on the new shopper's first qualifying visit (docs/core.md, "Referrals")."""

    enabled: bool = Field(default=True, description="Whether referral codes can be used.")
    referrer_points: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="Coalition (`mall`) points for the referrer, once per new shopper.",
    )
    referee_points: int = Field(
        default=0,
        ge=0,
        le=100_000,
        description="Coalition points for the new shopper on the same visit (0: none).",
    )
    new_within_s: float = Field(
        default=86_400,
        gt=0,
        le=30 * 86_400,
        description="A code can be applied only this long after the shopper registered, and "
        "only before the shopper's first visit or credit (an existing shopper is refused).",
    )


class ReviewSettings(ConfigModel):
    """Reviews and ratings of stores (docs/core.md, "Reviews and ratings")."""

    enabled: bool = Field(default=True, description="Whether shoppers can review stores.")
    invite_after_s: float = Field(
        default=3600,
        ge=0,
        le=30 * 86_400,
        description="A visit invites a review of its store this long after it (the shopper "
        "has had time to try what they bought).",
    )
    invite_within_s: float = Field(
        default=14 * 86_400,
        gt=0,
        le=365 * 86_400,
        description="…and until this long after it; a review needs such a visit or a table QR.",
    )


class CoalitionCouponRule(ConfigModel):
    """A purchase at one business issues a coupon of another business's series."""

    business: str = Field(
        min_length=1, max_length=64, description="The business whose till registers the purchase."
    )
    series: str = Field(
        min_length=1, max_length=64, description="The coupon series issued to the shopper."
    )
    min_amount_cents: int = Field(
        default=0, ge=0, description="The smallest purchase that earns the coupon."
    )


class CouponSettings(ConfigModel):
    """Coupon series (docs/core.md, "Coupons"): the secret signing the coupons' QR
    payloads, and the coalition rules (a purchase at A issues a coupon of B)."""

    secret_file: Path | None = Field(
        default=None, description="File with the secret that signs the coupons' QR payloads."
    )
    secret: SecretStr | None = Field(
        default=None, description="Inline secret; development only, prefer secret_file."
    )
    coalition: tuple[CoalitionCouponRule, ...] = Field(
        default=(), description="Purchases at one business that issue another's coupon."
    )

    @model_validator(mode="after")
    def _has_secret(self) -> Self:
        if self.secret_file is None and self.secret is None:
            raise ValueError("coupons needs secret_file (or secret in development)")
        return self

    def key(self) -> bytes:
        """The HMAC key of the coupons' QR payloads; raises ``ConfigError`` if unusable."""
        if self.secret_file is not None:
            try:
                secret = self.secret_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read the coupon secret {self.secret_file}: {exc.strerror}"
                ) from None
        else:
            assert self.secret is not None  # the validator requires one
            secret = self.secret.get_secret_value()
        if len(secret.encode()) < MIN_SECRET_BYTES or secret.lower() in PLACEHOLDERS:
            raise ConfigError(
                f"the coupon secret must be at least {MIN_SECRET_BYTES} bytes and not a placeholder"
            )
        return secret.encode()
