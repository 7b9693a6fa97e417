"""Presence: per (tag, node) RSSI filtering, distance, and an enter/dwell/exit state machine.

Pure logic on data: ``observe(t, tag, measured_power, rssi)`` for each program
advert and ``tick(now)`` about once a second; both append to ``pending``, which
the caller drains with ``take()``. Time is whatever the caller says (advert
time for a replay, wall time for a live scanner), so tests and replays at any
speed make the same decisions.

Per tag::

    OUTSIDE ──d ≤ radius──▶ CANDIDATE ──stayed ≥ enter_dwell_s and d ≤ radius──▶ INSIDE (enter)
       ▲                       │ d > radius + hysteresis, or unseen ≥ exit_timeout_s   │
       └───────────────────────┘                                                         │
       └──── out of range (d > radius + hysteresis) or unseen for ≥ exit_timeout_s ◀────┘ (exit)

While INSIDE a dwell event is emitted every ``dwell_report_s``. Distance is
``10 ** ((measured_power - (rssi_filtered + rx_adjust_db)) / (10 · n))``.

Neighbouring stores: nodes do not talk to each other. A store's ``radius_m``
and ``rx_adjust_db`` are calibrated so that a shopper browsing the neighbour
(whose own node sees them within its radius) is estimated beyond this node's
``radius_m + exit_hysteresis_m``; see docs/edge.md and the side-by-side test.

Footfall: adverts and distinct tags per aligned ``window_s`` window, emitted
when a later advert or tick closes the window (windows without adverts are
not emitted).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from edge_node.ble.config import FootfallSettings, PresenceSettings
from edge_node.ble.filters import KalmanFilter, MedianIqrFilter, RssiFilter


class State(IntEnum):
    OUTSIDE = 0
    CANDIDATE = 1
    INSIDE = 2


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """An enter, dwell or exit decision (the payload fields, without id and seq)."""

    kind: str
    tag: str
    t: float
    rssi: float
    distance_m: float
    inside_s: float


@dataclass(frozen=True, slots=True)
class FootfallCount:
    window_start: float
    window_s: int
    unique_tags: int
    adverts: int


Decision = PresenceChange | FootfallCount


class _Track:
    __slots__ = (
        "distance",
        "entered",
        "filter",
        "last_in",
        "last_report",
        "last_seen",
        "rssi",
        "since",
        "state",
    )

    def __init__(self, rssi_filter: RssiFilter, t: float) -> None:
        self.filter = rssi_filter
        self.state = State.OUTSIDE
        self.since = t
        self.entered = t
        self.last_in = t
        self.last_seen = t
        self.last_report = t
        self.rssi = 0.0
        self.distance = 0.0


class PresenceEngine:
    """Decides enter, dwell and exit per tag for one node, and counts footfall."""

    def __init__(
        self, settings: PresenceSettings, footfall: FootfallSettings | None = None
    ) -> None:
        self.pending: list[Decision] = []
        self._tracks: dict[str, _Track] = {}
        self._footfall = footfall or FootfallSettings()
        self._window = -1
        self._window_adverts = 0
        self._window_tags: set[str] = set()
        self.observed = 0
        self.apply(settings)

    # -- configuration --------------------------------------------------------------

    def apply(self, settings: PresenceSettings) -> None:
        """Use new thresholds from now on (tracks and their filters are kept)."""
        self.settings = settings
        self._radius = settings.radius_m
        self._exit_radius = settings.radius_m + settings.exit_hysteresis_m
        self._enter_dwell = settings.enter_dwell_s
        self._exit_timeout = settings.exit_timeout_s
        self._report = settings.dwell_report_s
        self._adjust = settings.rx_adjust_db
        self._k = 1.0 / (10.0 * settings.path_loss_exponent)

    def _new_filter(self) -> RssiFilter:
        s = self.settings
        if s.filter == "median":
            return MedianIqrFilter(window_s=s.median_window_s)
        return KalmanFilter(s.kalman_process_var, s.kalman_measurement_var)

    def distance_for(self, measured_power: float, rssi: float) -> float:
        """Estimated distance (m) of a filtered RSSI, after the node's adjustment."""
        return float(10.0 ** ((measured_power - rssi - self._adjust) * self._k))

    # -- input ----------------------------------------------------------------------

    def observe(self, t: float, tag: str, measured_power: int, rssi: float) -> None:
        """One program advert from ``tag`` at time ``t``."""
        self.observed += 1
        window = int(t // self._footfall.window_s)
        if window > self._window:
            self._close_window()
            self._window = window
        self._window_adverts += 1
        self._window_tags.add(tag)

        track = self._tracks.get(tag)
        if track is None:
            track = self._tracks[tag] = _Track(self._new_filter(), t)
        filtered = track.filter.update(t, rssi)
        distance = 10.0 ** ((measured_power - filtered - self._adjust) * self._k)
        track.rssi = filtered
        track.distance = distance
        track.last_seen = t
        state = track.state
        if state is State.INSIDE:
            if distance <= self._exit_radius:
                track.last_in = t
            elif t - track.last_in >= self._exit_timeout:
                self._exit(track, tag, t)
                return
            if t - track.last_report >= self._report:
                track.last_report = t
                self._emit(track, "dwell", tag, t, t - track.entered)
        elif state is State.CANDIDATE:
            if distance > self._exit_radius:
                track.state = State.OUTSIDE
            elif distance <= self._radius:
                track.last_in = t
                if t - track.since >= self._enter_dwell:
                    track.state = State.INSIDE
                    track.entered = track.last_report = t
                    self._emit(track, "enter", tag, t, 0.0)
        elif distance <= self._radius:
            track.state = State.CANDIDATE
            track.since = track.last_in = t
            if self._enter_dwell == 0:
                track.state = State.INSIDE
                track.entered = track.last_report = t
                self._emit(track, "enter", tag, t, 0.0)

    def tick(self, now: float) -> None:
        """Time passes: exits of unseen tags, closed footfall windows, forgetting."""
        if self._window >= 0 and int(now // self._footfall.window_s) > self._window:
            self._close_window()
            self._window = int(now // self._footfall.window_s)
        timeout = self._exit_timeout
        stale: list[str] = []
        for tag, track in self._tracks.items():
            if track.state is State.INSIDE:
                if now - track.last_in >= timeout:
                    self._exit(track, tag, now)
            elif now - track.last_seen >= timeout:
                stale.append(tag)
        for tag in stale:
            del self._tracks[tag]
        excess = len(self._tracks) - self.settings.max_tags
        if excess > 0:
            order = sorted(
                self._tracks.items(), key=lambda kv: (kv[1].state is State.INSIDE, kv[1].last_seen)
            )
            for tag, _track in order[:excess]:
                del self._tracks[tag]

    def flush(self, now: float) -> None:
        """End of input (a trace ran out): close the footfall window, exit everyone."""
        for tag, track in list(self._tracks.items()):
            if track.state is State.INSIDE:
                self._exit(track, tag, now)
        self._tracks.clear()
        self._close_window()

    # -- output ---------------------------------------------------------------------

    def take(self) -> list[Decision]:
        out, self.pending = self.pending, []
        return out

    @property
    def tracked(self) -> int:
        return len(self._tracks)

    @property
    def inside(self) -> int:
        return sum(1 for t in self._tracks.values() if t.state is State.INSIDE)

    def state_of(self, tag: str) -> State:
        track = self._tracks.get(tag)
        return State.OUTSIDE if track is None else track.state

    def _exit(self, track: _Track, tag: str, t: float) -> None:
        track.state = State.OUTSIDE
        self._emit(track, "exit", tag, t, t - track.entered)

    def _emit(self, track: _Track, kind: str, tag: str, t: float, inside_s: float) -> None:
        self.pending.append(
            PresenceChange(
                kind=kind,
                tag=tag,
                t=t,
                rssi=round(min(20.0, max(-127.0, track.rssi)), 1),
                distance_m=round(min(1000.0, track.distance), 2),
                inside_s=round(max(0.0, inside_s), 1),
            )
        )

    def _close_window(self) -> None:
        if self._window >= 0 and self._window_adverts:
            size = self._footfall.window_s
            self.pending.append(
                FootfallCount(
                    window_start=float(self._window * size),
                    window_s=size,
                    unique_tags=len(self._window_tags),
                    adverts=self._window_adverts,
                )
            )
        self._window_adverts = 0
        self._window_tags = set()
