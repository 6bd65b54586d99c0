"""The dispatcher's decisions: claim, classify, back off, recover. A scripted transport
drives the error paths here; tests/test_end_to_end.py drives the real servers."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from bot.config import parse_config
from bot.errors import AlreadyDelivered, PermanentError, TransientError, UncertainDelivery
from bot.models import Receipt
from bot.outbox import Dispatcher, OutboxRow, backoff, enqueue, recover
from bot.store import tables as t
from bot.transports.base import Transport

T0 = datetime(2026, 11, 28, 7, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


class Scripted(Transport):
    """Answers each send with the next scripted outcome (a Receipt or an exception)."""

    name = "scripted"

    def __init__(self, script, at_least_once=False):
        super().__init__(None, None)
        self.script = list(script)
        self.sent = []
        self.at_least_once = at_least_once  # type: ignore[misc]
        self.hang_on: int | None = None  # the n-th send never answers (a crash mid-send)

    async def send(self, message):
        self.sent.append(message)
        if self.hang_on == len(self.sent):
            await asyncio.Event().wait()
        outcome = self.script.pop(0) if self.script else Receipt("scripted", "ok")
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def config(channel_type="telegram"):
    transport = {"telegram": {"type": "telegram", "chat_id": "@c"}, "x": {"type": "x"}}[channel_type]
    return parse_config({
        "site": {"name": "x", "base_url": "https://x.example"},
        "delivery": {"max_attempts": 3, "backoff_base": "30s", "backoff_max": "1h"},
        "channels": [{"id": "ch", "type": channel_type, "schedule": {"every": "5m"}, "transport": transport}],
    })


def queue(store, n, now=T0):
    with store.begin() as conn:
        enqueue(conn, [OutboxRow(key=f"ch:e1:p{i}", channel_id="ch", kind="telegram", destination="@c",
                                 payload={"text": f"message {i}", "photo_url": None}) for i in range(n)], now=now)


def statuses(store):
    with store.engine.connect() as conn:
        return [r.status for r in conn.execute(select(t.outbox.c.status).order_by(t.outbox.c.id))]


def dispatcher(store, transport, clock, cfg=None):
    return Dispatcher(cfg or config(), store, clock=clock, transport_factory=lambda ch: transport)


async def test_sends_in_order_and_records_receipts(store):
    queue(store, 3)
    tr = Scripted([Receipt("scripted", "41"), Receipt("scripted", "42"), Receipt("scripted", "43")])
    report = await dispatcher(store, tr, Clock()).run_once()
    assert [m.text for m in tr.sent] == ["message 0", "message 1", "message 2"]
    assert statuses(store) == ["sent"] * 3 and report.ok
    with store.engine.connect() as conn:
        assert [r.remote_id for r in conn.execute(select(t.outbox.c.remote_id).order_by(t.outbox.c.id))] == ["41", "42", "43"]
    again = await dispatcher(store, tr, Clock()).run_once()
    assert again.sent == [] and len(tr.sent) == 3  # nothing twice


async def test_transient_error_backs_off_and_holds_later_parts(store):
    queue(store, 2)
    clock = Clock()
    tr = Scripted([TransientError("flood", retry_after=120)])
    d = dispatcher(store, tr, clock)
    report = await d.run_once()
    assert statuses(store) == ["pending", "pending"]  # part 2 waits for part 1
    assert len(tr.sent) == 1 and report.retrying
    with store.engine.connect() as conn:
        nxt = conn.execute(select(t.outbox.c.next_attempt_at).order_by(t.outbox.c.id)).scalars().first()
    assert nxt == T0 + timedelta(seconds=120)  # the service's retry_after beats the 30 s backoff
    clock.now = T0 + timedelta(seconds=119)
    await d.run_once()
    assert len(tr.sent) == 1  # not yet due
    clock.now = T0 + timedelta(seconds=121)
    await d.run_once()
    assert statuses(store) == ["sent", "sent"] and [m.text for m in tr.sent][-2:] == ["message 0", "message 1"]


async def test_gives_up_after_max_attempts(store):
    queue(store, 1)
    clock = Clock()
    tr = Scripted([TransientError("down")] * 5)
    d = dispatcher(store, tr, clock)
    for _ in range(3):
        await d.run_once()
        clock.now += timedelta(hours=2)
    assert statuses(store) == ["failed"] and len(tr.sent) == 3
    with store.engine.connect() as conn:
        assert "gave up after 3 attempts: down" in conn.execute(select(t.outbox.c.last_error)).scalar_one()


async def test_permanent_error_is_recorded_not_retried(store):
    queue(store, 2)
    tr = Scripted([PermanentError("Bad Request: chat not found")])
    report = await dispatcher(store, tr, Clock()).run_once()
    assert statuses(store)[0] == "failed" and report.failed[0][2] == "Bad Request: chat not found"


async def test_already_delivered_counts_as_sent(store):
    queue(store, 1)
    tr = Scripted([AlreadyDelivered("duplicate content")])
    await dispatcher(store, tr, Clock(), config("x")).run_once()
    assert statuses(store) == ["sent"]


async def test_uncertain_is_flagged_for_at_most_once(store):
    queue(store, 1)
    await dispatcher(store, Scripted([UncertainDelivery("read timeout")]), Clock()).run_once()
    assert statuses(store) == ["unknown"]


async def test_uncertain_is_retried_for_at_least_once(store):
    queue(store, 1)
    await dispatcher(store, Scripted([UncertainDelivery("read timeout")], at_least_once=True), Clock()).run_once()
    assert statuses(store) == ["pending"]


async def test_unexpected_exception_never_loses_the_message(store):
    queue(store, 1)
    await dispatcher(store, Scripted([KeyError("bug")]), Clock()).run_once()
    assert statuses(store) == ["pending"]


async def test_crash_mid_send_then_recover(store):
    """Cancelled while the second post is in flight: on restart the first is not resent,
    the interrupted one is flagged (at-most-once), and the rest go out exactly once."""
    queue(store, 4)
    tr = Scripted([])
    tr.hang_on = 2
    d = dispatcher(store, tr, Clock())
    task = asyncio.create_task(d.run_once())
    while len(tr.sent) < 2:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert statuses(store) == ["sent", "sending", "pending", "pending"]
    assert recover(store, config(), now=T0) == {"unknown": 1}
    tr2 = Scripted([])
    await dispatcher(store, tr2, Clock()).run_once()
    assert [m.text for m in tr2.sent] == ["message 2", "message 3"]
    assert statuses(store) == ["sent", "unknown", "sent", "sent"]


def test_backoff_doubles_and_caps():
    base, cap = timedelta(seconds=30), timedelta(minutes=5)
    assert [backoff(n, base, cap).total_seconds() for n in range(1, 6)] == [30, 60, 120, 240, 300]


async def test_enqueue_refuses_a_duplicate_key(store):
    from sqlalchemy.exc import IntegrityError

    queue(store, 1)
    with pytest.raises(IntegrityError):
        queue(store, 1)


async def test_graceful_stop_leaves_nothing_sending(store):
    queue(store, 3)
    tr = Scripted([])
    d = dispatcher(store, tr, Clock())
    original = tr.send

    async def send_and_stop(message):
        d.stop()  # SIGTERM arrives while the first message is in flight
        return await original(message)

    tr.send = send_and_stop  # type: ignore[method-assign]
    await d.run_once()
    assert statuses(store) == ["sent", "pending", "pending"]


async def test_two_dispatch_runs_at_once_keep_a_channels_order(store):
    """The scheduler's edition job and the periodic dispatch can overlap: each message still
    goes once, in order."""
    queue(store, 6)
    tr = Scripted([])
    original = tr.send
    in_flight = [0, 0]  # now, most ever

    async def slow_send(message):
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        await asyncio.sleep(0.005)
        try:
            return await original(message)
        finally:
            in_flight[0] -= 1

    tr.send = slow_send  # type: ignore[method-assign]
    d = dispatcher(store, tr, Clock())
    await asyncio.gather(d.run_once(), d.run_once())
    assert in_flight[1] == 1  # never two messages of one channel at once
    assert [m.text for m in tr.sent] == [f"message {i}" for i in range(6)]
    assert statuses(store) == ["sent"] * 6
