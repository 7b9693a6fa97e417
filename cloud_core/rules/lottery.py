"""Lotteries with an auditable seed: the procedure anyone can rerun, and the draw itself.

When a lottery is announced the core makes a random seed (32 bytes, as 64 lowercase hex
digits) and publishes only its SHA-256 (``seed_sha256``, of the 64 ASCII characters).
After ``closes_at`` the draw (procedure ``mallnet-lottery-v1``):

1. the participants are the distinct customers with a qualifying visit in
   ``[opens_at, closes_at)`` (at ``stores``, or anywhere when empty), or, for a campaign's
   lottery, those the campaign's offer was delivered to in that period;
2. each participant's *entry* is ``SHA-256("<lottery id>:<customer id>")`` in hex — a
   shopper recomputes their own from their customer id; nobody else can link it to them;
3. the entries are sorted (ascending, as text) and published with the seed;
4. each entry's score is ``SHA-256("<seed>:<entry>")`` in hex; the entries ordered by
   score (then by entry) give the ranking, and the first ``len(prizes)`` win prizes 1, 2, …

``verify`` reruns 3–4 from a published lottery (``mallnet core lottery-verify``).
``run_draw`` does the draw in the API's transaction: once (``lotteries.mark_drawn``), the
winners recorded and each points prize credited through ``credit`` with the key
``lottery:<id>:<rank>``, with the winner's inbox notice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from cloud_core import lotteries
from cloud_core.errors import Conflict
from cloud_core.rules.common import Notice
from cloud_core.rules.credit import credit
from cloud_core.store import Conn

PROCEDURE = "mallnet-lottery-v1"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def seed_hash(seed: str) -> str:
    """What is published when the lottery is announced."""
    return sha256_hex(seed)


def entry_of(lottery_id: str, customer: str) -> str:
    """A participant's published entry (step 2)."""
    return sha256_hex(f"{lottery_id}:{customer}")


def ranking(seed: str, entries: Sequence[str]) -> list[str]:
    """Every entry, best first (step 4)."""
    return sorted(set(entries), key=lambda entry: (sha256_hex(f"{seed}:{entry}"), entry))


def winners(seed: str, entries: Sequence[str], prizes: int) -> list[str]:
    """The winning entries, prize 1 first."""
    return ranking(seed, entries)[:prizes]


def verify(published: Mapping[str, Any]) -> list[str]:
    """Every way a published, drawn lottery does not follow the procedure (empty: it does)."""
    problems = []
    if published.get("procedure") != PROCEDURE:
        problems.append(f"procedure is {published.get('procedure')!r}, not {PROCEDURE!r}")
    seed, entries = published.get("seed"), published.get("entries")
    if not isinstance(seed, str) or not isinstance(entries, list):
        return [*problems, "not drawn yet: no seed or no entries published"]
    if seed_hash(seed) != published.get("seed_sha256"):
        problems.append("the seed's SHA-256 is not the one published when it was announced")
    if entries != sorted(set(entries)):
        problems.append("the entries are not sorted and distinct")
    prizes = published.get("prizes") or []
    expected = winners(seed, [str(e) for e in entries], len(prizes))
    got = [w.get("entry") for w in sorted(published.get("winners") or [], key=_rank)]
    if got != expected:
        problems.append(f"the winners are not the procedure's: expected {expected}, got {got}")
    return problems


def _rank(winner: Mapping[str, Any]) -> int:
    return int(winner.get("rank", 0))


def run_draw(conn: Conn, lottery_id: str, now: datetime) -> tuple[Notice, ...]:
    """Draw an announced lottery whose entries have closed; ``Conflict`` otherwise."""
    lottery = lotteries.get(conn, lottery_id)
    if lottery.status != "announced":
        raise Conflict(f"lottery {lottery_id!r} was drawn already")
    if now < lottery.closes_at:
        raise Conflict(
            f"lottery {lottery_id!r} takes entries until {lottery.closes_at.isoformat()}"
        )
    customers = lotteries.participants(conn, lottery)
    by_entry = {entry_of(lottery.id, c): c for c in customers}
    entries = sorted(by_entry)
    if not lotteries.mark_drawn(conn, lottery.id, entries, now):
        raise Conflict(f"lottery {lottery_id!r} was drawn already")
    notices: list[Notice] = []
    for rank, (entry, prize) in enumerate(
        zip(winners(lottery.seed, entries, len(lottery.prizes)), lottery.prizes, strict=False),
        start=1,
    ):
        customer = by_entry[entry]
        lotteries.add_winner(conn, lottery.id, rank, entry=entry, customer=customer, prize=prize)
        if prize.points > 0:
            paid = credit(
                conn,
                customer=customer,
                pocket=prize.pocket,
                points=prize.points,
                reason="lottery",
                idem_key=f"lottery:{lottery.id}:{rank}",
                now=now,
                text=f"+{prize.points} points: you won {prize.title} in {lottery.title}",
            )
            notices.extend([paid.notice] if paid.notice else [])
    return tuple(notices)
