"""Persistence: one SQLAlchemy engine, the schema in :mod:`bot.store.tables`, Alembic
migrations applied at open. SQLite (a file) is the default; PostgreSQL runs the same code.

The store knows rows, not policy: what goes into an edition lives in
:mod:`bot.editions`, when to retry in :mod:`bot.outbox`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator

from sqlalchemy import Connection, Engine, create_engine, event, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ..models import Article
from . import tables as t

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Subscriber:
    id: int
    channel_id: str
    email: str
    name: str | None
    token: str
    active: bool
    created_at: datetime


def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
    # Let SQLAlchemy issue BEGIN itself: pysqlite's own transaction handling breaks SAVEPOINT
    # (the workaround from SQLAlchemy's SQLite dialect documentation).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")  # the scheduler and the CLI may open the file at once
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_pre_ping=True)


def content_hash(a: Article) -> str:
    blob = json.dumps(
        [a.url, a.title, a.author, list(a.categories), a.summary, a.content_html, a.image_url], ensure_ascii=False
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
    )


class Store:
    def __init__(self, url: str, *, migrate: bool = True):
        self.url = url
        self.engine = make_engine(url)
        if migrate:
            self.migrate()

    # -- plumbing -------------------------------------------------------------------
    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction: committed on success, rolled back on any exception."""
        with self.engine.begin() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def runner_lock(self) -> Iterator[bool]:
        """Hold the database's one runner lock while the body runs; yields False if another
        process (a ``run`` daemon or a ``once``) holds it.

        Two runners on one database would each take the other's in-flight messages for
        crash leftovers at start-up (:func:`bot.outbox.recover`), so they are kept apart:
        a lock file beside a SQLite database, an advisory lock on PostgreSQL (per schema).
        """
        url = self.engine.url
        if url.get_backend_name() == "sqlite":
            if not url.database or url.database == ":memory:":
                yield True
                return
            import fcntl

            with open(f"{url.database}.lock", "a+") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    yield False
                    return
                try:
                    yield True
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
            return
        from sqlalchemy import text

        key = text("SELECT hashtext(current_schema() || '.tamtam-runner')")
        with self.engine.connect() as conn:
            lock_id = conn.execute(key).scalar_one()
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_id}).scalar_one()
            conn.commit()
            try:
                yield bool(got)
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_id})
                    conn.commit()

    # -- sources --------------------------------------------------------------------
    def source_state(self, source_id: str) -> SourceState:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.sources).where(t.sources.c.id == source_id)).first()
        if row is None:
            return SourceState()
        return SourceState(row.etag, row.last_modified, row.last_polled_at, row.last_ok_at, row.last_error,
                           row.error_count or 0)

    def record_poll(self, source_id: str, *, now: datetime, etag: str | None = None,
                    last_modified: str | None = None, error: str | None = None) -> None:
        """Remember the validators of a good poll, or the error of a bad one (keeping old validators)."""
        with self.begin() as conn:
            exists = conn.execute(select(t.sources.c.id).where(t.sources.c.id == source_id)).first()
            if error is None:
                values = dict(etag=etag, last_modified=last_modified, last_polled_at=now, last_ok_at=now,
                              last_error=None, error_count=0)
            else:
                values = dict(last_polled_at=now, last_error=error,
                              error_count=t.sources.c.error_count + 1 if exists else 1)
            if exists:
                conn.execute(update(t.sources).where(t.sources.c.id == source_id).values(**values))
            else:
                conn.execute(t.sources.insert().values(id=source_id, **values))

    # -- articles -------------------------------------------------------------------
    def upsert_articles(self, items: list[Article], *, now: datetime) -> UpsertResult:
        """Insert new articles; update edited ones in place (same guid) without making them new again.

        An edit never changes ``published_at`` or ``first_seen_at``: what was sent stays sent,
        and an article the feed re-dates is not news a second time.
        """
        new = updated = unchanged = rejected = 0
        seen: set[str] = set()
        with self.begin() as conn:
            for a in items:
                if a.guid in seen:  # a feed listing the same entry twice
                    continue
                seen.add(a.guid)
                try:
                    with conn.begin_nested():  # one bad entry must not lose the whole poll
                        outcome = self._upsert_one(conn, a, now)
                except DBAPIError as exc:
                    log.warning("article %r from %s not stored: %s", a.guid[:200], a.source_id,
                                getattr(exc, "orig", exc))
                    rejected += 1
                    continue
                new += outcome == "new"
                updated += outcome == "updated"
                unchanged += outcome == "unchanged"
        return UpsertResult(new, updated, unchanged, rejected)

    @staticmethod
    def _upsert_one(conn: Connection, a: Article, now: datetime) -> str:
        h = content_hash(a)
        row = conn.execute(
            select(t.articles.c.id, t.articles.c.content_hash).where(t.articles.c.guid == a.guid)
        ).first()
        fields = dict(url=a.url, title=a.title, author=a.author, categories=list(a.categories),
                      summary=a.summary, content_html=a.content_html, image_url=a.image_url, content_hash=h)
        if row is None:
            conn.execute(t.articles.insert().values(
                guid=a.guid, source_id=a.source_id, published_at=a.published_at,
                first_seen_at=now, updated_at=now, **fields))
            return "new"
        if row.content_hash != h:
            conn.execute(update(t.articles).where(t.articles.c.id == row.id).values(updated_at=now, **fields))
            return "updated"
        return "unchanged"

    def article_count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(t.articles)).scalar_one()

    # -- subscribers ----------------------------------------------------------------
    def add_subscriber(self, channel_id: str, email: str, name: str | None, *, now: datetime) -> tuple[Subscriber, bool]:
        """Add (or re-activate) a subscriber. Returns (subscriber, created)."""
        with self.begin() as conn:
            row = conn.execute(select(t.subscribers).where(
                t.subscribers.c.channel_id == channel_id, t.subscribers.c.email == email)).first()
            if row is not None:
                changes = {"active": True}
                if name:
                    changes["name"] = name
                conn.execute(update(t.subscribers).where(t.subscribers.c.id == row.id).values(**changes))
                created = not row.active
            else:
                try:
                    conn.execute(t.subscribers.insert().values(
                        channel_id=channel_id, email=email, name=name, token=secrets.token_urlsafe(24),
                        active=True, created_at=now))
                except IntegrityError:  # pragma: no cover - a concurrent add of the same address
                    pass
                created = True
            row = conn.execute(select(t.subscribers).where(
                t.subscribers.c.channel_id == channel_id, t.subscribers.c.email == email)).one()
        return _subscriber(row), created

    def remove_subscriber(self, channel_id: str, email: str) -> bool:
        """Deactivate (kept for the record, so a later import cannot silently resubscribe a token)."""
        with self.begin() as conn:
            res = conn.execute(update(t.subscribers).where(
                t.subscribers.c.channel_id == channel_id, t.subscribers.c.email == email,
                t.subscribers.c.active.is_(True)).values(active=False))
            return res.rowcount > 0

    def subscribers(self, channel_id: str, *, active_only: bool = True, conn: Connection | None = None) -> list[Subscriber]:
        q = select(t.subscribers).where(t.subscribers.c.channel_id == channel_id).order_by(t.subscribers.c.id)
        if active_only:
            q = q.where(t.subscribers.c.active.is_(True))
        if conn is not None:
            return [_subscriber(r) for r in conn.execute(q)]
        with self.engine.connect() as c:
            return [_subscriber(r) for r in c.execute(q)]


def _subscriber(row) -> Subscriber:  # type: ignore[no-untyped-def]
    return Subscriber(row.id, row.channel_id, row.email, row.name, row.token, bool(row.active), row.created_at)
