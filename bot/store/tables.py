"""The schema, as SQLAlchemy Core tables. Alembic migrations (``migrations/versions``)
create and change it; these definitions are what the code queries with.

Times are stored in UTC. SQLite keeps no zone, so :class:`UTCDateTime` gives every
value back as an aware UTC datetime on both back-ends.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware datetime")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


Id = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements only INTEGER keys

sources = Table(
    "sources",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("last_polled_at", UTCDateTime),
    Column("last_ok_at", UTCDateTime),
    Column("last_error", Text),
    Column("error_count", Integer, nullable=False, default=0),
)

articles = Table(
    "articles",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source_id", String(64), nullable=False),
    Column("guid", String(2048), nullable=False, unique=True),
    Column("url", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("author", Text),
    Column("published_at", UTCDateTime, nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("categories", JSON, nullable=False),
    Column("summary", Text, nullable=False),
    Column("content_html", Text, nullable=False),
    Column("image_url", Text),
    Column("image_alt", Text),  # what the feed says of the image, when it says it
    Column("image_width", Integer),
    Column("image_height", Integer),
    Column("content_hash", String(64), nullable=False),
    Index("ix_articles_first_seen_at", "first_seen_at"),
)

channels = Table(
    "channels",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),  # first time the channel ran: anchors the look-back
    Column("last_edition_at", UTCDateTime),
)

editions = Table(
    "editions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel_id", String(64), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("article_count", Integer, nullable=False),
    Column("shared", JSON),  # what every recipient shares (the rendered email digest), stored once
    # {status: count} of the edition's messages deleted by retention (delivery.retention)
    Column("pruned", JSON),
)

# One row per (channel, article) that went into an edition: the per-channel cursor.
# The primary key makes "sent twice on one channel" impossible at the database level.
edition_articles = Table(
    "edition_articles",
    metadata,
    Column("channel_id", String(64), primary_key=True),
    Column("article_id", Id, ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("edition_id", Id, ForeignKey("editions.id", ondelete="CASCADE"), nullable=False, index=True),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(512), nullable=False, unique=True),  # idempotency key
    Column("channel_id", String(64), nullable=False),
    Column("edition_id", Id, ForeignKey("editions.id", ondelete="CASCADE")),
    Column("kind", String(16), nullable=False),
    Column("destination", Text, nullable=False),
    Column("payload", JSON, nullable=False),
    # pending → sending → sent | failed | unknown (at-most-once message interrupted mid-send)
    Column("status", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text),
    Column("remote_id", Text),
    Column("receipt", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    # who holds a row in ``sending``, and until when: a worker that dies leaves its rows to
    # the others once the lease runs out
    Column("lease_owner", String(64)),
    Column("lease_until", UTCDateTime),
    Index("ix_outbox_status_next", "status", "next_attempt_at"),
    Index("ix_outbox_channel_status", "channel_id", "status", "id"),
    Index("ix_outbox_channel_destination", "channel_id", "destination", "id"),
    # only the open rows (migration 0005): what a claim reads, whatever the number already sent
    Index("ix_outbox_due", "channel_id", "id", sqlite_where=text("status = 'pending'"),
          postgresql_where=text("status = 'pending'")),
    Index("ix_outbox_open_destination", "channel_id", "destination", "id",
          sqlite_where=text("status IN ('pending', 'sending')"),
          postgresql_where=text("status IN ('pending', 'sending')")),
)

# A reader of a channel that has its own list (an email newsletter). One row per mailbox:
# ``email`` keeps the spelling the reader gave, ``email_key`` (lower case) is what matches.
# pending → active (confirmed) → unsubscribed | bounced | complained; the last three are
# "suppressed": never mailed again until a new confirmed sign-up.
subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel_id", String(64), nullable=False),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False, index=True),
    Column("name", Text),
    Column("token", String(64), nullable=False, unique=True),  # for links made before signed tokens
    Column("status", String(16), nullable=False),
    Column("language", String(8)),  # None: the channel's
    Column("topics", JSON),  # None: every topic; else a list of category names
    Column("frequency", String(16), nullable=False),  # instant | daily | weekly
    Column("weekly_day", Integer),  # 0 = Monday … 6 = Sunday, for weekly
    Column("created_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime),
    Column("status_changed_at", UTCDateTime, nullable=False),
    Column("status_source", String(24), nullable=False),  # form, api, import, admin, one-click, bounce …
    Column("soft_bounces", Integer, nullable=False, default=0),  # in the current window
    Column("soft_window_start", UTCDateTime),
    UniqueConstraint("channel_id", "email_key", name="uq_subscribers_channel_email_key"),
)

# What happened to a subscriber, and who said so: sign-ups, confirmations, unsubscribes,
# bounces and complaints, preference changes. ``subscribers list``/``show`` read it.
subscriber_events = Table(
    "subscriber_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subscriber_id", Id, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(24), nullable=False),
    Column("source", String(24), nullable=False),
    Column("detail", Text),
)

# When each scheduled job last ran: the scheduler computes missed runs from here.
schedule_runs = Table(
    "schedule_runs",
    metadata,
    Column("job_id", String(200), primary_key=True),  # "poll:<source>" or "edition:<channel>"
    Column("last_run_at", UTCDateTime, nullable=False),
)
