"""The ``outbox`` table: every message waiting to go out, and what became of it.

This module is the table's only owner: the publisher enqueues through it, the dispatcher
claims and records outcomes through it, and the admin's ``outbox`` commands list, retry
and resolve through it. A row's life::

    pending ──claim──► sending ──► sent
       ▲  │               │   ├──► failed   (refused for good, or out of attempts) ──► dismissed (admin)
       │  │               │   └──► unknown  (an at-most-once post may or may not be out)
       │  └──► cancelled  (the recipient left before it went out)
       └── retry later ◄──┘

``attempts`` counts the answers a service gave about the message; a service that could not
be reached at all costs the message nothing (:meth:`Outbox.release`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Iterator

from sqlalchemy import Connection, and_, bindparam, case, exists, func, select, update

from ..errors import TamtamError
from ..models import Status
from ..redact import redact
from . import tables as t
from .db import Database

ENQUEUE_CHUNK = 1000
# After this many rows are queued or settled, the planner's statistics are refreshed (see
# :meth:`Outbox.refresh_statistics`).
STATISTICS_EVERY = 1000
# What retention may delete: nothing in it waits for the dispatcher or an admin.
SETTLED = (Status.SENT.value, Status.CANCELLED.value, Status.DISMISSED.value)


class OutboxError(TamtamError):
    """An admin asked for something the outbox cannot do (no such message, wrong status)."""


@dataclass(frozen=True)
class NewMessage:
    """A message to enqueue: the kind's payload and where it goes."""

    key: str
    channel_id: str
    kind: str
    destination: str
    payload: dict[str, Any]
    edition_id: int | None = None


@dataclass(frozen=True)
class Finished:
    """The outcome of one claimed row, for :meth:`Outbox.finish_many`. ``answered``: the
    service said something about this message (it costs an attempt)."""

    row_id: int
    status: Status
    now: datetime
    answered: bool = True
    reason: str | None = None
    remote_id: str | None = None
    receipt: str | None = None
    when: datetime | None = None  # next attempt, for a row going back to pending


@dataclass(frozen=True)
class OutboxRow:
    id: int
    key: str
    channel_id: str
    kind: str
    destination: str
    payload: dict[str, Any]
    edition_id: int | None
    status: Status
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    updated_at: datetime


def _row(r: Any) -> OutboxRow:
    return OutboxRow(r.id, r.key, r.channel_id, r.kind, r.destination, r.payload, r.edition_id, Status(r.status),
                     r.attempts, r.next_attempt_at, r.last_error, r.created_at, r.updated_at)


