"""APScheduler wiring with the job store in our database: a restart keeps run times, and an
edition missed while the bot was down runs exactly once — not zero times, not several."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from bot.app import App
from bot.config import parse_config
from bot.scheduler import make_scheduler, sync_jobs, wanted_jobs


def config(tmp_path, db_url, every="1h"):
    return parse_config({
        "site": {"name": "x", "base_url": "https://x.example"},
        "storage": {"url": db_url},
        "sources": [{"id": "feed", "url": str(tmp_path / "none.xml"), "poll": {"every": "2h"}}],
        "channels": [{"id": "x", "type": "x", "mode": "article", "schedule": {"every": every},
                      "transport": {"type": "file", "dir": str(tmp_path / "out")}}],
    }, base_dir=str(tmp_path))


async def start(app, cfg):
    sched = make_scheduler(app)
    sched.start(paused=True)
    return sched, sync_jobs(sched, cfg)


async def test_missed_edition_runs_exactly_once_after_restart(tmp_path, db_url):
    cfg = config(tmp_path, db_url)
    app = App(cfg)
    sched, changes = await start(app, cfg)
    assert changes == {"poll:feed": "added", "edition:x": "added"}
    # the bot goes down; three hourly editions fall due while it is away
    sched.get_job("edition:x").modify(next_run_time=datetime.now(timezone.utc) - timedelta(hours=3, minutes=5))
    sched.shutdown(wait=False)

    app2 = App(cfg)
    runs: list[datetime] = []
    original = app2.publish

    def counting_publish(channel, now=None):
        runs.append(now)
        return original(channel, now)

    app2.publish = counting_publish  # type: ignore[method-assign]
    sched2, changes = await start(app2, cfg)
    assert changes["edition:x"] == "kept"  # not replaced: the overdue run time survives
    sched2.resume()
    for _ in range(200):
        if runs:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # room for any extra (wrong) catch-up runs
    assert len(runs) == 1
    nxt = sched2.get_job("edition:x").next_run_time
    assert nxt > datetime.now(timezone.utc)
    sched2.shutdown(wait=False)
    await app2.aclose()
    await app.aclose()


async def test_changed_schedule_replaces_and_removed_job_goes(tmp_path, db_url):
    cfg = config(tmp_path, db_url)
    app = App(cfg)
    sched, _ = await start(app, cfg)
    sched.shutdown(wait=False)
    cfg2 = config(tmp_path, db_url, every="30m")
    cfg2 = cfg2.model_copy(update={"sources": []})
    sched2, changes = await start(App(cfg2), cfg2)
    assert changes == {"poll:feed": "removed", "edition:x": "replaced"}
    assert "interval[0:30:00]" in str(sched2.get_job("edition:x").trigger)
    sched2.shutdown(wait=False)


def test_cron_runs_in_the_site_timezone(tmp_path):
    cfg = parse_config({
        "site": {"name": "x", "base_url": "https://x.example", "timezone": "Africa/Bamako"},
        "channels": [{"id": "n", "type": "x", "schedule": {"cron": "0 7 * * *"}, "transport": {"type": "file"}}],
    })
    trigger, _ = wanted_jobs(cfg)["edition:n"]
    nxt = trigger.get_next_fire_time(None, datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc))
    assert nxt.hour == 7 and str(nxt.tzinfo) == "Africa/Bamako"


async def test_changed_timezone_replaces_the_stored_job(tmp_path, db_url):
    cfg = config(tmp_path, db_url)
    sched, _ = await start(App(cfg), cfg)
    sched.shutdown(wait=False)
    tokyo = cfg.model_copy(update={"site": cfg.site.model_copy(update={"timezone": "Asia/Tokyo"})})
    sched2, changes = await start(App(tokyo), tokyo)
    assert changes["edition:x"] == "replaced"
    assert str(sched2.get_job("edition:x").trigger.timezone) == "Asia/Tokyo"
    sched2.shutdown(wait=False)
