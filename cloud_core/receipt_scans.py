"""A shopper scans a tenant's fiscal receipt: its QR code becomes a purchase, once.

``scan`` reads the QR text with the country's parser (``cloud_core.fiscal``), finds the
store whose fiscal register printed it (``stores[].fiscal_registers``), refuses returns,
receipts older than ``receipts.max_age_days`` and receipts dated in the future, then
registers the purchase exactly as a till does (``purchases.register``: cashback by the
store's rule, ``UNIQUE (store, receipt)`` with the receipt's fiscal key — so the same
receipt never credits twice, whoever scans it), and plays the receipt game: receipts from
``receipts.game.partners`` different partners in one week (the mall's Monday to Sunday)
pay ``prize_points`` into the coalition pocket, once per shopper and week. Runs in the
caller's transaction; returns the ledger changes for the inbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cloud_core import ledger, purchases
from cloud_core.config import CoreConfig, StoreConfig
from cloud_core.errors import Conflict, InvalidInput, NotFound
from cloud_core.fiscal import FiscalReceipt, parse_receipt
from cloud_core.holds import Till
from cloud_core.ledger import COALITION
from cloud_core.store import Conn

SCANNED = "receipt-qr"  # the till and seller a scanned purchase is recorded with


@dataclass(frozen=True)
class Scan:
    receipt: FiscalReceipt
    store: str
    purchase: purchases.Purchase
    prize_points: int


def store_of(config: CoreConfig, receipt: FiscalReceipt) -> StoreConfig:
    for store in config.stores:
        if receipt.register in store.fiscal_registers:
            return store
    raise NotFound(
        f"receipt from fiscal register {receipt.register!r}, which is no store's of this mall"
    )


def _check_age(config: CoreConfig, receipt: FiscalReceipt, now: datetime) -> None:
    tz = ZoneInfo(config.timezone)
    issued = receipt.issued_at
    issued = issued.replace(tzinfo=tz) if issued.tzinfo is None else issued
    if issued > now + timedelta(hours=1):
        raise InvalidInput("the receipt is dated in the future")
    if now - issued > timedelta(days=config.receipts.max_age_days):
        raise InvalidInput(
            f"the receipt is older than {config.receipts.max_age_days} days: it earns nothing"
        )


def _week(moment: datetime, tz: ZoneInfo) -> tuple[str, datetime, datetime]:
    local = moment.astimezone(tz)
    monday = (local - timedelta(days=local.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    year, week, _ = local.isocalendar()
    return f"{year}-W{week:02d}", monday, monday + timedelta(days=7)


def _play_game(
    conn: Conn, config: CoreConfig, customer: str, now: datetime
) -> tuple[int, list[ledger.Change]]:
    game = config.receipts.game
    if game is None:
        return 0, []
    label, start, end = _week(now, ZoneInfo(config.timezone))
    (partners,) = conn.execute(
        "SELECT COUNT(DISTINCT business) FROM purchases WHERE customer_id = ? AND till = ?"
        " AND status = 'registered' AND ts >= ? AND ts < ?",
        (customer, SCANNED, ledger.iso(start), ledger.iso(end)),
    ).fetchone()
    if int(partners) < game.partners:
        return 0, []
    result = ledger.grant(
        conn,
        customer=customer,
        pocket=COALITION,
        points=game.prize_points,
        reason="game",
        idem_key=f"receipt-game:{customer}:{label}",
        now=now,
        text=f"+{game.prize_points} points: receipts from {game.partners} partners this week",
    )
    if result.change is None:  # this week's prize is already paid
        return 0, []
    return game.prize_points, [result.change]


def scan(
    conn: Conn, config: CoreConfig, *, customer: str, qr: str, now: datetime
) -> tuple[Scan, list[ledger.Change]]:
    """Register the purchase a receipt's QR code shows, for ``customer`` (see the module)."""
    if not config.receipts.enabled:
        raise InvalidInput("this mall does not take receipt scans")
    receipt = parse_receipt(qr)
    if not receipt.sale:
        raise InvalidInput("a return, reversal or training receipt earns nothing")
    _check_age(config, receipt, now)
    store = store_of(config, receipt)
    till = Till(store.business, store.id, SCANNED, SCANNED)
    try:
        purchase, changes = purchases.register(
            conn,
            config.spending,
            till,
            customer=customer,
            receipt=receipt.key,
            amount_cents=receipt.total_cents,
            now=now,
            store_name=store.name,
        )
    except Conflict:
        raise Conflict("this receipt has already been scanned") from None
    prize, won = _play_game(conn, config, customer, now)
    return Scan(receipt, store.id, purchase, prize), [*changes, *won]
