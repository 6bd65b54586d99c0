"""``tamtam run``: the scheduler and the dispatcher in one process, until SIGTERM or Ctrl-C;
and ``tamtam worker``: one of any number of processes delivering from the same outbox.

Workers (on one machine or several, around one PostgreSQL database) each deliver: they
claim rows in batches with SKIP LOCKED under a lease, and each settles what a dead worker's
expired lease left ``sending``. Exactly one of them schedules polls and editions: the one
holding the leader lock (:class:`bot.store.db.LeaderLock`); the others try to take it every
``delivery.takeover``, so when the leader dies another takes over within that time. An
edition is never built twice: the per-channel cursor makes it impossible, and a new leader
plans from each job's last run, so a run the old one missed happens once.

Stopping is where promises break, so it is done by hand rather than left to APScheduler
(whose asyncio executor cancels running jobs at shutdown, which cut the message in flight
and left it ``sending``):

1. the first SIGTERM/SIGINT pauses the scheduler (no new job starts) and tells the
   dispatcher to stop after the message it is sending;
2. polls in progress are cancelled (they hold nothing that can be half-done: the articles
   of a feed are stored in one transaction);
3. editions and deliveries in progress are awaited, at most ``delivery.shutdown_grace``;
4. a second signal, or the grace running out, cancels what is left: a message cut off that
   way is settled at the next start (an email is resent with the same Message-ID, a post is
   flagged ``unknown``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from .app import App
from .channels.base import KindJob
from .errors import TamtamError
from .scheduler import plan, scheduler_kwargs, streams

log = logging.getLogger("tamtam")

# How often the scheduling process forgets settled messages (delivery.retention), and how
# soon after it starts (not at once: start-up is busy with missed editions and recovery).
PRUNE_EVERY = timedelta(hours=1)
PRUNE_FIRST = timedelta(minutes=2)
ALREADY_RUNNING = ("another Tamtam (a `run` daemon, a `once` or workers) is working on this database; "
                   "wait for it, or stop the daemon first")
WORKERS_BESIDE_RUN = ("a `run` daemon or a `once` is working on this database; workers deliver beside each "
                      "other, not beside those: stop it first")


class Daemon:
    def __init__(self, app: App, *, worker: bool = False):
        self.app = app
        self.worker = worker  # one of several: schedules only while it leads
        self.leader = app.store.db.leader_lock() if worker else None
        self.leading = not worker
        self.jobs: dict[asyncio.Task[Any], str] = {}  # running job → what it is ("poll", "edition", "dispatch")
        self.stop = asyncio.Event()
        self.force = asyncio.Event()
        self.clean = True

    async def _job(self, what: str, target: str, body: Callable[[datetime], Awaitable[Any]]) -> None:
        """Run one job body, tracked so a shutdown can wait for it; record when it ran."""
        task = asyncio.current_task()
        assert task is not None
        self.jobs[task] = what
        now = self.app.clock()
        try:
            await body(now)
            if what in ("poll", "edition"):  # the jobs planned from their last run
                self.app.store.schedule.ran(f"{what}:{target}", now)
        except asyncio.CancelledError:
            # Only the shutdown cancels jobs; say so once instead of a traceback per job.
            log.info("%s %s stopped by the shutdown", what, target)
        except Exception:  # a job never takes the daemon down
            log.exception("%s %s failed", what, target)
        finally:
            self.jobs.pop(task, None)

    async def _poll(self, source_id: str) -> None:
        source = next((s for s in self.app.config.sources if s.id == source_id), None)
        if source is not None:
            await self._job("poll", source_id, lambda now: self.app.poll(source, now))

    async def _edition(self, stream_id: str) -> None:
        found = streams(self.app.config).get(stream_id)
        if found is None:
            return
        channel, stream = found

        async def body(now: datetime) -> None:
            if self.leader is not None and not await asyncio.to_thread(self.leader.held):
                log.warning("edition %s skipped: this worker no longer holds the scheduler lock", stream_id)
                return
            try:
                result = self.app.publish(channel, now, stream)
                log.info("channel %s: edition %s with %d article(s), %d message(s) queued %s", channel.id,
                         result.edition_id, result.articles, result.messages, result.note)
            except TamtamError as exc:
                log.error("channel %s: edition not built: %s", channel.id, exc)
                return
            await self.app.dispatch([channel.id])

        await self._job("edition", stream_id, body)

    async def _dispatch(self) -> None:
        async def body(now: datetime) -> None:
            if self.worker:  # what a dead worker left sending, once its lease ran out
                await asyncio.to_thread(self.app.recover, expired_only=True)
            await self.app.dispatch()

        await self._job("dispatch", "all", body)

    async def _prune(self) -> None:
        async def body(now: datetime) -> None:
            await asyncio.to_thread(self.app.prune)

        await self._job("retention", "outbox", body)

    async def _kind_job(self, channel_id: str, job: KindJob) -> None:
        """A channel kind's own periodic job (a bounce mailbox, say); its line goes to the log."""
        async def body(now: datetime) -> None:
            said = await job.run(self.app, now)
            if said:
                log.info("%s %s: %s", job.name, channel_id, said)

        await self._job(job.name, channel_id, body)

    def _on_signal(self) -> None:
        if self.stop.is_set():
            log.warning("second signal: stopping at once")
            self.force.set()
        self.stop.set()

    async def serve(self, *, ready: asyncio.Event | None = None) -> None:
        app = self.app
        app.recover(expired_only=self.worker)
        loop = asyncio.get_running_loop()
        handled = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self._on_signal)
                handled.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests drive `stop`)
                pass
        try:
            await self._serve(ready)
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)

    def _plan(self, scheduler: AsyncIOScheduler) -> None:
        """Schedule every poll, edition and kind job from their last runs (the leader's work)."""
        app = self.app
        now = app.clock()
        for job in plan(app.config, app.store.schedule.last_runs(), now):
            if job.next_run is None:
                continue
            func = self._poll if job.what == "poll" else self._edition
            scheduler.add_job(func, job.trigger, args=(job.target,), id=job.id, name=job.id,
                              next_run_time=job.next_run)
            log.info("job %s: %s%s", job.id, job.description, " — missed while stopped, runs now" if job.missed else "")
        if app.config.delivery.retention is not None:  # settled messages forgotten once their time is up
            scheduler.add_job(self._prune, "interval", seconds=PRUNE_EVERY.total_seconds(), id="retention",
                              name="retention", next_run_time=now + PRUNE_FIRST)
        for channel in app.config.channels:
            if not channel.enabled:
                continue
            for job in app.channels.kind(channel).jobs(channel):
                scheduler.add_job(self._kind_job, "interval", seconds=job.every.total_seconds(),
                                  args=(channel.id, job), id=f"{job.name}:{channel.id}", next_run_time=now)

    async def _lead(self, scheduler: AsyncIOScheduler) -> None:
        """A worker's try at the scheduler: take the leader lock if it is free, give the
        scheduled jobs up if the lock was lost."""
        assert self.leader is not None
        if self.leading:
            if not await asyncio.to_thread(self.leader.held):
                self.leading = False
                for job in scheduler.get_jobs():
                    if job.id not in ("dispatch", "lead"):
                        job.remove()
                log.error("lost the scheduler lock (the database connection went away): no longer scheduling")
            return
        if await asyncio.to_thread(self.leader.try_take):
            self.leading = True
            self._plan(scheduler)
            log.info("this worker now schedules polls and editions")

    async def _serve(self, ready: asyncio.Event | None) -> None:
        app = self.app
        # first: a port in use or a missing secret stops `run` before any job (workers serve no pages)
        web = None if self.worker else await self._start_web()
        scheduler = AsyncIOScheduler(**scheduler_kwargs(app.config))
        scheduler.start(paused=True)
        now = app.clock()
        if self.worker:
            scheduler.add_job(self._lead, "interval", args=(scheduler,), id="lead", next_run_time=now,
                              seconds=app.config.delivery.takeover.total_seconds())
        else:
            self._plan(scheduler)
        scheduler.add_job(self._dispatch, "interval", seconds=app.config.delivery.dispatch_every.total_seconds(),
                          id="dispatch", next_run_time=now)
        scheduler.resume()
        log.info("tamtam %s: %d source(s), %d channel(s); stop with Ctrl-C or SIGTERM",
                 "worker running" if self.worker else "running", len(app.config.sources), len(app.config.channels))
        if ready is not None:
            ready.set()
        await self.stop.wait()
        if web is not None:  # no new sign-up or unsubscribe once stopping; those in progress finish
            await web.stop()
        await self._shutdown(scheduler)

    async def _start_web(self) -> Any:
        """The readers' pages (``[web]``), served in this event loop; None when not configured."""
        config = self.app.config
        if config.web is None or not config.web.enabled:
            return None
        # Starlette and uvicorn load only when this daemon serves the readers' pages.
        from .web import WebApp
        from .web.server import WebServer

        pages = WebApp(config, store=self.app.store, channels=self.app.channels, clock=self.app.clock,
                       on_queued=lambda channel_id: asyncio.ensure_future(self._dispatch()))
        server = WebServer(pages, config)
        await server.start()
        return server

    async def _shutdown(self, scheduler: AsyncIOScheduler) -> None:
        app = self.app
        log.info("stopping: finishing the message in flight")
        scheduler.pause()
        app.dispatcher.stop()
        for task, what in list(self.jobs.items()):
            if what == "poll":
                task.cancel()
        await asyncio.sleep(0)  # a job submitted just before the pause starts and registers itself
        grace = app.config.delivery.shutdown_grace.total_seconds()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        forced = asyncio.ensure_future(self.force.wait())
        pending = {t for t in self.jobs if not t.done()}
        while pending and not self.force.is_set() and (remaining := deadline - loop.time()) > 0:
            await asyncio.wait(pending | {forced}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            pending = {t for t in self.jobs if not t.done()}
        forced.cancel()
        if pending:
            self.clean = False
            why = "a second signal" if self.force.is_set() else f"the {grace:g} s grace ran out"
            log.warning("%s: stopping %d job(s) still running; a message cut off is settled at the next start "
                        "(an email resent with the same Message-ID, a post flagged unknown)", why, len(pending))
            for t in pending:
                t.cancel()
            await asyncio.wait(pending, timeout=5)
        scheduler.shutdown(wait=False)
        if self.leader is not None:
            self.leader.release()
        await app.aclose()
        app.store.close()
        log.info("stopped")


async def run(app: App, *, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None,
              worker: bool = False) -> bool:
    """Serve until a signal (or ``stop``) under the runner lock (shared by workers). True
    when nothing was cut off."""
    daemon = Daemon(app, worker=worker)
    if stop is not None:
        async def relay() -> None:
            await stop.wait()
            daemon._on_signal()
        relay_task = asyncio.ensure_future(relay())
    with app.store.runner_lock(shared=worker) as mine:
        if not mine:
            raise TamtamError(WORKERS_BESIDE_RUN if worker else ALREADY_RUNNING)
        try:
            await daemon.serve(ready=ready)
        finally:
            if stop is not None:
                relay_task.cancel()
    return daemon.clean
