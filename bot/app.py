"""The running application: config, store, channels and dispatcher wired together, and
the job bodies the CLI and the scheduler call. Every job takes ``now`` (time is a
parameter) and never raises for one bad source or channel: it logs, reports and goes on.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Callable

from .channels.base import Stream
from .channels.registry import Channels
from .config import Config, Source
from .dispatch import Dispatcher, DispatchReport, recover
from .errors import SourceError, TamtamError
from .ingest import fetch_source
from .publish import PublishResult, publish
from .report import PollResult, RunReport
from .retention import Pruned, prune
from .settings import ChannelSettings
from .store import Store, UpsertResult

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class App:
    def __init__(self, config: Config, *, store: Store | None = None, clock: Callable[[], datetime] = utcnow,
                 dispatcher: Dispatcher | None = None):
        self.config = config
        self.clock = clock
        self.store = store or Store(config.database_url)
        self.channels = Channels(config)
        self.dispatcher = dispatcher or Dispatcher(config, self.store, self.channels, clock=clock)

    async def aclose(self) -> None:
        await self.dispatcher.aclose()

    # -- jobs -------------------------------------------------------------------------
    async def poll(self, source: Source, now: datetime | None = None) -> PollResult:
        """Fetch one source and store what is new. A failure is logged and remembered, never raised."""
        now = now or self.clock()
        articles = self.store.articles
        state = articles.source_state(source.id)
        try:
            result = await fetch_source(source, etag=state.etag, last_modified=state.last_modified, now=now,
                                        base_dir=self.config.resolve("."))
        except SourceError as exc:
            articles.record_poll(source.id, now=now, error=str(exc))
            log.error("%s (retried at its next poll)", exc)
            return PollResult(source.id, ok=False, error=str(exc))
        except Exception as exc:  # a bug must not stop the other sources
            log.exception("source %s: unexpected error", source.id)
            articles.record_poll(source.id, now=now, error=repr(exc))
            return PollResult(source.id, ok=False, error=repr(exc))
        counts = UpsertResult()
        if not result.not_modified:
            counts = articles.upsert(result.articles, now=now)
        articles.record_poll(source.id, now=now, etag=result.etag, last_modified=result.last_modified)
        log.info("source %s: %d new, %d updated%s", source.id, counts.new, counts.updated,
                 " (not modified)" if result.not_modified else "")
        return PollResult(source.id, True, counts.new, counts.updated, result.not_modified, rejected=counts.rejected)

    async def poll_all(self, now: datetime | None = None) -> list[PollResult]:
        now = now or self.clock()
        return list(await asyncio.gather(*(self.poll(s, now) for s in self.config.sources)))

    def publish(self, channel: ChannelSettings, now: datetime | None = None,
                stream: Stream | None = None) -> PublishResult:
        """Build and queue the channel's next edition (of one of its streams: its own by
        default). Raises TemplateError (nothing recorded)."""
        return publish(self.channels, self.store, channel, now=now or self.clock(), stream=stream)

    def publish_all(self, now: datetime | None = None, report: RunReport | None = None) -> RunReport:
        report = report or RunReport()
        now = now or self.clock()
        for channel in self.config.channels:
            if not channel.enabled:
                continue
            try:
                report.editions.append(self.publish(channel, now))
            except TamtamError as exc:
                log.error("channel %s: edition not built: %s", channel.id, exc)
                report.edition_errors.append((channel.id, str(exc)))
            except Exception as exc:  # one broken channel must not stop the others; nothing was recorded
                log.exception("channel %s: edition not built", channel.id)
                report.edition_errors.append((channel.id, repr(exc)))
        return report

    async def dispatch(self, channel_ids: list[str] | None = None) -> DispatchReport:
        return await self.dispatcher.run_once(channel_ids)

    def recover(self, *, expired_only: bool = False) -> dict[str, int]:
        """Settle the messages a crash left ``sending`` (a worker: only those of a dead worker)."""
        return recover(self.store, self.config, self.channels, now=self.clock(), expired_only=expired_only)

    def prune(self, *, dry_run: bool = False) -> Pruned:
        """Forget the settled messages older than ``delivery.retention`` (see :mod:`bot.retention`)."""
        return prune(self.store, self.config.delivery.retention, now=self.clock(), dry_run=dry_run)

    async def once(self) -> RunReport:
        """Poll every source, build every channel's edition now, deliver. The ``once`` command."""
        report = RunReport()
        report.recovered = self.recover()
        now = self.clock()
        report.polls = await self.poll_all(now)
        self.publish_all(now, report)
        report.dispatch = await self.dispatch()
        report.pruned = await asyncio.to_thread(self.prune)
        report.needs_admin = {status.value: n for status, n in self.store.outbox.needs_admin().items()}
        return report
