"""The dispatcher's decisions: claim, classify, back off, recover. A scripted transport
drives the error paths here; tests/test_end_to_end.py drives the real servers."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from bot.channels.base import Transport
from bot.channels.registry import Channels
from bot.config import parse_config
from bot.dispatch import Dispatcher, Outcome, backoff, recover
from bot.errors import AlreadyDelivered, PermanentError, ServiceUnavailable, TransientError, UncertainDelivery
from bot.models import Receipt
from bot.store import NewMessage, Status
from bot.store import tables as t
from tests.fakes.smtp_server import SmtpServer

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
        super().__init__(None, None, None)  # type: ignore[arg-type]
        self.script = list(script)
        self.sent = []
        self.at_least_once = at_least_once  # type: ignore[misc]
        self.hang_on: int | None = None  # the n-th send never answers (a crash mid-send)
        self.hanging = asyncio.Event()  # set once the hanging send is in flight

    async def send(self, message):
        self.sent.append(message)
        if self.hang_on == len(self.sent):
            self.hanging.set()
            await asyncio.Event().wait()
        outcome = self.script.pop(0) if self.script else Receipt("scripted", "ok")
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class Unreachable(Transport):
    """A transport whose service cannot be reached: ``open`` fails, nothing is ever sent."""

    name = "unreachable"

    def __init__(self, error):
        super().__init__(None, None, None)  # type: ignore[arg-type]
        self.error = error
        self.opens = 0

    async def open(self):
        self.opens += 1
        raise self.error

    async def send(self, message):  # pragma: no cover - never reached: open failed
        raise AssertionError("send after a failed open")


def config(channel_type="telegram"):
    transport = {"telegram": {"type": "telegram", "chat_id": "@c"}, "x": {"type": "x"}}[channel_type]
    return parse_config({
        "site": {"name": "x", "base_url": "https://x.example"},
        "delivery": {"max_attempts": 3, "backoff_base": "30s", "backoff_max": "1h"},
        "channels": [{"id": "ch", "type": channel_type, "schedule": {"every": "5m"}, "transport": transport}],
    })


def queue(store, n, now=T0):
    with store.begin() as conn:
        store.outbox.enqueue(conn, [NewMessage(key=f"ch:e1:p{i}", channel_id="ch", kind="telegram", destination="@c",
                                               payload={"text": f"message {i}", "photo_url": None})
                                    for i in range(n)], now=now)


def by_id(store):
    return sorted((r for s in Status for r in store.outbox.list(s)), key=lambda r: r.id)


def statuses(store):
    return [r.status.value for r in by_id(store)]


def attempts(store):
    return [r.attempts for r in by_id(store)]


def dispatcher(store, transport, clock, cfg=None):
    cfg = cfg or config()
    return Dispatcher(cfg, store, Channels(cfg), clock=clock, transport_factory=lambda ch: transport)


def texts(transport):
    return [m.body.text for m in transport.sent]


async def test_sends_in_order_and_records_receipts(store):
    queue(store, 3)
    tr = Scripted([Receipt("scripted", "41"), Receipt("scripted", "42"), Receipt("scripted", "43")])
    report = await dispatcher(store, tr, Clock()).run_once()
    assert texts(tr) == ["message 0", "message 1", "message 2"]
    assert statuses(store) == ["sent"] * 3 and report.ok and report.sent == 3
    assert report.count(Outcome.SENT, "ch") == 3 and report.problems == []
    with store.engine.connect() as conn:
        remote = [r.remote_id for r in conn.execute(select(t.outbox.c.remote_id).order_by(t.outbox.c.id))]
    assert remote == ["41", "42", "43"]
    again = await dispatcher(store, tr, Clock()).run_once()
    assert again.sent == 0 and len(tr.sent) == 3  # nothing twice


async def test_transient_error_backs_off_and_holds_later_parts(store):
    queue(store, 2)
    clock = Clock()
    tr = Scripted([TransientError("flood", retry_after=120)])
    d = dispatcher(store, tr, clock)
    report = await d.run_once()
    assert statuses(store) == ["pending", "pending"]  # part 2 waits for part 1
    assert len(tr.sent) == 1 and report.count(Outcome.RETRYING) == 1 and not report.ok
    assert report.problems[0].reason == "flood" and report.problems[0].outcome is Outcome.RETRYING
    first = by_id(store)[0]
    assert first.next_attempt_at == T0 + timedelta(seconds=120)  # the service's retry_after beats the 30 s backoff
    assert first.last_error == "flood"
    clock.now = T0 + timedelta(seconds=119)
    await d.run_once()
    assert len(tr.sent) == 1  # not yet due
    clock.now = T0 + timedelta(seconds=121)
    await d.run_once()
    assert statuses(store) == ["sent", "sent"] and texts(tr)[-2:] == ["message 0", "message 1"]


async def test_gives_up_after_max_attempts(store):
    queue(store, 1)
    clock = Clock()
    tr = Scripted([TransientError("down")] * 5)
    d = dispatcher(store, tr, clock)
    for _ in range(3):
        await d.run_once()
        clock.now += timedelta(hours=2)
    assert statuses(store) == ["failed"] and len(tr.sent) == 3
    row = by_id(store)[0]
    assert "gave up after 3 attempts: down" in row.last_error and row.attempts == 3


async def test_permanent_error_is_recorded_not_retried(store):
    queue(store, 2)
    tr = Scripted([PermanentError("Bad Request: chat not found")])
    report = await dispatcher(store, tr, Clock()).run_once()
    assert statuses(store)[0] == "failed"
    assert report.count(Outcome.FAILED) == 1 and report.problems[0].reason == "Bad Request: chat not found"
    assert report.problems[0].key == "ch:e1:p0"
    # once the first part has failed for good, the next part of that destination goes on,
    # after it (nothing is sent out of order; the admin may still retry the first)
    assert statuses(store)[1] == "sent" and texts(tr) == ["message 0", "message 1"]


async def test_already_delivered_counts_as_sent(store):
    queue(store, 1)
    tr = Scripted([AlreadyDelivered("duplicate content")])
    report = await dispatcher(store, tr, Clock(), config("x")).run_once()
    assert statuses(store) == ["sent"] and report.sent == 1


async def test_uncertain_is_flagged_for_at_most_once(store):
    queue(store, 1)
    report = await dispatcher(store, Scripted([UncertainDelivery("read timeout")]), Clock()).run_once()
    assert statuses(store) == ["unknown"] and report.count(Outcome.UNKNOWN) == 1


async def test_one_destination_at_least_once_drains_in_one_pass(store):
    """The next batch is claimed while one is on the wire, and a destination is claimed once
    at a time: with every row for one chat, that early claim finds nothing, which must not
    end the pass with rows still due."""
    queue(store, 5)
    tr = Scripted([], at_least_once=True)
    report = await dispatcher(store, tr, Clock()).run_once()
    assert texts(tr) == [f"message {i}" for i in range(5)]
    assert statuses(store) == ["sent"] * 5 and report.sent == 5


async def test_uncertain_is_retried_for_at_least_once(store):
    queue(store, 1)
    report = await dispatcher(store, Scripted([UncertainDelivery("read timeout")], at_least_once=True),
                              Clock()).run_once()
    assert statuses(store) == ["pending"] and report.count(Outcome.RETRYING) == 1


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
    await asyncio.wait_for(tr.hanging.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert statuses(store) == ["sent", "sending", "pending", "pending"]
    cfg = config()
    assert recover(store, cfg, Channels(cfg), now=T0) == {"unknown": 1}
    tr2 = Scripted([])
    await dispatcher(store, tr2, Clock()).run_once()
    assert texts(tr2) == ["message 2", "message 3"]
    assert statuses(store) == ["sent", "unknown", "sent", "sent"]
    assert "may or may not have been posted" in by_id(store)[1].last_error


async def test_recover_resends_an_at_least_once_channel(store, tmp_path):
    """A file (or email) channel's interrupted message is harmless to send again: requeued."""
    cfg = parse_config({
        "site": {"name": "x", "base_url": "https://x.example"},
        "channels": [{"id": "ch", "type": "telegram", "schedule": {"every": "5m"},
                      "transport": {"type": "file", "dir": str(tmp_path)}}],
    })
    queue(store, 1)
    assert store.outbox.claim(by_id(store)[0].id, T0)
    assert recover(store, cfg, Channels(cfg), now=T0) == {"requeued": 1}
    assert statuses(store) == ["pending"]


