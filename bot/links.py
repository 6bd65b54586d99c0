"""The links a reader follows: signed, purpose-bound tokens and the URLs that carry them.

A token names one subscriber of one list and says what it may do::

    confirm      the sign-up's confirmation link; expires (``[web] confirm_ttl``, 7 days)
    unsubscribe  the unsubscribe page and the one-click POST; never expires
    preferences  the preferences page; never expires

It is made with itsdangerous (an HMAC-SHA256 over ``[list, subscriber]`` and the time it
was made), salted per purpose: a confirm token cannot unsubscribe, and the list id inside is
checked against the list in the URL, so a token for one list cannot touch another.
Unsubscribe and preferences links sit in old emails for years and must keep working: they
do not expire, and secrets are rotated by keeping the old ones (``previous_secret_envs``):
links are signed with the current secret and accepted under any of them.

This module sits low (layer 1) so a channel kind can build its emails' links without the
web service; it knows only the public address and the secrets.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from . import redact
from .errors import ConfigError, TamtamError
from .settings import secret


class Purpose(enum.StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"


class LinkError(TamtamError):
    """A token that does not open what it is used for. ``reason`` says why, for the page
    (never which secret or which check): ``expired``, ``invalid`` or ``other-list``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@functools.lru_cache(maxsize=64)
def _serializer(secrets: tuple[str, ...], salt: str) -> URLSafeTimedSerializer:
    # itsdangerous signs with the *last* key and tries every key when checking.
    return URLSafeTimedSerializer(list(reversed(secrets)), salt=f"tamtam.{salt}",
                                  signer_kwargs={"digest_method": hashlib.sha256})


@dataclass(frozen=True)
class Signer:
    """Makes and checks tokens with the current secret first, then the previous ones."""

    secrets: tuple[str, ...]  # current first

    def __post_init__(self) -> None:
        if not self.secrets or any(not s for s in self.secrets):
            raise ValueError("a signer needs at least one non-empty secret")

    def _serializer(self, salt: str) -> URLSafeTimedSerializer:
        return _serializer(self.secrets, salt)

    def sign(self, salt: str, payload: Any) -> str:
        return self._serializer(salt).dumps(payload)

    def unsign(self, salt: str, token: str, max_age: timedelta | None = None) -> Any:
        """The payload, or LinkError("expired" | "invalid")."""
        try:
            return self._serializer(salt).loads(token, max_age=None if max_age is None else max_age.total_seconds())
        except SignatureExpired:
            raise LinkError("expired") from None
        except (BadSignature, UnicodeError, ValueError, TypeError):
            raise LinkError("invalid") from None


