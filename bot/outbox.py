"""The outbox: every message waiting to go out, and the dispatcher that delivers it.

The dispatcher is the only caller of transports. For each due row it *claims* it
(``pending`` → ``sending``, a compare-and-set that also works between processes), sends
it, and records the outcome:

========================  =========================================================
transport says            row becomes
========================  =========================================================
Receipt                   ``sent`` (with the service's id)
AlreadyDelivered          ``sent`` (X's duplicate refusal: it is already posted)
TransientError            ``pending`` again, ``next_attempt_at`` = backoff, at least
                          the service's ``retry_after``; ``failed`` after max_attempts
UncertainDelivery         at-least-once transport: like TransientError;
                          at-most-once: ``unknown`` — flagged for the admin, never resent
PermanentError            ``failed``, with the reason
========================  =========================================================

Crash safety: a row found in ``sending`` at start-up was interrupted mid-send.
:func:`recover` puts it back to ``pending`` when resending is harmless (email, whose
Message-ID is derived from the idempotency key; files) and marks it ``unknown``
otherwise (a Telegram or X post may already be public: posting it again would be the
duplicate our readers complain about). Nothing is ever deleted or dropped silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from sqlalchemy import Connection, select, update

from .config import Channel, Config, ConfigError, parse_duration
from .errors import (
    AlreadyDelivered,
    DeliveryError,
    PermanentError,
    TransientError,
    UncertainDelivery,
)
from .models import Message, Receipt
from .store import Store
from .store import tables as t
from .transports import Transport, make_transport

log = logging.getLogger(__name__)

PENDING, SENDING, SENT, FAILED, UNKNOWN = "pending", "sending", "sent", "failed", "unknown"


@dataclass(frozen=True)
class OutboxRow:
    key: str
    channel_id: str
    kind: str
    destination: str
    payload: dict[str, Any]
    edition_id: int | None = None


def enqueue(conn: Connection, rows: list[OutboxRow], *, now: datetime) -> int:
    """Insert rows in the caller's transaction. The unique key makes a second insert fail loudly."""
    if rows:
        conn.execute(t.outbox.insert(), [
            dict(key=r.key, channel_id=r.channel_id, kind=r.kind, destination=r.destination, payload=r.payload,
                 edition_id=r.edition_id, status=PENDING, attempts=0, next_attempt_at=now, created_at=now,
                 updated_at=now)
            for r in rows
        ])
    return len(rows)


def backoff(attempts: int, base: timedelta, cap: timedelta) -> timedelta:
    """Exponential: base, 2·base, 4·base … capped. ``attempts`` counts tries so far (≥ 1)."""
    return min(cap, base * (2 ** max(0, attempts - 1)))


def recover(store: Store, config: Config, *, now: datetime) -> dict[str, int]:
    """Resolve rows left ``sending`` by a crash; see the module docstring."""
    out = Counter()
    with store.begin() as conn:
        rows = conn.execute(select(t.outbox.c.id, t.outbox.c.channel_id).where(t.outbox.c.status == SENDING)).all()
        for row in rows:
            safe = _at_least_once(config, row.channel_id)
            if safe:
                values = dict(status=PENDING, next_attempt_at=now, last_error="interrupted while sending; resent")
                out["requeued"] += 1
            else:
                values = dict(status=UNKNOWN,
                              last_error="interrupted while sending: it may or may not have been posted; "
                                         "check the channel, then `outbox retry` or `outbox resolve`")
                out["unknown"] += 1
            conn.execute(update(t.outbox).where(t.outbox.c.id == row.id, t.outbox.c.status == SENDING)
                         .values(updated_at=now, **values))
    for k, v in out.items():
        log.warning("outbox recovery: %d message(s) %s", v, k)
    return dict(out)


def _at_least_once(config: Config, channel_id: str) -> bool:
    from .transports import registry

    try:
        ch = config.channel(channel_id)
    except ConfigError:
        return False  # a channel since removed from the config: be careful
    return registry()[ch.transport.type].at_least_once


@dataclass
class DispatchReport:
    sent: list[tuple[str, str, Receipt]] = field(default_factory=list)  # (channel, key, receipt)
    retrying: list[tuple[str, str, str]] = field(default_factory=list)  # (channel, key, reason)
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    unknown: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.retrying or self.failed or self.unknown)

    def merge(self, other: "DispatchReport") -> None:
        for name in ("sent", "retrying", "failed", "unknown"):
            getattr(self, name).extend(getattr(other, name))


