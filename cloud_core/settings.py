"""How the core runs (not what the mall is): ingest, the HTTP API, the time series.

Part of the core's config file (``cloud_core/config.py``'s ``CoreConfig`` holds these
sections and re-exports them); apart only to keep each module to one screenful of concern.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, HttpUrl, SecretStr, StringConstraints, model_validator

from mallnet.config import ConfigModel
from mallnet.errors import ConfigError
from mallnet.wire.topics import ID_PATTERN

MIN_SECRET_BYTES = 16
PLACEHOLDERS = ("changeme", "change-me", "secret", "password", "example", "xxxx")

Ident = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


class DeadLetterSettings(ConfigModel):
    """Bounds on what the core keeps of rejected messages (a node can send junk fast)."""

    payload_max_bytes: int = Field(
        default=4096,
        ge=0,
        le=1_048_576,
        description="Bytes of a rejected payload kept; the rest is dropped (its full size and "
        "SHA-256 are kept with it).",
    )
    max_rows: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        description="Dead letters kept; past this the oldest are deleted (counted per node).",
    )
    max_age_s: float = Field(
        default=7 * 86_400,
        gt=0,
        description="Dead letters older than this are deleted by the expiry job (counted).",
    )


class IngestSettings(ConfigModel):
    client_id: Ident = Field(
        default="core-1",
        description="MQTT client id of this worker; unique per worker, stable across restarts "
        "(the broker keeps its session and redelivers what it had not acked). It is also the "
        "worker's broker identity (`mallnet broker add-device ID --role core`): the worker "
        "connects as user ID with client id ID (ingest), ID-out (publisher) and ID-api (the "
        "API-only status watch), so `mqtt.username` is left out or equal to it.",
    )
    share_group: Ident = Field(
        default="core", description="Shared-subscription group the workers split the load in."
    )
    shared: bool = Field(
        default=True,
        description="Subscribe to the nodes' events with shared subscriptions (`$share/...`), "
        "so several workers split the load. Set false when exactly one worker runs: a plain "
        "subscription is kept by Mosquitto 2.0 across a broker restart (a shared one is not, "
        "so events published before the core reconnects are refused with reason 16 and the "
        "nodes must send them again).",
    )
    batch_max: int = Field(
        default=200, ge=1, le=10_000, description="Most MQTT messages applied per transaction."
    )
    batch_wait_ms: float = Field(
        default=2.0,
        ge=0,
        le=1000,
        description="How long to wait for more messages before committing a partial batch.",
    )
    receive_maximum: int = Field(
        default=2000,
        ge=1,
        le=65535,
        description="Most unacknowledged messages the broker may have in flight to this worker "
        "(MQTT 5 Receive Maximum): bounds the worker's memory after an outage backlog.",
    )
    max_event_age_s: float = Field(
        default=48 * 3600,
        gt=0,
        description="Older presence events are receipted but credit nothing (counted as stale).",
    )
    max_clock_skew_s: float = Field(
        default=300,
        ge=0,
        le=86_400,
        description="Events dated more than this after the core's clock are receipted but "
        "applied to nothing (outcome `future`): a node's clock running ahead, or an event "
        "forged with a future window's beacon id, never credits today.",
    )
    expiry_interval_s: float = Field(
        default=60, gt=0, description="How often the expiry job runs in `core run`."
    )
    kiosk_offers_interval_s: float = Field(
        default=30,
        gt=0,
        description="How often the kiosks' retained offer lists are checked and republished "
        "when they changed (campaigns created, deleted, started or ended).",
    )
    dead_letters: DeadLetterSettings = Field(
        default_factory=DeadLetterSettings,
        description="Size, count and age bounds of the dead letters (docs/core.md).",
    )


class ApiSettings(ConfigModel):
    host: str = Field(default="127.0.0.1", description="Address the HTTP API listens on.")
    port: int = Field(default=8080, ge=1, le=65535, description="HTTP port.")
    keys_file: Path | None = Field(
        default=None, description="YAML file with the API keys (mode 0600); see docs/core.md."
    )
    keys_env: str | None = Field(
        default=None,
        description="Name of an environment variable holding the same YAML (used if set).",
    )
    phone_lookups: int = Field(
        default=10,
        ge=1,
        le=100_000,
        description="Most phone-number lookups (`GET /customers?phone=`; and registrations by "
        "non-admin keys, whose 409 also tells whether a phone is known) one API key may make "
        "per `phone_lookup_window_s`; more get 429 with Retry-After.",
    )
    phone_lookup_window_s: float = Field(
        default=60, gt=0, le=86_400, description="The window of `phone_lookups` (seconds)."
    )


class TelemetrySettings(ConfigModel):
    """An InfluxDB v2 compatible server (InfluxDB, VictoriaMetrics); None keeps SQLite only."""

    url: HttpUrl = Field(description="Base URL, e.g. http://127.0.0.1:8428.")
    org: str = Field(default="mallnet", description="InfluxDB organisation.")
    bucket: str = Field(default="mallnet", description="InfluxDB bucket.")
    token_file: Path | None = Field(default=None, description="File with the API token.")
    batch_size: int = Field(default=500, ge=1, description="Most points per write.")
    flush_interval_s: float = Field(default=1.0, gt=0, description="Longest wait before a write.")
    queue_max: int = Field(
        default=100_000, ge=1, description="Points held while the server is slow; then dropped."
    )


def read_secret(path: Path | None, inline: SecretStr | None, what: str) -> bytes:
    """A secret from its file (or, in development, inline); ``ConfigError`` if it cannot be
    read, is shorter than 16 bytes or is an obvious placeholder."""
    if path is not None:
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the {what} {path}: {exc.strerror}") from None
    elif inline is not None:
        secret = inline.get_secret_value()
    else:
        raise ConfigError(f"no {what}")
    if len(secret.encode()) < MIN_SECRET_BYTES or secret.lower() in PLACEHOLDERS:
        raise ConfigError(
            f"the {what} must be at least {MIN_SECRET_BYTES} bytes and not a placeholder"
        )
    return secret.encode()


class CardSettings(ConfigModel):
    """The shoppers' loyalty-card QR tokens (``cloud_core/cards.py``)."""

    secret_file: Path | None = Field(
        default=None, description="File with the secret that signs card tokens (mode 0600)."
    )
    secret: SecretStr | None = Field(
        default=None, description="Inline secret; development only, prefer secret_file."
    )
    ttl_s: int = Field(
        default=120, ge=10, le=86_400, description="Seconds a card token stays valid."
    )

    @model_validator(mode="after")
    def _has_secret(self) -> Self:
        if self.secret_file is None and self.secret is None:
            raise ValueError("cards needs secret_file (or secret in development)")
        return self

    def key(self) -> bytes:
        """The card-token HMAC key; raises ``ConfigError`` if unusable."""
        return read_secret(self.secret_file, self.secret, "card secret")
