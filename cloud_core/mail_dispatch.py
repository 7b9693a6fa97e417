"""The mailing dispatcher: delivers ``mailing_outbox`` rows through pluggable channels, at
least once, with exponential backoff; writes the weekly digest; and tells shoppers when a
store may be reviewed (``review_invites.py``).

Channels:

- ``inbox``: the shopper's MQTT inbox, through the pending-notice outbox
  (``ingest/notices.py``): the notice is kept and the row marked sent in one transaction,
  and the ingest worker publishes it (QoS 1) — so it is kept exactly once;
- ``webhook``: an HTTP POST of JSON to a chatbot, signed ``X-Mallnet-Signature:
  sha256=<HMAC-SHA256 of the body>``, with ``Idempotency-Key: <mailing>:<customer>:webhook``;
- ``email``: SMTP (stdlib ``smtplib``, STARTTLS, a login from a file), with a
  ``List-Unsubscribe`` header and link.

A remote delivery is leased (``mailings.claim``), sent outside any transaction, then
recorded: ``sent``; or, on failure, retried after ``retry.delay(attempts)`` until
``retry.max_attempts`` (then ``failed``). A row that is ``sent`` is never picked again, so
a retry never sends twice what already succeeded; a crash between the send and its record
sends it again after the lease (at least once: the idempotency key lets a receiver drop it).
Consent and unsubscribes are checked at send time (``skipped``).

The dispatcher runs as its own thread in the process that serves the API (never on the
ingest worker's thread: HTTP and SMTP may take seconds); two processes may run it, since a
delivery is leased before it is sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo

from cloud_core import coupons, ledger, mailings, review_invites
from cloud_core.config import CoreConfig
from cloud_core.engagement_config import MailingSettings, SmtpChannel, WebhookChannel
from cloud_core.errors import CoreError
from cloud_core.ingest.notices import NoticeOutbox
from cloud_core.offers import list_campaigns
from cloud_core.rules.common import Notice
from cloud_core.store import Conn, DatabaseError, Store
from mallnet.ids import new_event_id
from mallnet.wire.payloads import MessageNotice

log = logging.getLogger(__name__)


class DeliveryError(CoreError):
    """A channel could not deliver (retried with backoff)."""


@dataclass(frozen=True)
class Outgoing:
    """One message for one recipient on one channel."""

    mailing: str
    kind: str
    customer: str
    title: str
    text: str
    email: str | None
    unsubscribe_url: str

    def key(self, channel: str) -> str:
        return f"{self.mailing}:{self.customer}:{channel}"


def _coupon_line(conn: Conn, mailing: mailings.Mailing, customer: str) -> str:
    """The coupon the mailing issued this shopper, as a line of the message ('' if none)."""
    if mailing.coupon_series is None:
        return ""
    coupon = coupons.by_request_key(conn, mailings.coupon_key(mailing.id, customer))
    if coupon is None:
        return ""
    series = coupon.series
    valid = (
        f"valid on {series.valid_day.isoformat()}"
        if series.valid_day is not None
        else "valid "
        + " to ".join(
            d.isoformat() for d in (series.valid_from, series.valid_until) if d is not None
        )
    )
    return f"\n\nYour coupon {coupon.code}: {series.discount} ({valid}; in your wallet)."


class RemoteChannel(Protocol):
    """A channel outside the database (raises ``DeliveryError``)."""

    def send(self, out: Outgoing) -> None: ...


class Webhook:
    def __init__(self, settings: WebhookChannel) -> None:
        self.url = settings.url
        self.timeout_s = settings.timeout_s
        self._key = settings.key("webhook secret")

    def send(self, out: Outgoing) -> None:
        body = json.dumps(
            {
                "id": out.key("webhook"),
                "mailing": out.mailing,
                "kind": out.kind,
                "customer": out.customer,
                "title": out.title,
                "text": out.text,
                "unsubscribe_url": out.unsubscribe_url,
            },
            sort_keys=True,
        ).encode()
        signature = hmac.new(self._key, body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(  # noqa: S310 - the configured http(s) URL
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-Mallnet-Signature": f"sha256={signature}",
                "Idempotency-Key": out.key("webhook"),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                response.read(1024)
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"webhook answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise DeliveryError(f"webhook unreachable: {exc}") from None


class Smtp:
    def __init__(self, settings: SmtpChannel) -> None:
        self.settings = settings
        self.credentials = settings.credentials()  # read once: a bad file fails at start

    def send(self, out: Outgoing) -> None:
        if out.email is None:
            raise DeliveryError("no e-mail address")
        s = self.settings
        message = EmailMessage()
        message["From"] = s.from_address
        message["To"] = out.email
        message["Subject"] = out.title
        message["Message-ID"] = f"<{out.key('email').replace(':', '.')}@mallnet>"
        if out.unsubscribe_url.startswith("http"):
            message["List-Unsubscribe"] = f"<{out.unsubscribe_url}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(f"{out.text}\n\n--\nUnsubscribe: {out.unsubscribe_url}\n")
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout_s) as smtp:
                if s.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.credentials is not None:
                    smtp.login(
                        self.credentials.username, self.credentials.password.get_secret_value()
                    )
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            # the type and code only: a refusal's text may name the recipient's address
            code = getattr(exc, "smtp_code", None) or getattr(exc, "errno", None)
            raise DeliveryError(f"SMTP: {type(exc).__name__} {code or ''}".rstrip()) from None


def remote_channels(settings: MailingSettings) -> dict[str, RemoteChannel]:
    out: dict[str, RemoteChannel] = {}
    if settings.webhook is not None:
        out["webhook"] = Webhook(settings.webhook)
    if settings.email is not None:
        out["email"] = Smtp(settings.email)
    return out


class Dispatcher:
    """The mailing outbox's sender and the weekly digest (a thread)."""

    def __init__(
        self,
        config: CoreConfig,
        store: Store,
        clock: Callable[[], float],
        channels: Mapping[str, RemoteChannel] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.settings = config.mailings
        self.channels = dict(
            channels
            if channels is not None
            else (remote_channels(self.settings) if self.settings else {})
        )
        self._key = self.settings.key("mailing secret") if self.settings else b""
        self.outbox = NoticeOutbox(config.mall, store)
        self.tz = ZoneInfo(config.timezone)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="core-mailings", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        poll = self.settings.poll_s if self.settings else 1.0
        while not self._stop.is_set():
            try:
                self.turn()
            except DatabaseError:
                log.exception("the mailing dispatcher's turn failed; retrying")
            self._stop.wait(poll)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def turn(self) -> int:
        """One pass: the digest, then every due delivery; deliveries attempted."""
        if self.settings is None:
            return 0
        if self.settings.digest is not None:
            self._digest()
        if self.settings.review_invitations is not None:
            self._invite(self.settings.review_invitations.period_days)
        now = self.now()
        with self.store.read() as conn:
            due = mailings.due(conn, now.timestamp(), self.settings.batch)
        for delivery in due:
            if self._stop.is_set():
                break
            self._deliver(delivery)
        return len(due)

    def _invite(self, period_days: int) -> None:
        now = self.now()
        with self.store.transaction() as conn:
            notices = review_invites.notify_due(conn, self.config, now, period_days)
            self.outbox.keep(conn, notices, ledger.iso(now))

    def _digest(self) -> None:
        assert self.settings is not None and self.settings.digest is not None
        digest = self.settings.digest
        now = self.now()
        local = now.astimezone(self.tz)
        if local.weekday() != digest.weekday or local.hour < digest.hour:
            return
        mid = mailings.digest_id(local)
        with self.store.transaction() as conn:
            if conn.execute("SELECT 1 FROM mailings WHERE id = ?", (mid,)).fetchone():
                return
            offers = list_campaigns(conn, active_at=now)
            lines = [f"{c.business}: {c.title} (until {c.ends_at:%Y-%m-%d})" for c in offers]
            text = "\n".join(lines[:50]) if lines else "No running offers this week."
            channels = tuple(c for c in digest.channels if c in self.settings.channels())
            draft = mailings.Draft(
                title=f"This week's offers ({len(offers)})",
                text=text[:2000],
                channels=channels or ("inbox",),
            )
            mailings.create(
                conn, mailings.MALL, draft, "digest", now, kind="digest", mailing_id=mid
            )
            sent = mailings.send(conn, mid, now, self.settings.channels())
        log.info("weekly digest %s queued for %d shoppers", mid, sent.audience)

    def unsubscribe_url(self, customer: str, channel: str) -> str:
        assert self.settings is not None
        token = mailings.unsubscribe_token(self._key, customer, channel)
        return f"{self.settings.public_url.rstrip('/')}/unsubscribe?token={quote(token)}"

    def _deliver(self, d: mailings.Delivery) -> None:
        assert self.settings is not None
        now = self.now()
        with self.store.transaction() as conn:
            if not mailings.claim(conn, d, now.timestamp()):
                return  # another turn (or process) took it
            why = mailings.may_receive(conn, d.customer, d.channel)
            if why is not None:
                mailings.finish(conn, d, "skipped", now, error=why)
                return
            mailing = mailings.get(conn, d.mailing)
            text = mailing.text + _coupon_line(conn, mailing, d.customer)
            out = Outgoing(
                mailing=mailing.id,
                kind=mailing.kind,
                customer=d.customer,
                title=mailing.title,
                text=text,
                email=mailings.email_of(conn, d.customer) if d.channel == "email" else None,
                unsubscribe_url=self.unsubscribe_url(d.customer, d.channel),
            )
            if d.channel == "inbox":  # kept exactly once, with the row's "sent"
                message = MessageNotice(
                    id=new_event_id(),
                    ts=now,
                    kind="digest" if mailing.kind == "digest" else "mailing",
                    ref=mailing.id,
                    title=mailing.title,
                    text=text[:2000],
                )
                self.outbox.keep(conn, [Notice(d.customer, message)], ledger.iso(now))
                mailings.finish(conn, d, "sent", now)
                return
        channel = self.channels.get(d.channel)
        error: str | None = None
        if channel is None:
            error = f"channel {d.channel} is not configured"
        else:
            try:
                channel.send(out)
            except DeliveryError as exc:
                error = str(exc)
        now = self.now()
        with self.store.transaction() as conn:
            if error is None:
                mailings.finish(conn, d, "sent", now)
                return
            attempts = d.attempts + 1
            retry = self.settings.retry
            if attempts >= retry.max_attempts:
                mailings.finish(conn, d, "failed", now, error=error)
                log.warning(
                    "mailing %s to %s over %s failed: %s", d.mailing, d.customer, d.channel, error
                )
            else:
                at = now.timestamp() + retry.delay(attempts)
                mailings.finish(conn, d, "pending", now, error=error, retry_at=at)
                log.info(
                    "mailing %s over %s: %s; attempt %d at +%.0f s",
                    d.mailing,
                    d.channel,
                    error,
                    attempts + 1,
                    retry.delay(attempts),
                )
