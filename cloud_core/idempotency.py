"""Idempotent API writes (the ``Idempotency-Key`` header, as payment APIs do).

The first request with a key runs and its answer is stored with a hash of its body, in the
same transaction as its effects; a retry with the same key and the same body gets the
stored answer back (nothing runs again); the same key with another body is refused
(``IdempotencyConflict``, 409). Keys are scoped per API key holder and operation. A request
that fails stores nothing, so a retry after a refusal is judged afresh.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from cloud_core import ledger
from cloud_core.errors import IdempotencyConflict
from cloud_core.store import Conn


def body_hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def recall(conn: Conn, scope: str, digest: str) -> str | None:
    """The stored answer of this scope and key, or None if it is new."""
    row = conn.execute(
        "SELECT body_sha256, response FROM api_requests WHERE scope = ?", (scope,)
    ).fetchone()
    if row is None:
        return None
    if row["body_sha256"] != digest:
        raise IdempotencyConflict(
            "this Idempotency-Key was used with another request body; use a new key"
        )
    return str(row["response"])


def remember(
    conn: Conn,
    scope: str,
    digest: str,
    *,
    status: int,
    response: str,
    now: datetime,
) -> None:
    conn.execute(
        "INSERT INTO api_requests (scope, body_sha256, status, response, ts)"
        " VALUES (?, ?, ?, ?, ?)",
        (scope, digest, status, response, ledger.iso(now)),
    )
