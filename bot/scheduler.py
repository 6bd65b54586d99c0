"""APScheduler 3 wiring. Job bodies live in :mod:`bot.app`; this module only decides when.

Why the details matter:

* The job store is the project's own database (``apscheduler_jobs``, created by the first
  migration), so run times survive a restart.
* Jobs have explicit ids (``poll:<source>``, ``edition:<channel>``). At start-up a stored
  job whose trigger still matches the config is *kept*, not replaced: replacing would
  recompute its next run time from now and silently skip an edition that fell due while
  the bot was down. A job whose trigger changed is replaced (``replace_existing``).
* ``coalesce=True`` with an unlimited misfire grace time: an edition missed while the bot
  was down runs exactly once on restart, however long the outage — not zero times, not
  once per missed slot. The per-channel cursor means that one run carries everything.
* Jobs are stored by reference (``bot.scheduler:run_job``) with plain-string arguments,
  so the pickled state holds no live objects.
* Delivery is not a stored job: the dispatcher runs every ``DISPATCH_EVERY`` seconds in
  memory, and right after an edition is queued.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .config import Config, Schedule

log = logging.getLogger(__name__)

DISPATCH_EVERY = 30  # seconds
_running: dict[str, Any] = {}  # "app" → the App of this process: stored jobs hold no live objects


def trigger_for(schedule: Schedule, timezone: Any) -> CronTrigger | IntervalTrigger:
    if schedule.cron:
        return CronTrigger.from_crontab(schedule.cron, timezone=timezone)
    return IntervalTrigger(seconds=int(schedule.interval.total_seconds()), timezone=timezone)


def same_trigger(a: Any, b: Any) -> bool:
    """str() of a trigger leaves out its timezone: a changed site timezone must count as a change."""
    return type(a) is type(b) and str(a) == str(b) and str(a.timezone) == str(b.timezone)


def wanted_jobs(config: Config) -> dict[str, tuple[Any, tuple[str, ...]]]:
    """job id → (trigger, args) for everything the config schedules."""
    tz = config.site.tz
    jobs: dict[str, tuple[Any, tuple[str, ...]]] = {}
    for s in config.sources:
        jobs[f"poll:{s.id}"] = (trigger_for(s.poll, tz), ("poll", s.id))
    for c in config.channels:
        if c.enabled:
            jobs[f"edition:{c.id}"] = (trigger_for(c.schedule, tz), ("edition", c.id))
    return jobs


def make_scheduler(app: Any) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=app.store.engine), "memory": MemoryJobStore()},
        job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
        timezone=app.config.site.tz,
    )
    _running["app"] = app
    return scheduler


def sync_jobs(scheduler: AsyncIOScheduler, config: Config) -> dict[str, str]:
    """Make the stored jobs match the config. Call on a started-but-paused scheduler.

    Returns job id → what happened ("kept", "added", "replaced", "removed").
    """
    wanted = wanted_jobs(config)
    done: dict[str, str] = {}
    for job in scheduler.get_jobs(jobstore="default"):
        if job.id not in wanted:
            job.remove()
            done[job.id] = "removed"
    for job_id, (trigger, args) in wanted.items():
        existing = scheduler.get_job(job_id, jobstore="default")
        if existing is not None and same_trigger(existing.trigger, trigger) and existing.args == args:
            done[job_id] = "kept"
            continue
        scheduler.add_job("bot.scheduler:run_job", trigger=trigger, args=args, id=job_id,
                          name=job_id, replace_existing=True, jobstore="default")
        done[job_id] = "replaced" if existing is not None else "added"
    return done


async def run_job(what: str, target: str) -> None:
    """The one stored job function: poll a source or build a channel's edition, then deliver."""
    app = _running.get("app")
    if app is None:  # pragma: no cover - a job fired in a process that never registered the app
        log.error("job %s:%s fired with no running app", what, target)
        return
    now = app.clock()
    if what == "poll":
        source = next((s for s in app.config.sources if s.id == target), None)
        if source is not None:
            await app.poll(source, now)
        return
    if what == "edition":
        channel = next((c for c in app.config.channels if c.id == target), None)
        if channel is None:
            return
        try:
            result = app.publish(channel, now)
            log.info("channel %s: edition %s with %d article(s), %d message(s) queued %s", channel.id,
                     result.edition_id, result.articles, result.messages, result.note)
        except Exception as exc:
            log.error("channel %s: edition not built: %s", channel.id, exc)
            return
        await app.dispatch([channel.id])


def next_runs(scheduler: AsyncIOScheduler) -> list[tuple[str, datetime | None, str]]:
    """(job id, next run time, trigger) for ``schedules``."""
    return sorted(((j.id, j.next_run_time, str(j.trigger)) for j in scheduler.get_jobs(jobstore="default")),
                  key=lambda x: x[0])
