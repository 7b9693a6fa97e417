"""Customers (wallets keyed by phone number), their beacon keys and vehicles, and the
resolver that turns a rotating beacon id back into a customer.

The resolver keeps, per rotation window, a dict from tag id to customer. The current
window and its neighbours are precomputed (and recomputed as windows roll, by the
injected clock), so resolving an event costs one or two dict lookups. An id counts
only if its window is one of ``mallnet.identity.windows_accepting(event time)``:
a recorded id replayed later resolves to nobody and is reported as a replay.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import phonenumbers

from cloud_core import coupons, lotteries, promo_codes, referrals, reviews, showcase, store_qr
from cloud_core.errors import Conflict, InvalidInput, NotFound
from cloud_core.ledger import iso
from cloud_core.parking_sessions import erase_parking
from cloud_core.purchases import erase_spending
from cloud_core.store import Conn, Row
from mallnet import identity
from mallnet.plates import fold_plate, normalise_plate

log = logging.getLogger(__name__)

Clock = Callable[[], float]
"""Unix time in seconds; injected so tests can move time."""


def normalise_phone(raw: str, default_region: str) -> str:
    """A phone number in E.164 (``+447911123456``); raises ``InvalidInput``."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        raise InvalidInput("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput("not a valid phone number")
    formatted: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return formatted


def new_customer_id() -> str:
    """An opaque customer id (used in inbox topics, so never derived from the phone)."""
    return "c" + secrets.token_hex(12)


def _bump_keys(conn: Conn, *, removal: bool = False) -> None:
    conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'key_generation'")
    if removal:
        conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'key_removals'")


def key_generation(conn: Conn) -> int:
    """Goes up with every beacon key attached or removed (the resolver reloads on a change)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'key_generation'").fetchone()
    return int(row[0]) if row else 0


def key_removals(conn: Conn) -> int:
    """Goes up when keys are removed (erasure): then the resolver reloads every key."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'key_removals'").fetchone()
    return int(row[0]) if row else 0


def register_customer(
    conn: Conn,
    phone: str,
    *,
    default_region: str,
    email: str | None = None,
    now: datetime | None = None,
) -> tuple[str, str]:
    """Create a wallet; returns (customer id, E.164 phone). ``Conflict`` if the phone exists."""
    e164 = normalise_phone(phone, default_region)
    existing = conn.execute("SELECT id FROM customers WHERE phone = ?", (e164,)).fetchone()
    if existing is not None:
        raise Conflict("this phone number is already registered")  # whose: admins only
    customer = new_customer_id()
    conn.execute(
        "INSERT INTO customers (id, phone, email, created_at) VALUES (?, ?, ?, ?)",
        (customer, e164, email, iso(now or datetime.now(UTC))),
    )
    return customer, e164


def require_customer(conn: Conn, customer: str) -> Row:
    row: Row | None = conn.execute(
        "SELECT id, phone, email, created_at FROM customers WHERE id = ?", (customer,)
    ).fetchone()
    if row is None:
        raise NotFound(f"no customer {customer!r}")
    return row


def attach_beacon_key(
    conn: Conn, customer: str, key_hex: str | None = None, now: datetime | None = None
) -> tuple[int, str]:
    """Attach a beacon key (a fresh one if none given); returns (key id, key hex)."""
    require_customer(conn, customer)
    key_hex = (key_hex or identity.new_beacon_key()).lower()
    try:
        identity.parse_key(key_hex)
    except identity.IdentityError as exc:
        raise InvalidInput(str(exc)) from None
    if conn.execute("SELECT 1 FROM beacon_keys WHERE key_hex = ?", (key_hex,)).fetchone():
        raise Conflict("this beacon key is already attached")
    (key_id,) = conn.execute(
        "INSERT INTO beacon_keys (customer_id, key_hex, created_at) VALUES (?, ?, ?) RETURNING id",
        (customer, key_hex, iso(now or datetime.now(UTC))),
    ).fetchone()
    _bump_keys(conn)
    return int(key_id), key_hex