def test_backoff_doubles_and_caps():
    base, cap = timedelta(seconds=30), timedelta(minutes=5)
    assert [backoff(n, base, cap).total_seconds() for n in range(1, 6)] == [30, 60, 120, 240, 300]


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
    assert texts(tr) == [f"message {i}" for i in range(6)]
    assert statuses(store) == ["sent"] * 6


# -- attempts count the service's answers, not our tries ------------------------------------

@pytest.mark.parametrize("error", [TransientError("connection refused"), OSError("no route to host")])
async def test_a_transport_that_cannot_open_pauses_the_channel_without_spending_attempts(store, error):
    queue(store, 2)
    clock = Clock()
    tr = Unreachable(error)
    d = dispatcher(store, tr, clock)
    for i in range(5):  # more failed opens than max_attempts (3): still nothing is given up
        report = await d.run_once()
        assert report.count(Outcome.PAUSED, "ch") == 1 and report.count(Outcome.FAILED) == 0
        clock.now += timedelta(hours=2)
    assert tr.opens == 5
    assert statuses(store) == ["pending", "pending"] and attempts(store) == [0, 0]
    first = by_id(store)[0]
    assert first.last_error.startswith("transport unavailable: ")
    # the channel is tried again later, less often each time (5th failure: 30 s · 2⁴)
    assert first.next_attempt_at == clock.now - timedelta(hours=2) + timedelta(seconds=480)


