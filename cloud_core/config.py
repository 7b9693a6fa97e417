"""The cloud core's configuration: one pydantic model per concern, loaded once in ``app``.
(long: the root model and the sections it checks together; larger sections live in
``settings``, ``spending_config``, ``wallet_config``, ``receipts_config``, ``parking_config``.)

Secrets never live in the YAML: the broker password comes from ``mqtt.password_file``,
API keys from ``api.keys_file`` or the environment variable named by ``api.keys_env``,
the time-series token from ``telemetry.token_file``.
"""

from __future__ import annotations

import zoneinfo
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, field_validator, model_validator

from cloud_core.engagement_config import MailingSettings
from cloud_core.parking_config import ParkingSettings
from cloud_core.receipts_config import ReceiptSettings
from cloud_core.schemes_config import (
    CouponSettings,
    ReferralSettings,
    ReviewSettings,
    StoreQrSettings,
)
from cloud_core.settings import (
    ApiSettings,
    CardSettings,
    DeadLetterSettings,
    IngestSettings,
    TelemetrySettings,
)
from cloud_core.spending_config import SpendingSettings
from cloud_core.store.target import SCHEMA_PATTERN, PgTarget, with_pg_target
from cloud_core.wallet_config import WalletSettings
from mallnet.config import ConfigModel, MqttSettings, parse_yaml, read_text_file, validate_data
from mallnet.errors import ConfigError
from mallnet.wire.topics import ID_PATTERN

Ident = Annotated[str, StringConstraints(pattern=ID_PATTERN)]

__all__ = [
    "ApiSettings",
    "CardSettings",
    "CheckinRules",
    "CoreConfig",
    "DeadLetterSettings",
    "GameRules",
    "IngestSettings",
    "KioskConfig",
    "NodeTuning",
    "StoreConfig",
    "TelemetrySettings",
    "VisitOverrides",
    "VisitRules",
    "load_core_config",
]


class VisitRules(ConfigModel):
    """Pay-per-visit rules; ``visits`` gives the defaults, a store may override any of them."""

    points: int = Field(default=10, ge=0, le=100_000, description="Points for one visit.")
    min_dwell_s: float = Field(
        default=60, ge=0, le=86_400, description="Seconds inside the store before a visit counts."
    )
    join_gap_s: float = Field(
        default=120,
        ge=0,
        le=3600,
        description="A customer's presences at a store that end and start again within this "
        "time count as one continuous stay for `min_dwell_s` (a shopper's beacon id rotates "
        "every 600 s and the node cannot link the old and new ids; cover the nodes' "
        "exit_timeout_s + enter_dwell_s).",
    )
    cooldown_s: float = Field(
        default=3600,
        ge=0,
        le=7 * 86_400,
        description="No second visit credit for the same customer and store within this time, "
        "whichever node saw it.",
    )
    daily_cap: int = Field(
        default=100,
        ge=0,
        description="Most visit points one customer can earn per day at one business.",
    )
    expiry: Literal["none", "end_of_day", "after"] = Field(
        default="none",
        description="When visit points expire: never, at the end of the local day "
        "('spend them here today'), or `expires_after_s` after the visit.",
    )
    expires_after_s: float | None = Field(
        default=None, gt=0, description="Lifetime of visit points when `expiry` is `after`."
    )

    @model_validator(mode="after")
    def _after_needs_seconds(self) -> Self:
        if self.expiry == "after" and self.expires_after_s is None:
            raise ValueError("expiry 'after' needs expires_after_s")
        return self


class VisitOverrides(ConfigModel):
    """Per-store overrides of ``visits``; unset fields use the defaults."""

    points: int | None = Field(default=None, ge=0, le=100_000, description="Points per visit.")
    min_dwell_s: float | None = Field(default=None, ge=0, description="Minimum dwell (s).")
    join_gap_s: float | None = Field(
        default=None, ge=0, le=3600, description="Presences this close join (s)."
    )
    cooldown_s: float | None = Field(default=None, ge=0, description="Cooldown (s).")
    daily_cap: int | None = Field(default=None, ge=0, description="Daily cap (points).")
    expiry: Literal["none", "end_of_day", "after"] | None = Field(
        default=None, description="Expiry policy of this store's visit points."
    )
    expires_after_s: float | None = Field(default=None, gt=0, description="Lifetime (s).")


