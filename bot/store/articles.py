"""The ``articles`` and ``sources`` tables: what the feeds gave, and each source's poll state."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Iterator

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.exc import DBAPIError

from ..models import Article
from ..redact import redact
from . import tables as t
from .db import Database

log = logging.getLogger(__name__)

#: Articles written per round trip: one SELECT of the guids already stored, one INSERT of
#: the new ones, one UPDATE of the edited ones.
CHUNK = 250


@dataclass(frozen=True)
class SourceState:
    etag: str | None = None
    last_modified: str | None = None
    last_polled_at: datetime | None = None
    last_ok_at: datetime | None = None
    last_error: str | None = None
    error_count: int = 0


@dataclass(frozen=True)
class UpsertResult:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0  # entries the database refused; logged, the rest of the feed is stored


def content_hash(a: Article) -> str:
    blob = json.dumps(
        [a.url, a.title, a.author, list(a.categories), a.summary, a.content_html, a.image_url]
        + ([a.image_alt, a.image_width, a.image_height] if (a.image_alt, a.image_width, a.image_height) != (None,) * 3
           else []),  # an article without image details hashes as before they existed
        ensure_ascii=False
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def row_to_article(row) -> Article:  # type: ignore[no-untyped-def]
    return Article(
        id=row.id,
        source_id=row.source_id,
        guid=row.guid,
        url=row.url,
        title=row.title,
        author=row.author,
        published_at=row.published_at,
        categories=tuple(row.categories or ()),
        summary=row.summary,
        content_html=row.content_html,
        image_url=row.image_url,
        image_alt=row.image_alt,
        image_width=row.image_width,
        image_height=row.image_height,
    )


class Articles:
    def __init__(self, db: Database):
        self.db = db

    # -- sources --------------------------------------------------------------------
    def source_state(self, source_id: str) -> SourceState:
        with self.db.connect() as conn:
            row = conn.execute(select(t.sources).where(t.sources.c.id == source_id)).first()
        if row is None:
            return SourceState()
        return SourceState(row.etag, row.last_modified, row.last_polled_at, row.last_ok_at, row.last_error,
                           row.error_count or 0)

    def record_poll(self, source_id: str, *, now: datetime, etag: str | None = None,
                    last_modified: str | None = None, error: str | None = None) -> None:
        """Remember the validators of a good poll, or the error of a bad one (keeping old validators)."""
        with self.db.begin() as conn:
            exists = conn.execute(select(t.sources.c.id).where(t.sources.c.id == source_id)).first()
            if error is None:
                values = dict(etag=etag, last_modified=last_modified, last_polled_at=now, last_ok_at=now,
                              last_error=None, error_count=0)
            else:
                values = dict(last_polled_at=now, last_error=redact(error),
                              error_count=t.sources.c.error_count + 1 if exists else 1)
            if exists:
                conn.execute(update(t.sources).where(t.sources.c.id == source_id).values(**values))
            else:
                conn.execute(t.sources.insert().values(id=source_id, **values))

    # -- articles -------------------------------------------------------------------
    def upsert(self, items: Iterable[Article], *, now: datetime) -> UpsertResult:
        """Insert new articles; update edited ones in place (same guid) without making them new again.

        An edit never changes ``published_at`` or ``first_seen_at``: what was sent stays sent,
        and an article the feed re-dates is not news a second time. ``items`` may be a
        stream (see bot.ingest.fetch.ArticleStream): it is read once, CHUNK at a time, in one
        transaction. A chunk the database refuses is written again row by row, so one bad
        entry never loses the others.
        """
        new = updated = unchanged = rejected = 0
        seen: set[str] = set()
        with self.db.begin() as conn:
            for chunk in _chunks(items, seen):
                try:
                    with conn.begin_nested():
                        n, u, c = self._upsert_chunk(conn, chunk, now)
                except DBAPIError as exc:
                    log.info("%d articles from %s refused together (%s); writing them one by one", len(chunk),
                             chunk[0].source_id, getattr(exc, "orig", exc))
                    n = u = c = 0
                    for a in chunk:
                        try:
                            with conn.begin_nested():  # one bad entry must not lose the whole poll
                                outcome = self._upsert_one(conn, a, now)
                        except DBAPIError as row_exc:
                            log.warning("article %r from %s not stored: %s", a.guid[:200], a.source_id,
                                        getattr(row_exc, "orig", row_exc))
                            rejected += 1
                            continue
                        n += outcome == "new"
                        u += outcome == "updated"
                        c += outcome == "unchanged"
                new, updated, unchanged = new + n, updated + u, unchanged + c
        return UpsertResult(new, updated, unchanged, rejected)

    @staticmethod
    def _upsert_chunk(conn: Connection, chunk: list[Article], now: datetime) -> tuple[int, int, int]:
        """(new, updated, unchanged) for a chunk of articles with distinct guids."""
        stored = {row.guid: (row.id, row.content_hash) for row in conn.execute(
            select(t.articles.c.guid, t.articles.c.id, t.articles.c.content_hash)
            .where(t.articles.c.guid.in_([a.guid for a in chunk])))}
        inserts: list[dict[str, object]] = []
        updates: list[dict[str, object]] = []
        unchanged = 0
        for a in chunk:
            h = content_hash(a)
            row = stored.get(a.guid)
            if row is None:
                inserts.append(dict(_fields(a, h), guid=a.guid, source_id=a.source_id, published_at=a.published_at,
                                    first_seen_at=now, updated_at=now))
            elif row[1] != h:
                updates.append(dict(_fields(a, h), row_id=row[0], updated_at=now))
            else:
                unchanged += 1
        if inserts:
            if conn.dialect.name == "sqlite":
                _insert_sqlite(conn, inserts)
            else:
                conn.execute(t.articles.insert(), inserts)
        if updates:
            conn.execute(update(t.articles).where(t.articles.c.id == bindparam("row_id"))
                         .values({c: bindparam(c) for c in (*_FIELD_NAMES, "updated_at")}), updates)
        return len(inserts), len(updates), unchanged

    @staticmethod
    def _upsert_one(conn: Connection, a: Article, now: datetime) -> str:
        h = content_hash(a)
        row = conn.execute(
            select(t.articles.c.id, t.articles.c.content_hash).where(t.articles.c.guid == a.guid)
        ).first()
        fields = _fields(a, h)
        if row is None:
            conn.execute(t.articles.insert().values(
                guid=a.guid, source_id=a.source_id, published_at=a.published_at,
                first_seen_at=now, updated_at=now, **fields))
            return "new"
        if row.content_hash != h:
            conn.execute(update(t.articles).where(t.articles.c.id == row.id).values(updated_at=now, **fields))
            return "updated"
        return "unchanged"

    def count(self) -> int:
        with self.db.connect() as conn:
            return conn.execute(select(func.count()).select_from(t.articles)).scalar_one()


_FIELD_NAMES = ("url", "title", "author", "categories", "summary", "content_html", "image_url", "image_alt",
                "image_width", "image_height", "content_hash")


def _fields(a: Article, h: str) -> dict[str, object]:
    """The columns an edit may change."""
    return dict(url=a.url, title=a.title, author=a.author, categories=list(a.categories), summary=a.summary,
                content_html=a.content_html, image_url=a.image_url, image_alt=a.image_alt,
                image_width=a.image_width, image_height=a.image_height, content_hash=h)


_INSERT_COLUMNS = ("source_id", "guid", "url", "title", "author", "published_at", "first_seen_at", "updated_at",
                   "categories", "summary", "content_html", "image_url", "image_alt", "image_width", "image_height",
                   "content_hash")
# The INSERT as SQLite's driver takes it, and each column's conversion (SQLAlchemy's own bind
# processors: UTC datetimes as SQLite text, categories as JSON), made once per dialect.
_sqlite_insert: dict[tuple[str, str], tuple[str, list[object]]] = {}


def _insert_sqlite(conn: Connection, rows: list[dict[str, object]]) -> None:
    """``conn.execute(t.articles.insert(), rows)`` with the driver's executemany: the same
    values stored, without SQLAlchemy's bookkeeping for each row (a third of the insert)."""
    dialect = conn.dialect
    key = (dialect.name, dialect.paramstyle)
    prepared = _sqlite_insert.get(key)
    if prepared is None:
        stmt = t.articles.insert().compile(dialect=dialect, column_keys=list(_INSERT_COLUMNS))
        assert tuple(stmt.positiontup or ()) == _INSERT_COLUMNS, stmt.positiontup
        processors = [t.articles.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                      for name in _INSERT_COLUMNS]
        prepared = _sqlite_insert[key] = (str(stmt), processors)
    sql, processors = prepared
    columns = tuple(zip(_INSERT_COLUMNS, processors))
    conn.exec_driver_sql(sql, [tuple(row[name] if proc is None else proc(row[name])  # type: ignore[operator]
                                     for name, proc in columns) for row in rows])


def _chunks(items: Iterable[Article], seen: set[str]) -> Iterator[list[Article]]:
    """``items`` in lists of CHUNK, without a guid seen before (a feed listing an entry twice)."""
    chunk: list[Article] = []
    for a in items:
        if a.guid in seen:
            continue
        seen.add(a.guid)
        chunk.append(a)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