async def test_each_answer_costs_one_attempt(store):
    """retry_later, failed and sent each count one answer; a later open failure counts none."""
    queue(store, 3)
    clock = Clock()
    tr = Scripted([TransientError("busy"), Receipt("scripted", "1"),   # row 0: retry, then sent
                   PermanentError("refused"),                            # row 1: failed at once
                   TransientError("busy")])                              # row 2: retry later
    d = dispatcher(store, tr, clock)
    await d.run_once()  # row 0 retries, rows 1 and 2 wait behind it (same destination)
    assert statuses(store) == ["pending"] * 3 and attempts(store) == [1, 0, 0]
    clock.now += timedelta(minutes=1)
    await d.run_once()  # row 0 sent, row 1 refused for good, then row 2 goes: told to retry later
    assert statuses(store) == ["sent", "failed", "pending"] and attempts(store) == [2, 1, 1]
    # then the service becomes unreachable: the pending row keeps its one attempt
    clock.now += timedelta(minutes=5)
    paused = dispatcher(store, Unreachable(TransientError("refused")), clock)
    assert (await paused.run_once()).count(Outcome.PAUSED) == 1
    assert attempts(store) == [2, 1, 1] and statuses(store)[2] == "pending"


async def test_a_message_that_cannot_be_rebuilt_fails_without_an_attempt(store):
    with store.begin() as conn:
        store.outbox.enqueue(conn, [NewMessage("ch:e1:bad", "ch", "telegram", "@c", {"no text": True})], now=T0)
    report = await dispatcher(store, Scripted([]), Clock()).run_once()
    row = by_id(store)[0]
    assert row.status is Status.FAILED and row.attempts == 0  # the service was never asked
    assert "cannot rebuild the message" in row.last_error and report.count(Outcome.FAILED) == 1


# -- outages: the circuit breaker (a service that fails for everyone costs no attempt) -----------

async def test_service_unavailable_pauses_the_channel_then_probes_with_one_message(store):
    queue(store, 3)
    clock = Clock()
    tr = Scripted([ServiceUnavailable("502 Bad Gateway"), ServiceUnavailable("502 Bad Gateway")])
    d = dispatcher(store, tr, clock)
    report = await d.run_once()
    assert report.count(Outcome.PAUSED) == 1 and len(tr.sent) == 1
    assert statuses(store) == ["pending"] * 3 and attempts(store) == [0, 0, 0]  # nothing spent
    assert d.paused_until("ch") == T0 + timedelta(seconds=30)
    clock.now = T0 + timedelta(seconds=29)
    await d.run_once()
    assert len(tr.sent) == 1  # paused: not even a probe
    clock.now = T0 + timedelta(seconds=31)
    await d.run_once()  # one probe, still failing: the pause doubles
    assert len(tr.sent) == 2 and d.paused_until("ch") == clock.now + timedelta(minutes=1)
    clock.now += timedelta(minutes=2)
    report = await d.run_once()  # the service is back: the probe goes, then the rest
    assert report.sent == 3 and statuses(store) == ["sent"] * 3 and attempts(store) == [1, 1, 1]
    assert d.paused_until("ch") < clock.now


