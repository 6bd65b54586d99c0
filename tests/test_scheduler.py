"""When jobs run: every next run is computed from the job's last run (``schedule_runs``),
never from a stored copy of its trigger. So an edition that fell due while the bot was down
runs exactly once at the next start — not zero times, not several — even if the admin
edited the schedule's text in between. Time is a parameter here: no sleeps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.config import parse_config
from bot.scheduler import describe, next_after, plan, trigger_for
from bot.settings import Schedule

UTC = timezone.utc
# Africa/Bamako is UTC+0 all year: 07:00 in Bamako is 07:00 UTC.
EDITION = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)  # Saturday's 07:00 edition


def config(cron="0 7 * * *", tz="Africa/Bamako", every=None, poll="15m", sources=True, **channel):
    schedule = {"every": every} if every else {"cron": cron}
    return parse_config({
        "site": {"name": "x", "base_url": "https://x.example", "timezone": tz},
        "sources": [{"id": "echo", "url": "feed.xml", "poll": {"every": poll}}] if sources else [],
        # one stream: the readers' other frequencies are planned in their own test below
        "channels": [{"id": "news", "type": "email", "schedule": schedule, "transport": {"type": "file"},
                      "frequencies": ["daily"], **channel}],
    })


def job(jobs, job_id):
    (found,) = [j for j in jobs if j.id == job_id]
    return found


# -- (a) a job that never ran --------------------------------------------------------------

def test_a_cron_job_that_never_ran_is_planned_from_now():
    before = job(plan(config(), {}, EDITION - timedelta(hours=1)), "edition:news")
    assert (before.next_run, before.missed) == (EDITION, False)  # today's edition, still ahead
    after = job(plan(config(), {}, EDITION + timedelta(hours=2)), "edition:news")
    assert (after.next_run, after.missed) == (EDITION + timedelta(days=1), False)  # not "missed": it never ran


def test_an_interval_job_that_never_ran_is_planned_from_now():
    now = EDITION - timedelta(days=400)  # far from the wall clock, so the two cannot agree by chance
    poll = job(plan(config(), {}, now), "poll:echo")
    assert (poll.next_run, poll.missed) == (now + timedelta(minutes=15), False)


# -- (b) a missed edition runs once, now ---------------------------------------------------

def test_an_edition_missed_while_down_runs_once_now():
    last = {"edition:news": EDITION - timedelta(days=3)}  # three editions fell due since: 26th, 27th, 28th
    now = EDITION + timedelta(hours=2)
    planned = job(plan(config(), last, now), "edition:news")
    assert planned.missed and planned.next_run == now
    assert [j.id for j in plan(config(), last, now)].count("edition:news") == 1
    # it runs at `now`: the next start plans tomorrow's edition, not the other missed ones
    after = job(plan(config(), {"edition:news": now}, now + timedelta(minutes=1)), "edition:news")
    assert (after.next_run, after.missed) == (EDITION + timedelta(days=1), False)


def test_an_edition_that_ran_at_its_time_is_not_missed():
    for ran in (EDITION, EDITION + timedelta(seconds=5)):  # at the fire time, or a little late
        planned = job(plan(config(), {"edition:news": ran}, EDITION + timedelta(hours=2)), "edition:news")
        assert (planned.next_run, planned.missed) == (EDITION + timedelta(days=1), False)


def test_a_job_due_exactly_now_is_run_now():
    planned = job(plan(config(), {"edition:news": EDITION - timedelta(days=1)}, EDITION), "edition:news")
    assert planned.missed and planned.next_run == EDITION


# -- (c) the schedule's text edited while the bot was down ---------------------------------

@pytest.mark.parametrize("edit", [{"tz": "Africa/Abidjan"}, {"cron": "0 7 * * 0-6"}],
                         ids=["same zone, other name", "same schedule, other text"])
def test_editing_the_schedule_text_while_down_keeps_the_missed_edition(store, edit):
    """The daemon ran Friday's edition and stopped; the admin rewrote the schedule in an
    equivalent form; it starts after Saturday's edition time. Saturday's edition still goes
    out now. (Keeping APScheduler's stored job while its trigger text was unchanged, and
    replacing it otherwise, planned the replacement from now: Sunday, and Saturday's
    edition was silently lost.)"""
    store.schedule.ran("edition:news", EDITION - timedelta(days=1))  # Friday 07:00, as the daemon records it
    now = EDITION + timedelta(hours=2)  # Saturday 09:00: the bot starts again
    edited = config(**edit)
    planned = job(plan(edited, store.schedule.last_runs(), now), "edition:news")
    assert planned.missed and planned.next_run == now
    # the same start with the text untouched plans the same: the text plays no part
    untouched = job(plan(config(), store.schedule.last_runs(), now), "edition:news")
    assert (untouched.missed, untouched.next_run) == (planned.missed, planned.next_run)


def test_a_real_timezone_change_moves_the_next_edition():
    last = {"edition:news": EDITION - timedelta(days=1)}  # Friday 07:00 in Bamako (07:00 UTC)
    now = EDITION - timedelta(hours=11)  # Friday 20:00 UTC = Saturday 05:00 in Tokyo
    planned = job(plan(config(tz="Asia/Tokyo"), last, now), "edition:news")
    assert not planned.missed
    assert planned.next_run == datetime(2026, 11, 27, 22, 0, tzinfo=UTC)  # Saturday 07:00 in Tokyo
    assert str(planned.next_run.tzinfo) == "Asia/Tokyo"


def test_removed_and_disabled_jobs_are_not_planned_and_a_changed_interval_applies():
    last = {"poll:echo": EDITION, "edition:news": EDITION}
    jobs = plan(config(every="30m", sources=False), last, EDITION + timedelta(minutes=10))
    assert [j.id for j in jobs] == ["edition:news"]
    assert jobs[0].next_run == EDITION + timedelta(minutes=30) and not jobs[0].missed
    assert plan(config(sources=False, enabled=False), last, EDITION) == []


# -- (d) interval schedules ----------------------------------------------------------------

def test_interval_jobs_follow_their_last_run():
    last = {"poll:echo": EDITION}
    soon = job(plan(config(), last, EDITION + timedelta(minutes=10)), "poll:echo")
    assert (soon.next_run, soon.missed) == (EDITION + timedelta(minutes=15), False)
    late = job(plan(config(), last, EDITION + timedelta(minutes=50)), "poll:echo")  # three polls missed
    assert late.missed and late.next_run == EDITION + timedelta(minutes=50)
    ran = EDITION + timedelta(minutes=50, seconds=3)
    again = job(plan(config(), {"poll:echo": ran}, ran + timedelta(seconds=1)), "poll:echo")
    assert (again.next_run, again.missed) == (ran + timedelta(minutes=15), False)


def test_interval_editions_and_sub_second_polls():
    last = {"edition:news": EDITION, "poll:echo": EDITION}
    jobs = plan(config(every="2h", poll="0.5s"), last, EDITION + timedelta(milliseconds=100))
    assert job(jobs, "edition:news").next_run == EDITION + timedelta(hours=2)
    assert job(jobs, "poll:echo").next_run == EDITION + timedelta(milliseconds=500)


# -- triggers --------------------------------------------------------------------------------

@pytest.mark.parametrize("tz, utc_hour", [("Africa/Bamako", 7), ("Africa/Lagos", 6), ("Asia/Tokyo", 22)])
def test_cron_runs_in_the_site_timezone(tz, utc_hour):
    from zoneinfo import ZoneInfo

    trigger = trigger_for(Schedule(cron="0 7 * * *"), ZoneInfo(tz))
    nxt = next_after(trigger, datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    assert nxt.hour == 7 and str(nxt.tzinfo) == tz
    assert nxt.astimezone(UTC).hour == utc_hour


def test_next_after_is_strictly_after():
    from zoneinfo import ZoneInfo

    trigger = trigger_for(Schedule(cron="0 7 * * *"), ZoneInfo("Africa/Bamako"))
    assert next_after(trigger, EDITION) == EDITION + timedelta(days=1)
    assert next_after(trigger, EDITION - timedelta(microseconds=1)) == EDITION


# -- (e) describe --------------------------------------------------------------------------

def test_describe_marks_a_missed_job():
    last = {"edition:news": EDITION - timedelta(days=3), "poll:echo": EDITION + timedelta(hours=1, minutes=55)}
    rows = describe(config(), last, EDITION + timedelta(hours=2))
    assert rows == [
        ("edition:news", "2026-11-26 07:00 GMT (missed: runs at the next start)", "cron 0 7 * * * (email, digest)"),
        ("poll:echo", "2026-11-28 09:10 GMT", "every 15m"),
    ]


def test_describe_shows_times_in_the_site_timezone():
    rows = describe(config(tz="Asia/Tokyo", sources=False), {"edition:news": EDITION}, EDITION)
    assert rows == [("edition:news", "2026-11-29 07:00 JST", "cron 0 7 * * * (email, digest)")]


def test_an_email_channel_plans_a_job_per_frequency_its_readers_may_choose():
    jobs = {j.id: j for j in plan(config(frequencies=["instant", "daily", "weekly"], sources=False), {}, EDITION)}
    assert sorted(jobs) == ["edition:news", "edition:news~instant", "edition:news~weekly"]
    assert jobs["edition:news~instant"].description == "every 10m (email, article)"
    assert jobs["edition:news~weekly"].description == "cron 0 7 * * * (email, digest)"
