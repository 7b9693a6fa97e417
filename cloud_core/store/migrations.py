"""Every migration of the core's database, in one registry (``migrations``), for both backends.
long: the whole schema's history in one place, so every entry point applies all of it.

Whichever entry point opens the store (``core run``, ``core expire``, ``core add-customer``,
a test) applies all of them, whatever modules it happens to import. A new migration goes
into this file, never into a rule or storage module.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

from mallnet.plates import fold_plate

migrations = Migrations("mallnet.cloud_core")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO meta (key, value) VALUES ('key_generation', 0);

        CREATE TABLE customers (
            id TEXT PRIMARY KEY,
            phone TEXT NOT NULL UNIQUE,
            email TEXT,
            created_at TEXT NOT NULL
        );
        CREATE TABLE beacon_keys (
            id INTEGER PRIMARY KEY,
            customer_id TEXT NOT NULL REFERENCES customers(id),
            key_hex TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        );
        CREATE INDEX beacon_keys_customer ON beacon_keys(customer_id);
        CREATE TABLE vehicles (
            plate TEXT PRIMARY KEY,
            customer_id TEXT NOT NULL REFERENCES customers(id),
            country TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX vehicles_customer ON vehicles(customer_id);

        -- the ledger: lots are grants with what is left of them; the journal is append-only
        CREATE TABLE lots (
            id INTEGER PRIMARY KEY,
            customer_id TEXT NOT NULL,
            pocket TEXT NOT NULL,
            granted INTEGER NOT NULL CHECK (granted > 0),
            remaining INTEGER NOT NULL CHECK (remaining >= 0 AND remaining <= granted),
            expires_at TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX lots_open ON lots(customer_id, pocket, remaining);
        CREATE INDEX lots_expiry ON lots(expires_at) WHERE remaining > 0;
        CREATE TABLE journal (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            customer_id TEXT NOT NULL,
            pocket TEXT NOT NULL,
            delta INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('grant', 'spend', 'expire')),
            reason TEXT NOT NULL,
            lot_id INTEGER NOT NULL REFERENCES lots(id),
            idem_key TEXT NOT NULL,
            text TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX journal_wallet ON journal(customer_id, pocket);
        CREATE INDEX journal_lot ON journal(lot_id);
        CREATE TABLE idempotency (
            key TEXT PRIMARY KEY,
            ts TEXT NOT NULL,
            outcome TEXT NOT NULL
        );
        CREATE TABLE daily_grants (
            customer_id TEXT NOT NULL,
            rule TEXT NOT NULL,
            day TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (customer_id, rule, day)
        );

        -- exactly once: one row per applied event id, written with its effects
        CREATE TABLE processed_events (
            event_id TEXT PRIMARY KEY,
            node TEXT NOT NULL,
            topic TEXT NOT NULL,
            outcome TEXT NOT NULL,
            ts TEXT NOT NULL
        );
        CREATE TABLE visits (
            id INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL UNIQUE,
            customer_id TEXT NOT NULL,
            store TEXT NOT NULL,
            business TEXT NOT NULL,
            node TEXT NOT NULL,
            ts TEXT NOT NULL,
            ts_epoch REAL NOT NULL,
            day TEXT NOT NULL,
            points INTEGER NOT NULL
        );
        CREATE INDEX visits_cooldown ON visits(customer_id, store, ts_epoch);
        CREATE INDEX visits_day ON visits(customer_id, day);
        CREATE INDEX visits_store_day ON visits(store, day);

        CREATE TABLE dead_letters (
            id INTEGER PRIMARY KEY,
            ts TEXT NOT NULL,
            topic TEXT NOT NULL,
            kind TEXT NOT NULL,
            reason TEXT NOT NULL,
            payload BLOB NOT NULL
        );

        CREATE TABLE nodes (
            id TEXT PRIMARY KEY,
            state TEXT,
            since TEXT,
            software TEXT,
            last_health TEXT,
            last_seen TEXT
        );
        CREATE TABLE footfall (
            node TEXT NOT NULL,
            hour TEXT NOT NULL,
            unique_tags INTEGER NOT NULL,
            adverts INTEGER NOT NULL,
            windows INTEGER NOT NULL,
            PRIMARY KEY (node, hour)
        );

        CREATE TABLE campaigns (
            id TEXT PRIMARY KEY,
            business TEXT NOT NULL,
            title TEXT NOT NULL,
            text TEXT NOT NULL,
            image_url TEXT,
            starts_at TEXT NOT NULL,
            ends_at TEXT NOT NULL,
            stores TEXT NOT NULL,
            zones TEXT NOT NULL,
            segment TEXT NOT NULL,
            cap_count INTEGER NOT NULL,
            cap_period_s REAL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            campaign_id TEXT NOT NULL,
            customer_id TEXT NOT NULL,
            ts TEXT NOT NULL,
            ts_epoch REAL NOT NULL,
            trigger TEXT NOT NULL,
            event_id TEXT NOT NULL,
            UNIQUE (campaign_id, event_id)
        );
        CREATE INDEX deliveries_cap ON deliveries(campaign_id, customer_id, ts_epoch);
        """
    )


