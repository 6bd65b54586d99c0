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

import unicodedata
from datetime import datetime

from sqlalchemy import Connection, and_, exists, or_, select, update

from .config import Channel, parse_duration
from .models import Article, Edition
from .store import row_to_article
from .store import tables as t


def _fold(label: str) -> str:
    """'Économie ' and 'economie' are the same category to an admin."""
    text = unicodedata.normalize("NFKD", label.strip().casefold())
    return "".join(c for c in text if not unicodedata.combining(c))


def matches(channel: Channel, article: Article) -> bool:
    cats = {_fold(c) for c in article.categories}
    if channel.categories and not cats & {_fold(c) for c in channel.categories}:
        return False
    if channel.exclude_categories and cats & {_fold(c) for c in channel.exclude_categories}:
        return False
    return True


def channel_started_at(conn: Connection, channel_id: str, now: datetime) -> datetime:
    """When the channel first ran; recorded now if this is its first run."""
    row = conn.execute(select(t.channels.c.started_at).where(t.channels.c.id == channel_id)).first()
    if row is not None:
        return row.started_at
    conn.execute(t.channels.insert().values(id=channel_id, started_at=now))
    return now


def eligible_articles(conn: Connection, channel: Channel, now: datetime) -> list[Article]:
    """Every article the channel has not sent yet, oldest first, after filters."""
    started = channel_started_at(conn, channel.id, now)
    horizon = started - parse_duration(channel.lookback)
    already = exists().where(
        and_(t.edition_articles.c.channel_id == channel.id, t.edition_articles.c.article_id == t.articles.c.id)
    )
    q = (
        select(t.articles)
        .where(~already)
        # first seen after the channel started, or published within the look-back before it
        .where(or_(t.articles.c.first_seen_at > started, t.articles.c.published_at >= horizon))
        .order_by(t.articles.c.published_at, t.articles.c.id)
    )
    return [a for a in map(row_to_article, conn.execute(q)) if matches(channel, a)]


def record_edition(conn: Connection, channel: Channel, now: datetime) -> Edition | None:
    """Take the next edition's articles and record them as sent on this channel.

    Runs inside the caller's transaction, which also writes the outbox rows: either the
    edition, its cursor and its messages all exist, or none do.
    Returns None for an empty edition unless the channel sends empty ones.
    """
    picked = eligible_articles(conn, channel, now)[: channel.max_articles]
    if not picked and not channel.send_empty:
        return None
    edition_id = conn.execute(
        t.editions.insert().values(channel_id=channel.id, created_at=now, article_count=len(picked))
    ).inserted_primary_key[0]
    if picked:
        conn.execute(
            t.edition_articles.insert(),
            [{"channel_id": channel.id, "article_id": a.id, "edition_id": edition_id} for a in picked],
        )
    conn.execute(update(t.channels).where(t.channels.c.id == channel.id).values(last_edition_at=now))
    # newest first is how readers expect a digest
    ordered = tuple(sorted(picked, key=lambda a: (a.published_at, a.id or 0), reverse=True))
    return Edition(channel_id=channel.id, articles=ordered, created_at=now, id=edition_id)


def preview_edition(conn: Connection, channel: Channel, now: datetime) -> Edition:
    """The edition the channel would send now, without recording anything (the caller rolls back)."""
    picked = eligible_articles(conn, channel, now)[: channel.max_articles]
    ordered = tuple(sorted(picked, key=lambda a: (a.published_at, a.id or 0), reverse=True))
    return Edition(channel_id=channel.id, articles=ordered, created_at=now)
