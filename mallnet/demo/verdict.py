"""Did the demo mall credit what its shoppers did, each visit exactly once?

The simulator's truth says who stayed in which store and when; the inbox says which visit
credits arrived. ``judge`` compares them at the moment the demo stopped:

- a browse that ended long enough before the stop for its exit to have been decided and
  carried to the core (``settle_s``) must be credited exactly once;
- a glance (shorter than half the core's minimum dwell) must credit nothing;
- no (shopper, business) pair is credited twice: each shopper visits a store once per trip
  and the core's cooldown is an hour;
- stays in between (cut by the stop, or close to the minimum dwell) may go either way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TruthStay:
    shopper: str
    store: str
    enter: float
    leave: float


@dataclass
class Verdict:
    expected: int = 0  # browses that must have been credited
    credited: int = 0  # visit credits received
    missing: list[tuple[str, str]] = field(default_factory=list)
    doubled: list[tuple[str, str]] = field(default_factory=list)
    unexpected: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.doubled or self.unexpected)


def parse_truth(data: Mapping[str, object]) -> list[TruthStay]:
    stays = data.get("stays", [])
    if not isinstance(stays, list):
        raise ValueError("truth.json: 'stays' is not a list")
    return [
        TruthStay(str(s["shopper"]), str(s["store"]), float(s["enter"]), float(s["leave"]))
        for s in stays
    ]


def judge(
    stays: Iterable[TruthStay],
    credits: Iterable[tuple[str, str]],
    *,
    business_of: Mapping[str, str],
    stopped_at: float,
    min_dwell_s: float,
    settle_s: float,
) -> Verdict:
    """``credits``: (shopper, business) per visit credit; ``stopped_at`` in trace time."""
    must: set[tuple[str, str]] = set()
    may: set[tuple[str, str]] = set()
    for stay in stays:
        pair = (stay.shopper, business_of[stay.store])
        dwell = stay.leave - stay.enter
        if dwell >= min_dwell_s + 15 and stay.leave + settle_s <= stopped_at:
            must.add(pair)
        elif dwell >= min_dwell_s / 2:
            may.add(pair)
    counted = Counter(credits)
    verdict = Verdict(expected=len(must), credited=sum(counted.values()))
    verdict.missing = sorted(must - set(counted))
    verdict.doubled = sorted(pair for pair, n in counted.items() if n > 1)
    verdict.unexpected = sorted(set(counted) - must - may)
    return verdict
