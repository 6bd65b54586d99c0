"""The dispatcher: delivers due outbox rows through each channel's transport.

It is the only caller of transports. For each due row it *claims* it (``pending`` →
``sending``, a compare-and-set that also works between processes), sends it, and records
the outcome through :class:`~bot.store.outbox.Outbox`:

========================  =========================================================
transport says            row becomes
========================  =========================================================
Receipt                   ``sent`` (with the service's id)
AlreadyDelivered          ``sent`` (X's duplicate refusal: it is already posted)
ServiceUnavailable        ``pending`` again with its attempts untouched; the channel
                          pauses (a circuit breaker: 30 s, 1 min, 2 min … up to
                          ``delivery.pause_max``, never shorter than ``retry_after``)
                          and the next dispatch after the pause probes with one message
TransientError            ``pending`` again, ``next_attempt_at`` = backoff, at least
                          the service's ``retry_after``; ``failed`` after max_attempts
UncertainDelivery         at-least-once transport: like TransientError;
                          at-most-once: ``unknown`` — flagged for the admin, never resent
PermanentError            ``failed``, with the reason
========================  =========================================================

Before a message is claimed the dispatcher waits on the transport's declared rate limits
(:mod:`bot.limits`), so a stop while waiting leaves nothing ``sending``; and for a
channel with its own list of subscribers it checks the recipient of an edition is still
subscribed: mail to someone who left while the message waited is ``cancelled``, with the
reason. (Messages outside an edition, such as a sign-up's confirmation, are exempt.)

Crash safety: a row found in ``sending`` at start-up was interrupted mid-send.
:func:`recover` puts it back to ``pending`` when resending is harmless (email, whose
Message-ID is derived from the idempotency key; files) and marks it ``unknown``
otherwise (a Telegram or X post may already be public: posting it again would be the
duplicate our readers complain about). Nothing is ever deleted or dropped silently.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import socket
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from .channels.base import Transport
from .channels.registry import Channels
from .config import Config
from .errors import (
    AlreadyDelivered,
    ConfigError,
    DeliveryError,
    PermanentError,
    RecipientRefused,
    ServiceUnavailable,
    TransientError,
    UncertainDelivery,
)
from .limits import Limiters
from .models import Message, Receipt
from .settings import ChannelSettings
from .store import Finished, OutboxRow, Status, Store
from .store.subscribers import Source

log = logging.getLogger(__name__)

#: Problems a report keeps word for word; beyond this it only counts them (memory stays flat).
REPORT_DETAILS = 200
# A long send refreshes the outbox statistics this often (rows settled), so PostgreSQL keeps
# choosing the index of open rows while the sent ones pile up.
REFRESH_STATISTICS_EVERY = 20_000


class Outcome(enum.Enum):
    SENT = "delivered"
    RETRYING = "will retry"
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN, check by hand"
    PAUSED = "channel paused"  # the service cannot be reached; the message waits, no attempt spent
    CANCELLED = "cancelled"  # the recipient left before it went out


def backoff(attempts: int, base: timedelta, cap: timedelta) -> timedelta:
    """Exponential: base, 2·base, 4·base … capped. ``attempts`` counts tries so far (≥ 1)."""
    return min(cap, base * (2 ** max(0, attempts - 1)))


def recover(store: Store, config: Config, channels: Channels, *, now: datetime,
            expired_only: bool = False) -> dict[str, int]:
    """Resolve rows left ``sending`` by a crash; see the module docstring. A worker beside
    other workers (``expired_only``) settles only the rows whose holder's lease ran out."""
    out: Counter[str] = Counter()
    for row_id, channel_id in (store.outbox.expired(now) if expired_only else store.outbox.interrupted()):
        try:
            channel = config.channel(channel_id)
            resend = channels.kind(channel).at_least_once(channel)
        except ConfigError:
            resend = False  # a channel since removed from the config: be careful
        if resend:
            store.outbox.settle_interrupted(row_id, now, resend=True, reason="interrupted while sending; resent")
            out["requeued"] += 1
        else:
            store.outbox.settle_interrupted(
                row_id, now, resend=False,
                reason="interrupted while sending: it may or may not have been posted; "
                       "check the channel, then `outbox retry` or `outbox resolve`")
            out["unknown"] += 1
    for k, v in out.items():
        log.warning("outbox recovery: %d message(s) %s", v, k)
    return dict(out)


