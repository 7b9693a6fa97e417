"""The consumer's periodic jobs: expiry and id retention, node configs, kiosk offers.

Each runs in its own transaction, on the ingest worker's thread between batches:

- ``expire``: zero due lots (journalled, with an inbox notice each), give back the points of
  till holds past their time (``holds.py``), announce lots expiring soon, forget presence,
  footfall and health ids too old to matter (``processed_events`` stays bounded), forget
  stays that can no longer be joined, and drop dead letters past their age;
- ``node_configs``: the retained presence tuning of every node whose store sets one, its
  revision going up (persisted, so across restarts and workers) whenever it changes;
- ``kiosk_configs``: the retained ``KioskSettings`` of every configured kiosk, its revision
  kept the same way (in ``node_configs`` under ``kiosk:{id}``: ids hold no ``:``, so no node's
  row is ever shared);
- ``kiosk_offers``: the offers the kiosks show now.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cloud_core import holds, ledger, visit_log
from cloud_core.config import CoreConfig, StoreConfig
from cloud_core.expiry_notices import warn_expiring
from cloud_core.ingest import dead_letters
from cloud_core.ingest.notices import NoticeOutbox, PendingNotice
from cloud_core.offers import list_campaigns
from cloud_core.rules.common import Notice
from cloud_core.rules.credit import change_notice
from cloud_core.store import Conn, Store
from mallnet.wire.payloads import KioskOffers, KioskSettings, NodeConfig, PresenceTuning


class Jobs:
    """The periodic jobs of one core worker (no network: the consumer publishes)."""

    def __init__(
        self,
        config: CoreConfig,
        store: Store,
        clock: Callable[[], float],
        outbox: NoticeOutbox,
        record: Callable[[Counter[str]], None],
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.outbox = outbox
        self.record = record  # adds to the worker's counters
        self.stores_by_node: dict[str, StoreConfig] = config.store_of_node()

    def expire(self) -> list[PendingNotice]:
        """The expiry job: zero due lots, journal each, keep and return the inbox notices;
        and forget presence, footfall and health ids too old to matter (``processed_events``
        stays bounded)."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        # An id processed more than twice the stale age ago can go: a redelivery of that
        # event now is stale anyway and credits (or counts) nothing.
        forget_before = now - timedelta(seconds=2 * self.config.ingest.max_event_age_s)
        with self.store.transaction() as conn:
            changes = ledger.expire_due(conn, now)
            forgotten = conn.execute(
                "DELETE FROM processed_events WHERE topic IN ('presence', 'footfall', 'health')"
                " AND ts < ?",
                (ledger.iso(forget_before),),
            ).rowcount
            # a stay that ended before then can only be joined by a stale event
            visit_log.forget_stays_before(conn, forget_before.timestamp())
            notices = [
                Notice(c.customer, change_notice(c, f"{-c.delta} points expired in {c.pocket}"))
                for c in changes
            ]
            released = holds.expire_due(conn, now)
            notices += [Notice(c.customer, change_notice(c, c.text)) for c in released]
            notices += warn_expiring(conn, now, self.config.spending.expiring_notice_days)
            pending = self.outbox.keep(conn, notices, ledger.iso(now))
            aged = now - timedelta(seconds=self.config.ingest.dead_letters.max_age_s)
            expired_letters = dead_letters.drop(conn, "ts < ?", ledger.iso(aged), "expired")
        self.record(
            Counter(
                {
                    "expired_lots": len(changes),
                    "forgotten_ids": forgotten,
                    "dead_letters.expired": expired_letters,
                }
            )
        )
        return pending

    def node_configs(self) -> list[tuple[str, NodeConfig]]:
        """The `NodeConfig` of every node whose store sets `node_tuning`; its revision goes up
        (persisted, so across restarts and workers) whenever the tuning changes."""
        out = []
        with self.store.transaction() as conn:
            for node, store in sorted(self.stores_by_node.items()):
                if store.node_tuning is None:
                    continue
                tuning = PresenceTuning(**store.node_tuning.model_dump())
                revision = _revision(conn, node, tuning.model_dump_json(exclude_none=True))
                out.append((node, NodeConfig(revision=revision, presence=tuning)))
        return out

    def kiosk_configs(self) -> list[tuple[str, KioskSettings]]:
        """The `KioskSettings` of every configured kiosk; its revision goes up (persisted)
        whenever its entry in `kiosks` changes."""
        out = []
        with self.store.transaction() as conn:
            for kiosk in self.config.kiosks:
                fields = kiosk.model_dump(
                    include={"store", "language", "idle_timeout_s", "carousel_s"}
                )
                payload = KioskSettings(revision=0, **fields).model_dump_json(exclude={"revision"})
                revision = _revision(conn, f"kiosk:{kiosk.id}", payload)
                out.append((kiosk.id, KioskSettings(revision=revision, **fields)))
        return out

    def kiosk_offers(self) -> KioskOffers:
        """The offers kiosks show now (active campaigns), newest deadline last."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        with self.store.read() as conn:
            active = list_campaigns(conn, active_at=now)
        cards = sorted(
            (c.card() for c in active), key=lambda card: (card.valid_until, card.campaign)
        )
        return KioskOffers(ts=now, offers=tuple(cards[:200]))


def _revision(conn: Conn, key: str, payload: str) -> int:
    """The revision of ``key``'s pushed config: up by one whenever ``payload`` changes."""
    row = conn.execute(
        "SELECT revision, payload FROM node_configs WHERE node = ?", (key,)
    ).fetchone()
    revision = 1 if row is None else int(row[0]) + (row[1] != payload)
    conn.execute(
        "INSERT INTO node_configs (node, revision, payload) VALUES (?, ?, ?)"
        " ON CONFLICT (node) DO UPDATE SET revision = excluded.revision,"
        " payload = excluded.payload",
        (key, revision, payload),
    )
    return revision
