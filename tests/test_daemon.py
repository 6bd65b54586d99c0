"""``tamtam run``: the scheduler fires polls and editions, delivery follows, and stopping
keeps the outbox's promises. In-process tests drive :func:`bot.daemon.run` with a transport
that blocks mid-send until the test lets it go; the last test runs ``python main.py run``
for real and stops it with SIGTERM. Every wait is on observable state, with generous
deadlines: these tests must pass on a busy machine."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import create_engine, select
from sqlalchemy.exc import OperationalError

from bot import daemon as daemon_module
from bot.app import App
from bot.channels.base import Transport
from bot.channels.registry import Channels
from bot.config import parse_config
from bot.daemon import run
from bot.dispatch import Dispatcher
from bot.models import Article, Receipt
from bot.scheduler import plan
from bot.store import NewMessage, Status, Store
from bot.store import tables as t
from tests.conftest import ROOT
from tests.fakes.feed_server import feed_server  # noqa: F401 - the fixture

DEADLINE = 60  # seconds; only ever reached when something is wrong


class Gated(Transport):
    """A transport whose sends wait for the test: ``entered`` is set when a message is in
    flight, and it completes only once ``release`` is set (unless ``gate`` is False)."""

    name = "gated"

    def __init__(self, gate: bool = True):
        super().__init__(None, None, None)  # type: ignore[arg-type]
        self.gate = gate
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.sent: list[str] = []

    async def send(self, message):
        self.entered.set()
        if self.gate:
            await self.release.wait()
        self.sent.append(message.key)
        return Receipt(self.name, message.key)


def make_config(tmp_path, *, sources=(), grace="60s", channel_schedule=None, channel=None):
    return parse_config({
        "site": {"name": "L’Écho du Sahel", "base_url": "https://echo.example"},
        "storage": {"url": f"sqlite:///{tmp_path / 'tamtam.db'}"},
        "delivery": {"shutdown_grace": grace},
        "sources": list(sources),
        "channels": [channel or {"id": "ch", "type": "telegram", "mode": "article", "lookback": "3650d",
                                 "schedule": channel_schedule or {"every": "1d"},
                                 "transport": {"type": "telegram", "chat_id": "@echo"}}],
    }, base_dir=str(tmp_path))


def make_app(cfg, transport: Transport) -> App:
    store = Store(cfg.database_url)
    dispatcher = Dispatcher(cfg, store, Channels(cfg), transport_factory=lambda ch: transport)
    return App(cfg, store=store, dispatcher=dispatcher)


def queue(store: Store, n: int) -> None:
    now = datetime.now(timezone.utc)
    with store.begin() as conn:
        store.outbox.enqueue(conn, [NewMessage(f"ch:e1:p{i}", "ch", "telegram", "@echo", {"text": f"post {i}"})
                                    for i in range(n)], now=now)


def statuses(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return [r.status for r in conn.execute(select(t.outbox.c.status).order_by(t.outbox.c.id))]


def capture_daemon(monkeypatch) -> list[daemon_module.Daemon]:
    """The Daemon that ``run`` makes, so a test can signal it like the OS would."""
    made: list[daemon_module.Daemon] = []

    class Captured(daemon_module.Daemon):
        def __init__(self, app, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(app, **kwargs)
            made.append(self)

    monkeypatch.setattr(daemon_module, "Daemon", Captured)
    return made


def tell_when_dispatcher_stops(app: App) -> asyncio.Event:
    """Set once the shutdown has told the dispatcher to stop: from then on no message is claimed."""
    told = asyncio.Event()
    original = app.dispatcher.stop

    def stop() -> None:
        original()
        told.set()

    app.dispatcher.stop = stop  # type: ignore[method-assign]
    return told


async def until(predicate, what: str, deadline: float = DEADLINE) -> None:
    """Wait for a condition the test cannot await directly (state in the database, a server's log)."""
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def test_stop_lets_the_message_in_flight_finish_and_claims_no_more(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    cfg = make_config(tmp_path)
    tr = Gated()
    app = make_app(cfg, tr)
    queue(app.store, 3)
    told = tell_when_dispatcher_stops(app)
    ready, stop = asyncio.Event(), asyncio.Event()
    runner = asyncio.create_task(run(app, ready=ready, stop=stop))
    await asyncio.wait_for(ready.wait(), DEADLINE)
    await asyncio.wait_for(tr.entered.wait(), DEADLINE)  # the first post is in flight
    stop.set()
    await asyncio.wait_for(told.wait(), DEADLINE)
    assert statuses(app.store) == ["sending", "pending", "pending"]  # still waiting for the service
    tr.release.set()
    clean = await asyncio.wait_for(runner, DEADLINE)
    assert clean is True
    assert tr.sent == ["ch:e1:p0"]  # the message in flight went out, and no other was claimed
    assert statuses(app.store) == ["sent", "pending", "pending"]  # nothing left "sending"
    assert "stopping: finishing the message in flight" in caplog.text and "stopped" in caplog.messages
    assert "Traceback" not in caplog.text


async def test_a_second_signal_cuts_the_send_off_and_the_next_start_settles_it(tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    cfg = make_config(tmp_path, grace="1h")  # only the second signal can end this shutdown in time
    tr = Gated()
    app = make_app(cfg, tr)
    queue(app.store, 3)
    made = capture_daemon(monkeypatch)
    ready = asyncio.Event()
    runner = asyncio.create_task(run(app, ready=ready))
    await asyncio.wait_for(ready.wait(), DEADLINE)
    await asyncio.wait_for(tr.entered.wait(), DEADLINE)
    (daemon,) = made
    daemon._on_signal()  # SIGTERM: finish the message in flight…
    await asyncio.sleep(0)
    daemon._on_signal()  # …and again: stop at once
    clean = await asyncio.wait_for(runner, DEADLINE)
    assert clean is False
    assert tr.sent == [] and statuses(app.store) == ["sending", "pending", "pending"]
    assert "second signal: stopping at once" in caplog.text
    assert "dispatch all stopped by the shutdown" in caplog.messages
    assert "Traceback" not in caplog.text

    # The next start: the cut-off post may be public, so it is flagged, never posted twice;
    # the others go out.
    tr2 = Gated(gate=False)
    app2 = make_app(cfg, tr2)
    ready2, stop2 = asyncio.Event(), asyncio.Event()
    runner2 = asyncio.create_task(run(app2, ready=ready2, stop=stop2))
    await asyncio.wait_for(ready2.wait(), DEADLINE)
    await until(lambda: statuses(app2.store) == ["unknown", "sent", "sent"], "the two other posts to go out")
    stop2.set()
    assert await asyncio.wait_for(runner2, DEADLINE) is True
    assert tr2.sent == ["ch:e1:p1", "ch:e1:p2"]
    assert "outbox recovery: 1 message(s) unknown" in caplog.text


async def test_the_grace_running_out_cuts_the_send_off(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    cfg = make_config(tmp_path, grace="0.2s")
    tr = Gated()
    app = make_app(cfg, tr)
    queue(app.store, 1)
    ready, stop = asyncio.Event(), asyncio.Event()
    runner = asyncio.create_task(run(app, ready=ready, stop=stop))
    await asyncio.wait_for(ready.wait(), DEADLINE)
    await asyncio.wait_for(tr.entered.wait(), DEADLINE)
    stop.set()  # the service never answers
    assert await asyncio.wait_for(runner, DEADLINE) is False
    assert statuses(app.store) == ["sending"]  # settled at the next start
    assert "the 0.2 s grace ran out" in caplog.text


async def test_a_poll_stuck_in_a_slow_download_is_cancelled_quietly(tmp_path, caplog, feed_server):  # noqa: F811
    caplog.set_level(logging.INFO)
    feed_server.slow_seconds = 3600  # answers only when the server stops
    source = {"id": "slow", "url": feed_server.url("/slow"), "timeout": "1h", "poll": {"every": "1h"}}
    cfg = make_config(tmp_path, sources=[source])
    app = make_app(cfg, Gated(gate=False))
    app.store.schedule.ran("poll:slow", datetime.now(timezone.utc) - timedelta(days=1))  # overdue: polls at start
    ready, stop = asyncio.Event(), asyncio.Event()
    runner = asyncio.create_task(run(app, ready=ready, stop=stop))
    await asyncio.wait_for(ready.wait(), DEADLINE)
    await until(lambda: feed_server.requests_to("/slow"), "the poll to reach the server")
    stop.set()
    assert await asyncio.wait_for(runner, DEADLINE) is True  # a poll holds nothing half-done
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text
    assert "poll slow stopped by the shutdown" in caplog.messages  # one line says what happened
    assert app.store.articles.source_state("slow").last_polled_at is None  # not recorded as polled
    assert "poll:slow" in app.store.schedule.last_runs()  # the old run only: this one did not happen
    assert app.store.schedule.last_runs()["poll:slow"] < datetime.now(timezone.utc) - timedelta(hours=23)


async def test_an_edition_missed_while_down_runs_exactly_once_at_start(tmp_path):
    """Three hourly editions fell due while the bot was down: one runs at start, carrying
    every waiting article, and the next is planned an hour later."""
    cfg = make_config(tmp_path, channel={
        "id": "ch", "type": "x", "mode": "article", "schedule": {"every": "1h"}, "lookback": "3650d",
        "transport": {"type": "x", "account": "@echo_sahel"}})
    tr = Gated(gate=False)
    app = make_app(cfg, tr)
    started = datetime.now(timezone.utc)
    app.store.articles.upsert([Article(source_id="s", guid=f"g{i}", url=f"https://echo.example/{i}",
                                       title=f"Titre {i}", published_at=started - timedelta(hours=i + 1))
                               for i in range(3)], now=started - timedelta(hours=4))
    app.store.schedule.ran("edition:ch", started - timedelta(hours=3, minutes=5))
    runs: list[datetime] = []
    original = app.publish

    def counting_publish(channel, now=None, stream=None):  # type: ignore[no-untyped-def]
        runs.append(now)
        return original(channel, now, stream)

    app.publish = counting_publish  # type: ignore[method-assign]
    ready, stop = asyncio.Event(), asyncio.Event()
    runner = asyncio.create_task(run(app, ready=ready, stop=stop))
    await asyncio.wait_for(ready.wait(), DEADLINE)
    await until(lambda: statuses(app.store) == ["sent"] * 3, "the missed edition's posts to go out")
    stop.set()
    assert await asyncio.wait_for(runner, DEADLINE) is True
    assert len(runs) == 1 and runs[0] >= started
    last = app.store.schedule.last_runs()["edition:ch"]
    assert last == runs[0]  # recorded, so the next start does not run it again
    (planned,) = [j for j in plan(cfg, app.store.schedule.last_runs(), last) if j.id == "edition:ch"]
    assert not planned.missed and planned.next_run == last + timedelta(hours=1)
    assert sorted(tr.sent) == ["ch:e1:p1", "ch:e1:p2", "ch:e1:p3"]


async def test_a_second_runner_on_the_same_database_is_refused(tmp_path):
    from bot.errors import TamtamError

    cfg = make_config(tmp_path)
    first = make_app(cfg, Gated(gate=False))
    ready, stop = asyncio.Event(), asyncio.Event()
    runner = asyncio.create_task(run(first, ready=ready, stop=stop))
    await asyncio.wait_for(ready.wait(), DEADLINE)
    try:
        with pytest.raises(TamtamError, match="another Tamtam"):
            await run(make_app(cfg, Gated(gate=False)), stop=asyncio.Event())
    finally:
        stop.set()
        assert await asyncio.wait_for(runner, DEADLINE) is True


# -- the real process ------------------------------------------------------------------------

def _db_state(db_path):  # type: ignore[no-untyped-def]
    """(outbox statuses, schedule_runs job ids), or None while the daemon has not made the tables."""
    if not db_path.exists():
        return None
    engine = create_engine(f"sqlite:///{db_path}", connect_args={"timeout": 30})
    try:
        with engine.connect() as conn:
            statuses = [r.status for r in conn.execute(select(t.outbox.c.status))]
            jobs = {r.job_id: r.last_run_at for r in conn.execute(select(t.schedule_runs))}
        return statuses, jobs
    except OperationalError:  # tables not migrated yet
        return None
    finally:
        engine.dispose()


def test_run_delivers_on_schedule_and_stops_cleanly_on_sigterm(tmp_path):
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config" / "demo" / "feed.xml", tmp_path / "config" / "feed.xml")
    config = tmp_path / "config" / "tamtam.toml"
    config.write_text('''
[site]
name = "L’Écho du Sahel"
base_url = "https://echo.example"

[storage]
url = "sqlite:///var/tamtam.db"

[[sources]]
id = "echo"
url = "config/feed.xml"
poll = { every = "1s" }

[[channels]]
id = "x"
type = "x"
mode = "article"
schedule = { every = "2s" }
lookback = "3650d"
transport = { type = "file", dir = "var/out" }
''', encoding="utf-8")
    db = tmp_path / "var" / "tamtam.db"
    out = tmp_path / "var" / "out" / "x"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAMTAM_")}
    log_path = tmp_path / "stderr.log"
    started = datetime.now(timezone.utc)
    with open(log_path, "w", encoding="utf-8") as log_file:  # a file never fills up and blocks the daemon
        proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--config", str(config), "run"], env=env,
                                stdout=subprocess.DEVNULL, stderr=log_file, text=True)
        try:
            # The twelve articles of the feed are polled, put in editions and written out;
            # both jobs have recorded a run. Wait for that state, however slow the machine.
            deadline = time.monotonic() + 180
            state = None
            while time.monotonic() < deadline and proc.poll() is None:
                state = _db_state(db)
                if state and state[0].count("sent") == 12 and {"poll:echo", "edition:x"} <= set(state[1]):
                    break
                time.sleep(0.2)
            assert proc.poll() is None, log_path.read_text(encoding="utf-8")
            assert state and state[0].count("sent") == 12, (state, log_path.read_text(encoding="utf-8"))
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=180)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    stderr = log_path.read_text(encoding="utf-8")
    assert proc.returncode == 0, stderr
    assert "stopping" in stderr and "stopped" in stderr and "Traceback" not in stderr
    statuses, jobs = _db_state(db)
    assert statuses == ["sent"] * 12  # each article once, nothing left half-sent
    assert len(list(out.glob("*.txt"))) == 12  # one file per post: none written twice under two names
    # when each job last ran is kept in our database for the next start
    assert set(jobs) == {"poll:echo", "edition:x"}
    assert all(started <= when <= datetime.now(timezone.utc) for when in jobs.values())


async def test_the_scheduling_process_prunes_the_outbox_hourly(tmp_path, caplog):
    """`run` (or the leading worker) forgets settled messages on its own: a job an hour,
    which deletes what is older than delivery.retention and logs what it did."""
    cfg = make_config(tmp_path)
    app = make_app(cfg, Gated())
    queue(app.store, 2)
    old = datetime.now(timezone.utc) - timedelta(days=31)
    ids = [r.id for r in app.store.outbox.list(Status.PENDING)]
    for row_id in ids:
        app.store.outbox.claim(row_id, old)
        app.store.outbox.sent(row_id, old, remote_id=None, receipt="ok")
    d = daemon_module.Daemon(app)
    scheduler = AsyncIOScheduler()
    d._plan(scheduler)
    job = scheduler.get_job("retention")
    assert job is not None and job.trigger.interval == daemon_module.PRUNE_EVERY
    with caplog.at_level(logging.INFO, logger="bot.retention"):
        await job.func()
    assert list(app.store.outbox.list(Status.SENT)) == [] and "deleted 2 settled message(s)" in caplog.text

    forever = cfg.model_copy(update={"delivery": cfg.delivery.model_copy(update={"retention": None})})
    scheduler = AsyncIOScheduler()
    daemon_module.Daemon(make_app(forever, Gated()))._plan(scheduler)
    assert scheduler.get_job("retention") is None
    await app.aclose()
