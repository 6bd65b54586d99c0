"""The ``schedule_runs`` table: when each scheduled job (a poll, an edition) last ran.

The scheduler computes every next run from here, not from a stored copy of the trigger,
so an admin who edits a schedule or a timezone while the daemon is down never loses the
edition that fell due in between (:mod:`bot.scheduler`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from . import tables as t
from .db import Database


class ScheduleRuns:
    def __init__(self, db: Database):
        self.db = db

    def last_runs(self) -> dict[str, datetime]:
        """job id → when it last ran."""
        with self.db.connect() as conn:
            return {r.job_id: r.last_run_at for r in conn.execute(select(t.schedule_runs))}

    def ran(self, job_id: str, at: datetime) -> None:
        with self.db.begin() as conn:
            res = conn.execute(update(t.schedule_runs).where(t.schedule_runs.c.job_id == job_id)
                               .values(last_run_at=at))
            if res.rowcount == 0:
                conn.execute(t.schedule_runs.insert().values(job_id=job_id, last_run_at=at))