async def test_a_long_outage_fails_nothing_and_the_pause_is_capped(store):
    queue(store, 2)
    clock = Clock()
    tr = Scripted([ServiceUnavailable("connection refused")] * 40)
    d = dispatcher(store, tr, clock)
    for _ in range(40):  # far more probes than max_attempts (3)
        await d.run_once()
        clock.now = d.paused_until("ch") + timedelta(seconds=1)
    assert statuses(store) == ["pending", "pending"] and attempts(store) == [0, 0]
    assert d.paused_until("ch") - (clock.now - timedelta(seconds=1)) <= timedelta(minutes=10)  # delivery.pause_max


async def test_flood_control_pauses_at_least_as_long_as_the_service_asks(store):
    queue(store, 1)
    clock = Clock()
    d = dispatcher(store, Scripted([ServiceUnavailable("flood control", retry_after=400)]), clock)
    await d.run_once()
    assert d.paused_until("ch") == T0 + timedelta(seconds=400) and attempts(store) == [0]


def email_app(tmp_path, db_url, port: int, subscribers: int, clock):
    from bot.app import App
    from tests.conftest import ROOT

    cfg = parse_config({
        "site": {"name": "L’Écho du Sahel", "base_url": "https://echo.example"},
        "storage": {"url": db_url},
        "delivery": {"max_attempts": 3},
        "sources": [{"id": "echo", "url": str(ROOT / "config" / "demo" / "feed.xml")}],
        "channels": [{"id": "news", "type": "email", "schedule": {"every": "1h"}, "lookback": "3650d",
                      "max_articles": 3, "transport": {"type": "smtp", "host": "127.0.0.1", "port": port,
                                                       "security": "none", "from": "echo@echo.example",
                                                       "timeout": "5s", "rate_per_minute": 100_000}}],
    }, base_dir=str(tmp_path))
    app = App(cfg, clock=clock)
    for i in range(subscribers):
        app.store.subscribers.add("news", f"lecteur{i:03d}@example.org", None, now=T0)
    return app


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_an_smtp_outage_mid_edition_fails_nothing(tmp_path, db_url):
    """The defect: 300 subscribers, the mail server killed after ~100 sends, max_attempts 3:
    within a minute all the rest were failed. Now they wait, and go when the server is back."""
    from bot.channels.email.smtp import SmtpTransport

    clock = Clock()
    with SmtpServer() as server:
        app = email_app(tmp_path, db_url, server.port, 300, clock)

        class DiesAfter100(SmtpTransport):
            async def send(self, message):
                receipt = await super().send(message)
                if len(server.received) == 100:
                    server.stop()  # the outage: the server is gone, connections refused
                return receipt

        kind = app.channels.kind(app.config.channels[0])
        app.dispatcher = Dispatcher(app.config, app.store, app.channels, clock=clock,
                                    transport_factory=lambda ch: DiesAfter100(ch.transport, app.config, kind))
        await app.poll_all(T0)
        assert app.publish(app.config.channels[0], T0).messages == 300
        report = await app.dispatch()
        assert report.sent == 100 and report.count(Outcome.PAUSED) == 1 and report.count(Outcome.FAILED) == 0
        for _ in range(6):  # an hour of probes against a dead server
            clock.now = app.dispatcher.paused_until("news") + timedelta(seconds=1)
            await app.dispatch()
        rows = by_id(app.store)
        assert [r.status for r in rows].count(Status.SENT) == 100
        assert all(r.status is Status.PENDING and r.attempts == 0 for r in rows[100:])
        server.start()  # back on the same port
        clock.now = app.dispatcher.paused_until("news") + timedelta(seconds=1)
        report = await app.dispatch()
        await app.aclose()
    assert report.sent == 200 and statuses(app.store) == ["sent"] * 300
    recipients = sorted(r for m in server.received for r in m.rcpt_tos)
    assert recipients == sorted(f"lecteur{i:03d}@example.org" for i in range(300))  # each exactly once