class Dispatcher:
    """Delivers due outbox rows through one transport per channel (opened lazily, kept open)."""

    def __init__(self, config: Config, store: Store, *, clock: Callable[[], datetime] | None = None,
                 transport_factory: Callable[[Channel], Transport] | None = None):
        self.config = config
        self.store = store
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._factory = transport_factory or (lambda ch: make_transport(ch.transport, config))
        self._transports: dict[str, Transport] = {}
        self._shared: dict[int, dict] = {}
        # One delivery loop per channel at a time in this process: the scheduler's edition job
        # and the periodic dispatch may both want a channel, and a digest's parts keep order.
        self._locks: dict[str, asyncio.Lock] = {}
        self._unavailable: dict[str, int] = {}  # channel → failed opens in a row (backs off)
        self._stopping = False
        d = config.delivery
        self._base, self._cap = parse_duration(d.backoff_base), parse_duration(d.backoff_max)

    def stop(self) -> None:
        """Finish the message in flight, then stop: a clean shutdown leaves nothing ``sending``."""
        self._stopping = True

    async def aclose(self) -> None:
        for tr in self._transports.values():
            try:
                await tr.aclose()
            except Exception:  # pragma: no cover - closing is best effort
                log.exception("closing transport %s", tr.name)
        self._transports.clear()

    async def run_once(self, channel_ids: list[str] | None = None) -> DispatchReport:
        """Deliver every row due now. Channels go in parallel; a channel's rows go in order."""
        now = self.clock()
        with self.store.engine.connect() as conn:
            q = (select(t.outbox.c.channel_id).where(t.outbox.c.status == PENDING, t.outbox.c.next_attempt_at <= now)
                 .distinct())
            due = [r.channel_id for r in conn.execute(q)]
        if channel_ids is not None:
            due = [c for c in due if c in channel_ids]
        report = DispatchReport()
        results = await asyncio.gather(*(self._run_channel(c) for c in sorted(due)))
        for r in results:
            report.merge(r)
        return report

    async def _run_channel(self, channel_id: str) -> DispatchReport:
        async with self._locks.setdefault(channel_id, asyncio.Lock()):
            return await self._run_channel_locked(channel_id)

    async def _run_channel_locked(self, channel_id: str) -> DispatchReport:
        report = DispatchReport()
        try:
            channel = self.config.channel(channel_id)
        except ConfigError:
            log.error("outbox has messages for channel %r, which is no longer in the config; left pending", channel_id)
            return report
        # A destination whose earlier message is waiting (backoff) or failed in this run is
        # held back, so the parts of a digest never arrive out of order.
        blocked: set[str] = set()
        last_id = 0
        while not self._stopping:
            now = self.clock()
            with self.store.engine.connect() as conn:
                rows = conn.execute(
                    select(t.outbox).where(t.outbox.c.channel_id == channel_id, t.outbox.c.status == PENDING,
                                           t.outbox.c.id > last_id)
                    .order_by(t.outbox.c.id).limit(self.config.delivery.batch_size)
                ).all()
            if not rows:
                break
            for row in rows:
                last_id = row.id
                if self._stopping:
                    break
                if row.destination in blocked:
                    continue
                if row.next_attempt_at > now:
                    blocked.add(row.destination)
                    continue
                outcome = await self._deliver(channel, row)
                if outcome is None:
                    continue  # claimed by someone else
                kind, detail = outcome
                getattr(report, kind).append((channel_id, row.key, detail))
                if kind != "sent":
                    blocked.add(row.destination)
                if kind == "retrying" and str(detail).startswith("transport unavailable"):
                    return report  # every row of this channel would fail the same way
        return report

    async def _transport(self, channel: Channel) -> Transport:
        tr = self._transports.get(channel.id)
        if tr is None:
            tr = self._factory(channel)
            await tr.open()
            self._transports[channel.id] = tr
        return tr

    def _message(self, channel: Channel, row: Any) -> Message:
        p = row.payload
        if row.kind == "email":
            from .render import EmailDigest, EmailEnvelope, assemble_email

            shared = self._shared.get(row.edition_id)
            if shared is None:
                with self.store.engine.connect() as conn:
                    shared = conn.execute(select(t.editions.c.shared).where(t.editions.c.id == row.edition_id)
                                          ).scalar_one()
                self._shared = {row.edition_id: shared}  # one edition at a time is the common case
            digest = EmailDigest(**shared["email"][p.get("part", "digest")])
            subject, html, text = assemble_email(digest, EmailEnvelope(**p["envelope"]))
            return Message(key=row.key, channel_id=row.channel_id, kind="email", destination=row.destination,
                           text=text, subject=subject, html=html, headers=p.get("headers") or {})
        return Message(key=row.key, channel_id=row.channel_id, kind=row.kind, destination=row.destination,
                       text=p["text"], photo_url=p.get("photo_url"))

    def _claim(self, row_id: int, now: datetime) -> bool:
        with self.store.begin() as conn:
            res = conn.execute(update(t.outbox).where(t.outbox.c.id == row_id, t.outbox.c.status == PENDING)
                               .values(status=SENDING, attempts=t.outbox.c.attempts + 1, updated_at=now))
            return res.rowcount == 1

    def _finish(self, row_id: int, **values: Any) -> None:
        with self.store.begin() as conn:
            conn.execute(update(t.outbox).where(t.outbox.c.id == row_id).values(updated_at=self.clock(), **values))

    async def _deliver(self, channel: Channel, row: Any) -> tuple[str, Any] | None:
        try:
            transport = await self._transport(channel)
        except (ConfigError, DeliveryError, OSError) as exc:
            # An admin problem (missing secret, revoked token, server down): the messages are
            # kept, and the channel is tried again later, less often each time.
            failures = self._unavailable[channel.id] = self._unavailable.get(channel.id, 0) + 1
            reason = f"transport unavailable: {exc}"
            log.error("channel %s: %s", channel.id, reason)
            self._finish(row.id, last_error=reason,
                         next_attempt_at=self.clock() + backoff(failures, self._base, self._cap))
            return "retrying", reason
        self._unavailable.pop(channel.id, None)
        try:
            message = self._message(channel, row)
        except Exception as exc:  # a corrupt row must not stop the others
            reason = f"cannot rebuild the message: {exc!r}"
            self._finish(row.id, status=FAILED, last_error=reason)
            return "failed", reason
        now = self.clock()
        if not self._claim(row.id, now):
            return None
        attempts = row.attempts + 1
        try:
            receipt = await transport.send(message)
        except AlreadyDelivered as exc:
            receipt = Receipt(transport=transport.name, detail=f"already delivered: {exc.reason}")
        except UncertainDelivery as exc:
            if transport.at_least_once:
                return self._retry(row.id, attempts, exc, None)
            self._finish(row.id, status=UNKNOWN, last_error=f"no answer, may have been posted: {exc.reason}")
            log.error("channel %s: %s may or may not be out (%s); flagged for the admin", channel.id, row.key, exc)
            return "unknown", exc.reason
        except TransientError as exc:
            return self._retry(row.id, attempts, exc, exc.retry_after)
        except PermanentError as exc:
            self._finish(row.id, status=FAILED, last_error=exc.reason)
            log.error("channel %s: %s failed permanently: %s", channel.id, row.key, exc.reason)
            return "failed", exc.reason
        except DeliveryError as exc:  # an unexpected subclass: treat as transient, never lose it
            return self._retry(row.id, attempts, exc, None)
        except asyncio.CancelledError:
            raise  # the row stays "sending"; recover() decides at the next start
        except Exception as exc:
            # A bug in a transport is not the message's fault: retry later, keep the reason.
            log.exception("channel %s: unexpected error sending %s", channel.id, row.key)
            return self._retry(row.id, attempts, exc, None)
        self._finish(row.id, status=SENT, sent_at=self.clock(), remote_id=receipt.remote_id,
                     receipt=receipt.detail, last_error=None)
        return "sent", receipt

    def _retry(self, row_id: int, attempts: int, exc: BaseException, retry_after: float | None) -> tuple[str, str]:
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        if attempts >= self.config.delivery.max_attempts:
            self._finish(row_id, status=FAILED, last_error=f"gave up after {attempts} attempts: {reason}")
            return "failed", reason
        delay = backoff(attempts, self._base, self._cap)
        if retry_after is not None:
            delay = max(delay, timedelta(seconds=float(retry_after)))
        self._finish(row_id, status=PENDING, next_attempt_at=self.clock() + delay, last_error=reason)
        log.warning("retrying %s in %s: %s", row_id, delay, reason)
        return "retrying", reason


def outbox_counts(store: Store) -> dict[str, dict[str, int]]:
    """{channel: {status: count}} for reports and ``status``."""
    from sqlalchemy import func

    out: dict[str, dict[str, int]] = {}
    with store.engine.connect() as conn:
        for ch, status, n in conn.execute(
            select(t.outbox.c.channel_id, t.outbox.c.status, func.count()).group_by(t.outbox.c.channel_id,
                                                                                   t.outbox.c.status)):
            out.setdefault(ch, {})[status] = n
    return out
