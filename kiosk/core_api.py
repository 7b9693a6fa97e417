"""The core's HTTP API as the kiosk's key may call it (docs/core.md, "HTTP API").

A kiosk key may find a customer by phone, read a wallet's balances and its
summary (recent credits, points expiring soon) and list the offers active
now; that is all this adapter does. httpx errors are translated here: no
answer, a timeout or a 5xx is ``CoreUnreachable`` (try later, queue what can
wait), any other refusal is ``CoreRefused``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import httpx

from kiosk.ports import (
    CoreRefused,
    CoreUnreachable,
    Credit,
    Expiring,
    Offer,
    Pocket,
    Wallet,
    WalletDetails,
)

log = logging.getLogger(__name__)


class HttpCore:
    """``CoreApi`` over HTTP with the kiosk's own API key."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 3.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            headers={"X-API-Key": api_key, "Accept": "application/json"},
            timeout=timeout_s,
            transport=transport,
        )

    def _get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        try:
            response = self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise CoreUnreachable(f"GET {path}: {exc.__class__.__name__}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise CoreUnreachable(f"GET {path}: {response.status_code}")
        return response

    @staticmethod
    def _refused(response: httpx.Response) -> CoreRefused:
        detail = ""
        try:
            body = response.json()
            detail = str(body.get("detail", "")) if isinstance(body, dict) else ""
        except ValueError:
            pass
        # The path names no one: phone numbers go in the query, which is not logged.
        return CoreRefused(f"{response.request.url.path}: {response.status_code} {detail}".strip())

    def _json(self, response: httpx.Response) -> Any:
        if response.status_code != 200:
            raise self._refused(response)
        try:
            return response.json()
        except ValueError as exc:
            raise CoreUnreachable(f"{response.request.url.path}: not JSON") from exc

    def find_customer(self, e164: str) -> str | None:
        response = self._get("/customers", {"phone": e164})
        if response.status_code == 404:
            return None
        return str(self._json(response)["id"])

    def wallet(self, customer: str) -> Wallet:
        data = self._json(self._get(f"/customers/{customer}/wallet"))
        return Wallet(
            customer=str(data["customer"]),
            pockets=tuple(
                Pocket(
                    pocket=str(p["pocket"]),
                    balance=int(p["balance"]),
                    available=int(p["available"]),
                    next_expiry=(
                        datetime.fromisoformat(p["next_expiry"]) if p.get("next_expiry") else None
                    ),
                )
                for p in data["pockets"]
            ),
            details=self._details(customer),
        )

    def _details(self, customer: str) -> WalletDetails | None:
        """The wallet's summary; None if this core refuses it (an older core)."""
        try:
            data = self._json(self._get(f"/customers/{customer}/wallet/summary"))
        except CoreRefused as exc:
            log.warning("no wallet summary: %s", exc)
            return None
        return WalletDetails(
            recent=tuple(
                Credit(
                    ts=datetime.fromisoformat(c["ts"]),
                    pocket=str(c["pocket"]),
                    points=int(c["points"]),
                    text=str(c["text"]),
                )
                for c in data["recent"]
            ),
            expiring=tuple(
                Expiring(
                    pocket=str(e["pocket"]),
                    points=int(e["points"]),
                    earliest=datetime.fromisoformat(e["earliest"]),
                )
                for e in data["expiring"]
            ),
            expiring_days=int(data["expiring_days"]),
        )

    def offers(self) -> tuple[Offer, ...]:
        data = self._json(self._get("/kiosk/offers"))
        return tuple(
            Offer(
                campaign=str(o["campaign"]),
                business=str(o["business"]),
                title=str(o["title"]),
                text=str(o["text"]),
                valid_until=datetime.fromisoformat(o["valid_until"]),
            )
            for o in data
        )

    def close(self) -> None:
        self._client.close()