def attach_vehicle(
    conn: Conn,
    customer: str,
    plate: str,
    country: str | None = None,
    now: datetime | None = None,
) -> str:
    """Attach a vehicle by plate (normalised to upper-case letters and digits)."""
    require_customer(conn, customer)
    normal = "".join(ch for ch in plate.upper() if ch.isalnum())
    if not 2 <= len(normal) <= 10 or not normal.isascii():
        raise InvalidInput("a plate has 2 to 10 letters and digits")
    owner = conn.execute("SELECT customer_id FROM vehicles WHERE plate = ?", (normal,)).fetchone()
    if owner is not None:
        raise Conflict("this plate is already attached")
    conn.execute(
        "INSERT INTO vehicles (plate, plate_fold, customer_id, country, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (normal, fold_plate(normal), customer, country, iso(now or datetime.now(UTC))),
    )
    return normal


def customer_of_plate(conn: Conn, plate: str) -> str | None:
    """The customer a vehicle belongs to (for parking rules)."""
    row = conn.execute("SELECT customer_id FROM vehicles WHERE plate = ?", (plate,)).fetchone()
    return str(row[0]) if row else None


MatchKind = Literal["exact", "confusable", "none", "ambiguous"]
MAX_CONFUSABLES = 2  # a read differing from a registered plate in more look-alikes is no match


@dataclass(frozen=True)
class PlateMatch:
    kind: MatchKind
    customer: str | None = None
    plate: str | None = None  # the registered plate matched


def match_plate(conn: Conn, read: str, *, fuzzy: bool = True) -> PlateMatch:
    """The registered vehicle a read belongs to.

    Exact first. Otherwise (``fuzzy``) a registered plate that differs from the read only
    in OCR look-alikes (``O``/``0``/``D``/``Q``, ``S``/``5``, ``A``/``4`` … — the gate
    reader's own table, ``mallnet.plates``), in at most ``MAX_CONFUSABLES`` places, and only
    if no other registered plate is as likely a reading (as few look-alike swaps away):
    when two are, the read is nobody's (``ambiguous``). Any other difference (``S`` read as
    ``G``) is no match: an unregistered car. Costs one indexed lookup, plus one more when not
    exact.
    """
    read = normalise_plate(read)
    row = conn.execute("SELECT customer_id FROM vehicles WHERE plate = ?", (read,)).fetchone()
    if row is not None:
        return PlateMatch("exact", str(row[0]), read)
    if not fuzzy or len(read) < 4:
        return PlateMatch("none")
    near = sorted(
        (sum(a != b for a, b in zip(str(plate), read, strict=True)), str(plate), str(customer))
        for plate, customer in conn.execute(
            "SELECT plate, customer_id FROM vehicles WHERE plate_fold = ?", (fold_plate(read),)
        )
    )
    near = [candidate for candidate in near if candidate[0] <= MAX_CONFUSABLES]
    if not near:
        return PlateMatch("none")
    if len(near) > 1 and near[1][0] == near[0][0]:
        return PlateMatch("ambiguous")  # two plates as likely: nobody's
    _, plate, customer = near[0]
    return PlateMatch("confusable", customer, plate)


def _names_customer(payload: bytes, needles: Iterable[str], plates: Iterable[str]) -> bool:
    text = payload.decode("utf-8", "replace")
    if any(needle in text for needle in needles):
        return True
    squeezed = "".join(ch for ch in text.upper() if ch.isalnum())  # "KA 1234-TX" as written
    return any(plate in squeezed for plate in plates)


