"""Every migration of the core's database, in one registry (``migrations``) (long: one
registry for every table by design, so no entry point can miss a migration).

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


# Shopper schemes (issue 12: store QR check-ins, referrals, lotteries); numbered apart.
@migrations()
def m300_store_qr_scans(db: sqlite_utils.Database) -> None:
    # one row per (shopper, store QR code) scanned: the same code scanned again by the same
    # shopper is refused; rows older than a day are deleted as new scans come in
    db.executescript(
        """
        CREATE TABLE store_qr_scans (
            customer_id TEXT NOT NULL,
            code TEXT NOT NULL,
            store TEXT NOT NULL,
            event_id TEXT NOT NULL UNIQUE,
            ts TEXT NOT NULL,
            ts_epoch REAL NOT NULL,
            outcome TEXT NOT NULL,
            PRIMARY KEY (customer_id, code)
        );
        CREATE INDEX store_qr_scans_age ON store_qr_scans(ts_epoch);
        """
    )


@migrations()
def m301_referrals(db: sqlite_utils.Database) -> None:
    # a shopper's referral code, and each new shopper who joined with one (the reward's
    # terms fixed when the shopper joined; rewarded once, on the first qualifying visit)
    db.executescript(
        """
        CREATE TABLE referral_codes (
            customer_id TEXT PRIMARY KEY,
            code TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        );
        CREATE TABLE referrals (
            referee_id TEXT PRIMARY KEY,
            referrer_id TEXT NOT NULL,
            referrer_points INTEGER NOT NULL,
            referee_points INTEGER NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'rewarded')),
            created_at TEXT NOT NULL,
            rewarded_at TEXT,
            trigger TEXT
        );
        CREATE INDEX referrals_referrer ON referrals(referrer_id);
        """
    )


@migrations()
def m302_lotteries(db: sqlite_utils.Database) -> None:
    # draws with an auditable seed: its SHA-256 published when announced, the seed, the
    # sorted entries and the winners once drawn (rules/lottery.py); prizes credited once
    db.executescript(
        """
        CREATE TABLE lotteries (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            campaign_id TEXT,
            stores TEXT NOT NULL,
            opens_at TEXT NOT NULL,
            closes_at TEXT NOT NULL,
            prizes TEXT NOT NULL,
            seed TEXT NOT NULL,
            seed_sha256 TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('announced', 'drawn')),
            created_at TEXT NOT NULL,
            drawn_at TEXT,
            entries TEXT
        );
        CREATE TABLE lottery_winners (
            lottery_id TEXT NOT NULL,
            rank INTEGER NOT NULL,
            entry TEXT NOT NULL,
            customer_id TEXT,
            points INTEGER NOT NULL,
            pocket TEXT NOT NULL,
            title TEXT NOT NULL,
            PRIMARY KEY (lottery_id, rank)
        );
        CREATE INDEX lottery_winners_customer ON lottery_winners(customer_id);
        """
    )


@migrations()
def m303_reviews(db: sqlite_utils.Database) -> None:
    # shoppers' reviews of stores (1-5 stars and text), moderated by the mall, replied to by
    # the tenant; one per shopper and store
    db.executescript(
        """
        CREATE TABLE reviews (
            id TEXT PRIMARY KEY,
            customer_id TEXT NOT NULL,
            store TEXT NOT NULL,
            business TEXT NOT NULL,
            stars INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
            text TEXT NOT NULL,
            source TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'published', 'rejected')),
            created_at TEXT NOT NULL,
            moderated_at TEXT,
            moderation_note TEXT,
            reply TEXT,
            replied_at TEXT,
            UNIQUE (customer_id, store)
        );
        CREATE INDEX reviews_store ON reviews(store, status);
        """
    )
