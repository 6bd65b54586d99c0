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
    ServiceUnavailable,
    TransientError,
    UncertainDelivery,
)
from .limits import Limiters
from .models import Message, Receipt
from .settings import ChannelSettings
from .store import OutboxRow, Store

log = logging.getLogger(__name__)

#: Problems a report keeps word for word; beyond this it only counts them (memory stays flat).
REPORT_DETAILS = 200


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


def recover(store: Store, config: Config, channels: Channels, *, now: datetime) -> dict[str, int]:
    """Resolve rows left ``sending`` by a crash; see the module docstring."""
    out: Counter[str] = Counter()
    for row_id, channel_id in store.outbox.interrupted():
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
        """Open the circuit: the service failed for everyone. Returns when to probe again."""
        failures = self._paused.get(channel.id, (None, 0))[1] + 1
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
        # A destination whose earlier message is waiting (backoff) or failed in this run is
        # held back, so the parts of a digest never arrive out of order.
        blocked: set[str] = set()
        last_id = 0
        while not self._stopping:
            now = self.clock()
            rows = self.store.outbox.pending(channel_id, after_id=last_id, limit=self.config.delivery.batch_size)
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
                result = await self._deliver(channel, row)
                if result is None:
                    continue  # claimed by someone else
                outcome, detail = result
                report.add(channel_id, row.key, outcome, detail)
                if outcome is Outcome.PAUSED:
                    return report  # every row of this channel would fail the same way
                if outcome is not Outcome.SENT:
                    blocked.add(row.destination)
        return report

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

    async def _deliver(self, channel: ChannelSettings, row: OutboxRow) -> tuple[Outcome, Any] | None:
        outbox = self.store.outbox
        kind = self.channels.kind(channel)
        try:
            transport = await self._transport(channel)
        except (ConfigError, DeliveryError, OSError) as exc:
            # An admin problem (missing secret, revoked token, server down): the messages are
            # kept, and the channel is tried again later, less often each time.
            reason = f"transport unavailable: {exc}"
            until = self._pause(channel, exc)
            outbox.release(row.id, self.clock(), when=until, reason=reason)
            return Outcome.PAUSED, reason
        try:
            message = self._message(channel, row)
        except Exception as exc:  # a corrupt row must not stop the others
            reason = f"cannot rebuild the message: {exc!r}"
            outbox.failed(row.id, self.clock(), reason=reason, answered=False)
            return Outcome.FAILED, reason
        # Edition mail goes to subscribers only; a message with no edition is transactional
        # (a sign-up's confirmation) and goes to whoever asked for it.
        if (kind.has_subscribers and row.edition_id is not None
                and not self.store.subscribers.is_active(channel.id, row.destination)):
            reason = "not sent: the recipient is no longer subscribed"
            outbox.cancelled(row.id, self.clock(), reason=reason)
            return Outcome.CANCELLED, reason
        await self.limiters.acquire(transport.rate_limits(message))
        if self._stopping or not outbox.claim(row.id, self.clock()):
            return None
        attempts = row.attempts + 1
        try:
            receipt = await transport.send(message)
        except AlreadyDelivered as exc:
            receipt = Receipt(transport=transport.name, detail=f"already delivered: {exc.reason}")
        except ServiceUnavailable as exc:
            until = self._pause(channel, exc)
            outbox.release(row.id, self.clock(), when=until, reason=exc.reason)
            return Outcome.PAUSED, exc.reason
        except UncertainDelivery as exc:
            if transport.at_least_once:
                return self._retry(row, attempts, exc, None)
            outbox.unknown(row.id, self.clock(), reason=f"no answer, may have been posted: {exc.reason}")
            log.error("channel %s: %s may or may not be out (%s); flagged for the admin", channel.id, row.key, exc)
            return Outcome.UNKNOWN, exc.reason
        except TransientError as exc:
            return self._retry(row, attempts, exc, exc.retry_after)
        except PermanentError as exc:
            outbox.failed(row.id, self.clock(), reason=exc.reason)
            log.error("channel %s: %s failed permanently: %s", channel.id, row.key, exc.reason)
            return Outcome.FAILED, exc.reason
        except DeliveryError as exc:  # an unexpected subclass: treat as transient, never lose it
            return self._retry(row, attempts, exc, None)
        except asyncio.CancelledError:
            raise  # the row stays "sending"; recover() decides at the next start
        except Exception as exc:
            # A bug in a transport is not the message's fault: retry later, keep the reason.
            log.exception("channel %s: unexpected error sending %s", channel.id, row.key)
            return self._retry(row, attempts, exc, None)
        self._paused.pop(channel.id, None)  # the circuit closes: the service answers again
        outbox.sent(row.id, self.clock(), remote_id=receipt.remote_id, receipt=receipt.detail)
        return Outcome.SENT, receipt

    def _retry(self, row: OutboxRow, attempts: int, exc: BaseException,
               retry_after: float | None) -> tuple[Outcome, str]:
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        now = self.clock()
        if attempts >= self.config.delivery.max_attempts:
            self.store.outbox.failed(row.id, now, reason=f"gave up after {attempts} attempts: {reason}")
            return Outcome.FAILED, reason
        delay = backoff(attempts, self._base, self._cap)
        if retry_after is not None:
            delay = max(delay, timedelta(seconds=float(retry_after)))
        self.store.outbox.retry_later(row.id, now, when=now + delay, reason=reason)
        log.warning("retrying %s in %s: %s", row.id, delay, reason)
        return Outcome.RETRYING, reason