def erase_dead_letters(
    conn: Conn, customer: str, values: Iterable[str], plates: Iterable[str]
) -> int:
    """Delete the dead letters whose payload holds any of the customer's values (id, phone,
    e-mail, beacon keys) or plates (also as written, with spaces or hyphens)."""
    needles = [v for v in {customer, *values} if v]
    plate_list = [p for p in plates if len(p) >= 2]
    doomed = [
        (int(row[0]),)
        for row in conn.execute("SELECT id, payload FROM dead_letters")
        if _names_customer(bytes(row[1]), needles, plate_list)
    ]
    conn.executemany("DELETE FROM dead_letters WHERE id = ?", doomed)
    return len(doomed)


def erase_customer(conn: Conn, customer: str) -> dict[str, int]:
    """Erase everything personal about a customer; returns rows removed per table.

    Removed: the phone and email (the customer row), beacon keys, vehicles, visits,
    presence segments, kiosk check-ins, offer deliveries, daily rule counters, idempotency
    keys naming the customer, lots, journal rows, inbox notices not yet published, parking
    sessions, the wallet's sign-in codes, devices and consent, mailing deliveries,
    unsubscribes and review invitations told, store QR scans, referrals
    (made or received), the link to lottery prizes won, reviews, gift purchases (their promo
    codes stay claimed, by nobody), and dead letters whose
    payload holds the customer's id, phone, e-mail, beacon key or plate; till holds,
    purchases and stored till answers (``purchases.erase_spending``).
    Nothing that names the customer is left, so the wallet's points are gone too (an
    erased customer cannot come back for them). Aggregates that never named anyone
    (footfall, processed event ids, which hold no customer) stay. The rows are deleted
    with ``secure_delete`` on; the caller checkpoints the WAL after the commit
    (``Store.checkpoint``) so no copy is left in the files either.
    """
    row = require_customer(conn, customer)
    plates = [
        str(r[0])
        for r in conn.execute("SELECT plate FROM vehicles WHERE customer_id = ?", (customer,))
    ]
    values = [str(row["phone"]), str(row["phone"]).lstrip("+"), str(row["email"] or "")]
    values += [
        str(r[0])
        for r in conn.execute("SELECT key_hex FROM beacon_keys WHERE customer_id = ?", (customer,))
    ]
    removed = {"dead_letters": erase_dead_letters(conn, customer, values, plates)}
    for table in (
        "beacon_keys",
        "vehicles",
        "visits",
        "deliveries",
        "daily_grants",
        "journal",
        "pending_notices",
        "presence_segments",
        "kiosk_checkins",
        "signin_codes",  # the shopper's own wallet (cloud_core/shoppers.py)
        "customer_devices",
        "customer_consents",
        "mailing_outbox",  # mailings (cloud_core/mailings.py)
        "mailing_unsubscribes",
        "review_invite_notices",  # cloud_core/review_invites.py
    ):
        cur = conn.execute(f"DELETE FROM {table} WHERE customer_id = ?", (customer,))  # noqa: S608
        removed[table] = cur.rowcount
    removed["idempotency"] = conn.execute(
        "DELETE FROM idempotency WHERE key LIKE ?", (f"%{customer}%",)
    ).rowcount  # keys that name the customer (the daily game key)
    removed |= erase_spending(conn, customer)  # till holds and purchases point at the lots
    removed["lots"] = conn.execute("DELETE FROM lots WHERE customer_id = ?", (customer,)).rowcount
    removed["parking_sessions"] = erase_parking(conn, customer)  # docs/parking.md
    removed["store_qr_scans"] = store_qr.erase(conn, customer)
    removed["referrals"] = referrals.erase(conn, customer)
    removed["lottery_winners"] = lotteries.erase(conn, customer)  # entries stay, unlinked
    removed["reviews"] = reviews.erase(conn, customer)
    removed.update(promo_codes.erase_customer_codes(conn, customer))  # stay claimed, by nobody
    removed.update(showcase.erase_customer_purchases(conn, customer))
    removed.update(coupons.erase_customer(conn, customer))
    removed["customers"] = conn.execute("DELETE FROM customers WHERE id = ?", (customer,)).rowcount
    _bump_keys(conn, removal=True)
    return removed


# --- resolving rotating ids ---------------------------------------------------------


