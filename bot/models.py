"""Plain data passed between the steps of the pipeline. No I/O here."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class Status(enum.StrEnum):
    """Where an outbox message is (see :mod:`bot.store.outbox` for its life)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"  # never sent on purpose: the recipient left while it waited
    DISMISSED = "dismissed"  # failed, and the admin said to leave it


class Frequency(enum.StrEnum):
    """How often a subscriber hears from a list."""

    INSTANT = "instant"  # one email per article
    DAILY = "daily"  # the channel's digest
    WEEKLY = "weekly"  # a weekly digest on a chosen day


@dataclass(frozen=True)
class Article:
    """One article, normalised from any kind of feed.

    ``guid`` is the stable id used to deduplicate: the feed's guid/id when it is globally
    unique by nature (an absolute URL, ``tag:`` or ``urn:``), else that id scoped by the
    source (``"echo:1"``); with no id, the canonical URL with tracking parameters removed.
    The same WordPress article in two feeds of one site is therefore stored once.
    ``published_at`` is always timezone-aware (UTC); when the feed gives no date it is the
    time the article was first seen.
    """

    source_id: str
    guid: str
    url: str
    title: str
    published_at: datetime
    author: str | None = None
    categories: tuple[str, ...] = ()
    summary: str = ""
    content_html: str = ""
    image_url: str | None = None
    id: int | None = None  # set once stored
    # What the feed says about the image, when it says it: alt text and pixel size.
    image_alt: str | None = None
    image_width: int | None = None
    image_height: int | None = None


@dataclass(frozen=True)
class Edition:
    """What a channel sends next: an ordered list of articles, or one article in article mode."""

    channel_id: str
    articles: tuple[Article, ...]
    created_at: datetime
    id: int | None = None


@dataclass(frozen=True)
class Message:
    """One fully rendered message for one destination, as a transport receives it.

    ``kind`` names the channel kind that made it and ``body`` is that kind's own rendered
    form (an email's subject and parts, a Telegram post, an X post). A transport checks
    the body is of its kind and refuses anything else as a PermanentError; the core never
    looks inside.
    """

    key: str  # idempotency key, unique across the outbox
    channel_id: str
    kind: str
    destination: str  # an email address, a Telegram chat id, an X account label …
    body: Any


@dataclass(frozen=True)
class Receipt:
    """Proof of delivery: what the service called the message, and a human detail."""

    transport: str
    remote_id: str | None = None
    detail: str = ""
    files: tuple[str, ...] = ()  # files written, when the transport writes files


@dataclass(frozen=True)
class Subscriber:
    """A reader of a channel that has its own list of recipients, with their preferences.

    ``status`` is one of pending, active, unsubscribed, bounced, complained; ``topics`` None
    means every topic; ``frequency`` instant, daily or weekly (on ``weekly_day``, 0 = Monday);
    ``language`` None means the channel's."""

    id: int
    channel_id: str
    email: str
    name: str | None
    token: str
    active: bool
    created_at: datetime
    status: str = "active"
    language: str | None = None
    topics: tuple[str, ...] | None = None
    frequency: str = "daily"
    weekly_day: int | None = None
    confirmed_at: datetime | None = None
    status_changed_at: datetime | None = None
    status_source: str | None = None
