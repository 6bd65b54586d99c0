"""Plain data passed between the steps of the pipeline. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping


@dataclass(frozen=True)
class Article:
    """One article, normalised from any kind of feed.

    ``guid`` is the stable id used to deduplicate: the feed's guid/id when it is globally
    unique by nature (an absolute URL, ``tag:`` or ``urn:``), else that id scoped by the
    source (``"echo:1"``); with no id, the canonical URL with tracking parameters removed.
    The same WordPress article in two feeds of one site is therefore stored once. ``published_at`` is always timezone-aware (UTC);
    when the feed gives no date it is the time the article was first seen.
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

    ``kind`` tells which limits apply: ``email`` (subject, text and html), ``telegram``
    (``text`` in Telegram HTML parse mode; with ``photo_url`` it is a photo and ``text``
    its caption) or ``x`` (``text`` is the post).
    """

    key: str  # idempotency key, unique across the outbox
    channel_id: str
    kind: str
    destination: str  # email address, Telegram chat id, or X account label
    text: str
    subject: str | None = None
    html: str | None = None
    photo_url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Receipt:
    """Proof of delivery: what the service called the message, and a human detail."""

    transport: str
    remote_id: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Recipient:
    """An email subscriber as the templates see them."""

    email: str
    name: str | None = None
    unsubscribe_url: str | None = None