class NodeTuning(ConfigModel):
    """Presence tuning pushed to a store's nodes (retained `NodeConfig`); unset: node's own."""

    radius_m: float | None = Field(default=None, gt=0, le=100, description="Presence radius.")
    enter_dwell_s: float | None = Field(
        default=None, ge=0, le=3600, description="Seconds in range before an enter."
    )
    exit_timeout_s: float | None = Field(
        default=None, gt=0, le=3600, description="Seconds unheard before an exit."
    )
    dwell_report_s: float | None = Field(
        default=None, gt=0, le=3600, description="Interval of dwell reports."
    )
    rx_adjust_db: float | None = Field(
        default=None, ge=-30, le=30, description="Receiver calibration offset (dB)."
    )


class StoreConfig(ConfigModel):
    id: Ident = Field(description="Store id (unique in the mall).")
    name: str = Field(min_length=1, max_length=120, description="Shown to shoppers.")
    business: Ident = Field(
        description="The tenant business that owns the store; its points pocket has this id."
    )
    zone: Ident | None = Field(default=None, description="Mall zone, for zone-targeted offers.")
    nodes: tuple[Ident, ...] = Field(
        default=(), description="Edge nodes (scanners) covering this store."
    )
    visits: VisitOverrides = Field(
        default_factory=VisitOverrides, description="Overrides of the default visit rules."
    )
    node_tuning: NodeTuning | None = Field(
        default=None,
        description="Presence tuning the core pushes to this store's nodes (retained, with a "
        "revision that increases with every change).",
    )
    fiscal_registers: tuple[str, ...] = Field(
        default=(),
        description="The store's fiscal registers, as their receipts' QR codes name them (a "
        "Russian fiscal drive number, an Austrian Kassen-ID): a scanned receipt is found "
        'by them (docs/core.md "Receipt QR").',
    )


class KioskConfig(ConfigModel):
    """A kiosk the core knows (its broker user and topic id); check-ins from others are
    dead-lettered. A plain id in the YAML list is a kiosk standing in no store."""

    id: Ident = Field(description="Kiosk id: its broker user and the `{kiosk}` topic segment.")
    store: Ident | None = Field(
        default=None,
        description="The store the kiosk stands in: a check-in there is a pay-per-visit visit "
        "of that store. None: the kiosk stands in the mall (a check-in earns a kiosk visit).",
    )
    stores: tuple[Ident, ...] = Field(
        default=(),
        description="Other stores whose QR posters this kiosk may credit visits for (a "
        "check-in naming any other store is refused, outcome `wrong_store`).",
    )
    language: Literal["en", "uk", "ru"] | None = Field(
        default=None, description="Pushed to the kiosk: the language it returns to when idle."
    )
    idle_timeout_s: float | None = Field(
        default=None,
        ge=5,
        le=3600,
        description="Pushed to the kiosk: no touch for this long "
        "returns it to idle and forgets the shopper (None: the kiosk's own setting).",
    )
    carousel_s: float | None = Field(
        default=None, gt=0, le=600, description="Pushed to the kiosk: seconds per idle offer."
    )


class CheckinRules(ConfigModel):
    """What kiosk check-ins earn besides store visits, and how a kiosk is bounded."""

    kiosk_visit_points: int = Field(
        default=5,
        ge=0,
        le=100_000,
        description="Coalition (`mall`) points for checking in at a kiosk that names no store "
        "(0: nothing).",
    )
    kiosk_visits_per_day: int = Field(
        default=1, ge=0, le=100, description="Kiosk visits credited per customer per local day."
    )
    max_customers: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="Most different customers one kiosk may check in within `window_s` either "
        "side of a check-in; beyond that its check-ins for other customers are refused "
        "(outcome `kiosk_limit`): a kiosk acts only for the shopper who just identified.",
    )
    window_s: float = Field(
        default=300, gt=0, le=86_400, description="The window of `max_customers` (seconds)."
    )