def secret_from_file(path: Path) -> str:
    """The secret in ``path``; a new random one (readable by this user only) when the file
    does not exist yet. ConfigError when it cannot be read or made, or is too short."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"web.secret_file: cannot create {str(path)!r}: {exc.strerror or exc}") from None
    else:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_urlsafe(48) + "\n")
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"web.secret_file: cannot read {str(path)!r}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(value) < 16:
        raise ConfigError(f"web.secret_file: {str(path)!r} holds fewer than 16 characters; a secret that short "
                          "can be guessed (delete the file and Tamtam makes a new one)")
    redact.register(value)
    return value


class Links:
    """Every URL Tamtam gives readers, under ``public_url``::

        /<list>/subscribe                  sign-up form (GET, POST)
        /<list>/api/subscribe              the JSON sign-up a site's own form posts to
        /<list>/confirm/<token>            one-button confirmation (GET shows, POST confirms)
        /<list>/unsubscribe/<token>        one-button page; POST unsubscribes (one-click too)
        /<list>/preferences/<token>        topics, frequency, language, name
        /<list>/archive[/<edition>]        sent editions ("view in browser")
        /<list>/feed.atom                  the editions as an Atom feed
    """

    def __init__(self, public_url: str, signer: Signer, confirm_ttl: timedelta = timedelta(days=7)):
        self.public_url = public_url.rstrip("/")
        self.signer = signer
        self.confirm_ttl = confirm_ttl

    @classmethod
    def from_settings(cls, web: Any, resolve: Callable[[str], Path] = Path) -> "Links":
        """From the config's ``[web]`` table: the current secret from ``secret_env`` (ConfigError
        when it is not set) or ``secret_file`` (made, random, when missing), then the
        previous ones (an unset previous variable is skipped)."""
        if web.secret_env:
            current = secret(web.secret_env, "web.secret_env")
        else:
            current = secret_from_file(resolve(web.secret_file))
        previous = []
        for name in web.previous_secret_envs:
            try:
                previous.append(secret(name, "web.previous_secret_envs"))
            except TamtamError:
                continue  # an old secret already retired from the environment: its links are gone anyway
        return cls(web.public_url, Signer(tuple(s for s in (current, *previous) if s)), web.confirm_ttl)

    # -- tokens ----------------------------------------------------------------------
    def token(self, purpose: Purpose, channel_id: str, subscriber_id: int) -> str:
        return self.signer.sign(purpose.value, [channel_id, subscriber_id])

    def verify(self, purpose: Purpose, token: str, channel_id: str) -> int:
        """The subscriber ``token`` names, if it was made for ``purpose`` on ``channel_id``
        (and, for a confirmation, is recent enough); LinkError otherwise."""
        max_age = self.confirm_ttl if purpose is Purpose.CONFIRM else None
        payload = self.signer.unsign(purpose.value, token, max_age)
        if (not isinstance(payload, list) or len(payload) != 2 or not isinstance(payload[0], str)
                or not isinstance(payload[1], int) or isinstance(payload[1], bool)):
            raise LinkError("invalid")
        if payload[0] != channel_id:
            raise LinkError("other-list")
        return payload[1]

    # -- URLs ------------------------------------------------------------------------
    def _url(self, channel_id: str, *path: str) -> str:
        return "/".join([self.public_url, quote(channel_id, safe=""), *(quote(p, safe="") for p in path)])

    def subscribe(self, channel_id: str) -> str:
        return self._url(channel_id, "subscribe")

    def api_subscribe(self, channel_id: str) -> str:
        return self._url(channel_id, "api", "subscribe")

    def confirm(self, channel_id: str, subscriber_id: int) -> str:
        return self._url(channel_id, "confirm", self.token(Purpose.CONFIRM, channel_id, subscriber_id))

    def unsubscribe(self, channel_id: str, subscriber_id: int) -> str:
        """The unsubscribe page; the same URL takes the RFC 8058 one-click POST."""
        return self._url(channel_id, "unsubscribe", self.token(Purpose.UNSUBSCRIBE, channel_id, subscriber_id))

    def preferences(self, channel_id: str, subscriber_id: int) -> str:
        return self._url(channel_id, "preferences", self.token(Purpose.PREFERENCES, channel_id, subscriber_id))

    def archive(self, channel_id: str, edition_id: int | None = None) -> str:
        """The list of sent editions, or one of them ("view in browser")."""
        return self._url(channel_id, "archive", *([str(edition_id)] if edition_id is not None else []))

    def feed(self, channel_id: str) -> str:
        return self._url(channel_id, "feed.atom")

    def for_reader(self, channel_id: str, subscriber_id: int, edition_id: int | None = None) -> "ReaderLinks":
        """Everything one reader's email links to."""
        return ReaderLinks(
            unsubscribe=self.unsubscribe(channel_id, subscriber_id),
            preferences=self.preferences(channel_id, subscriber_id),
            archive=self.archive(channel_id, edition_id) if edition_id is not None else self.archive(channel_id))


@dataclass(frozen=True)
class ReaderLinks:
    """One reader's links in one email: the unsubscribe page (which also takes the
    one-click POST of ``List-Unsubscribe-Post``), the preferences page and the web view."""

    unsubscribe: str
    preferences: str
    archive: str


__all__ = ["LinkError", "Links", "Purpose", "ReaderLinks", "Signer"]
