"""What a channel sends next, and the per-channel cursor.

An article is *eligible* for a channel when it matches the channel's category filters,
has never gone into an edition of that channel (the ``edition_articles`` table, whose
primary key makes a second time impossible), and is recent enough: a channel's first
run looks back ``lookback`` from the moment the channel started, so a new channel does
not flood its subscribers with the back catalogue. After that, every article first seen
since the channel started stays eligible until it is sent — never "the last 24 hours",
so an outage or a skipped edition loses nothing.

Editions take the *oldest* eligible articles first, up to ``max_articles``: when more
arrive than a digest holds, the rest go in the next edition instead of being dropped.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import islice

from sqlalchemy import Connection

from .channels.base import Stream
from .models import Article, Edition
from .settings import ChannelSettings
from .store.editions import Editions
from .text import fold


def matches(channel: ChannelSettings, article: Article) -> bool:
    cats = {fold(c) for c in article.categories}
    if channel.categories and not cats & {fold(c) for c in channel.categories}:
        return False
    if channel.exclude_categories and cats & {fold(c) for c in channel.exclude_categories}:
        return False
    return True


def eligible_articles(conn: Connection, channel: ChannelSettings, now: datetime,
                      stream: Stream | None = None) -> list[Article]:
    """Every article the channel (or one of its streams) has not sent yet, oldest first, after filters."""
    return list(_eligible(conn, channel, now, stream))


def _cursor(channel: ChannelSettings, now: datetime, stream: Stream | None) -> tuple[str, timedelta]:
    """The cursor an edition made now advances, and the look-back of its first run."""
    if stream is None:
        return channel.id, channel.lookback
    return stream.cursor(now), stream.lookback


def _eligible(conn: Connection, channel: ChannelSettings, now: datetime, stream: Stream | None):  # type: ignore[no-untyped-def]
    cursor, lookback = _cursor(channel, now, stream)
    started = Editions.started_at(conn, cursor, now)
    return (a for a in Editions.unsent(conn, cursor, started, started - lookback) if matches(channel, a))


def _newest_first(articles: list[Article]) -> tuple[Article, ...]:
    """Newest first is how readers expect a digest."""
    return tuple(sorted(articles, key=lambda a: (a.published_at, a.id or 0), reverse=True))


def record_edition(conn: Connection, channel: ChannelSettings, now: datetime,
                   stream: Stream | None = None) -> Edition | None:
    """Take the next edition's articles and record them as sent on this channel (on this
    stream's cursor, for a channel of several streams).

    Runs inside the caller's transaction, which also writes the outbox rows: either the
    edition, its cursor and its messages all exist, or none do.
    Returns None for an empty edition unless the channel sends empty ones.
    """
    picked = list(islice(_eligible(conn, channel, now, stream), channel.max_articles))
    if not picked and not channel.send_empty:
        return None
    cursor, _ = _cursor(channel, now, stream)
    edition_id = Editions.record(conn, cursor, picked, now)
    return Edition(channel_id=cursor, articles=_newest_first(picked), created_at=now, id=edition_id)


def preview_edition(conn: Connection, channel: ChannelSettings, now: datetime) -> Edition:
    """The edition the channel would send now, without recording anything (the caller rolls back)."""
    picked = list(islice(_eligible(conn, channel, now, None), channel.max_articles))
    return Edition(channel_id=channel.id, articles=_newest_first(picked), created_at=now)
