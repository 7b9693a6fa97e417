"""The core's parking configuration (the ``parking:`` section of the core config).

Kept apart from ``cloud_core.config`` so the parking rules can import it without a
cycle. The plate-hash secret never lives in the YAML: it comes from
``hash_secret_file`` (or, in development only, ``hash_secret``), and a secret that
is short or an obvious placeholder is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, SecretStr, StringConstraints, model_validator

from mallnet.config import ConfigModel
from mallnet.errors import ConfigError
from mallnet.wire.topics import ID_PATTERN

Ident = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
MIN_SECRET_BYTES = 16
PLACEHOLDERS = ("changeme", "change-me", "secret", "password", "example", "xxxx")


class CarPark(ConfigModel):
    id: Ident = Field(description="Car park id (unique in the mall).")
    name: str = Field(min_length=1, max_length=120, description="Shown to drivers.")
    capacity: int = Field(default=0, ge=0, description="Spaces; 0 if unknown (no free count).")
    zone: Ident | None = Field(
        default=None, description="Mall zone: campaigns targeting it are offered on entry."
    )
    nodes: tuple[Ident, ...] = Field(
        min_length=1, description="Gate nodes (cameras) of this car park; their events count here."
    )


class PurchaseParking(ConfigModel):
    """A purchase at a partner (a cinema ticket, a restaurant bill) validates the shopper's
    open parking session for some free minutes, through the partners' free-parking codes."""

    business: Ident = Field(description="The partner whose till purchases validate parking.")
    minutes: int = Field(ge=1, le=24 * 60, description="Free minutes added to the session.")
    min_amount_cents: int = Field(default=0, ge=0, description="Smallest purchase that counts.")


class ParkingSettings(ConfigModel):
    """Entry bonus, plate matching, privacy and validation of the mall's car parks."""

    car_parks: tuple[CarPark, ...] = Field(min_length=1, description="The mall's car parks.")
    entry_bonus: int = Field(
        default=50, ge=0, description="Coalition points for a registered driver's entry."
    )
    bonus_per_day: int = Field(
        default=1, ge=0, le=10, description="Entry bonuses per customer per local day at most."
    )
    min_confidence: float = Field(
        default=0.6, ge=0, le=1, description="Reads below this count for occupancy only."
    )
    fuzzy: bool = Field(
        default=True,
        description="Match a read to a registered plate that differs only in OCR look-alikes "
        "(O/0, S/5, A/4 …: the gate reader's table), when it is the only such plate.",
    )
    unregistered_retention_days: float = Field(
        default=30,
        gt=0,
        le=3650,
        description="Sessions of unregistered vehicles are kept this long.",
    )
    hash_secret_file: Path | None = Field(
        default=None, description="File with the secret that keys unregistered plates' HMAC."
    )
    hash_secret: SecretStr | None = Field(
        default=None, description="Inline secret; development only, prefer hash_secret_file."
    )
    validation_secret_file: Path | None = Field(
        default=None,
        description="File with the secret that signs free-parking coupon codes (defaults to the "
        "hash secret).",
    )
    purchase_validations: tuple[PurchaseParking, ...] = Field(
        default=(),
        description="Partners whose till purchases give the shopper free parking minutes "
        "(docs/parking.md).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.hash_secret_file is None and self.hash_secret is None:
            raise ValueError("parking needs hash_secret_file (or hash_secret in development)")
        seen: dict[str, str] = {}
        ids = set()
        for park in self.car_parks:
            if park.id in ids:
                raise ValueError(f"car park {park.id!r} is listed twice")
            ids.add(park.id)
            for node in park.nodes:
                if node in seen:
                    raise ValueError(
                        f"gate node {node!r} is in car parks {seen[node]!r} and {park.id!r}"
                    )
                seen[node] = park.id
        return self

    def car_park_of_node(self) -> dict[str, CarPark]:
        return {node: park for park in self.car_parks for node in park.nodes}

    def _read_secret(self, path: Path | None, inline: SecretStr | None, what: str) -> bytes:
        if path is not None:
            try:
                secret = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"cannot read the {what} {path}: {exc.strerror}") from None
        elif inline is not None:
            secret = inline.get_secret_value()
        else:  # pragma: no cover - the validator requires one
            raise ConfigError(f"no {what}")
        if len(secret.encode()) < MIN_SECRET_BYTES or secret.lower() in PLACEHOLDERS:
            raise ConfigError(
                f"the {what} must be at least {MIN_SECRET_BYTES} bytes and not a placeholder"
            )
        return secret.encode()

    def plate_key(self) -> bytes:
        """The HMAC key for unregistered plates; raises ``ConfigError`` if unusable."""
        return self._read_secret(self.hash_secret_file, self.hash_secret, "parking hash secret")

    def validation_key(self) -> bytes:
        if self.validation_secret_file is not None:
            return self._read_secret(self.validation_secret_file, None, "validation secret")
        return b"validation:" + self.plate_key()
