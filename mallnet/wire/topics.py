"""MQTT topics of the v1 contract: one spec per topic, builders and a strict parser.

Every topic has six segments::

    mall/v1/{mall}/{scope}/{entity}/{leaf}

``scope`` is ``nodes`` (edge nodes: store scanners and parking gates),
``kiosks``, ``customers`` or ``core`` (the core's ingest workers). Ids are
lower-case ``[a-z0-9][a-z0-9_-]{0,63}``, so they can never hold MQTT wildcards
or separators.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from mallnet.errors import MallnetError

ROOT = "mall"
VERSION = "v1"
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_ID_RE = re.compile(ID_PATTERN)


class Scope(StrEnum):
    NODES = "nodes"
    KIOSKS = "kiosks"
    CUSTOMERS = "customers"
    CORE = "core"


class Direction(StrEnum):
    NODE_TO_CORE = "node → core"
    CORE_TO_NODE = "core → node"
    KIOSK_TO_CORE = "kiosk → core"
    CORE_TO_KIOSK = "core → kiosk"
    CORE_TO_CUSTOMER = "core → customer app"
    CORE_TO_OPERATORS = "core → operators"


@dataclass(frozen=True)
class TopicSpec:
    """One topic of the contract. ``payload`` names the model in ``payloads``."""

    name: str
    scope: Scope
    leaf: str
    direction: Direction
    qos: int
    retained: bool
    payload: str
    description: str

    def topic(self, mall: str, entity: str) -> str:
        """The concrete topic for one mall and one node, kiosk or customer."""
        check_id(mall, "mall")
        check_id(entity, self.scope.value)
        return f"{ROOT}/{VERSION}/{mall}/{self.scope.value}/{entity}/{self.leaf}"

    def filter(self, mall: str = "+", entity: str = "+") -> str:
        """A subscription filter; ``+`` matches every mall or entity."""
        if mall != "+":
            check_id(mall, "mall")
        if entity != "+":
            check_id(entity, self.scope.value)
        return f"{ROOT}/{VERSION}/{mall}/{self.scope.value}/{entity}/{self.leaf}"

    def shared_filter(self, group: str, mall: str = "+") -> str:
        """An MQTT v5 shared subscription, so several workers split the load."""
        check_id(group, "share group")
        return f"$share/{group}/{self.filter(mall)}"


PRESENCE = TopicSpec(
    "presence",
    Scope.NODES,
    "presence",
    Direction.NODE_TO_CORE,
    1,
    False,
    "PresenceBatch",
    "Enter, dwell and exit events of rotating shopper tags seen by a store node.",
)
FOOTFALL = TopicSpec(
    "footfall",
    Scope.NODES,
    "footfall",
    Direction.NODE_TO_CORE,
    1,
    False,
    "FootfallBatch",
    "Per-minute aggregates of unique tags and adverts, for analytics.",
)
PARKING = TopicSpec(
    "parking",
    Scope.NODES,
    "parking",
    Direction.NODE_TO_CORE,
    1,
    False,
    "ParkingBatch",
    "Vehicle entry and exit reads at a car-park gate.",
)
HEALTH = TopicSpec(
    "health",
    Scope.NODES,
    "health",
    Direction.NODE_TO_CORE,
    0,
    False,
    "HealthReport",
    "Periodic heartbeat: rates, outbox depth, scanner restarts, CPU temperature and load.",
)
STATUS = TopicSpec(
    "status",
    Scope.NODES,
    "status",
    Direction.NODE_TO_CORE,
    1,
    True,
    "DeviceStatus",
    "Retained `online` birth message; `offline` is the node's Last Will.",
)
NODE_CONFIG = TopicSpec(
    "config",
    Scope.NODES,
    "config",
    Direction.CORE_TO_NODE,
    1,
    True,
    "NodeConfig",
    "Retained tuning pushed by the core; a node applies it over its file config.",
)
RECEIPTS = TopicSpec(
    "receipts",
    Scope.NODES,
    "receipts",
    Direction.CORE_TO_NODE,
    1,
    False,
    "Receipt",
    "Ids of events the core has committed; only then may the node drop them from its outbox.",
)
CHECKINS = TopicSpec(
    "checkins",
    Scope.KIOSKS,
    "checkins",
    Direction.KIOSK_TO_CORE,
    1,
    False,
    "CheckinBatch",
    "QR check-ins made at a kiosk.",
)
KIOSK_STATUS = TopicSpec(
    "kiosk-status",
    Scope.KIOSKS,
    "status",
    Direction.KIOSK_TO_CORE,
    1,
    True,
    "DeviceStatus",
    "Retained `online` birth message; `offline` is the kiosk's Last Will.",
)
KIOSK_RECEIPTS = TopicSpec(
    "kiosk-receipts",
    Scope.KIOSKS,
    "receipts",
    Direction.CORE_TO_KIOSK,
    1,
    False,
    "Receipt",
    "Ids of check-ins the core has committed; only then may the kiosk drop them from its queue.",
)
KIOSK_OFFERS = TopicSpec(
    "kiosk-offers",
    Scope.KIOSKS,
    "offers",
    Direction.CORE_TO_KIOSK,
    1,
    True,
    "KioskOffers",
    "Retained list of the offers a kiosk shows now.",
)
KIOSK_CONFIG = TopicSpec(
    "kiosk-config",
    Scope.KIOSKS,
    "config",
    Direction.CORE_TO_KIOSK,
    1,
    True,
    "KioskSettings",
    "Retained settings pushed by the core from its `kiosks` config; the kiosk applies them over "
    "its file config.",
)
CORE_STATUS = TopicSpec(
    "core-status",
    Scope.CORE,
    "status",
    Direction.CORE_TO_OPERATORS,
    1,
    True,
    "DeviceStatus",
    "Retained `online` birth message of a core ingest worker (entity: its `ingest.client_id`); "
    "`offline` is its Last Will. The API's `/ready` reads it when it runs apart from ingest.",
)
INBOX = TopicSpec(
    "inbox",
    Scope.CUSTOMERS,
    "inbox",
    Direction.CORE_TO_CUSTOMER,
    1,
    False,
    "InboxMessage",
    "Credit notices and offers for one customer (the id is opaque, never a phone number).",
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    PRESENCE,
    FOOTFALL,
    PARKING,
    HEALTH,
    STATUS,
    NODE_CONFIG,
    RECEIPTS,
    CHECKINS,
    KIOSK_STATUS,
    KIOSK_RECEIPTS,
    KIOSK_OFFERS,
    KIOSK_CONFIG,
    INBOX,
    CORE_STATUS,
)
_BY_SCOPE_LEAF = {(spec.scope.value, spec.leaf): spec for spec in ALL_TOPICS}


class TopicError(MallnetError, ValueError):
    """A topic string that is not part of the contract."""


@dataclass(frozen=True)
class Topic:
    """A parsed concrete topic."""

    spec: TopicSpec
    mall: str
    entity: str

    def __str__(self) -> str:
        return self.spec.topic(self.mall, self.entity)


def check_id(value: str, what: str) -> str:
    if not _ID_RE.fullmatch(value):
        raise TopicError(f"invalid {what} id {value!r}: must match {ID_PATTERN}")
    return value


def parse_topic(topic: str) -> Topic:
    """Parse a concrete topic; raises ``TopicError`` for anything outside the contract."""
    parts = topic.split("/")
    if len(parts) != 6:
        raise TopicError(f"topic {topic!r} has {len(parts)} segments, expected 6")
    root, version, mall, scope, entity, leaf = parts
    if root != ROOT:
        raise TopicError(f"topic {topic!r} does not start with {ROOT!r}")
    if version != VERSION:
        raise TopicError(f"topic {topic!r} has unsupported version {version!r}")
    spec = _BY_SCOPE_LEAF.get((scope, leaf))
    if spec is None:
        raise TopicError(f"topic {topic!r}: no {scope!r}/{leaf!r} topic in the contract")
    check_id(mall, "mall")
    check_id(entity, scope)
    return Topic(spec, mall, entity)
