"""Browser sessions: a token signed in once, then named by an HttpOnly cookie.

The console keeps each signed-in token in memory under a random session id, which is all the
browser holds (`aorta_session`: HttpOnly, so page scripts cannot read it; SameSite=Strict, so
other sites cannot send it; Secure under TLS). Sessions end on sign-out, after the configured
lifetime, or when the console restarts (users sign in again). Integrations skip the cookie and
send `Authorization: Bearer <token>` with each request.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

COOKIE = "aorta_session"
MAX_SESSIONS = 10_000
"""Sessions kept at once; signing in beyond it ends the oldest."""


@dataclass(frozen=True)
class Credentials:
    """What a request presents: a token (None: nothing), and whether it came from a cookie
    naming a session that no longer exists."""

    token: str | None
    stale_cookie: bool = False


@dataclass
class Sessions:
    """Session id → (token, expiry), oldest first; `clock` is monotonic seconds."""

    lifetime: float
    clock: Callable[[], float] = time.monotonic
    _held: OrderedDict[str, tuple[str, float]] = field(default_factory=OrderedDict)

    def open(self, token: str) -> str:
        """A new session for `token`; returns its id (the cookie's value)."""
        self._expire()
        while len(self._held) >= MAX_SESSIONS:
            self._held.popitem(last=False)
        session_id = secrets.token_urlsafe(32)
        self._held[session_id] = (token, self.clock() + self.lifetime)
        return session_id

    def close(self, session_id: str) -> None:
        self._held.pop(session_id, None)

    def token(self, session_id: str) -> str | None:
        """The token of a live session; None for an unknown or expired one."""
        held = self._held.get(session_id)
        if held is None:
            return None
        token, expires = held
        if expires <= self.clock():
            del self._held[session_id]
            return None
        return token

    def _expire(self) -> None:
        # Every session lives as long, so the oldest expire first: only the front is looked at.
        now = self.clock()
        while self._held and next(iter(self._held.values()))[1] <= now:
            self._held.popitem(last=False)

    def credentials(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> Credentials:
        """The credentials of a request: its bearer token, else its session's token."""
        authorization = headers.get("Authorization", "")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return Credentials(value.strip())
        session_id = cookies.get(COOKIE)
        if not session_id:
            return Credentials(None)
        token = self.token(session_id)
        return Credentials(token, stale_cookie=token is None)
