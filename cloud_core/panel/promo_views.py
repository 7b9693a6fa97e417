"""What the panel's promo-code page shows a role: pools with their stock and their latest
uploads (progress and report). The admin sees every pool; a tenant its own business's."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from typing import Any

from cloud_core import promo_codes, showcase
from cloud_core.api.auth import ApiContext, Principal
from cloud_core.errors import NotFound
from cloud_core.ledger import iso


def _upload(u: promo_codes.Upload) -> dict[str, Any]:
    return {
        "id": u.id,
        "state": u.state,
        "total": u.total,
        "done": u.done,
        "percent": round(100 * u.done / u.total) if u.total else 100,
        "added": u.added,
        "duplicates_in_file": u.duplicates_in_file,
        "duplicates_in_pool": u.duplicates_in_pool,
        "bad": u.bad,
        "problems": u.problems[:20],
        "more_problems": max(0, len(u.problems) - 20),
        "detail": u.detail,
        "created_at": iso(u.created_at)[:19].replace("T", " "),
    }


def pools(ctx: ApiContext, who: Principal) -> list[dict[str, Any]]:
    business = who.business if who.role == "tenant" else None
    now = datetime.fromtimestamp(ctx.clock(), UTC)
    with ctx.store.read() as conn:
        found = promo_codes.list_pools(conn, business, limit=1000)
        out = []
        for p in found:
            gift = showcase.gift_of_pool(conn, p.id)
            out.append(
                {
                    "id": p.id,
                    "business": p.business,
                    "title": p.title,
                    "valid_until": iso(p.valid_until)[:10],
                    "total": p.total,
                    "claimed": p.claimed,
                    "used": p.used,
                    "free": p.free,
                    "low": p.low,
                    "low_stock": p.low_stock,
                    "gift": f"{gift.title} ({gift.points})" if gift else "",
                    "uploads": [_upload(u) for u in promo_codes.latest_uploads(conn, p.id, now)],
                }
            )
    return out


def own_pool(ctx: ApiContext, who: Principal, pool_id: str) -> promo_codes.Pool | None:
    """The pool if this role may see it, else None (another tenant's is not confirmed)."""
    with ctx.store.read() as conn:
        try:
            pool = promo_codes.get_pool(conn, pool_id)
        except NotFound:
            return None
    if who.role == "tenant" and pool.business != who.business:
        return None
    return pool


def multipart_fields(content_type: str, body: bytes) -> dict[str, bytes] | None:
    """The fields of a ``multipart/form-data`` body (name → bytes), read with the standard
    library's MIME parser; None if it is not one. The caller bounds the body's size."""
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.message_from_bytes(head + body, policy=email.policy.HTTP)
    if not message.is_multipart():
        return None
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload
    return fields
