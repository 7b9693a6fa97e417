"""Helpers for the parking tests: a car park config and a gate that sends plate reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mallnet.ids import UuidV7Factory
from mallnet.wire.payloads import ParkingEvent
from tests.cloud_core.helpers import START

T0 = datetime.fromtimestamp(START, UTC)


SECRET = "parking-test-secret-0123456789abcdef"


PARKING: dict[str, Any] = {
    "car_parks": [
        {
            "id": "p1",
            "name": "North car park",
            "capacity": 3,
            "zone": "parking",
            "nodes": ["gate-north"],
        },
        {"id": "p2", "name": "South car park", "nodes": ["gate-south"]},
    ],
    "entry_bonus": 40,
    "hash_secret": SECRET,
    "unregistered_retention_days": 7,
}


class Gate:
    """Makes parking events as a gate node would."""

    def __init__(self) -> None:
        self.ids = UuidV7Factory()
        self.seq = 0

    def event(
        self,
        plate: str,
        kind: str = "entry",
        at: datetime = T0,
        confidence: float = 0.95,
        gate: str = "north-in",
    ) -> ParkingEvent:
        self.seq += 1
        return ParkingEvent(
            id=self.ids(),
            seq=self.seq,
            ts=at,
            kind=kind,  # type: ignore[arg-type]
            gate=gate,
            plate=plate,
            confidence=confidence,
            country="UA",
        )
