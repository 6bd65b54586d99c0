"""The ``subscribers`` and ``subscriber_events`` tables: who receives a channel that has its
own list of recipients, and everything that happened to each of them.

A subscriber's life::

    pending ──confirm──► active ──► unsubscribed | bounced | complained   (suppressed)
       ▲                                 │
       └──── a new sign-up (form, API) ◄─┘   only a new *confirmed* sign-up brings one back

One row per mailbox and list: addresses match case-insensitively (``email_key``), the
spelling the reader gave is kept for display. A suppressed address is never mailed again,
not by a re-import and not by an admin's ``add``: only the reader, confirming a new
sign-up, can bring it back. Every change is an event, with its source (form, import,
one-click, bounce …) and a detail.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Iterator

from sqlalchemy import Connection, func, select, update
from sqlalchemy.exc import IntegrityError

from ..errors import TamtamError
from ..models import Frequency, Subscriber
from . import tables as t
from .db import Database


class SubscriberStatus(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


SUPPRESSED = frozenset({SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED})


class Source(enum.StrEnum):
    """Who or what changed a subscriber."""

    FORM = "form"  # the sign-up page
    API = "api"  # the JSON endpoint (a WordPress form)
    IMPORT = "import"
    ADMIN = "admin"
    LINK = "link"  # a signed link in an email: confirm, unsubscribe page, preferences
    ONE_CLICK = "one-click"  # RFC 8058, as mailbox providers send it
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    SEND = "send"  # the mail server refused the address at send time


class SubscriberError(TamtamError):
    """No such subscriber, or a change the life cycle forbids."""


def email_key(address: str) -> str:
    """What matches: the whole address in lower case (mailbox providers ignore case)."""
    return address.strip().lower()


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str
    source: str
    detail: str | None


@dataclass(frozen=True)
class Added:
    """What :meth:`Subscribers.add` did: ``created``, ``reactivated`` (a pending one
    confirmed by an admin), ``already`` (active), ``pending`` (waits for confirmation) or
    ``suppressed`` (left alone: unsubscribed, bounced or complained)."""

    subscriber: Subscriber
    outcome: str

    @property
    def created(self) -> bool:
        return self.outcome in ("created", "reactivated")


def _insert_many(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """``rows`` inserted with one executemany on the driver's cursor. SQLAlchemy processing
    each of 100,000 rows' values one by one was most of an import's time; here each column's
    bind processor runs once per distinct value (the rows of an import share their times)."""
    columns = list(rows[0])
    compiled = table.insert().compile(dialect=conn.dialect, column_keys=columns)
    processors = compiled._bind_processors
    cache: dict[tuple[str, Any], Any] = {}

    def value(column: str, v: Any) -> Any:
        try:
            return cache[column, v]
        except KeyError:
            done = cache[column, v] = processors[column](v)
            return done
        except TypeError:  # an unhashable value (a list of topics): processed each time
            return processors[column](v)

    order = compiled.positiontup if compiled.positiontup is not None else columns
    processed = [c in processors for c in order]
    tuples = [tuple(value(c, row[c]) if p and row[c] is not None else row[c] for c, p in zip(order, processed))
              for row in rows]
    # qmark/format styles (SQLite) take a tuple per row; named styles (psycopg) a mapping
    params: list[Any] = tuples if compiled.positiontup is not None else [dict(zip(order, t_)) for t_ in tuples]
    conn.exec_driver_sql(str(compiled), params)


def _subscriber(row: Any) -> Subscriber:
    return Subscriber(
        id=row.id, channel_id=row.channel_id, email=row.email, name=row.name, token=row.token,
        active=row.status == SubscriberStatus.ACTIVE, created_at=row.created_at,
        status=SubscriberStatus(row.status), language=row.language,
        topics=tuple(row.topics) if row.topics is not None else None, frequency=Frequency(row.frequency),
        weekly_day=row.weekly_day, confirmed_at=row.confirmed_at, status_changed_at=row.status_changed_at,
        status_source=row.status_source)


class Subscribers:
    def __init__(self, db: Database):
        self.db = db

    # -- reading ----------------------------------------------------------------------
    def find(self, channel_id: str, email: str, *, conn: Connection | None = None) -> Subscriber | None:
        q = select(t.subscribers).where(t.subscribers.c.channel_id == channel_id,
                                        t.subscribers.c.email_key == email_key(email))
        return self._one(q, conn)

    def get(self, subscriber_id: int, *, conn: Connection | None = None) -> Subscriber:
        found = self._one(select(t.subscribers).where(t.subscribers.c.id == subscriber_id), conn)
        if found is None:
            raise SubscriberError(f"no subscriber {subscriber_id}")
        return found

    def by_token(self, token: str) -> Subscriber | None:
        """The subscriber a legacy (random, stored) link token names."""
        return self._one(select(t.subscribers).where(t.subscribers.c.token == token), None)

    def _one(self, q: Any, conn: Connection | None) -> Subscriber | None:
        if conn is not None:
            row = conn.execute(q).first()
        else:
            with self.db.connect() as c:
                row = c.execute(q).first()
        return _subscriber(row) if row is not None else None

    def is_active(self, channel_id: str, email: str) -> bool:
        """True when ``email`` is an active subscriber of the channel (checked before each send)."""
        with self.db.connect() as conn:
            status = conn.execute(select(t.subscribers.c.status).where(
                t.subscribers.c.channel_id == channel_id, t.subscribers.c.email_key == email_key(email))).scalar()
        return status == SubscriberStatus.ACTIVE

    def refresh_statistics(self) -> None:
        """ANALYZE the subscribers: after an import of thousands of rows, until autovacuum
        came by, PostgreSQL checked each batch's readers against the whole list."""
        self.db.analyze("subscribers")

    def active_among(self, channel_id: str, emails: Iterable[str]) -> set[str]:
        """The keys (lower case) of those ``emails`` that are active subscribers of the channel:
        one query for a batch of messages about to be sent."""
        keys = sorted({email_key(e) for e in emails})
        found: set[str] = set()
        with self.db.connect() as conn:
            for i in range(0, len(keys), 500):
                found.update(conn.execute(select(t.subscribers.c.email_key).where(
                    t.subscribers.c.channel_id == channel_id, t.subscribers.c.email_key.in_(keys[i:i + 500]),
                    t.subscribers.c.status == SubscriberStatus.ACTIVE.value)).scalars())
        return found

    def iter(self, channel_id: str, *, active_only: bool = True, conn: Connection | None = None,
             chunk: int = 1000, frequency: Frequency | str | None = None,
             weekly_day: int | None = None) -> Iterator[Subscriber]:
        """The channel's subscribers in the order they came, read ``chunk`` at a time by id
        (keyset pages, not a server-side cursor: the caller may write on the same
        connection between pages, as the publisher does)."""
        if conn is None:
            with self.db.connect() as c:
                yield from self.iter(channel_id, active_only=active_only, conn=c, chunk=chunk, frequency=frequency,
                                     weekly_day=weekly_day)
            return
        last = 0
        while True:
            q = (select(t.subscribers).where(t.subscribers.c.channel_id == channel_id, t.subscribers.c.id > last)
                 .order_by(t.subscribers.c.id).limit(chunk))
            if active_only:
                q = q.where(t.subscribers.c.status == SubscriberStatus.ACTIVE.value)
            if frequency is not None:
                q = q.where(t.subscribers.c.frequency == Frequency(frequency).value)
            if weekly_day is not None:
                q = q.where(t.subscribers.c.weekly_day == weekly_day)
            rows = conn.execute(q).all()
            for row in rows:
                yield _subscriber(row)
            if len(rows) < chunk:
                return
            last = rows[-1].id

    def list(self, channel_id: str, *, active_only: bool = True) -> list[Subscriber]:
        return list(self.iter(channel_id, active_only=active_only))

    def counts(self, channel_id: str) -> dict[SubscriberStatus, int]:
        q = (select(t.subscribers.c.status, func.count()).where(t.subscribers.c.channel_id == channel_id)
             .group_by(t.subscribers.c.status))
        with self.db.connect() as conn:
            return {SubscriberStatus(s): n for s, n in conn.execute(q)}

    def events(self, subscriber_id: int) -> list[Event]:
        q = (select(t.subscriber_events).where(t.subscriber_events.c.subscriber_id == subscriber_id)
             .order_by(t.subscriber_events.c.id))
        with self.db.connect() as conn:
            return [Event(r.at, r.kind, r.source, r.detail) for r in conn.execute(q)]

    # -- changing ---------------------------------------------------------------------
    @staticmethod
    def _event(conn: Connection, subscriber_id: int, now: datetime, kind: str, source: Source | str,
               detail: str | None = None) -> None:
        conn.execute(t.subscriber_events.insert().values(subscriber_id=subscriber_id, at=now, kind=kind,
                                                         source=str(source), detail=detail))

    @staticmethod
    def _status(conn: Connection, row_id: int, status: SubscriberStatus, now: datetime, source: Source | str,
                **more: Any) -> None:
        conn.execute(update(t.subscribers).where(t.subscribers.c.id == row_id).values(
            status=status.value, status_changed_at=now, status_source=str(source), **more))

    def add(self, channel_id: str, email: str, name: str | None, *, now: datetime, source: Source = Source.ADMIN,
            confirmed: bool = True, language: str | None = None, topics: Iterable[str] | None = None,
            frequency: Frequency = Frequency.DAILY, weekly_day: int | None = None) -> Added:
        """Add a subscriber. ``confirmed`` means the address gave its consent already (an
        admin's add, an import of a list with prior consent, a confirmation); otherwise it
        waits, ``pending``, for the reader to confirm.

        A suppressed address stays suppressed unless this is the reader's own new sign-up
        (``source`` form or api), which makes it pending again: only their confirmation
        brings it back. An active address stays active (its name is updated when given)."""
        key = email_key(email)
        where = (t.subscribers.c.channel_id == channel_id, t.subscribers.c.email_key == key)
        status = SubscriberStatus.ACTIVE if confirmed else SubscriberStatus.PENDING
        with self.db.begin() as conn:
            row = conn.execute(select(t.subscribers).where(*where)).first()
            if row is None:
                try:
                    # A savepoint: if another process adds the same address between our SELECT
                    # and this INSERT, only the savepoint is rolled back (on PostgreSQL the
                    # whole transaction would otherwise be aborted), and the row is theirs.
                    with conn.begin_nested():
                        new_id = conn.execute(t.subscribers.insert().values(
                            channel_id=channel_id, email=email.strip(), email_key=key, name=name,
                            token=secrets.token_urlsafe(24), status=status.value, language=language,
                            topics=list(topics) if topics is not None else None, frequency=frequency.value,
                            weekly_day=weekly_day, created_at=now, confirmed_at=now if confirmed else None,
                            status_changed_at=now, status_source=str(source), soft_bounces=0,
                        )).inserted_primary_key[0]
                    self._event(conn, new_id, now, "subscribed" if confirmed else "signed-up", source)
                    return Added(self._one(select(t.subscribers).where(t.subscribers.c.id == new_id), conn),  # type: ignore[arg-type]
                                 "created" if confirmed else "pending")
                except IntegrityError:
                    row = conn.execute(select(t.subscribers).where(*where)).one()
            current = SubscriberStatus(row.status)
            changes: dict[str, Any] = {"name": name} if name else {}
            if current is SubscriberStatus.ACTIVE:
                outcome = "already"
            elif current in SUPPRESSED and source not in (Source.FORM, Source.API, Source.LINK):
                outcome = "suppressed"  # an import or an admin never overrides the reader's choice
                changes = {}
            elif confirmed:
                self._status(conn, row.id, SubscriberStatus.ACTIVE, now, source, confirmed_at=now)
                self._event(conn, row.id, now, "confirmed", source)
                outcome = "reactivated"
            else:
                if current is not SubscriberStatus.PENDING:
                    self._status(conn, row.id, SubscriberStatus.PENDING, now, source)
                    self._event(conn, row.id, now, "signed-up", source, f"was {current}")
                outcome = "pending"
            prefs = self._prefs(language, topics, frequency if outcome == "pending" else None, weekly_day)
            if changes or prefs:
                conn.execute(update(t.subscribers).where(t.subscribers.c.id == row.id).values(**changes, **prefs))
            return Added(self._one(select(t.subscribers).where(t.subscribers.c.id == row.id), conn), outcome)  # type: ignore[arg-type]

    def add_many(self, channel_id: str, people: list[tuple[str, str | None]], *, now: datetime,
                 source: Source = Source.IMPORT, confirmed: bool = True) -> list[Added]:
        """:meth:`add` for many (address, name) pairs in one transaction: one query for who is
        there already, one multi-row insert for who is not (an import of 100,000 rows is a
        hundred such calls, not 100,000). The same rules as :meth:`add`; an address twice in
        ``people`` counts once."""
        status = SubscriberStatus.ACTIVE if confirmed else SubscriberStatus.PENDING
        out: list[Added] = []
        with self.db.begin() as conn:
            keys = [email_key(e) for e, _ in people]
            existing = {r.email_key: r for r in conn.execute(select(t.subscribers).where(
                t.subscribers.c.channel_id == channel_id, t.subscribers.c.email_key.in_(sorted(set(keys)))))}
            fresh: dict[str, dict[str, Any]] = {}
            for (email, name), key in zip(people, keys):
                if key in existing or key in fresh:
                    continue
                fresh[key] = dict(channel_id=channel_id, email=email.strip(), email_key=key, name=name,
                                  token=secrets.token_urlsafe(24), status=status.value, language=None, topics=None,
                                  frequency=Frequency.DAILY.value, weekly_day=None, created_at=now,
                                  confirmed_at=now if confirmed else None, status_changed_at=now,
                                  status_source=str(source), soft_bounces=0)
            ids: dict[str, int] = {}
            if fresh:
                _insert_many(conn, t.subscribers, list(fresh.values()))
                ids = {r.email_key: r.id for r in conn.execute(
                    select(t.subscribers.c.id, t.subscribers.c.email_key).where(
                        t.subscribers.c.channel_id == channel_id, t.subscribers.c.email_key.in_(sorted(fresh))))}
                _insert_many(conn, t.subscriber_events, [
                    dict(subscriber_id=i, at=now, kind="subscribed" if confirmed else "signed-up", source=str(source),
                         detail=None) for i in ids.values()])
            seen: set[str] = set()
            for (email, name), key in zip(people, keys):
                if key in seen:
                    continue
                seen.add(key)
                if key in fresh:
                    f = fresh[key]
                    sub = Subscriber(id=ids[key], channel_id=channel_id, email=f["email"], name=name, token=f["token"],
                                     active=confirmed, created_at=now, status=status, frequency=Frequency.DAILY,
                                     confirmed_at=f["confirmed_at"], status_changed_at=now, status_source=str(source))
                    out.append(Added(sub, "created" if confirmed else "pending"))
                    continue
                current = existing[key]
                if current.status == SubscriberStatus.ACTIVE or current.status in SUPPRESSED:
                    outcome = "already" if current.status == SubscriberStatus.ACTIVE else "suppressed"
                    out.append(Added(_subscriber(current), outcome))
                    continue
                out.append(self._change(conn, current, name, now, source, confirmed))  # a pending one
        return out

    def _change(self, conn: Connection, row: Any, name: str | None, now: datetime, source: Source,
                confirmed: bool) -> Added:
        """A pending subscriber added again: confirmed now, or still pending."""
        if confirmed:
            self._status(conn, row.id, SubscriberStatus.ACTIVE, now, source, confirmed_at=now)
            self._event(conn, row.id, now, "confirmed", source)
        if name:
            conn.execute(update(t.subscribers).where(t.subscribers.c.id == row.id).values(name=name))
        got = self.get(row.id, conn=conn)
        return Added(got, "reactivated" if confirmed else "pending")

    @staticmethod
    def _prefs(language: str | None, topics: Iterable[str] | None, frequency: Frequency | None,
               weekly_day: int | None) -> dict[str, Any]:
        prefs: dict[str, Any] = {}
        if language is not None:
            prefs["language"] = language
        if topics is not None:
            prefs["topics"] = list(topics)
        if frequency is not None:
            prefs["frequency"] = frequency.value
            prefs["weekly_day"] = weekly_day if frequency is Frequency.WEEKLY else None
        return prefs

    def confirm(self, subscriber_id: int, *, now: datetime, source: Source = Source.LINK) -> Subscriber:
        """The reader confirmed their sign-up: pending → active. Idempotent for an active one.
        A suppressed reader who has not signed up again stays suppressed."""
        with self.db.begin() as conn:
            sub = self.get(subscriber_id, conn=conn)
            if sub.status is SubscriberStatus.PENDING:
                self._status(conn, sub.id, SubscriberStatus.ACTIVE, now, source, confirmed_at=now)
                self._event(conn, sub.id, now, "confirmed", source)
            elif sub.status is not SubscriberStatus.ACTIVE:
                raise SubscriberError(f"{sub.email} is {sub.status}; a new sign-up is needed")
            return self.get(subscriber_id, conn=conn)

    def unsubscribe(self, subscriber_id: int, *, now: datetime, source: Source, detail: str | None = None) -> bool:
        """Active or pending → unsubscribed. Idempotent: False when it already was suppressed."""
        with self.db.begin() as conn:
            sub = self.get(subscriber_id, conn=conn)
            if sub.status in SUPPRESSED:
                return False
            self._status(conn, sub.id, SubscriberStatus.UNSUBSCRIBED, now, source)
            self._event(conn, sub.id, now, "unsubscribed", source, detail)
            return True

    def unsubscribe_many(self, channel_id: str, subscriber_ids: Iterable[int], *, now: datetime,
                         source: Source) -> set[int]:
        """:meth:`unsubscribe` for many readers of one list in one transaction (the web
        service groups the one-click POSTs that arrive together: one commit for all of them).
        Returns the ids it unsubscribed; the others were suppressed already or are not on
        ``channel_id``'s list."""
        ids = sorted(set(subscriber_ids))
        if not ids:
            return set()
        with self.db.begin() as conn:
            done = {r[0] for r in conn.execute(
                update(t.subscribers)
                .where(t.subscribers.c.id.in_(ids), t.subscribers.c.channel_id == channel_id,
                       t.subscribers.c.status.not_in([s.value for s in SUPPRESSED]))
                .values(status=SubscriberStatus.UNSUBSCRIBED.value, status_changed_at=now, status_source=str(source))
                .returning(t.subscribers.c.id))}
            if done:
                conn.execute(t.subscriber_events.insert(), [
                    dict(subscriber_id=i, at=now, kind="unsubscribed", source=str(source), detail=None)
                    for i in sorted(done)])
        return done

    def remove(self, channel_id: str, email: str, *, now: datetime, source: Source = Source.ADMIN) -> bool:
        """An admin unsubscribes an address (kept, suppressed, for the record)."""
        sub = self.find(channel_id, email)
        return sub is not None and self.unsubscribe(sub.id, now=now, source=source)

    def set_preferences(self, subscriber_id: int, *, now: datetime, language: str | None = None,
                        topics: Iterable[str] | None = None, frequency: Frequency | None = None,
                        weekly_day: int | None = None, name: str | None = None, all_topics: bool = False) -> Subscriber:
        """Change what the reader receives. ``all_topics`` clears a topic choice."""
        prefs = self._prefs(language, topics, frequency, weekly_day)
        if all_topics:
            prefs["topics"] = None
        if name is not None:
            prefs["name"] = name or None
        with self.db.begin() as conn:
            sub = self.get(subscriber_id, conn=conn)
            if prefs:
                conn.execute(update(t.subscribers).where(t.subscribers.c.id == sub.id).values(**prefs))
                shown = ", ".join(f"{k}={v}" for k, v in prefs.items() if k != "name")
                self._event(conn, sub.id, now, "preferences", Source.LINK, shown or None)
            return self.get(subscriber_id, conn=conn)

    @staticmethod
    def _rows_once(conn: Connection, email: str, ref: str | None) -> list[Any] | None:
        """Every list's row for ``email``, locked for this transaction; None when one of them
        already has an event naming ``[ref]`` (a report's id, which the event's detail ends
        with). Checking and applying in one transaction on locked rows is what makes a
        report count once when a provider delivers the same webhook twice at the same moment:
        the second waits for the first and then finds its event. (PostgreSQL locks the rows
        with FOR UPDATE; SQLite's writing transactions are serialised by BEGIN IMMEDIATE.)"""
        rows = conn.execute(select(t.subscribers).where(t.subscribers.c.email_key == email_key(email))
                            .order_by(t.subscribers.c.id).with_for_update()).all()
        if ref and rows and conn.execute(
                select(t.subscriber_events.c.id)
                .where(t.subscriber_events.c.subscriber_id.in_([r.id for r in rows]),
                       t.subscriber_events.c.detail.contains(f"[{ref}]", autoescape=True)).limit(1)).first():
            return None
        return rows

    def bounce(self, email: str, *, now: datetime, hard: bool, reason: str, source: Source = Source.BOUNCE,
               soft_limit: int = 3, soft_window: timedelta = timedelta(days=30),
               ref: str | None = None) -> list[Subscriber] | None:
        """A bounce for ``email``, on every list it is on (the mailbox is the same). A hard
        bounce suppresses at once; soft bounces suppress once ``soft_limit`` of them fall
        within ``soft_window``. Returns the subscribers it suppressed, or None when ``ref``
        says the same report was applied before (see :meth:`_rows_once`)."""
        suppressed = []
        with self.db.begin() as conn:
            rows = self._rows_once(conn, email, ref)
            if rows is None:
                return None
            for row in rows:
                if hard:
                    self._event(conn, row.id, now, "bounce-hard", source, reason)
                    if row.status not in SUPPRESSED:
                        self._status(conn, row.id, SubscriberStatus.BOUNCED, now, source)
                        suppressed.append(row.id)
                    continue
                start = row.soft_window_start
                count = row.soft_bounces if start is not None and now - start <= soft_window else 0
                start = start if count else now
                count += 1
                self._event(conn, row.id, now, "bounce-soft", source, f"{reason} ({count} of {soft_limit})")
                conn.execute(update(t.subscribers).where(t.subscribers.c.id == row.id)
                             .values(soft_bounces=count, soft_window_start=start))
                if count >= soft_limit and row.status not in SUPPRESSED:
                    self._status(conn, row.id, SubscriberStatus.BOUNCED, now, source)
                    suppressed.append(row.id)
            return [self.get(i, conn=conn) for i in suppressed]

    def complaint(self, email: str, *, now: datetime, reason: str, channel_id: str | None = None,
                  ref: str | None = None) -> list[Subscriber] | None:
        """The reader marked a message as spam: unsubscribed at once (from ``channel_id``'s
        list, or every list when the complaint does not say which). None when ``ref`` says
        the same report was applied before."""
        done = []
        with self.db.begin() as conn:
            rows = self._rows_once(conn, email, ref)
            if rows is None:
                return None
            for row in rows:
                if channel_id and row.channel_id != channel_id:
                    continue
                self._event(conn, row.id, now, "complaint", Source.COMPLAINT, reason)
                if row.status != SubscriberStatus.COMPLAINED:
                    self._status(conn, row.id, SubscriberStatus.COMPLAINED, now, Source.COMPLAINT)
                    done.append(row.id)
            return [self.get(i, conn=conn) for i in done]