@dataclass(frozen=True)
class Resolution:
    customer: str | None
    replayed: bool = False


class TagResolver:
    """Tag id → customer in O(1), for the windows an event's time accepts.

    ``load_keys`` returns every (customer, key bytes); it is called again when the key
    generation changes. With ``load_keys_after`` (key id → the (id, customer, key) of newer
    keys), keys attached since the last refresh are added to the cached windows instead,
    and everything is reloaded only when keys were removed.
    """

    def __init__(
        self,
        load_keys: Callable[[], Iterable[tuple[str, bytes]]],
        clock: Clock,
        *,
        cached_windows: int = 16,
        load_keys_after: Callable[[int], Iterable[tuple[int, str, bytes]]] | None = None,
    ) -> None:
        self._load_keys = load_keys
        self._load_keys_after = load_keys_after
        self._clock = clock
        self._cached_windows = max(cached_windows, 4)
        self._keys: list[tuple[str, bytes]] = []
        self._tables: OrderedDict[int, dict[str, str]] = OrderedDict()
        self._generation = -1
        self._removals = -1
        self._max_id = 0
        self._lock = threading.Lock()
        self.replays = 0
        self.unknown = 0
        self.full_loads = 0

    def refresh(self, generation: int, removals: int = 0) -> None:
        """Catch up with key changes; precompute the current window ±1."""
        with self._lock:
            if generation != self._generation:
                if self._load_keys_after is not None and removals == self._removals:
                    self._add_new_keys()
                else:
                    self._reload()
                self._generation, self._removals = generation, removals
            current = identity.window_of(self._clock())
            for window in (current - 1, current, current + 1):
                self._table(window)

    def _reload(self) -> None:
        self.full_loads += 1
        self._tables.clear()
        if self._load_keys_after is not None:
            rows = list(self._load_keys_after(0))
            self._keys = [(customer, key) for _, customer, key in rows]
            self._max_id = max((key_id for key_id, _, _ in rows), default=0)
        else:
            self._keys = list(self._load_keys())
        log.info("resolver loaded %d beacon keys", len(self._keys))

    def _add_new_keys(self) -> None:
        assert self._load_keys_after is not None
        for key_id, customer, key in self._load_keys_after(self._max_id):
            self._keys.append((customer, key))
            self._max_id = max(self._max_id, key_id)
            for window, table in self._tables.items():
                table[identity.tag_id(key, window)] = customer

    def _table(self, window: int) -> dict[str, str]:
        table = self._tables.get(window)
        if table is None:
            table = {identity.tag_id(key, window): customer for customer, key in self._keys}
            self._tables[window] = table
            while len(self._tables) > self._cached_windows:
                self._tables.popitem(last=False)
        else:
            self._tables.move_to_end(window)
        return table

    def resolve(self, tag: str, event_time: float) -> Resolution:
        """The customer whose id this is for the event's time, or why there is none."""
        with self._lock:
            for window in identity.windows_accepting(event_time):
                customer = self._table(window).get(tag)
                if customer is not None:
                    return Resolution(customer)
            for window, table in self._tables.items():
                if tag in table and window not in identity.windows_accepting(event_time):
                    self.replays += 1
                    return Resolution(None, replayed=True)
            self.unknown += 1
            return Resolution(None)


def load_keys_after(conn: Conn, after: int) -> list[tuple[int, str, bytes]]:
    """Beacon keys with an id above ``after``: (id, customer, key bytes)."""
    return [
        (int(row[0]), str(row[1]), bytes.fromhex(row[2]))
        for row in conn.execute(
            "SELECT id, customer_id, key_hex FROM beacon_keys WHERE id > ? ORDER BY id", (after,)
        )
    ]


def load_all_keys(conn: Conn) -> list[tuple[str, bytes]]:
    return [
        (str(row[0]), bytes.fromhex(row[1]))
        for row in conn.execute("SELECT customer_id, key_hex FROM beacon_keys")
    ]
