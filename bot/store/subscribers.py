"""The ``subscribers`` table: who receives a channel that has its own list of recipients."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Iterator

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from ..models import Subscriber
from . import tables as t
from .db import Database


def _subscriber(row) -> Subscriber:  # type: ignore[no-untyped-def]
    return Subscriber(row.id, row.channel_id, row.email, row.name, row.token, bool(row.active), row.created_at)


class Subscribers:
    def __init__(self, db: Database):
        self.db = db

    def add(self, channel_id: str, email: str, name: str | None, *, now: datetime) -> tuple[Subscriber, bool]:
        """Add (or re-activate) a subscriber. Returns (subscriber, created): ``created`` is
        True only when this call made the address active."""
        where = (t.subscribers.c.channel_id == channel_id, t.subscribers.c.email == email)
        with self.db.begin() as conn:
            row = conn.execute(select(t.subscribers).where(*where)).first()
            if row is None:
                try:
                    # A savepoint: if another process adds the same address between our SELECT
                    # and this INSERT, only the savepoint is rolled back (on PostgreSQL the
                    # whole transaction would otherwise be aborted), and the row is theirs.
                    with conn.begin_nested():
                        conn.execute(t.subscribers.insert().values(
                            channel_id=channel_id, email=email, name=name, token=secrets.token_urlsafe(24),
                            active=True, created_at=now))
                    created = True
                except IntegrityError:
                    row = conn.execute(select(t.subscribers).where(*where)).one()
            if row is not None:
                changes: dict[str, object] = {"active": True}
                if name:
                    changes["name"] = name
                conn.execute(update(t.subscribers).where(t.subscribers.c.id == row.id).values(**changes))
                created = not row.active
            row = conn.execute(select(t.subscribers).where(*where)).one()
        return _subscriber(row), created

    def remove(self, channel_id: str, email: str) -> bool:
        """Deactivate (kept for the record, so a later import cannot silently resubscribe a token)."""
        with self.db.begin() as conn:
            res = conn.execute(update(t.subscribers).where(
                t.subscribers.c.channel_id == channel_id, t.subscribers.c.email == email,
                t.subscribers.c.active.is_(True)).values(active=False))
            return res.rowcount > 0

    def iter(self, channel_id: str, *, active_only: bool = True, conn: Connection | None = None,
             chunk: int = 1000) -> Iterator[Subscriber]:
        """The channel's subscribers in the order they came, read ``chunk`` at a time by id
        (keyset pages, not a server-side cursor: the caller may write on the same
        connection between pages, as the publisher does)."""
        if conn is None:
            with self.db.connect() as c:
                yield from self.iter(channel_id, active_only=active_only, conn=c, chunk=chunk)
            return
        last = 0
        while True:
            q = (select(t.subscribers).where(t.subscribers.c.channel_id == channel_id, t.subscribers.c.id > last)
                 .order_by(t.subscribers.c.id).limit(chunk))
            if active_only:
                q = q.where(t.subscribers.c.active.is_(True))
            rows = conn.execute(q).all()
            for row in rows:
                yield _subscriber(row)
            if len(rows) < chunk:
                return
            last = rows[-1].id

    def is_active(self, channel_id: str, email: str) -> bool:
        """True when ``email`` is an active subscriber of the channel (checked before each send)."""
        with self.db.connect() as conn:
            return conn.execute(select(t.subscribers.c.active).where(
                t.subscribers.c.channel_id == channel_id, t.subscribers.c.email == email)).scalar() is True

    def list(self, channel_id: str, *, active_only: bool = True) -> list[Subscriber]:
        return list(self.iter(channel_id, active_only=active_only))
