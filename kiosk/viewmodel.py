"""The kiosk's whole behaviour in plain Python: screens, keypad, wallet, offers, scans, timeout.

No Kivy here: the widgets (``kiosk/ui``) call the actions below on touches and
show what ``view()`` returns; tests drive the same object without a window.
Time comes from an injected clock; the core is reached only through the
``ports`` protocols, with slow calls run off the UI thread by an ``IoRunner``.

After ``idle_timeout_s`` without a touch the kiosk returns to the attract
screen and forgets the shopper: id, masked phone, wallet, typed digits,
selected offer and any message naming them are dropped from memory, and a
core answer that arrives later for that shopper is ignored (a session counter).

Past 400 lines on purpose: one state machine and the texts it renders, kept
together so every screen's state and wording is read (and tested) in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from kiosk import phone, tokens
from kiosk.i18n import DEFAULT_LANGUAGE, Translator
from kiosk.ports import (
    CheckinSink,
    CoreApi,
    CoreRefused,
    CoreUnreachable,
    IoRunner,
    Offer,
    Submitted,
    Wallet,
)
from kiosk.wallet_view import wallet_texts

log = logging.getLogger(__name__)

ScreenName = Literal["idle", "checkin", "wallet", "offers", "scan", "message"]
ScanMode = Literal["identify", "receipt", "store"]
Clock = Callable[[], float]


@dataclass(frozen=True)
class Settings:
    """The view model's tuning (from the kiosk's config)."""

    country_code: str = "+380"
    store: str | None = None  # the store the kiosk stands in, if any
    idle_timeout_s: float = 60.0
    carousel_s: float = 8.0
    message_s: float = 10.0
    expiry_warning_days: int = 30
    language: str = DEFAULT_LANGUAGE  # the language of the idle screen


@dataclass(frozen=True)
class Shopper:
    customer: str
    label: str  # what the screen may show: a masked phone number, or "app"


@dataclass(frozen=True)
class Message:
    key: str
    values: tuple[tuple[str, str], ...] = ()
    tone: Literal["ok", "info", "error"] = "info"


class KioskViewModel:
    """State and actions of the kiosk. Call only from the UI thread."""

    def __init__(
        self,
        core: CoreApi,
        sink: CheckinSink,
        translator: Translator,
        *,
        settings: Settings | None = None,
        clock: Clock,
        run_io: IoRunner,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._core = core
        self._sink = sink
        self.t = translator
        self.settings = settings or Settings()
        self._clock = clock
        self._wall = wall_clock
        self._run_io = run_io
        self.offers: tuple[Offer, ...] = ()
        self.carousel = 0
        self._carousel_at = clock()
        self._session = 0
        self._listeners: list[Callable[[], None]] = []
        self._reset_shopper()
        self.t.set_language(self.settings.language)

    def configure(self, settings: Settings) -> None:
        """New settings (pushed by the core): timeouts and the carousel apply from now; the
        idle screen switches to the new language, a shopper's screen keeps theirs."""
        self.settings = settings
        if self.screen == "idle":
            self.t.set_language(settings.language)
        self._changed()

    # -- state -------------------------------------------------------------------------

    def _reset_shopper(self) -> None:
        self.screen: ScreenName = "idle"
        self.scan_mode: ScanMode = "identify"
        self.typed = ""
        self.shopper: Shopper | None = None
        self.wallet: Wallet | None = None
        self.wallet_problem: str | None = None
        self.selected: int | None = None
        self.message: Message | None = None
        self.input_error: str | None = None
        self.busy = False
        self._pending: set[str] = set()
        self._message_until = 0.0
        self._last_touch = self._clock()
        self._session += 1

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every change (the UI re-renders)."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def _touch(self) -> None:
        self._last_touch = self._clock()

    # -- navigation ----------------------------------------------------------------------

    def set_language(self, language: str) -> None:
        self._touch()
        self.t.set_language(language)
        self._changed()

    def start(self) -> None:
        """Idle → the check-in screen (keypad, or scan the app's QR)."""
        self._touch()
        self.screen = "checkin"
        self.typed = ""
        self.input_error = None
        self._changed()

    def go(self, screen: ScreenName) -> None:
        """Move between the shopper's screens; without a shopper only idle and check-in."""
        self._touch()
        if screen == "wallet" and self.shopper is None:
            screen = "checkin"
        self.screen = screen
        self.message = None
        self._changed()

    def back(self) -> None:
        """One step back: to the wallet with a shopper, else to idle."""
        self._touch()
        self.message = None
        self.input_error = None
        self.screen = "wallet" if self.shopper is not None else "idle"
        self._changed()

    def scan(self, mode: ScanMode) -> None:
        """Open the camera screen: the app's QR, a receipt or a store's QR."""
        self._touch()
        if mode != "identify" and self.shopper is None:
            self.screen = "checkin"
        else:
            self.scan_mode = mode
            self.screen = "scan"
        self._changed()

    def finish(self) -> None:
        """The shopper is done: forget them now."""
        self._reset_shopper()
        self.t.set_language(self.settings.language)
        self._changed()

    def dismiss(self) -> None:
        """Close a message: back to the shopper's wallet, or to idle without a shopper."""
        self._touch()
        self.message = None
        self.screen = "wallet" if self.shopper is not None else "idle"
        self._changed()

    # -- keypad --------------------------------------------------------------------------

    def press(self, key: str) -> None:
        """A keypad key: a digit, ``+`` (only first), ``back`` or ``clear``."""
        self._touch()
        self.input_error = None
        if key == "back":
            self.typed = self.typed[:-1]
        elif key == "clear":
            self.typed = ""
        elif key == "+" and not self.typed:
            self.typed = "+"
        elif key.isdigit() and len(key) == 1 and len(self.typed.lstrip("+")) < phone.MAX_DIGITS:
            self.typed += key
        self._changed()

    @property
    def typed_masked(self) -> str:
        """The typed number as the screen shows it: all but the last two digits hidden."""
        return phone.mask(self.typed) if self.typed else ""

    def submit_phone(self) -> None:
        """Look the typed number up at the core; identify the shopper or say why not."""
        self._touch()
        if self.busy:
            return
        e164 = phone.to_e164(self.typed, self.settings.country_code)
        if e164 is None:
            self.input_error = "checkin.invalid"
            self._changed()
            return
        self.busy = True
        session = self._session
        self._changed()

        def done(result: str | Exception | None) -> None:
            if session != self._session:
                return  # the shopper timed out meanwhile: forget the answer
            self.busy = False
            self.typed = ""
            if isinstance(result, CoreUnreachable):
                self._queue_offline_phone(e164)
            elif isinstance(result, Exception):
                log.warning("phone look-up failed: %s", result)
                self._show(Message("error.core", tone="error"))
            elif result is None:
                self._show(Message("checkin.unknown", tone="error"))
            else:
                self._identified(result, phone.mask(e164))
            self._changed()

        self._run_io(lambda: self._core.find_customer(e164), done)

    def _queue_offline_phone(self, e164: str) -> None:
        submitted = self._sink.submit(tokens.phone_token(e164), self.settings.store)
        self._track(submitted)
        self._show(Message("checkin.offline_phone", tone="info"))

    # -- scanning ------------------------------------------------------------------------

    def on_code(self, text: str) -> None:
        """A QR code read by the camera (already debounced), on the UI thread."""
        code = tokens.classify(text)
        if self.screen == "scan" and self.scan_mode == "receipt":
            self._touch()
            self._receipt(code.value if code.kind == "other" else text.strip())
        elif self.screen == "scan" and self.scan_mode == "store":
            self._touch()
            if code.kind == "store":
                self._store_visit(code.value)
            else:
                self._show(Message("scan.not_store", tone="error"))
        elif code.kind == "customer" and self.screen in ("idle", "checkin", "scan"):
            if self.shopper is not None and self.shopper.customer == code.value:
                return  # the same app held up again
            self._reset_shopper()
            self._identified(code.value, self.t("checkin.by_app"))
        elif self.screen == "scan":
            self._touch()
            self._show(Message("scan.not_app", tone="error"))
        else:
            return  # a stray code in front of another screen: not for us
        self._changed()

    def _receipt(self, text: str) -> None:
        assert self.shopper is not None
        token = tokens.receipt_token(self.shopper.customer, text)
        if token is None:
            self._show(Message("scan.receipt_bad", tone="error"))
            return
        submitted = self._sink.submit(token, None)
        self._track(submitted)
        key = "scan.receipt_sent" if submitted.online else "scan.receipt_saved"
        self._show(Message(key, tone="ok" if submitted.online else "info"))

    def _store_visit(self, store: str) -> None:
        assert self.shopper is not None
        submitted = self._sink.submit(tokens.customer_token(self.shopper.customer), store)
        self._track(submitted)
        key = "scan.store_sent" if submitted.online else "scan.store_saved"
        self._show(Message(key, (("store", store),), "ok" if submitted.online else "info"))

    # -- the shopper ---------------------------------------------------------------------

    def _identified(self, customer: str, label: str) -> None:
        self.shopper = Shopper(customer, label)
        submitted = self._sink.submit(tokens.customer_token(customer), self.settings.store)
        self._track(submitted)
        self.message = Message(
            "wallet.checked_in" if submitted.online else "wallet.checked_in_saved",
            tone="ok" if submitted.online else "info",
        )
        self.screen = "wallet"
        self.load_wallet()

    def load_wallet(self) -> None:
        """Ask the core for the shopper's balances (shown when they arrive)."""
        if self.shopper is None:
            return
        customer = self.shopper.customer
        session = self._session
        self.wallet = None
        self.wallet_problem = None
        self.busy = True

        def done(result: Wallet | Exception) -> None:
            if session != self._session:
                return
            self.busy = False
            if isinstance(result, CoreUnreachable):
                self.wallet_problem = "wallet.unreachable"
            elif isinstance(result, CoreRefused):
                self.wallet_problem = "wallet.refused"
            elif isinstance(result, Exception):
                log.warning("wallet failed: %s", result)
                self.wallet_problem = "error.core"
            else:
                self.wallet = result
            self._changed()

        self._run_io(lambda: self._core.wallet(customer), done)

    def _track(self, submitted: Submitted) -> None:
        self._pending.add(submitted.id)

    def on_delivered(self, ids: set[str]) -> None:
        """The core receipted these check-ins (sent from the queue or at once)."""
        if self._pending & ids:
            self._pending -= ids
            self._changed()

    @property
    def waiting_here(self) -> int:
        """This shopper's check-ins not yet sent."""
        return len(self._pending)

    # -- offers --------------------------------------------------------------------------

    def set_offers(self, offers: tuple[Offer, ...]) -> None:
        """The offers pushed by the core (retained on the kiosk's offers topic)."""
        now = self._wall()
        self.offers = tuple(o for o in offers if o.valid_until > now)
        if self.carousel >= len(self.offers):
            self.carousel = 0
        if self.selected is not None and self.selected >= len(self.offers):
            self.selected = None
        self._changed()

    def select_offer(self, index: int) -> None:
        self._touch()
        if 0 <= index < len(self.offers):
            self.selected = index
            self.screen = "offers"
        self._changed()

    def step_offer(self, delta: int) -> None:
        """Previous (-1) or next (+1) offer on the offers screen."""
        self._touch()
        if self.offers:
            current = self.selected if self.selected is not None else 0
            self.selected = (current + delta) % len(self.offers)
        self.screen = "offers"
        self._changed()

    def claim_offer(self) -> None:
        """The core has no coupon codes yet: say so instead of pretending."""
        self._touch()
        self._show(Message("offers.claim_unavailable", tone="info"))
        self._changed()

    # -- time ----------------------------------------------------------------------------

    def tick(self) -> None:
        """Called about once a second: carousel, message expiry, inactivity timeout."""
        now = self._clock()
        changed = False
        if self.screen != "idle" and now - self._last_touch >= self.settings.idle_timeout_s:
            log.info("no touch for %.0f s: back to idle, shopper forgotten", now - self._last_touch)
            self._reset_shopper()
            self.t.set_language(self.settings.language)
            changed = True
        if self.message is not None and self.screen == "message" and now >= self._message_until:
            self.message = None
            self.screen = "wallet" if self.shopper is not None else "idle"
            changed = True
        if self.offers and now - self._carousel_at >= self.settings.carousel_s:
            self._carousel_at = now
            self.carousel = (self.carousel + 1) % len(self.offers)
            changed = changed or self.screen == "idle"
        if changed:
            self._changed()

    def _show(self, message: Message) -> None:
        self.message = message
        self.screen = "message"
        self._message_until = self._clock() + self.settings.message_s

    # -- what the screen shows -----------------------------------------------------------

    def view(self) -> dict[str, str]:
        """Every dynamic text of the current screen, translated."""
        t = self.t
        out: dict[str, str] = {"screen": self.screen, "language": t.language}
        out["status"] = (
            t("status.offline", waiting=self._sink.waiting) if not self._sink.online else ""
        )
        if self.message is not None:
            out["message"] = t(self.message.key, **dict(self.message.values))
            out["message_tone"] = self.message.tone
        else:
            out["message"] = ""
            out["message_tone"] = ""
        out.update(self._view_offer())
        out["typed"] = self.typed_masked
        out["input_error"] = t(self.input_error) if self.input_error else ""
        out["busy"] = t("common.busy") if self.busy else ""
        out["shopper"] = (
            t("wallet.hello", who=self.shopper.label) if self.shopper is not None else ""
        )
        out.update(self._view_wallet())
        out["scan_title"] = t(f"scan.title_{self.scan_mode}")
        out["scan_hint"] = t(f"scan.hint_{self.scan_mode}")
        return out

    def _view_offer(self) -> dict[str, str]:
        t = self.t
        if not self.offers:
            return {
                "offer_title": t("idle.no_offers"),
                "offer_text": "",
                "offer_until": "",
                "offer_position": "",
            }
        index = self.selected if self.screen == "offers" and self.selected is not None else 0
        index = self.carousel if self.screen == "idle" else index
        offer = self.offers[index]
        return {
            "offer_title": offer.title,
            "offer_text": offer.text,
            "offer_until": t("offers.valid_until", date=self._date(offer.valid_until)),
            "offer_position": f"{index + 1} / {len(self.offers)}",
        }

    def _view_wallet(self) -> dict[str, str]:
        t = self.t
        out = {"wallet_lines": "", "wallet_expiring": "", "wallet_recent": ""}
        if self.shopper is None:
            return out
        if self.wallet_problem is not None:
            out["wallet_lines"] = t(self.wallet_problem)
        elif self.wallet is None:
            out["wallet_lines"] = t("common.busy")
        else:
            out.update(
                wallet_texts(
                    t, self.wallet, now=self._wall(), warning_days=self.settings.expiry_warning_days
                )
            )
        return out

    @staticmethod
    def _date(value: datetime) -> str:
        return value.strftime("%d.%m.%Y")
