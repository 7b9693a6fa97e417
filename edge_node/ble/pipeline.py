"""parse → filter → presence → outbox: the node's logic, on data only."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from edge_node.ble.ibeacon import IBeaconParser
from edge_node.ble.presence import FootfallCount, PresenceChange, PresenceEngine
from edge_node.ble.sources import Advert
from edge_node.outbox import Outbox
from mallnet.wire.payloads import FootfallEvent, PresenceEvent
from mallnet.wire.topics import FOOTFALL, PRESENCE

log = logging.getLogger(__name__)


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class Pipeline:
    """Feeds adverts through the parser and the presence engine into the outbox."""

    def __init__(
        self,
        parser: IBeaconParser,
        engine: PresenceEngine,
        outbox: Outbox,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.parser = parser
        self.engine = engine
        self.outbox = outbox
        self.wall = wall
        self.adverts = 0
        self.events = 0
        self.invalid = 0

    def feed(self, advert: Advert) -> None:
        self.adverts += 1
        sighting = self.parser.sighting(advert.mfr)
        if sighting is None:
            return
        engine = self.engine
        engine.observe(advert.t, sighting.tag, sighting.measured_power, advert.rssi)
        if engine.pending:
            self.store()

    def tick(self, now: float) -> None:
        self.engine.tick(now)
        self.store()

    def flush(self, now: float) -> None:
        self.engine.flush(now)
        self.store()

    def store(self) -> None:
        """Write the engine's decisions to the outbox, in order, in one transaction."""
        decisions = self.engine.take()
        if not decisions:
            return
        items = [
            (PRESENCE.leaf, _presence(d))
            if isinstance(d, PresenceChange)
            else (FOOTFALL.leaf, _footfall(d))
            for d in decisions
        ]
        wall = self.wall()
        try:
            self.outbox.append_many(items, wall)
            self.events += len(items)
        except ValueError:  # a decision the contract rejects: keep the others, count it
            for item in items:
                try:
                    self.outbox.append(*item, wall)
                    self.events += 1
                except ValueError as exc:
                    self.invalid += 1
                    log.error("dropped an event the contract rejects: %s", exc)


def _presence(d: PresenceChange) -> Callable[[str, int], str]:
    def build(event_id: str, seq: int) -> str:
        return PresenceEvent(
            id=event_id,
            seq=seq,
            ts=_utc(d.t),
            kind=d.kind,  # type: ignore[arg-type]
            tag=d.tag,
            rssi=d.rssi,
            distance_m=d.distance_m,
            inside_s=d.inside_s,
        ).model_dump_json(exclude_none=True)

    return build


def _footfall(d: FootfallCount) -> Callable[[str, int], str]:
    def build(event_id: str, seq: int) -> str:
        end = d.window_start + d.window_s
        return FootfallEvent(
            id=event_id,
            seq=seq,
            ts=_utc(end),
            window_start=_utc(d.window_start),
            window_s=d.window_s,
            unique_tags=d.unique_tags,
            adverts=d.adverts,
        ).model_dump_json(exclude_none=True)

    return build
