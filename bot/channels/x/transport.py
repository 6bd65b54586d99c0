"""Posts to X through the API v2 (``POST /2/tweets``) with tweepy, as the account's user
(OAuth 1.0a user context: consumer key and secret, access token and secret).

tweepy 4.17's :class:`tweepy.Client` hard-codes ``https://api.twitter.com`` inside
``BaseClient.request`` and has no timeout option, but sends everything through its
``session`` attribute (a :class:`requests.Session`). So a small session subclass moves
each request to the configured ``api_base_url`` and adds the configured timeout: the
OAuth signature is computed by requests *after* that, over the URL really called, and
no tweepy code is copied. The client is synchronous, so calls run in a worker thread.

A post is at most once: after a read timeout nobody knows whether it went out, so that
is :class:`~bot.errors.UncertainDelivery` (the outbox flags it for the admin) and never a
retryable error. X's refusal of a duplicate text means the post is already public, which
is :class:`~bot.errors.AlreadyDelivered`.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any, Mapping
from urllib.parse import urlsplit

import requests
import tweepy
import urllib3.exceptions

from ...errors import AlreadyDelivered, ConfigError, PermanentError, ServiceUnavailable, UncertainDelivery
from ...models import Message, Receipt
from ...settings import secret
from ..base import ChannelKind, Host, Transport
from .render import XPost
from .settings import XSettings
from .tweet import MAX_WEIGHTED, fits, weighted_length

DUPLICATE_MARKER = "duplicate content"

# X's rate-limit header families, each with -limit, -remaining and -reset (epoch seconds).
# Posting has a 15-minute window and, on the free and basic tiers, 24-hour caps per user
# and per app; when a 24-hour cap is the one exhausted, the 15-minute reset is too early.
_LIMIT_FAMILIES = ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour")


class _RebasedSession(requests.Session):
    """A requests session that sends every request to ``base_url`` with a default timeout.

    Only the scheme, host and port of the URL tweepy builds are replaced (plus any path
    prefix of ``base_url``), so every endpoint tweepy knows goes to the same place."""

    def __init__(self, base_url: str, timeout: float):
        super().__init__()
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"api_base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if isinstance(url, bytes):
            url = url.decode("ascii")
        parts = urlsplit(url)
        rest = parts.path + (f"?{parts.query}" if parts.query else "")
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, self.base_url + rest, *args, **kwargs)


class XClient(tweepy.Client):
    """:class:`tweepy.Client` talking to ``base_url`` with a request timeout (seconds)."""

    def __init__(self, *, base_url: str, timeout: float, **kwargs: Any):
        super().__init__(**kwargs)
        self.session.close()
        self.session = _RebasedSession(base_url, timeout)


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait after a 429, from X's headers, or None when they say nothing.

    The latest reset among the exhausted limits wins (``…-remaining: 0`` or no
    ``remaining`` header); failing that ``x-rate-limit-reset``; then ``retry-after``
    (seconds or an HTTP date). Never less than one second: a reset already past means the
    clocks disagree, and hammering X does not help."""
    lower = {k.lower(): v for k, v in headers.items()}
    resets: list[float] = []
    for family in _LIMIT_FAMILIES:
        reset = _number(lower.get(f"{family}-reset"))
        if reset is None:
            continue
        remaining = _number(lower.get(f"{family}-remaining"))
        if remaining is None or remaining <= 0:
            resets.append(reset)
    if not resets and _number(lower.get("x-rate-limit-reset")) is not None:
        resets.append(_number(lower["x-rate-limit-reset"]))  # type: ignore[arg-type]
    if resets:
        return max(1.0, max(resets) - now)
    value = lower.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is None:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - now
    return max(1.0, seconds)


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _x_says(exc: tweepy.HTTPException) -> str:
    """X's own words for a refusal: its error messages, or the status line."""
    status = getattr(exc.response, "status_code", "?")
    reason = getattr(exc.response, "reason", "") or ""
    words = "; ".join(m for m in exc.api_messages if m)
    return f"{status} {reason}: {words}" if words else f"{status} {reason}".strip()


