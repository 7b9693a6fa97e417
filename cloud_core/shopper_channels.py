"""How a one-time sign-in code reaches a shopper: the ``CodeChannel`` seam and the channels
that ship — ``LogChannel`` (development only: the code goes to the log; the only place a
code is ever logged) and ``HttpChannel`` (an SMS gateway's HTTP endpoint). docs/core.md,
"The sign-in channel seam", says how an operator plugs in a provider.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Protocol

from cloud_core.errors import CoreError
from cloud_core.settings import read_secret
from cloud_core.wallet_config import HttpChannelSettings, WalletSettings

log = logging.getLogger(__name__)


class CodeChannel(Protocol):
    """Delivers a one-time code to a phone. ``send`` raises ``CoreError`` if it cannot; it
    must not log the code (only the development channel does, on purpose)."""

    name: str

    def send(self, phone: str, code: str, valid_s: float) -> None: ...


def mask_phone(e164: str) -> str:
    """``+447911123456`` → ``+44*******456``."""
    return e164[:3] + "*" * max(0, len(e164) - 6) + e164[-3:]


class LogChannel:
    """Development only: writes the code to the log (logger ``cloud_core.shoppers``)."""

    name = "log"

    def send(self, phone: str, code: str, valid_s: float) -> None:
        log.warning(
            "sign-in code for %s: %s (valid %d s; development channel: codes in the log)",
            mask_phone(phone),
            code,
            valid_s,
        )


class ChannelError(CoreError):
    """A code could not be handed to the channel (the API answers 503)."""


class HttpChannel:
    """An SMS gateway's HTTP endpoint: POST ``{"to": "+44…", "text": "…"}`` (JSON) with the
    gateway's bearer token; any 2xx is success."""

    name = "sms"

    def __init__(self, settings: HttpChannelSettings) -> None:
        self.settings = settings
        self._token = (
            read_secret(settings.token_file, None, "SMS gateway token")
            if settings.token_file is not None
            else None
        )

    def send(self, phone: str, code: str, valid_s: float) -> None:
        minutes = max(1, round(valid_s / 60))
        text = self.settings.text.replace("{code}", code).replace("{minutes}", str(minutes))
        request = urllib.request.Request(  # noqa: S310 - the URL is an HttpUrl from the config
            str(self.settings.url),
            data=json.dumps({"to": phone, "text": text}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        if self._token is not None:
            request.add_header("Authorization", f"Bearer {self._token.decode()}")
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout_s) as answer:  # noqa: S310
                status = int(answer.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, ValueError) as exc:
            log.error("the SMS gateway cannot be reached: %s", exc)
            raise ChannelError("the sign-in code cannot be sent now; retry") from None
        if not 200 <= status < 300:
            log.error(
                "the SMS gateway refused a sign-in code to %s: HTTP %d", mask_phone(phone), status
            )
            raise ChannelError("the sign-in code cannot be sent now; retry")
        log.info("sign-in code sent to %s through the SMS gateway", mask_phone(phone))


def make_channel(settings: WalletSettings) -> CodeChannel:
    """The configured channel (``wallet.channel.type``)."""
    if isinstance(settings.channel, HttpChannelSettings):
        return HttpChannel(settings.channel)
    log.warning("shopper sign-in codes go to the log (wallet.channel: log): development only")
    return LogChannel()
