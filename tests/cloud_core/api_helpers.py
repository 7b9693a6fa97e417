"""Helpers for the API tests: keys per role, headers, a registered customer."""

from __future__ import annotations

import httpx

KEYS = {
    "admin": "k-admin-0123456789abcdef",
    "kiosk": "k-kiosk-0123456789abcdef",
    "bean": "k-bean-bar-0123456789abcdef",
    "shoe": "k-shoe-hub-0123456789abcdef",
    "node": "k-node-store-1-0123456789",
    "till": "k-till-bean-bar-tom-0123456789",
}


def h(who: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[who]}


def register(client: httpx.Client) -> str:
    r = client.post("/customers", json={"phone": "07911 123456"}, headers=h("kiosk"))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])