@dataclass(frozen=True)
class Problem:
    channel_id: str
    key: str
    outcome: Outcome
    reason: str


@dataclass
class DispatchReport:
    """What a dispatch run did: counters per channel and outcome, the files written, and
    the first :data:`REPORT_DETAILS` problems word for word."""

    counts: Counter[tuple[str, Outcome]] = field(default_factory=Counter)
    files: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (channel, folder, suffix)
    problems: list[Problem] = field(default_factory=list)

    def add(self, channel_id: str, key: str, outcome: Outcome, detail: Receipt | str) -> None:
        self.counts[channel_id, outcome] += 1
        if isinstance(detail, Receipt):
            for f in detail.files:
                p = Path(f)
                self.files[channel_id, str(p.parent), p.suffix] += 1
        elif len(self.problems) < REPORT_DETAILS:
            self.problems.append(Problem(channel_id, key, outcome, detail))

    def count(self, outcome: Outcome, channel_id: str | None = None) -> int:
        return sum(n for (ch, o), n in self.counts.items() if o is outcome and channel_id in (None, ch))

    @property
    def sent(self) -> int:
        return self.count(Outcome.SENT)

    @property
    def ok(self) -> bool:
        return all(o in (Outcome.SENT, Outcome.CANCELLED) for (_, o), n in self.counts.items() if n)

    def merge(self, other: "DispatchReport") -> None:
        self.counts.update(other.counts)
        self.files.update(other.files)
        self.problems.extend(other.problems[: max(0, REPORT_DETAILS - len(self.problems))])


