"""The ``channels``, ``editions`` and ``edition_articles`` tables: each channel's cursor.

``edition_articles`` has one row per (channel, article) that went into an edition; its
primary key makes "sent twice on one channel" impossible at the database level. Which
articles an edition takes (filters, look-back, cap) is policy and lives in
:mod:`bot.editions`; this module only reads and writes the rows.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, Iterator

from sqlalchemy import Connection, and_, exists, or_, select, update

from ..models import Article
from . import tables as t
from .articles import row_to_article
from .db import Database


class Editions:
    def __init__(self, db: Database):
        self.db = db

    @staticmethod
    def started_at(conn: Connection, channel_id: str, now: datetime) -> datetime:
        """When the channel first ran; recorded now if this is its first run."""
        row = conn.execute(select(t.channels.c.started_at).where(t.channels.c.id == channel_id)).first()
        if row is not None:
            return row.started_at
        conn.execute(t.channels.insert().values(id=channel_id, started_at=now))
        return now

    @staticmethod
    def unsent(conn: Connection, channel_id: str, started: datetime, horizon: datetime) -> Iterator[Article]:
        """Articles never in an edition of the channel, first seen after it started or
        published since ``horizon``; oldest first."""
        already = exists().where(
            and_(t.edition_articles.c.channel_id == channel_id, t.edition_articles.c.article_id == t.articles.c.id)
        )
        q = (
            select(t.articles)
            .where(~already)
            .where(or_(t.articles.c.first_seen_at > started, t.articles.c.published_at >= horizon))
            .order_by(t.articles.c.published_at, t.articles.c.id)
        )
        return map(row_to_article, conn.execute(q))

    @staticmethod
    def record(conn: Connection, channel_id: str, articles: list[Article], now: datetime) -> int:
        """Insert the edition and its cursor rows; returns the edition's id."""
        edition_id = conn.execute(
            t.editions.insert().values(channel_id=channel_id, created_at=now, article_count=len(articles))
        ).inserted_primary_key[0]
        if articles:
            conn.execute(
                t.edition_articles.insert(),
                [{"channel_id": channel_id, "article_id": a.id, "edition_id": edition_id} for a in articles],
            )
        conn.execute(update(t.channels).where(t.channels.c.id == channel_id).values(last_edition_at=now))
        return int(edition_id)

    @staticmethod
    def set_shared(conn: Connection, edition_id: int, shared: dict[str, Any]) -> None:
        conn.execute(update(t.editions).where(t.editions.c.id == edition_id).values(shared=shared))

    def articles_of(self, edition_id: int) -> list[Article]:
        """The articles an edition took (to render it again)."""
        q = (select(t.articles).join(t.edition_articles, t.edition_articles.c.article_id == t.articles.c.id)
             .where(t.edition_articles.c.edition_id == edition_id)
             .order_by(t.articles.c.published_at.desc(), t.articles.c.id.desc()))
        with self.db.connect() as conn:
            return [row_to_article(r) for r in conn.execute(q)]

    def get(self, edition_id: int) -> tuple[str, datetime] | None:
        """(cursor id, created at) of an edition, or None."""
        with self.db.connect() as conn:
            row = conn.execute(select(t.editions.c.channel_id, t.editions.c.created_at)
                               .where(t.editions.c.id == edition_id)).first()
        return (row.channel_id, row.created_at) if row else None

    @staticmethod
    def release(conn: Connection, edition_id: int) -> int:
        """Give an edition's articles back to its cursor: the next edition takes them again.
        Returns how many."""
        return conn.execute(t.edition_articles.delete().where(t.edition_articles.c.edition_id == edition_id)).rowcount

    @staticmethod
    def add_pruned(conn: Connection, edition_id: int, counts: dict[str, int]) -> None:
        """Fold the counts of messages retention deleted into the edition, so what it
        achieved is still known (and :func:`bot.publish.release` still sees it went out)."""
        if not counts:
            return
        row = conn.execute(select(t.editions.c.pruned).where(t.editions.c.id == edition_id)).first()
        if row is None:
            return
        total = Counter(row.pruned or {})
        total.update(counts)
        conn.execute(update(t.editions).where(t.editions.c.id == edition_id).values(pruned=dict(total)))

    def pruned(self, edition_id: int) -> dict[str, int]:
        """{status: count} of the edition's messages retention deleted (empty if none)."""
        with self.db.connect() as conn:
            found = conn.execute(select(t.editions.c.pruned).where(t.editions.c.id == edition_id)).scalar_one_or_none()
        return dict(found or {})

    def shared(self, edition_id: int) -> dict[str, Any] | None:
        """What every message of the edition shares (stored once), or None."""
        with self.db.connect() as conn:
            return conn.execute(select(t.editions.c.shared).where(t.editions.c.id == edition_id)).scalar_one_or_none()
