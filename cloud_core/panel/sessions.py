"""Panel sessions: a role's API key exchanged once for a server-side session.

The login form takes an ``admin`` or ``tenant`` API key (the same keys, roles and tenant
scopes as the HTTP API, ``cloud_core/api/auth.py``); the key itself is never stored in the
browser. The session id is 32 random bytes in an ``HttpOnly``, ``SameSite=Strict`` cookie
(``Secure`` over HTTPS) scoped to ``/panel``; each session carries a CSRF token that every
form posts back. Sessions live in this process's memory (a restart logs everyone out),
expire after ``IDLE_S`` without use or ``MAX_AGE_S`` after login, and are bounded in number
(the oldest goes first). Login attempts are rate-limited per client address.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from cloud_core.api.auth import Principal, RateLimiter

COOKIE = "mallnet_panel"
IDLE_S = 2 * 3600.0
MAX_AGE_S = 12 * 3600.0
MAX_SESSIONS = 10_000
LOGINS_PER_MINUTE = 10


@dataclass
class Session:
    principal: Principal
    csrf: str
    created: float
    used: float


class Sessions:
    """The panel's sessions of one API process (thread-safe, bounded)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._by_id: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()
        self.logins = RateLimiter(LOGINS_PER_MINUTE, 60.0, clock)

    def open(self, principal: Principal) -> str:
        """A new session for this principal; returns its id (the cookie's value)."""
        now = self._clock()
        sid = secrets.token_urlsafe(32)
        with self._lock:
            while len(self._by_id) >= MAX_SESSIONS:
                self._by_id.popitem(last=False)
            self._by_id[sid] = Session(principal, secrets.token_urlsafe(24), now, now)
        return sid

    def get(self, sid: str | None) -> Session | None:
        """The live session of this id (and mark it used), or None."""
        if not sid:
            return None
        now = self._clock()
        with self._lock:
            session = self._by_id.get(sid)
            if session is None:
                return None
            if now - session.used > IDLE_S or now - session.created > MAX_AGE_S:
                del self._by_id[sid]
                return None
            session.used = now
            self._by_id.move_to_end(sid)
            return session

    def close(self, sid: str | None) -> None:
        with self._lock:
            self._by_id.pop(sid or "", None)


def csrf_ok(session: Session, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(session.csrf, presented)