async def test_421_at_the_greeting_pauses_without_costing_attempts(tmp_path, db_url):
    clock = Clock()
    with SmtpServer() as server:
        app = email_app(tmp_path, db_url, server.port, 3, clock)
        await app.poll_all(T0)
        app.publish(app.config.channels[0], T0)
        server.greeting = "421 4.3.2 Service not available, closing transmission channel"
        report = await app.dispatch()
        assert report.count(Outcome.PAUSED) == 1 and attempts(app.store) == [0, 0, 0]
        assert "421" in by_id(app.store)[0].last_error
        server.greeting = None
        clock.now = app.dispatcher.paused_until("news") + timedelta(seconds=1)
        report = await app.dispatch()
        await app.aclose()
    assert report.sent == 3 and len(server.received) == 3


async def test_mail_to_someone_who_left_while_it_waited_is_cancelled(tmp_path, db_url):
    """The defect: a reader who unsubscribed while their message waited for a retry still got it."""
    clock = Clock()
    with SmtpServer() as server:
        app = email_app(tmp_path, db_url, server.port, 3, clock)
        await app.poll_all(T0)
        app.publish(app.config.channels[0], T0)
        app.store.subscribers.remove("news", "lecteur001@example.org", now=T0)
        report = await app.dispatch()
        await app.aclose()
    assert sorted(r for m in server.received for r in m.rcpt_tos) == ["lecteur000@example.org",
                                                                      "lecteur002@example.org"]
    assert report.ok and report.count(Outcome.CANCELLED) == 1
    cancelled = [r for r in by_id(app.store) if r.status is Status.CANCELLED]
    assert [r.destination for r in cancelled] == ["lecteur001@example.org"]
    assert "no longer subscribed" in cancelled[0].last_error


async def test_a_mailbox_refused_at_send_time_is_suppressed_as_bounced(tmp_path, db_url):
    """A 5.1.1 at RCPT is a hard bounce: the address gets nothing more from any edition."""
    clock = Clock()
    with SmtpServer() as server:
        server.refuse("lecteur001@example.org", "550 5.1.1 <lecteur001@example.org>: User unknown")
        app = email_app(tmp_path, db_url, server.port, 3, clock)
        await app.poll_all(T0)
        app.publish(app.config.channels[0], T0)
        report = await app.dispatch()
        await app.aclose()
    assert report.sent == 2 and report.count(Outcome.FAILED) == 1
    gone = app.store.subscribers.find("news", "lecteur001@example.org")
    assert gone.status == "bounced" and gone.status_source == "send"
    assert "5.1.1" in app.store.subscribers.events(gone.id)[-1].detail
    assert [s.email for s in app.store.subscribers.iter("news")] == ["lecteur000@example.org",
                                                                    "lecteur002@example.org"]


@pytest.mark.parametrize("offers", [True, False])
async def test_a_reader_whose_address_is_not_ascii_gets_the_digest_where_smtputf8_is_offered(tmp_path, db_url, offers):
    """The defect: josé@… was accepted at import, then every send failed. Now the spliced
    digest goes with SMTPUTF8; a server without it fails that one message, saying why."""
    clock = Clock()
    with SmtpServer(smtputf8=offers) as server:
        app = email_app(tmp_path, db_url, server.port, 2, clock)
        app.store.subscribers.add("news", "josé@exemple.ml", "José", now=T0)
        await app.poll_all(T0)
        app.publish(app.config.channels[0], T0)
        report = await app.dispatch()
        await app.aclose()
    got = {m.rcpt_tos[0]: m for m in server.received}
    assert set(got) == {"lecteur000@example.org", "lecteur001@example.org"} | ({"josé@exemple.ml"} if offers else set())
    if offers:
        assert report.ok and b"To: jos\xc3\xa9@exemple.ml\r\n" in got["josé@exemple.ml"].raw
        assert b"Jos\xc3\xa9" in got["josé@exemple.ml"].raw or b"Jos=C3=A9" in got["josé@exemple.ml"].raw
    else:
        (failed,) = [r for r in by_id(app.store) if r.status is Status.FAILED]
        assert failed.destination == "josé@exemple.ml" and "SMTPUTF8" in failed.last_error