class Dispatcher:
    """Delivers due outbox rows through one transport per channel (opened lazily, kept open)."""

    def __init__(self, config: Config, store: Store, channels: Channels, *,
                 clock: Callable[[], datetime] | None = None,
                 transport_factory: Callable[[ChannelSettings], Transport] | None = None):
        self.config = config
        self.store = store
        self.channels = channels
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._factory = transport_factory or (lambda ch: channels.kind(ch).make_transport(ch))
        self._transports: dict[str, Transport] = {}
        self._shared: tuple[int | None, dict[str, Any] | None] = (None, None)
        # One delivery loop per channel at a time in this process: the scheduler's edition job
        # and the periodic dispatch may both want a channel, and a digest's parts keep order.
        self._locks: dict[str, asyncio.Lock] = {}
        # The circuit breaker: channel → (paused until, service failures in a row).
        self._paused: dict[str, tuple[datetime, int]] = {}
        self.limiters = Limiters()  # process-wide: channels sharing an account share its quota
        self.owner = f"{socket.gethostname()}:{os.getpid()}"  # whose lease a claimed row is under
        self._stopping = False
        self._base, self._cap = config.delivery.backoff_base, config.delivery.backoff_max

    def stop(self) -> None:
        """Finish the message in flight, then stop: a clean shutdown leaves nothing ``sending``."""
        self._stopping = True

    async def aclose(self) -> None:
        for tr in self._transports.values():
            try:
                await tr.aclose()
            except Exception:  # closing is best effort; the process is ending anyway
                log.exception("closing transport %s", tr.name)
        self._transports.clear()

    async def run_once(self, channel_ids: list[str] | None = None) -> DispatchReport:
        """Deliver every row due now. Channels go in parallel; a channel's rows go in order."""
        now = self.clock()
        due = [c for c in self.store.outbox.due_channels(now)
               if (channel_ids is None or c in channel_ids) and self.paused_until(c) <= now]
        report = DispatchReport()
        for r in await asyncio.gather(*(self._run_channel(c) for c in due)):
            report.merge(r)
        return report

    def paused_until(self, channel_id: str) -> datetime:
        """When the channel's circuit breaker lets the next probe through (the past: not paused)."""
        return self._paused.get(channel_id, (datetime.min.replace(tzinfo=timezone.utc), 0))[0]

    def _pause(self, channel: ChannelSettings, exc: BaseException) -> datetime:
        """Open the circuit: the service failed for everyone. Returns when to probe again.
        Messages that were in flight together when it failed pause it once, not once each."""
        current, failures = self._paused.get(channel.id, (None, 0))
        if current is not None and current > self.clock():
            return current
        failures += 1
        delay = backoff(failures, self._base, self.config.delivery.pause_max)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            delay = max(delay, timedelta(seconds=float(retry_after)))
        until = self.clock() + delay
        self._paused[channel.id] = (until, failures)
        log.error("channel %s paused for %s: %s", channel.id, delay, exc)
        return until

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
        try:
            transport = await self._transport(channel)
        except (ConfigError, DeliveryError, OSError) as exc:
            # An admin problem (missing secret, revoked token, server down): the messages are
            # kept, and the channel is tried again later, less often each time.
            reason = f"transport unavailable: {exc}"
            until = self._pause(channel, exc)
            first = await self._db(self.store.outbox.next_due, channel_id, self.clock())
            if first is not None:  # the reason shows in `outbox list`; no attempt is spent
                await self._db(self.store.outbox.release, first.id, self.clock(), when=until, reason=reason)
            report.add(channel_id, first.key if first else "-", Outcome.PAUSED, reason)
            return report
        # At-least-once messages are claimed by the batch: a crash puts the whole batch back and
        # a resend is harmless. An at-most-once post is claimed alone, after its rate limit,
        # so one left "sending" by a crash really was in flight (it is flagged, not resent).
        if not transport.at_least_once:
            while self._open(channel_id):
                row = await self._db(self.store.outbox.next_due, channel_id, self.clock())
                if row is None:
                    break
                done = await self._one(channel, transport, row, report)
                if done:
                    await self._db(self.store.outbox.finish_many, done)
        else:
            await self._batches(channel, transport, report)
        return report

    def _open(self, channel_id: str) -> bool:
        return not self._stopping and self.paused_until(channel_id) <= self.clock()

    async def _batches(self, channel: ChannelSettings, transport: Transport, report: DispatchReport) -> None:
        """Claim, send and settle batches until the channel has nothing due. The next batch
        is claimed, and the last one's outcomes written, while a batch is on the wire: the
        database work (a thread) overlaps the sending (the event loop), and the connections
        never wait for it. A prefetched batch met by a stop or a pause goes back untouched
        (:meth:`_batch` releases what it did not start)."""
        size = self.config.delivery.batch_size

        def claim(after_id: int = 0) -> asyncio.Future[list[OutboxRow]]:
            now = self.clock()
            return asyncio.ensure_future(self._db(self.store.outbox.claim_batch, channel.id, now, limit=size,
                                                  lease_until=now + self.config.delivery.lease, owner=self.owner,
                                                  after_id=after_id))

        settled = 0
        finishing: asyncio.Future[None] | None = None
        try:
            rows = await claim() if self._open(channel.id) else []
            while rows:
                # the next claim starts after this batch (rows come in id order); the pass only
                # ends on a claim from the start that finds nothing (below)
                more = claim(rows[-1].id) if self._open(channel.id) else None
                done = await self._batch(channel, transport, rows, report)
                if finishing is not None:
                    await finishing  # outcomes are written in the order the batches went
                    finishing = None
                if done:
                    finishing = asyncio.ensure_future(self._db(self.store.outbox.finish_many, done))
                    settled += len(done)
                    if settled >= REFRESH_STATISTICS_EVERY:  # most of the table changed status since
                        settled = 0
                        await finishing
                        finishing = None
                        await self._db(self.store.outbox.refresh_statistics)
                rows = await more if more is not None else []
                if not rows and done and self._open(channel.id):
                    # The prefetch ran while this batch was open, so it skipped the
                    # destinations in it (one per destination at a time), and it looked only
                    # after this batch: a channel with a single destination gets its next row,
                    # and a row held back behind an earlier one to its destination is found,
                    # once the outcomes are written, by a claim from the start.
                    if finishing is not None:
                        await finishing
                        finishing = None
                    rows = await claim()
        finally:
            if finishing is not None:
                await finishing

    async def _db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Database work off the event loop, so sending goes on while rows are written."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _one(self, channel: ChannelSettings, transport: Transport, row: OutboxRow,
                   report: DispatchReport) -> list[Finished]:
        """An at-most-once post: rebuilt, checked, rate-limited, then claimed and sent."""
        done: list[Finished] = []
        ready = await self._prepare(channel, [row], report, done)
        if not ready:
            return done
        message = ready[0][1]
        await self.limiters.acquire(transport.rate_limits(message))
        now = self.clock()
        if self._stopping or not await self._db(self.store.outbox.claim, row.id, now,
                                                lease_until=now + self.config.delivery.lease, owner=self.owner):
            return done
        await self._send(channel, transport, row, message, report, done)
        return done

    async def _batch(self, channel: ChannelSettings, transport: Transport, rows: list[OutboxRow],
                     report: DispatchReport) -> list[Finished]:
        """Claimed rows with distinct destinations: sent concurrently over the transport's
        connections; the rows not sent (a stop, a paused channel) go back, costing nothing."""
        done: list[Finished] = []
        ready = await self._prepare(channel, rows, report, done)
        gate = asyncio.Semaphore(max(1, transport.concurrency))
        started: set[int] = set()

        async def one(row: OutboxRow, message: Message) -> None:
            async with gate:
                if self._stopping or self.paused_until(channel.id) > self.clock():
                    return
                await self.limiters.acquire(transport.rate_limits(message))
                started.add(row.id)
                await self._send(channel, transport, row, message, report, done)

        await asyncio.gather(*(one(row, message) for row, message in ready))
        now = self.clock()
        until = max(now, self.paused_until(channel.id))
        for row, _ in ready:
            if row.id not in started:
                done.append(Finished(row.id, Status.PENDING, now, answered=False, when=until, reason=row.last_error))
        return done

    async def _prepare(self, channel: ChannelSettings, rows: list[OutboxRow], report: DispatchReport,
                       done: list[Finished]) -> list[tuple[OutboxRow, Message]]:
        """Rebuild each row's message; a row that cannot be rebuilt fails, and edition mail to
        someone no longer subscribed is cancelled (a message with no edition, such as a
        sign-up's confirmation, goes to whoever asked for it)."""
        kind = self.channels.kind(channel)
        now = self.clock()
        edition_mail = [r.destination for r in rows if r.edition_id is not None]
        active = (await self._db(self.store.subscribers.active_among, channel.id, edition_mail)
                  if kind.has_subscribers and edition_mail else None)
        ready = []
        for row in rows:
            if active is not None and row.edition_id is not None and row.destination.lower() not in active:
                reason = "not sent: the recipient is no longer subscribed"
                done.append(Finished(row.id, Status.CANCELLED, now, answered=False, reason=reason))
                report.add(channel.id, row.key, Outcome.CANCELLED, reason)
                continue
            try:
                ready.append((row, self._message(channel, row)))
            except DeliveryError as exc:  # the message can never go as it is (an invalid address, say)
                done.append(Finished(row.id, Status.FAILED, now, answered=False, reason=exc.reason))
                report.add(channel.id, row.key, Outcome.FAILED, exc.reason)
            except Exception as exc:  # a corrupt row must not stop the others
                reason = f"cannot rebuild the message: {exc!r}"
                done.append(Finished(row.id, Status.FAILED, now, answered=False, reason=reason))
                report.add(channel.id, row.key, Outcome.FAILED, reason)
        return ready

    async def _transport(self, channel: ChannelSettings) -> Transport:
        tr = self._transports.get(channel.id)
        if tr is None:
            tr = self._factory(channel)
            await tr.open()
            self._transports[channel.id] = tr
        return tr

    def _message(self, channel: ChannelSettings, row: OutboxRow) -> Message:
        edition_id, shared = self._shared
        if row.edition_id is not None and row.edition_id != edition_id:
            shared = self.store.editions.shared(row.edition_id)
            self._shared = (row.edition_id, shared)  # one edition at a time is the common case
        return self.channels.kind(channel).message(channel, row.key, row.destination, row.payload, shared)

    async def _send(self, channel: ChannelSettings, transport: Transport, row: OutboxRow, message: Message,
                    report: DispatchReport, done: list[Finished]) -> None:
        """Send one claimed row and note its outcome (written with the batch)."""
        kind = self.channels.kind(channel)
        attempts = row.attempts + 1
        try:
            receipt = await transport.send(message)
        except AlreadyDelivered as exc:
            receipt = Receipt(transport=transport.name, detail=f"already delivered: {exc.reason}")
        except ServiceUnavailable as exc:
            already = self.paused_until(channel.id) > self.clock()
            until = self._pause(channel, exc)
            done.append(Finished(row.id, Status.PENDING, self.clock(), answered=False, when=until, reason=exc.reason))
            if not already:
                report.add(channel.id, row.key, Outcome.PAUSED, exc.reason)
            return
        except UncertainDelivery as exc:
            if transport.at_least_once:
                self._retry(channel, row, attempts, exc, None, report, done)
                return
            reason = f"no answer, may have been posted: {exc.reason}"
            done.append(Finished(row.id, Status.UNKNOWN, self.clock(), reason=reason))
            log.error("channel %s: %s may or may not be out (%s); flagged for the admin", channel.id, row.key, exc)
            report.add(channel.id, row.key, Outcome.UNKNOWN, exc.reason)
            return
        except TransientError as exc:
            self._retry(channel, row, attempts, exc, exc.retry_after, report, done)
            return
        except RecipientRefused as exc:  # the address itself bounced at send time
            done.append(Finished(row.id, Status.FAILED, self.clock(), reason=exc.reason))
            if kind.has_subscribers:
                await self._db(self.store.subscribers.bounce, exc.address, now=self.clock(), hard=exc.hard,
                               reason=exc.reason, source=Source.SEND, **kind.bounce_policy(channel))
            report.add(channel.id, row.key, Outcome.FAILED, exc.reason)
            return
        except PermanentError as exc:
            done.append(Finished(row.id, Status.FAILED, self.clock(), reason=exc.reason))
            log.error("channel %s: %s failed permanently: %s", channel.id, row.key, exc.reason)
            report.add(channel.id, row.key, Outcome.FAILED, exc.reason)
            return
        except DeliveryError as exc:  # an unexpected subclass: treat as transient, never lose it
            self._retry(channel, row, attempts, exc, None, report, done)
            return
        except asyncio.CancelledError:
            raise  # the row stays "sending"; recovery decides at the next start
        except Exception as exc:
            # A bug in a transport is not the message's fault: retry later, keep the reason.
            log.exception("channel %s: unexpected error sending %s", channel.id, row.key)
            self._retry(channel, row, attempts, exc, None, report, done)
            return
        self._paused.pop(channel.id, None)  # the circuit closes: the service answers again
        done.append(Finished(row.id, Status.SENT, self.clock(), remote_id=receipt.remote_id,
                                       receipt=receipt.detail))
        report.add(channel.id, row.key, Outcome.SENT, receipt)

    def _retry(self, channel: ChannelSettings, row: OutboxRow, attempts: int, exc: BaseException,
               retry_after: float | None, report: DispatchReport, done: list[Finished]) -> None:
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        now = self.clock()
        if attempts >= self.config.delivery.max_attempts:
            done.append(Finished(row.id, Status.FAILED, now, reason=f"gave up after {attempts} attempts: "
                                                                              f"{reason}"))
            report.add(channel.id, row.key, Outcome.FAILED, reason)
            return
        delay = backoff(attempts, self._base, self._cap)
        if retry_after is not None:
            delay = max(delay, timedelta(seconds=float(retry_after)))
        done.append(Finished(row.id, Status.PENDING, now, when=now + delay, reason=reason))
        log.warning("retrying %s in %s: %s", row.id, delay, reason)
        report.add(channel.id, row.key, Outcome.RETRYING, reason)