class GameRules(ConfigModel):
    """The 'visit N different stores today' bonus, paid into the coalition pocket."""

    enabled: bool = Field(default=True, description="Whether the game runs.")
    stores: int = Field(default=3, ge=2, le=100, description="Different stores to visit per day.")
    points: int = Field(default=50, ge=1, description="Coalition points for reaching the goal.")


def _check_registers(stores: tuple[StoreConfig, ...]) -> None:
    """A fiscal register prints one store's receipts."""
    seen: dict[str, str] = {}
    for store in stores:
        for register in store.fiscal_registers:
            if register in seen:
                raise ValueError(
                    f"fiscal register {register!r} is in stores {seen[register]!r} and {store.id!r}"
                )
            seen[register] = store.id


class CoreConfig(ConfigModel):
    """The whole cloud core config file (`mallnet core run --config F`)."""

    mall: Ident = Field(description="Mall id: the `{mall}` segment of every topic.")
    database: Path | PgTarget = Field(
        description="SQLite file (WAL; the default) or a `postgresql://` URL (then the tables "
        "live in schema `database_schema`); created with its migrations."
    )
    database_schema: str | None = Field(
        default=None,
        pattern=SCHEMA_PATTERN,
        description="PostgreSQL: this mall's schema "
        "(default `mall_<mall id>`, `-` as `_`); connections see only it.",
    )
    timezone: str = Field(default="UTC", description="IANA zone that defines the mall's 'day'.")
    default_region: str = Field(
        default="GB",
        pattern=r"^[A-Z]{2}$",
        description="Region assumed for phone numbers given without +country code.",
    )
    mqtt: MqttSettings = Field(
        description="How the core reaches the broker; its user is `ingest.client_id` "
        "(leave `username` out or set it to the same id)."
    )
    ingest: IngestSettings = Field(default_factory=IngestSettings, description="The MQTT consumer.")
    api: ApiSettings = Field(default_factory=ApiSettings, description="The HTTP API.")
    telemetry: TelemetrySettings | None = Field(
        default=None, description="Time-series server; leave out to keep rollups in SQLite only."
    )
    visits: VisitRules = Field(default_factory=VisitRules, description="Default visit rules.")
    game: GameRules = Field(default_factory=GameRules, description="The daily stores game.")
    receipts: ReceiptSettings = Field(
        default_factory=ReceiptSettings,
        description="Shoppers scanning their receipts' QR codes (docs/core.md).",
    )
    stores: tuple[StoreConfig, ...] = Field(default=(), description="The mall's stores.")
    kiosks: tuple[KioskConfig, ...] = Field(
        default=(),
        description="The mall's kiosks (an id, or `{id, store, stores}`): they get the active "
        "offers as a retained list on their offers topic, and only their check-ins count.",
    )
    checkins: CheckinRules = Field(
        default_factory=CheckinRules, description="Kiosk check-ins (docs/core.md)."
    )
    store_qr: StoreQrSettings | None = Field(
        default=None,
        description="Signed, rotating QR codes at store doors (no beacon needed); leave out "
        "and store QR check-ins answer 404 (docs/core.md).",
    )
    referrals: ReferralSettings = Field(
        default_factory=ReferralSettings, description="Referral codes (docs/core.md)."
    )
    coupons: CouponSettings | None = Field(
        default=None,
        description="Coupons' signed QR payloads and coalition coupons; leave out and coupons "
        'carry no QR payload (docs/core.md, "Coupons").',
    )
    reviews: ReviewSettings = Field(
        default_factory=ReviewSettings, description="Reviews and ratings (docs/core.md)."
    )
    parking: ParkingSettings | None = Field(
        default=None, description="Car parks, entry bonus, plate privacy (docs/parking.md)."
    )
    spending: SpendingSettings = Field(
        default_factory=SpendingSettings,
        description="Tills, redemption caps, cashback, holds, settlements (docs/core.md).",
    )
    cards: CardSettings | None = Field(
        default=None,
        description="The shoppers' signed loyalty-card QR tokens; leave out and terminals "
        "identify shoppers by phone only (docs/core.md).",
    )

    mailings: MailingSettings | None = Field(
        default=None,
        description="Mailings to shoppers: channels, retries, the weekly digest (docs/core.md).",
    )

    @model_validator(mode="before")
    @classmethod
    def _database_url(cls, data: object) -> object:
        return with_pg_target(data)

    wallet: WalletSettings = Field(
        default_factory=WalletSettings,
        description="The shoppers' own wallet: sign-in codes, devices, cookies (docs/core.md).",
    )

    @field_validator("kiosks", mode="before")
    @classmethod
    def _kiosk_ids(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            return [{"id": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.database_schema is not None and not isinstance(self.database, PgTarget):
            raise ValueError("database_schema is for a postgresql:// database only")
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {self.timezone!r}") from None
        seen_stores: set[str] = set()
        seen_nodes: dict[str, str] = {}
        _check_registers(self.stores)
        for store in self.stores:
            if store.id in seen_stores:
                raise ValueError(f"store {store.id!r} is listed twice")
            seen_stores.add(store.id)
            for node in store.nodes:
                if node in seen_nodes:
                    raise ValueError(
                        f"node {node!r} is in stores {seen_nodes[node]!r} and {store.id!r}"
                    )
                seen_nodes[node] = store.id
            self.rules_for(store)
        _check_kiosks(self.kiosks, seen_stores, set(seen_nodes))
        if self.parking is not None:
            for node in self.parking.car_park_of_node():
                if node in seen_nodes:
                    raise ValueError(f"node {node!r} is a store node and a car-park gate")
        if (problem := _username_problem(self.mqtt.username, self.ingest.client_id)) is not None:
            raise ValueError(f"mqtt.username: {problem}")
        cert = self.mqtt.tls.cert_file if self.mqtt.tls is not None else None
        worker = self.ingest.client_id
        if cert is not None and cert.stem != worker:
            ext = cert.suffix
            raise ValueError(
                f"mqtt.tls.cert_file: {cert.name!r} is not named after ingest.client_id "
                f"{worker!r}: the worker's certificates are {worker}{ext}, {worker}-out{ext} "
                f"and {worker}-api{ext}, side by side (`mallnet pki issue`)"
            )
        return self

    def connection(self, suffix: str = "") -> tuple[MqttSettings, str]:
        """Settings and client id of one of the worker's connections (``mallnet.dynsec``'s
        ``CORE_SUFFIXES``): each is its own broker client, username = client id. With client
        certificates (production) each connection presents its own, CN = its client id:
        ``mqtt.tls.cert_file`` names the ingest one (``core-1.crt``), the others lie beside
        it (``core-1-out.crt``, ``core-1-api.crt``: ``mallnet pki issue core-1 --role core``)."""
        client_id = f"{self.ingest.client_id}{suffix}"
        update: dict[str, object] = {"username": client_id}
        if self.mqtt.tls is not None:
            update["tls"] = self.mqtt.tls.sibling(suffix)
        return self.mqtt.model_copy(update=update), client_id

    def rules_for(self, store: StoreConfig) -> VisitRules:
        """The effective visit rules of a store (defaults with its overrides)."""
        overrides = store.visits.model_dump(exclude_none=True)
        return VisitRules.model_validate({**self.visits.model_dump(), **overrides})

    def kiosk(self, kiosk_id: str) -> KioskConfig | None:
        return next((k for k in self.kiosks if k.id == kiosk_id), None)

    def store_of_node(self) -> dict[str, StoreConfig]:
        return {node: store for store in self.stores for node in store.nodes}


def _check_kiosks(kiosks: tuple[KioskConfig, ...], stores: set[str], nodes: set[str]) -> None:
    seen: set[str] = set()
    for kiosk in kiosks:
        if kiosk.id in seen or kiosk.id in nodes:
            raise ValueError(f"kiosk {kiosk.id!r} is listed twice or is also a node")
        seen.add(kiosk.id)
        for store_id in (kiosk.store, *kiosk.stores):
            if store_id is not None and store_id not in stores:
                raise ValueError(f"kiosk {kiosk.id!r} names unknown store {store_id!r}")


def _username_problem(username: object, client_id: object) -> str | None:
    if username is None or username == client_id:
        return None
    return (
        f"{username!r} differs from ingest.client_id {client_id!r}: the core connects as "
        "its client id's broker identity; leave username out or set it to the client id"
    )


def load_core_config(path: Path | str) -> CoreConfig:
    """Load and validate a core config file; raises ``ConfigError`` with file:line problems.

    Relative paths in it (database, password, keys and token files) are relative to the file.
    """
    source = str(path)
    data, lines = parse_yaml(read_text_file(Path(path)), source)
    mqtt, ingest = (data.get(k) if isinstance(data, dict) else None for k in ("mqtt", "ingest"))
    if isinstance(mqtt, dict) and isinstance(mqtt.get("username"), str):
        client_id = ingest.get("client_id") if isinstance(ingest, dict) else None
        if client_id is None:
            client_id = IngestSettings.model_fields["client_id"].default
        problem = _username_problem(mqtt["username"], client_id)
        if problem is not None:
            line = lines.get(("mqtt", "username"))
            where = f"{source}:{line}" if line is not None else source
            raise ConfigError(
                f"{source} is not a valid CoreConfig", [f"{where}: mqtt.username: {problem}"]
            )
    config = validate_data(data, CoreConfig, source, lines)
    base = Path(path).resolve().parent

    def under(p: Path) -> Path:
        return p if p.is_absolute() else base / p

    updates: dict[str, object] = {
        "mqtt": config.mqtt.relative_to(base),  # password file, TLS CA, certificate and key
    }
    if isinstance(config.database, Path):
        updates["database"] = under(config.database)
    if config.api.keys_file is not None:
        updates["api"] = config.api.model_copy(update={"keys_file": under(config.api.keys_file)})
    if config.parking is not None:
        updates["parking"] = config.parking.model_copy(
            update={
                name: under(path)
                for name in ("hash_secret_file", "validation_secret_file")
                if (path := getattr(config.parking, name)) is not None
            }
        )
    if config.cards is not None and config.cards.secret_file is not None:
        updates["cards"] = config.cards.model_copy(
            update={"secret_file": under(config.cards.secret_file)}
        )
    channel = config.wallet.channel
    if channel.type == "http" and channel.token_file is not None:
        updates["wallet"] = config.wallet.model_copy(
            update={"channel": channel.model_copy(update={"token_file": under(channel.token_file)})}
        )
    if config.telemetry is not None and config.telemetry.token_file is not None:
        updates["telemetry"] = config.telemetry.model_copy(
            update={"token_file": under(config.telemetry.token_file)}
        )
    if config.store_qr is not None and config.store_qr.secret_file is not None:
        updates["store_qr"] = config.store_qr.model_copy(
            update={"secret_file": under(config.store_qr.secret_file)}
        )
    if config.coupons is not None and config.coupons.secret_file is not None:
        updates["coupons"] = config.coupons.model_copy(
            update={"secret_file": under(config.coupons.secret_file)}
        )
    return config.model_copy(update=updates)


__all__ = [
    "CheckinRules",
    "ConfigError",
    "CoreConfig",
    "KioskConfig",
    "StoreConfig",
    "VisitRules",
    "load_core_config",
]
