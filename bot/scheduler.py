"""When jobs run: APScheduler 3 triggers, with every next run computed from the last run.

Why it is done this way:

* Each job (``poll:<source>``, ``edition:<channel>``) records when it last ran in our
  database (``schedule_runs``). At start the next run is the first time the trigger gives
  *after that last run*; if that time is already past, the job runs once now. So an edition
  that fell due while the daemon was down runs exactly once on restart, however long the
  outage (several missed runs coalesce: the per-channel cursor means one run carries
  everything), and editing the schedule's text or the timezone while the daemon is down
  never loses it — the old way of keeping APScheduler's stored job and replacing it when its
  trigger text changed recomputed the next run from *now* and silently skipped it.
* The triggers live in memory and hold live objects; only the last-run times persist.
* Delivery is not a scheduled job of its own kind: the dispatcher runs every
  ``delivery.dispatch_every`` (30 s by default), and right after an edition is queued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .channels import registry
from .channels.base import Stream
from .config import Config
from .settings import ChannelSettings, Schedule

_TICK = timedelta(microseconds=1)


def trigger_for(schedule: Schedule, timezone: tzinfo) -> CronTrigger | IntervalTrigger:
    if schedule.cron:
        return CronTrigger.from_crontab(schedule.cron, timezone=timezone)
    assert schedule.every is not None
    return IntervalTrigger(seconds=schedule.every.total_seconds(), timezone=timezone)


@dataclass(frozen=True)
class PlannedJob:
    id: str  # "poll:<source>" or "edition:<channel>"
    what: str  # "poll" or "edition"
    target: str  # the source or channel id
    trigger: CronTrigger | IntervalTrigger
    description: str
    next_run: datetime | None  # None: the trigger never fires again
    missed: bool  # due before now: runs once at start


def next_after(trigger: CronTrigger | IntervalTrigger, last: datetime) -> datetime | None:
    """The first time ``trigger`` fires strictly after ``last``."""
    return trigger.get_next_fire_time(last, last + _TICK)


def streams(config: Config) -> dict[str, tuple[ChannelSettings, Stream]]:
    """Every enabled channel's streams of editions, by stream id (the channel's id for its own)."""
    return {stream.id: (c, stream) for c in config.channels if c.enabled
            for stream in registry.KINDS[c.type].streams(c, config.site)}


def plan(config: Config, last_runs: dict[str, datetime], now: datetime) -> list[PlannedJob]:
    """Every job the config schedules, with its next run: the first fire time after its last
    run (a past one means it was missed and runs now), or for a job that never ran, the next
    fire time from now."""
    tz = config.site.tz
    wanted: list[tuple[str, str, str, Schedule, str]] = [
        (f"poll:{s.id}", "poll", s.id, s.poll, s.poll.describe()) for s in config.sources]
    wanted += [(f"edition:{sid}", "edition", sid, stream.schedule,
                f"{stream.schedule.describe()} ({c.type}, {stream.mode})")
               for sid, (c, stream) in streams(config).items()]
    jobs = []
    for job_id, what, target, schedule, description in wanted:
        trigger = trigger_for(schedule, tz)
        last = last_runs.get(job_id)
        if last is not None:
            nxt = next_after(trigger, last)
        elif schedule.every is not None:
            nxt = now + schedule.every  # an interval counts from the first start
        else:
            nxt = trigger.get_next_fire_time(None, now)
        missed = nxt is not None and nxt <= now
        jobs.append(PlannedJob(job_id, what, target, trigger, description, now if missed else nxt, missed))
    return jobs


def describe(config: Config, last_runs: dict[str, datetime], now: datetime) -> list[tuple[str, str, str]]:
    """(job, next run in the site's timezone, schedule) for the ``schedules`` command."""
    tz = config.site.tz
    rows = []
    for job in sorted(plan(config, last_runs, now), key=lambda j: j.id):
        if job.next_run is None:
            when = "never"
        elif job.missed:
            due = next_after(job.trigger, last_runs[job.id])
            when = f"{due.astimezone(tz).strftime('%Y-%m-%d %H:%M %Z')} (missed: runs at the next start)"  # type: ignore[union-attr]
        else:
            when = job.next_run.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
        rows.append((job.id, when, job.description))
    return rows


def scheduler_kwargs(config: Config) -> dict[str, Any]:
    """APScheduler settings: a job never runs twice at once, and a late run runs once."""
    return dict(job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
                timezone=config.site.tz)