def _never_left(exc: requests.ConnectionError) -> bool:
    """True when the connection failed before the request was written (refused, DNS,
    connect timeout, TLS handshake), False when it broke after (reset, remote closed)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    cause: Any = exc.args[0] if exc.args else None
    if isinstance(cause, urllib3.exceptions.MaxRetryError):
        cause = cause.reason
    return isinstance(
        cause,
        (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError,
         urllib3.exceptions.SSLError, urllib3.exceptions.ProxyError),
    )


class XTransport(Transport):
    name = "x"
    at_least_once = False
    max_text = MAX_WEIGHTED  # weighted by twitter-text: a URL counts 23, an emoji 2

    settings: XSettings

    def __init__(self, settings: XSettings, host: Host, kind: ChannelKind):
        super().__init__(settings, host, kind)
        #: seconds to wait for X to connect and to answer (``settings.timeout``)
        self.timeout: float = settings.timeout.total_seconds()
        self._client: XClient | None = None

    @property
    def where(self) -> str:
        return f"x transport {self.settings.account!r}"

    async def open(self) -> None:
        """Read the four OAuth 1.0a secrets and build the client. Missing → ConfigError.
        Nothing is sent: checking the keys would spend a rate-limited call at every start."""
        if self._client is not None:
            return
        s = self.settings
        keys = {}
        for attr in ("consumer_key_env", "consumer_secret_env", "access_token_env", "access_token_secret_env"):
            value = secret(getattr(s, attr), f"{self.where}: {attr}")
            if not value:
                raise ConfigError(f"{self.where}: {attr} names no environment variable")
            keys[attr.removesuffix("_env")] = value
        try:
            self._client = XClient(base_url=s.api_base_url, timeout=self.timeout, **keys)
        except ValueError as exc:
            raise ConfigError(f"{self.where}: {exc}") from exc

    async def send(self, message: Message) -> Receipt:
        post = message.body
        if not isinstance(post, XPost):
            raise PermanentError(f"{self.where} cannot send a {message.kind!r} message ({message.key})")
        if not fits(post.text, self.max_text):
            raise PermanentError(
                f"{self.where}: post {message.key} is {weighted_length(post.text)} weighted characters, "
                f"X takes 1 to {self.max_text} without invalid characters (the renderer should have cut it)"
            )
        if self._client is None:
            await self.open()
        assert self._client is not None
        try:
            response = await asyncio.to_thread(self._client.create_tweet, text=post.text)
        except tweepy.TooManyRequests as exc:
            wait = retry_after(exc.response.headers, time.time())
            raise ServiceUnavailable(f"{self.where}: rate limited by X ({_x_says(exc)})", retry_after=wait) from exc
        except tweepy.TwitterServerError as exc:
            raise ServiceUnavailable(f"{self.where}: X server error ({_x_says(exc)})") from exc
        except tweepy.Forbidden as exc:
            if any(DUPLICATE_MARKER in m.lower() for m in exc.api_messages):
                raise AlreadyDelivered(f"{self.where}: X already has this post ({_x_says(exc)})") from exc
            raise PermanentError(f"{self.where}: X refused the post ({_x_says(exc)})") from exc
        except tweepy.HTTPException as exc:  # 400, 401, 404 and any other refusal
            raise PermanentError(f"{self.where}: X refused the post ({_x_says(exc)})") from exc
        except requests.ReadTimeout as exc:
            raise UncertainDelivery(
                f"{self.where}: no answer from X within {self.timeout:g}s; post {message.key} may be public"
            ) from exc
        except requests.ConnectionError as exc:
            if _never_left(exc):
                raise ServiceUnavailable(f"{self.where}: cannot reach X at {self.settings.api_base_url}: {exc}") from exc
            raise UncertainDelivery(
                f"{self.where}: connection to X broke during post {message.key}; it may be public: {exc}"
            ) from exc
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema) as exc:  # never left: no retry can fix the URL
            raise PermanentError(f"{self.where}: cannot send to {self.settings.api_base_url}: {exc}") from exc
        except requests.RequestException as exc:  # broken answer (bad chunking, not JSON): it left
            raise UncertainDelivery(
                f"{self.where}: unreadable answer from X for post {message.key}; it may be public: {exc}"
            ) from exc
        data = response.data or {}
        tweet_id = str(data.get("id") or "")
        if not tweet_id:
            raise UncertainDelivery(f"{self.where}: X accepted post {message.key} but returned no id: {data!r}")
        return Receipt(
            transport=self.name,
            remote_id=tweet_id,
            detail=f"posted as {self.settings.account}: https://x.com/i/web/status/{tweet_id}",
        )

    async def aclose(self) -> None:
        if self._client is not None:
            self._client.session.close()
            self._client = None
