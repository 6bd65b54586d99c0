"""schedule_runs on SQLite and PostgreSQL: when each job last ran, the scheduler's only memory."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.store import Store

T0 = datetime(2026, 11, 28, 7, 0, tzinfo=timezone.utc)


def test_ran_records_and_moves_the_last_run(store: Store, db_url):
    assert store.schedule.last_runs() == {}
    store.schedule.ran("edition:news", T0)
    store.schedule.ran("poll:echo", T0 + timedelta(minutes=1))
    store.schedule.ran("edition:news", T0 + timedelta(days=1))
    reopened = Store(db_url, migrate=False)  # what the next start reads
    try:
        runs = reopened.schedule.last_runs()
    finally:
        reopened.close()
    assert runs == {"edition:news": T0 + timedelta(days=1), "poll:echo": T0 + timedelta(minutes=1)}
    assert all(v.utcoffset() == timedelta(0) for v in runs.values())
