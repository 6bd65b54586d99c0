"""A reader signs up: a pending subscriber, and a confirmation email with a signed link.

The same steps serve the sign-up form, the JSON endpoint, ``subscribers add`` without
``--confirmed`` and an import without ``--consent``. Whatever the address's past, the
caller tells the person the same thing ("if the address is valid, a confirmation is on its
way"), so nobody learns from the answer who is subscribed.

The confirmation goes through the outbox like every other email, as a row outside any
edition (the dispatcher sends it to whoever asked, subscribed or not) carrying its complete
body; its templates are ``email/confirm.subject.txt``, ``email/confirm.html`` and
``email/confirm.txt``, overridable like the digest's. One address gets at most one
confirmation per :data:`CONFIRM_EVERY`: a form submitted in a loop cannot flood a mailbox.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy.exc import IntegrityError

from ..channels.registry import Channels
from ..config import Config
from ..errors import ConfigError
from ..links import Links
from ..models import Subscriber
from ..settings import ChannelSettings
from ..store import NewMessage, Store
from ..store.subscribers import Added, Frequency, Source
from ..subscribers import valid_address
from .strings import LANGUAGES, web_strings

log = logging.getLogger(__name__)

CONFIRM_EVERY = timedelta(minutes=10)
CONFIRM_TEMPLATES = {"subject": "email/confirm.subject.txt", "html": "email/confirm.html", "text": "email/confirm.txt"}
MAX_NAME = 80
_SPACES = re.compile(r"\s+")


def clean_name(name: str | None) -> str | None:
    """A reader's name as typed, made safe for a greeting and a header: one line, no
    control or format characters, at most :data:`MAX_NAME` characters. (Templates escape
    it for HTML; this keeps a CR/LF or a bidi override out of everything.)"""
    if not name:
        return None
    kept = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c
                   for c in name if unicodedata.category(c) not in ("Cf", "Cs", "Co"))
    kept = _SPACES.sub(" ", kept).strip()[:MAX_NAME].strip()
    return kept or None


@dataclass(frozen=True)
class Choice:
    """What a reader asks for when signing up (or saving preferences)."""

    topics: list[str] | None = None  # None: every topic
    frequency: Frequency = Frequency.DAILY
    weekly_day: int | None = None  # 0 = Monday, for weekly
    language: str | None = None  # None: the list's


class Signup:
    """Sign-ups and confirmation emails for one config."""

    def __init__(self, config: Config, store: Store, channels: Channels):
        self.config = config
        self.store = store
        self.channels = channels

    @property
    def links(self) -> Links:
        links = self.config.links
        if links is None:
            raise ConfigError("a confirmation email needs the [web] table (public_url and secret_env) for its link; "
                              "add it to the config, or add subscribers who already consented with --confirmed")
        return links

    def language(self, channel: ChannelSettings, wanted: str | None = None) -> str:
        if wanted in LANGUAGES:
            return wanted  # type: ignore[return-value]
        return channel.language or self.config.site.language

    def sign_up(self, channel: ChannelSettings, email: str, name: str | None, choice: Choice, *,
                source: Source, now: datetime) -> Added | None:
        """Record a sign-up (pending) and queue its confirmation. Returns None for an address
        that is not valid (ValueError says why before anything is stored); an active
        subscriber stays as they are and gets nothing."""
        address = valid_address(email)
        weekly = choice.weekly_day if choice.frequency is Frequency.WEEKLY else None
        added = self.store.subscribers.add(
            channel.id, address, clean_name(name), now=now, source=source, confirmed=False,
            language=choice.language, topics=choice.topics, frequency=choice.frequency, weekly_day=weekly)
        if added.outcome == "pending":
            self.queue_confirmation(channel, added.subscriber, now=now)
        return added

    def render_confirmation(self, channel: ChannelSettings, subscriber: Subscriber) -> dict[str, object]:
        """The confirmation email's complete body (subject, text, html, headers)."""
        templates = self.channels.templates
        lang = self.language(channel, subscriber.language)
        w = web_strings(lang)
        title = channel.title or self.config.site.name
        days = max(1, round(self.links.confirm_ttl.total_seconds() / 86400))
        ctx = {**templates.base_context(channel), "lang": lang, "locale": lang, "t": templates.strings(lang), "w": w,
               "title": title, "name": subscriber.name, "email": subscriber.email, "days": days,
               "confirm_url": self.links.confirm(channel.id, subscriber.id)}
        subject = _SPACES.sub(" ", templates.render(CONFIRM_TEMPLATES["subject"], ctx)).strip()
        return {"subject": subject, "text": templates.render(CONFIRM_TEMPLATES["text"], ctx).strip() + "\n",
                "html": templates.render(CONFIRM_TEMPLATES["html"], ctx), "headers": {}}

    def queue_confirmation(self, channel: ChannelSettings, subscriber: Subscriber, *, now: datetime) -> bool:
        """Queue the confirmation email; False when one went to this reader less than
        :data:`CONFIRM_EVERY` ago (the outbox's unique key says so)."""
        body = self.render_confirmation(channel, subscriber)
        window = int(now.timestamp() // CONFIRM_EVERY.total_seconds())
        kind = self.channels.kind(channel)
        message = NewMessage(f"{channel.id}:confirm:{subscriber.id}:{window}", channel.id, kind.name,
                             subscriber.email, {"body": body}, None)
        try:
            with self.store.begin() as conn:
                self.store.outbox.enqueue(conn, [message], now=now)
        except IntegrityError:
            log.info("channel %s: a confirmation went to subscriber %s minutes ago; not sending another",
                     channel.id, subscriber.id)
            return False
        return True

    def queue_confirmations(self, channel: ChannelSettings, subscribers: Iterable[Subscriber], *,
                            now: datetime) -> int:
        return sum(self.queue_confirmation(channel, s, now=now) for s in subscribers)
