"""What keeps the readers' forms honest: CSRF tokens, the per-address sign-up limit and
the same-origin check of the JSON endpoint.

CSRF is a double submit made unforgeable: the page sets a random value in a cookie
(``HttpOnly``, ``SameSite=Lax``) and puts the same value, signed, in a hidden field; a POST
is accepted when the field's signature holds, it is recent, and it matches the cookie.
Another site can make a browser post to us but can neither read the cookie nor sign.
The RFC 8058 one-click POST carries no cookie and no token by design; its capability is
the signed unsubscribe token in the URL.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from datetime import timedelta

from ..links import LinkError, Signer

CSRF_COOKIE = "tamtam_csrf"
CSRF_FIELD = "csrf"
CSRF_TTL = timedelta(hours=12)  # a form left open longer is sent again (with a fresh token)


class Csrf:
    def __init__(self, signer: Signer, *, secure: bool):
        self.signer = signer
        self.secure = secure

    def issue(self, cookie: str | None) -> tuple[str, str | None]:
        """(the hidden field's value, the cookie to set, or None to keep the current one)."""
        if cookie and 16 <= len(cookie) <= 64 and cookie.isascii():
            return self.signer.sign("csrf", cookie), None
        nonce = secrets.token_urlsafe(24)
        return self.signer.sign("csrf", nonce), nonce

    def valid(self, field: str | None, cookie: str | None) -> bool:
        if not field or not cookie:
            return False
        try:
            nonce = self.signer.unsign("csrf", field, CSRF_TTL)
        except LinkError:
            return False
        return isinstance(nonce, str) and hmac.compare_digest(nonce.encode(), cookie.encode())

    def cookie_args(self, value: str) -> dict[str, object]:
        return dict(key=CSRF_COOKIE, value=value, httponly=True, samesite="lax", secure=self.secure, path="/",
                    max_age=int(CSRF_TTL.total_seconds()))


class RateLimit:
    """At most ``limit`` events per key within ``window``, in memory (one process serves
    the pages). A sliding window: no stretch of ``window`` ever holds more than ``limit``."""

    def __init__(self, limit: int, window: timedelta, *, max_keys: int = 100_000):
        self.limit = limit
        self.window = window.total_seconds()
        self.max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        """Count one event for ``key``; False (and not counted) when over the limit."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= self.max_keys:
                    self._forget(now)
                hits = self._hits[key] = deque()
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True

    def _forget(self, now: float) -> None:
        """Drop keys whose window is over (a flood of addresses cannot grow memory for ever)."""
        for key in [k for k, h in self._hits.items() if not h or now - h[-1] >= self.window]:
            del self._hits[key]
        if len(self._hits) >= self.max_keys:  # still full: forget the oldest half
            for key in sorted(self._hits, key=lambda k: self._hits[k][-1])[: self.max_keys // 2]:
                del self._hits[key]


def origin_of(url: str) -> str:
    """'https://Example.com/lettre' → 'https://example.com'."""
    scheme, _, rest = url.partition("://")
    return f"{scheme.lower()}://{rest.split('/', 1)[0].lower()}"