@migrations()
def m002_campaign_bonus(db: sqlite_utils.Database) -> None:
    db.execute("ALTER TABLE campaigns ADD COLUMN bonus_points INTEGER NOT NULL DEFAULT 0")


@migrations()
def m003_node_configs(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE node_configs (
            node TEXT PRIMARY KEY,
            revision INTEGER NOT NULL,
            payload TEXT NOT NULL
        );
        """
    )


@migrations()
def m004_key_removals(db: sqlite_utils.Database) -> None:
    db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('key_removals', 0)")


@migrations()
def m005_pending_notices(db: sqlite_utils.Database) -> None:
    # inbox notices written with the credit that makes them, deleted once the broker has
    # acknowledged their publish: at least once, in order (seq), across crashes
    db.executescript(
        """
        CREATE TABLE pending_notices (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            customer_id TEXT NOT NULL,
            topic TEXT NOT NULL,
            payload BLOB NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX pending_notices_customer ON pending_notices(customer_id);
        """
    )


@migrations()
def m006_presence_segments(db: sqlite_utils.Database) -> None:
    # a customer's continuous presence at a store, joined across rotating tag ids
    db.executescript(
        """
        CREATE TABLE presence_segments (
            id INTEGER PRIMARY KEY,
            customer_id TEXT NOT NULL,
            store TEXT NOT NULL,
            start_epoch REAL NOT NULL,
            end_epoch REAL NOT NULL
        );
        CREATE INDEX presence_segments_pair ON presence_segments(customer_id, store, end_epoch);
        """
    )


@migrations()
def m007_bounded_dead_letters(db: sqlite_utils.Database) -> None:
    # dead letters keep a bounded prefix of the payload with its full size and hash; what
    # the bounds drop (and retained event messages ignored) is counted per node
    db.executescript(
        """
        ALTER TABLE dead_letters ADD COLUMN node TEXT NOT NULL DEFAULT '';
        ALTER TABLE dead_letters ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE dead_letters ADD COLUMN sha256 TEXT NOT NULL DEFAULT '';
        UPDATE dead_letters SET size = length(payload);
        CREATE INDEX dead_letters_ts ON dead_letters(ts);
        CREATE INDEX dead_letters_repeat ON dead_letters(topic, sha256);
        CREATE INDEX footfall_hour ON footfall(hour);
        CREATE TABLE dead_letter_counts (
            node TEXT NOT NULL,
            what TEXT NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (node, what)
        );
        """
    )


@migrations()
def m008_campaign_instances(db: sqlite_utils.Database) -> None:
    # deliveries belong to one creation of a campaign, not to its (reusable) id; deliveries
    # of campaigns deleted before this migration belong to no instance
    db.executescript(
        """
        ALTER TABLE campaigns ADD COLUMN instance TEXT;
        UPDATE campaigns SET instance = lower(hex(randomblob(12)));
        CREATE UNIQUE INDEX campaigns_instance ON campaigns(instance);
        ALTER TABLE deliveries ADD COLUMN campaign_instance TEXT NOT NULL DEFAULT '';
        UPDATE deliveries SET campaign_instance = COALESCE(
            (SELECT instance FROM campaigns WHERE campaigns.id = deliveries.campaign_id), '');
        DROP INDEX deliveries_cap;
        CREATE INDEX deliveries_cap ON deliveries(campaign_instance, customer_id, ts_epoch);
        """
    )


@migrations()
def m009_kiosk_checkins(db: sqlite_utils.Database) -> None:
    # kiosk check-ins (cloud_core/rules/checkins.py): what each earned, for the per-kiosk
    # customer limit and the record; ``token`` is kept only for tokens the core cannot
    # credit yet (receipts), never a phone number
    db.executescript(
        """
        CREATE TABLE kiosk_checkins (
            event_id TEXT PRIMARY KEY,
            kiosk TEXT NOT NULL,
            customer_id TEXT,
            store TEXT,
            ts TEXT NOT NULL,
            ts_epoch REAL NOT NULL,
            outcome TEXT NOT NULL,
            token TEXT
        );
        CREATE INDEX kiosk_checkins_window ON kiosk_checkins(kiosk, ts_epoch);
        CREATE INDEX kiosk_checkins_customer ON kiosk_checkins(customer_id);
        """
    )


# Parking (rules/parking.py, parking_sessions.py). Numbered apart from the core's own
# tables; on a database made before this registry it may already be applied (it was
# registered on import of parking.py), so it stays idempotent (IF NOT EXISTS).
@migrations()
def m100_parking(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS parking_sessions (
            id INTEGER PRIMARY KEY,
            car_park TEXT NOT NULL,
            vehicle TEXT NOT NULL,          -- a registered plate, or 'h:' + HMAC of the read
            customer_id TEXT,               -- NULL for unregistered vehicles
            status TEXT NOT NULL CHECK (status IN ('open', 'closed', 'superseded', 'exit_only')),
            entry_event TEXT UNIQUE,
            entry_gate TEXT,
            entry_ts TEXT,
            entry_epoch REAL,
            exit_event TEXT UNIQUE,
            exit_gate TEXT,
            exit_ts TEXT,
            exit_epoch REAL,
            duration_s REAL,
            free_minutes INTEGER NOT NULL DEFAULT 0,
            free INTEGER,                   -- on exit: 1 when validated minutes covered the stay
            match TEXT NOT NULL             -- exact, fuzzy, none, ambiguous, low_confidence
        );
        CREATE INDEX IF NOT EXISTS parking_open
            ON parking_sessions(car_park, vehicle, status);
        CREATE INDEX IF NOT EXISTS parking_customer ON parking_sessions(customer_id, status);
        CREATE INDEX IF NOT EXISTS parking_unregistered
            ON parking_sessions(entry_epoch) WHERE customer_id IS NULL;
        CREATE TABLE IF NOT EXISTS parking_state (
            car_park TEXT PRIMARY KEY,
            occupied INTEGER NOT NULL CHECK (occupied >= 0)
        );
        CREATE TABLE IF NOT EXISTS parking_occupancy (
            id INTEGER PRIMARY KEY,
            car_park TEXT NOT NULL,
            ts TEXT NOT NULL,
            ts_epoch REAL NOT NULL,
            occupied INTEGER NOT NULL,
            event_id TEXT NOT NULL UNIQUE
        );
        CREATE INDEX IF NOT EXISTS parking_occupancy_series
            ON parking_occupancy(car_park, ts_epoch);
        CREATE TABLE IF NOT EXISTS parking_validations (
            code TEXT PRIMARY KEY,
            business TEXT NOT NULL,
            minutes INTEGER NOT NULL,
            session_id INTEGER NOT NULL REFERENCES parking_sessions(id),
            ts TEXT NOT NULL
        );
        """
    )


@migrations()
def m101_plate_fold(db: sqlite_utils.Database) -> None:
    # each registered plate with its look-alike class (mallnet.plates), so a read that is not
    # exact finds the plates it may be a misread of through an index, not a scan
    db.execute("ALTER TABLE vehicles ADD COLUMN plate_fold TEXT")
    rows = db.execute("SELECT plate FROM vehicles").fetchall()
    db.conn.executemany(
        "UPDATE vehicles SET plate_fold = ? WHERE plate = ?",
        [(fold_plate(str(plate)), plate) for (plate,) in rows],
    )
    db.execute("CREATE INDEX vehicles_fold ON vehicles(plate_fold)")


# Promo-code pools and the gift showcase (cloud_core/promo_codes.py, cloud_core/gifts.py).
# Ids are made in Python (text); a pool keeps its counters (total, claimed, used) beside its
# codes, written in the transaction that changes them, so stock is read without a scan.
@migrations()
def m200_promo_codes(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE promo_pools (
            id TEXT PRIMARY KEY,
            business TEXT NOT NULL,
            title TEXT NOT NULL,
            description TEXT NOT NULL,
            valid_from TEXT NOT NULL,
            valid_until TEXT NOT NULL,
            low_stock INTEGER NOT NULL CHECK (low_stock >= 0),
            per_customer INTEGER NOT NULL CHECK (per_customer >= 1),
            total INTEGER NOT NULL DEFAULT 0 CHECK (total >= 0),
            claimed INTEGER NOT NULL DEFAULT 0 CHECK (claimed >= 0 AND claimed <= total),
            used INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0 AND used <= claimed),
            low_alerted INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        );
        CREATE INDEX promo_pools_business ON promo_pools(business);
        CREATE TABLE promo_codes (
            pool_id TEXT NOT NULL REFERENCES promo_pools(id),
            code TEXT NOT NULL,
            seq INTEGER NOT NULL,
            customer_id TEXT,
            claim_key TEXT,
            claimed_at TEXT,
            used_at TEXT,
            used_by TEXT,
            use_key TEXT,
            PRIMARY KEY (pool_id, code)
        );
        CREATE INDEX promo_codes_free ON promo_codes(pool_id, seq) WHERE customer_id IS NULL;
        CREATE INDEX promo_codes_customer ON promo_codes(customer_id, pool_id);
        CREATE UNIQUE INDEX promo_codes_claim_key ON promo_codes(pool_id, claim_key);
        CREATE TABLE promo_uploads (
            id TEXT PRIMARY KEY,
            pool_id TEXT NOT NULL REFERENCES promo_pools(id),
            state TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
            total INTEGER NOT NULL,
            done INTEGER NOT NULL DEFAULT 0,
            added INTEGER NOT NULL DEFAULT 0,
            duplicates_in_file INTEGER NOT NULL DEFAULT 0,
            duplicates_in_pool INTEGER NOT NULL DEFAULT 0,
            bad INTEGER NOT NULL DEFAULT 0,
            problems TEXT NOT NULL DEFAULT '[]',
            detail TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            finished_at TEXT
        );
        CREATE INDEX promo_uploads_pool ON promo_uploads(pool_id);
        CREATE TABLE gifts (
            id TEXT PRIMARY KEY,
            pool_id TEXT NOT NULL UNIQUE REFERENCES promo_pools(id),
            title TEXT NOT NULL,
            description TEXT NOT NULL,
            points INTEGER NOT NULL CHECK (points > 0),
            created_at TEXT NOT NULL
        );
        CREATE TABLE gift_purchases (
            id TEXT PRIMARY KEY,
            gift_id TEXT NOT NULL REFERENCES gifts(id),
            customer_id TEXT NOT NULL,
            pool_id TEXT NOT NULL,
            code TEXT NOT NULL,
            points INTEGER NOT NULL,
            request_key TEXT NOT NULL UNIQUE,
            ts TEXT NOT NULL
        );
        CREATE INDEX gift_purchases_customer ON gift_purchases(customer_id);
        """
    )