class Outbox:
    def __init__(self, db: Database):
        self.db = db

    # -- the publisher ---------------------------------------------------------------
    @staticmethod
    def enqueue(conn: Connection, messages: Iterable[NewMessage], *, now: datetime) -> int:
        """Insert messages in the caller's transaction, in chunks (a long list is never held
        whole). The unique key makes a second insert of the same message fail loudly."""
        total = 0
        chunk: list[dict[str, Any]] = []
        for m in messages:
            chunk.append(dict(key=m.key, channel_id=m.channel_id, kind=m.kind, destination=m.destination,
                              payload=m.payload, edition_id=m.edition_id, status=Status.PENDING.value, attempts=0,
                              next_attempt_at=now, created_at=now, updated_at=now))
            if len(chunk) >= ENQUEUE_CHUNK:
                conn.execute(t.outbox.insert(), chunk)
                total += len(chunk)
                chunk = []
        if chunk:
            conn.execute(t.outbox.insert(), chunk)
            total += len(chunk)
        return total

    def refresh_statistics(self) -> None:
        """ANALYZE the outbox. Without statistics (a new database, or a table that just grew
        by a whole edition) both planners judged the claim's best index by guesswork and
        picked one that made each claim read every pending row: a 100,000-reader edition
        went out at half speed on SQLite and at a few messages a second on PostgreSQL. The
        publisher calls this after queueing a large edition, the dispatcher every so many
        outcomes (see :meth:`Database.analyze`)."""
        self.db.analyze("outbox")

    # -- the dispatcher --------------------------------------------------------------
    def due_channels(self, now: datetime) -> list[str]:
        q = (select(t.outbox.c.channel_id)
             .where(t.outbox.c.status == Status.PENDING.value, t.outbox.c.next_attempt_at <= now).distinct())
        with self.db.connect() as conn:
            return sorted(r.channel_id for r in conn.execute(q))

    def pending(self, channel_id: str, *, after_id: int, limit: int) -> list[OutboxRow]:
        """The channel's next pending rows (due or not), in the order they were queued."""
        q = (select(t.outbox).where(t.outbox.c.channel_id == channel_id, t.outbox.c.status == Status.PENDING.value,
                                    t.outbox.c.id > after_id)
             .order_by(t.outbox.c.id).limit(limit))
        with self.db.connect() as conn:
            return [_row(r) for r in conn.execute(q)]

    @staticmethod
    def _claimable(channel_id: str, now: datetime, limit: int, after_id: int = 0) -> Any:
        """The due pending rows of a channel that no earlier row to the same destination waits
        before (a destination's messages keep their order), oldest first; only those after
        ``after_id`` when given (see :meth:`claim_batch`)."""
        o, e = t.outbox, t.outbox.alias("earlier")
        earlier = exists().where(and_(e.c.channel_id == o.c.channel_id, e.c.destination == o.c.destination,
                                      e.c.id < o.c.id,
                                      e.c.status.in_([Status.PENDING.value, Status.SENDING.value])))
        where = [o.c.channel_id == channel_id, o.c.status == Status.PENDING.value, o.c.next_attempt_at <= now, ~earlier]
        if after_id:
            where.append(o.c.id > after_id)
        return select(o.c.id).where(*where).order_by(o.c.id).limit(limit)

    def next_due(self, channel_id: str, now: datetime) -> OutboxRow | None:
        """The channel's next claimable row (see :meth:`claim_batch`), not claimed."""
        with self.db.connect() as conn:
            r = conn.execute(select(t.outbox).where(
                t.outbox.c.id.in_(self._claimable(channel_id, now, 1).scalar_subquery()))).first()
        return _row(r) if r is not None else None

    def claim_batch(self, channel_id: str, now: datetime, *, limit: int, lease_until: datetime,
                    owner: str, after_id: int = 0) -> list[OutboxRow]:
        """Claim up to ``limit`` due rows of the channel in one statement: ``pending`` →
        ``sending`` under a lease. A row is claimable only when no earlier row to the same
        destination is still pending or sending, so one destination's messages go in order
        whichever worker holds them (a claimed batch holds at most one row per destination).
        On PostgreSQL the rows are locked with SKIP LOCKED: workers never wait on each other.

        ``after_id``: only rows after this one. The dispatcher passes the last row of its
        previous batch, so a claim starts where the last one ended instead of walking, from
        the start of the index, past every row already claimed: on PostgreSQL those entries
        stay in the partial index until VACUUM, and walking them made each claim of a
        100,000-row edition slower than the one before."""
        pick = self._claimable(channel_id, now, limit, after_id)
        if self.db.backend == "postgresql":
            pick = pick.with_for_update(skip_locked=True, of=t.outbox)
        stmt = (update(t.outbox).where(t.outbox.c.id.in_(pick.scalar_subquery()))
                .values(status=Status.SENDING.value, updated_at=now, lease_owner=owner, lease_until=lease_until)
                .returning(*t.outbox.c))
        with self.db.begin() as conn:
            rows = [_row(r) for r in conn.execute(stmt)]
        return sorted(rows, key=lambda r: r.id)

    def finish_many(self, done: list[Finished]) -> None:
        """Write many outcomes in one transaction (a statement per kind of outcome)."""
        groups: dict[tuple[str, bool], list[dict[str, Any]]] = {}
        for f in done:
            groups.setdefault((f.status.value, f.answered), []).append(dict(
                rid=f.row_id, now=f.now, reason=redact(f.reason) if f.reason else None, remote=f.remote_id,
                receipt=redact(f.receipt) if f.receipt else None, when=f.when or f.now,
                sent_at=f.now if f.status is Status.SENT else None))
        with self.db.begin() as conn:
            for (status, answered), params in groups.items():
                values: dict[str, Any] = dict(status=status, updated_at=bindparam("now"), last_error=bindparam("reason"),
                                              lease_owner=None, lease_until=None)
                if status == Status.SENT.value:
                    values.update(remote_id=bindparam("remote"), receipt=bindparam("receipt"),
                                  sent_at=bindparam("sent_at"))
                if status == Status.PENDING.value:
                    values["next_attempt_at"] = bindparam("when")
                if answered:
                    values["attempts"] = t.outbox.c.attempts + 1
                conn.execute(update(t.outbox).where(t.outbox.c.id == bindparam("rid")).values(**values), params)

    def expired(self, now: datetime) -> list[tuple[int, str]]:
        """(id, channel) of rows whose worker's lease ran out while they were ``sending``."""
        with self.db.connect() as conn:
            return [(r.id, r.channel_id) for r in conn.execute(
                select(t.outbox.c.id, t.outbox.c.channel_id).where(
                    t.outbox.c.status == Status.SENDING.value, t.outbox.c.lease_until.is_not(None),
                    t.outbox.c.lease_until < now))]

    def claim(self, row_id: int, now: datetime, *, lease_until: datetime | None = None,
              owner: str | None = None) -> bool:
        """pending → sending, a compare-and-set that also works between processes (under a
        lease when one is given, as the dispatcher gives it)."""
        with self.db.begin() as conn:
            res = conn.execute(update(t.outbox)
                               .where(t.outbox.c.id == row_id, t.outbox.c.status == Status.PENDING.value)
                               .values(status=Status.SENDING.value, updated_at=now, lease_until=lease_until,
                                       lease_owner=owner))
            return res.rowcount == 1

    def _set(self, row_id: int, now: datetime, *, answered: bool, **values: Any) -> None:
        for text in ("last_error", "receipt"):  # a service's words may quote a credential
            if values.get(text):
                values[text] = redact(values[text])
        if answered:
            values["attempts"] = t.outbox.c.attempts + 1
        with self.db.begin() as conn:
            conn.execute(update(t.outbox).where(t.outbox.c.id == row_id).values(updated_at=now, **values))

    def sent(self, row_id: int, now: datetime, *, remote_id: str | None, receipt: str) -> None:
        self._set(row_id, now, answered=True, status=Status.SENT.value, sent_at=now, remote_id=remote_id,
                  receipt=receipt, last_error=None)

    def retry_later(self, row_id: int, now: datetime, *, when: datetime, reason: str) -> None:
        """The service answered "not now" about this message: one attempt spent."""
        self._set(row_id, now, answered=True, status=Status.PENDING.value, next_attempt_at=when, last_error=reason)

    def release(self, row_id: int, now: datetime, *, when: datetime, reason: str) -> None:
        """Back to pending without spending an attempt: the service could not be reached."""
        self._set(row_id, now, answered=False, status=Status.PENDING.value, next_attempt_at=when, last_error=reason)

    def failed(self, row_id: int, now: datetime, *, reason: str, answered: bool = True) -> None:
        self._set(row_id, now, answered=answered, status=Status.FAILED.value, last_error=reason)

    def unknown(self, row_id: int, now: datetime, *, reason: str) -> None:
        self._set(row_id, now, answered=True, status=Status.UNKNOWN.value, last_error=reason)

    def cancelled(self, row_id: int, now: datetime, *, reason: str) -> None:
        self._set(row_id, now, answered=False, status=Status.CANCELLED.value, last_error=reason)

    # -- crash recovery --------------------------------------------------------------
    def interrupted(self) -> list[tuple[int, str]]:
        """(id, channel) of every row left ``sending`` by a process that stopped mid-send."""
        with self.db.connect() as conn:
            return [(r.id, r.channel_id) for r in
                    conn.execute(select(t.outbox.c.id, t.outbox.c.channel_id)
                                 .where(t.outbox.c.status == Status.SENDING.value))]

    def settle_interrupted(self, row_id: int, now: datetime, *, resend: bool, reason: str) -> None:
        status = Status.PENDING if resend else Status.UNKNOWN
        with self.db.begin() as conn:
            conn.execute(update(t.outbox)
                         .where(t.outbox.c.id == row_id, t.outbox.c.status == Status.SENDING.value)
                         .values(status=status.value, next_attempt_at=now, last_error=reason, updated_at=now,
                                 lease_owner=None, lease_until=None))

    # -- the admin -------------------------------------------------------------------
    def list(self, status: Status | None = None, *, channel: str | None = None, since: datetime | None = None,
             until: datetime | None = None) -> Iterator[OutboxRow]:
        """Rows with ``status`` (or every row not sent), optionally of one channel and changed in a time range."""
        q = select(t.outbox).where(*self._where((), channel, [status] if status else [], since, until))
        q = q.order_by(t.outbox.c.id)
        if not status:
            q = q.where(t.outbox.c.status != Status.SENT.value)
        with self.db.connect() as conn:
            for r in conn.execution_options(yield_per=1000).execute(q):
                yield _row(r)

    def get(self, row_id: int) -> OutboxRow:
        with self.db.connect() as conn:
            r = conn.execute(select(t.outbox).where(t.outbox.c.id == row_id)).first()
        if r is None:
            raise OutboxError(f"no outbox message {row_id}")
        return _row(r)

    def _where(self, ids: Iterable[int] = (), channel: str | None = None, statuses: Iterable[Status] = (),
               since: datetime | None = None, until: datetime | None = None) -> list[Any]:
        """The conditions that pick rows for an admin: ids, a channel, statuses, and when they
        last changed (a time range)."""
        ids, statuses = list(ids), list(statuses)
        where: list[Any] = []
        if ids:
            where.append(t.outbox.c.id.in_(ids))
        if channel:
            where.append(t.outbox.c.channel_id == channel)
        if statuses:
            where.append(t.outbox.c.status.in_([s.value for s in statuses]))
        if since:
            where.append(t.outbox.c.updated_at >= since)
        if until:
            where.append(t.outbox.c.updated_at < until)
        return where

    def retry(self, row_id: int, now: datetime) -> None:
        """A failed or unknown message goes back to pending, due now, with its attempts reset."""
        row = self.get(row_id)
        if row.status not in (Status.FAILED, Status.UNKNOWN):
            raise OutboxError(f"message {row_id} is {row.status}; only failed or unknown messages can be retried")
        self.retry_where(now, ids=[row_id])

    def retry_where(self, now: datetime, *, ids: Iterable[int] = (), channel: str | None = None,
                    statuses: Iterable[Status] = (Status.FAILED, Status.UNKNOWN), since: datetime | None = None,
                    until: datetime | None = None) -> int:
        """Every failed or unknown message matching the selection goes back to pending, due
        now, attempts reset (recovering after an outage is one command, not one per row).
        Returns how many."""
        statuses = [s for s in statuses if s in (Status.FAILED, Status.UNKNOWN, Status.DISMISSED)]
        if not statuses:
            raise OutboxError("only failed, unknown or dismissed messages can be retried")
        with self.db.begin() as conn:
            res = conn.execute(update(t.outbox).where(*self._where(ids, channel, statuses, since, until))
                               .values(status=Status.PENDING.value, next_attempt_at=now, attempts=0, updated_at=now))
            return res.rowcount

    def dismiss_where(self, now: datetime, *, ids: Iterable[int] = (), channel: str | None = None,
                      since: datetime | None = None, until: datetime | None = None) -> int:
        """Failed messages the admin has seen and leaves as they are: they stop counting as
        needing the admin. Returns how many."""
        with self.db.begin() as conn:
            res = conn.execute(update(t.outbox).where(*self._where(ids, channel, [Status.FAILED], since, until))
                               .values(status=Status.DISMISSED.value, updated_at=now))
            return res.rowcount

    def of_edition(self, edition_id: int) -> list[OutboxRow]:
        with self.db.connect() as conn:
            return [_row(r) for r in conn.execute(select(t.outbox).where(t.outbox.c.edition_id == edition_id)
                                                  .order_by(t.outbox.c.id))]

    @staticmethod
    def replace(conn: Connection, row_id: int, payload: dict[str, Any], now: datetime) -> None:
        """A failed message made again (its template fixed): new content, pending, attempts reset."""
        conn.execute(update(t.outbox).where(t.outbox.c.id == row_id, t.outbox.c.status == Status.FAILED.value)
                     .values(payload=payload, status=Status.PENDING.value, attempts=0, next_attempt_at=now,
                             last_error=None, updated_at=now))

    @staticmethod
    def dismiss(conn: Connection, row_ids: Iterable[int], now: datetime, reason: str) -> None:
        ids = list(row_ids)
        if ids:
            conn.execute(update(t.outbox).where(t.outbox.c.id.in_(ids))
                         .values(status=Status.DISMISSED.value, last_error=reason, updated_at=now))

    def needs_admin(self) -> dict[Status, int]:
        """How many messages wait for an admin's decision: failed (retry or dismiss) and
        unknown (check the channel, then retry or resolve)."""
        q = (select(t.outbox.c.status, func.count())
             .where(t.outbox.c.status.in_([Status.FAILED.value, Status.UNKNOWN.value])).group_by(t.outbox.c.status))
        with self.db.connect() as conn:
            return {Status(status): n for status, n in conn.execute(q)}

    def resolve(self, row_id: int, now: datetime) -> None:
        """The admin checked an unknown post is out: it counts as sent."""
        row = self.get(row_id)
        if row.status != Status.UNKNOWN:
            raise OutboxError(f"message {row_id} is {row.status}; only unknown messages can be resolved")
        with self.db.begin() as conn:
            conn.execute(update(t.outbox).where(t.outbox.c.id == row_id, t.outbox.c.status == Status.UNKNOWN.value)
                         .values(status=Status.SENT.value, sent_at=now, receipt="marked delivered by the admin",
                                 updated_at=now))

    # -- retention -------------------------------------------------------------------
    def settled_editions(self, before: datetime) -> list[int]:
        """Editions whose every message is settled (sent, cancelled or dismissed: nothing
        left for the dispatcher or an admin) and unchanged since ``before``. An edition is
        kept whole or folded whole, so ``outbox rerender`` and ``release`` never see half an
        edition and mistake what went out for what did not."""
        unsettled = func.sum(case((t.outbox.c.status.in_(SETTLED), 0), else_=1))
        q = (select(t.outbox.c.edition_id).where(t.outbox.c.edition_id.is_not(None))
             .group_by(t.outbox.c.edition_id)
             .having(unsettled == 0, func.max(t.outbox.c.updated_at) < before)
             .order_by(t.outbox.c.edition_id))
        with self.db.connect() as conn:
            return [r.edition_id for r in conn.execute(q)]

    def count_edition(self, edition_id: int) -> dict[Status, int]:
        """{status: count} of an edition's messages (what retention would fold)."""
        q = (select(t.outbox.c.status, func.count()).where(t.outbox.c.edition_id == edition_id)
             .group_by(t.outbox.c.status))
        with self.db.connect() as conn:
            return {Status(status): n for status, n in conn.execute(q)}

    @staticmethod
    def delete_of_edition(conn: Connection, edition_id: int, *, limit: int) -> dict[Status, int]:
        """Delete up to ``limit`` settled rows of an edition, in the caller's transaction, and
        say how many of each status went (the caller folds them into the edition)."""
        rows = conn.execute(select(t.outbox.c.id, t.outbox.c.status)
                            .where(t.outbox.c.edition_id == edition_id, t.outbox.c.status.in_(SETTLED))
                            .order_by(t.outbox.c.id).limit(limit)).all()
        if rows:
            conn.execute(t.outbox.delete().where(t.outbox.c.id.in_([r.id for r in rows])))
        return Counter(Status(r.status) for r in rows)

    def loose_settled(self, before: datetime) -> int:
        """How many settled messages outside any edition (a sign-up's confirmation) are
        unchanged since ``before``."""
        with self.db.connect() as conn:
            return conn.execute(select(func.count()).select_from(t.outbox).where(*self._loose(before))).scalar_one()

    @staticmethod
    def _loose(before: datetime) -> list[Any]:
        return [t.outbox.c.edition_id.is_(None), t.outbox.c.status.in_(SETTLED), t.outbox.c.updated_at < before]

    def delete_loose(self, before: datetime, *, limit: int) -> int:
        """Delete up to ``limit`` of :meth:`loose_settled`'s messages; returns how many."""
        with self.db.begin() as conn:
            ids = [r.id for r in conn.execute(select(t.outbox.c.id).where(*self._loose(before))
                                              .order_by(t.outbox.c.id).limit(limit))]
            if ids:
                conn.execute(t.outbox.delete().where(t.outbox.c.id.in_(ids)))
            return len(ids)

    def counts(self) -> dict[str, dict[Status, int]]:
        """{channel: {status: count}}."""
        out: dict[str, dict[Status, int]] = {}
        q = (select(t.outbox.c.channel_id, t.outbox.c.status, func.count())
             .group_by(t.outbox.c.channel_id, t.outbox.c.status))
        with self.db.connect() as conn:
            for ch, status, n in conn.execute(q):
                out.setdefault(ch, {})[Status(status)] = n
        return out
