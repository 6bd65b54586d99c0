"""Subscribers on SQLite and PostgreSQL: the life cycle (pending → active → unsubscribed,
bounced, complained), one row per mailbox whatever the case, suppression that no import or
admin overrides, preferences, events, and two processes adding the same address at once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, event, select
from sqlalchemy.exc import OperationalError

from bot.store import Store
from bot.store import tables as t
from bot.store.db import make_engine
from bot.store.subscribers import Frequency, Source, SubscriberError, SubscriberStatus

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=timezone.utc)


def test_subscribers_add_remove_and_suppression(store: Store):
    subs = store.subscribers
    added = subs.add("news", "awa@example.org", "Awa", now=NOW)
    s = added.subscriber
    assert added.outcome == "created" and s.active and s.status == "active" and len(s.token) >= 20
    assert s.created_at == NOW and s.confirmed_at == NOW and s.status_source == "admin"
    assert subs.add("news", "awa@example.org", None, now=NOW).outcome == "already"
    assert subs.remove("news", "awa@example.org", now=NOW)
    assert not subs.remove("news", "awa@example.org", now=NOW)  # already gone: nothing changed
    assert subs.list("news") == []
    assert [x.status for x in subs.list("news", active_only=False)] == ["unsubscribed"]
    # An admin's add or an import never overrides the reader's choice …
    again = subs.add("news", "awa@example.org", None, now=NOW)
    assert again.outcome == "suppressed" and not again.created and again.subscriber.status == "unsubscribed"
    assert subs.add("news", "AWA@example.org", None, now=NOW, source=Source.IMPORT).outcome == "suppressed"
    # … only the reader's own new sign-up, once confirmed, brings it back (same row, same token).
    signed = subs.add("news", "awa@example.org", None, now=NOW, source=Source.FORM, confirmed=False)
    assert signed.outcome == "pending" and signed.subscriber.status == "pending"
    back = subs.confirm(signed.subscriber.id, now=NOW)
    assert back.active and back.name == "Awa" and back.token == s.token
    kinds = [e.kind for e in subs.events(s.id)]
    assert kinds == ["subscribed", "unsubscribed", "signed-up", "confirmed"]


def test_one_subscriber_per_mailbox_whatever_the_case(store: Store):
    """The defect: dup@ex.ml, DUP@ex.ml and Dup@EX.ML were three subscribers, and one mailbox
    got three copies; remove of the upper-case form said "was not subscribed"."""
    subs = store.subscribers
    first = subs.add("news", "Ibrahim.K@Example.org", "Ibrahim", now=NOW)
    assert subs.add("news", "ibrahim.k@example.org", None, now=NOW).outcome == "already"
    assert subs.add("news", "IBRAHIM.K@EXAMPLE.ORG", None, now=NOW).outcome == "already"
    assert [x.email for x in subs.list("news")] == ["Ibrahim.K@Example.org"]  # the spelling the reader gave
    assert subs.is_active("news", "ibrahim.k@EXAMPLE.org")
    assert subs.find("news", "IBRAHIM.k@example.ORG").id == first.subscriber.id
    assert subs.remove("news", "IBRAHIM.K@EXAMPLE.ORG", now=NOW)
    assert not subs.is_active("news", "Ibrahim.K@Example.org")


def test_a_pending_subscriber_receives_nothing_until_confirmed(store: Store):
    subs = store.subscribers
    p = subs.add("news", "fatou@example.org", None, now=NOW, source=Source.FORM, confirmed=False).subscriber
    assert p.status == "pending" and subs.list("news") == [] and not subs.is_active("news", "fatou@example.org")
    assert subs.confirm(p.id, now=NOW).active
    assert subs.confirm(p.id, now=NOW).active  # idempotent
    subs.unsubscribe(p.id, now=NOW, source=Source.ONE_CLICK)
    with pytest.raises(SubscriberError, match="a new sign-up is needed"):
        subs.confirm(p.id, now=NOW)  # an old confirmation link cannot undo an unsubscribe


def test_preferences_and_their_events(store: Store):
    subs = store.subscribers
    s = subs.add("news", "awa@example.org", None, now=NOW, topics=["Économie"], frequency=Frequency.WEEKLY,
                 weekly_day=4, language="en").subscriber
    assert (s.topics, s.frequency, s.weekly_day, s.language) == (("Économie",), "weekly", 4, "en")
    s = subs.set_preferences(s.id, now=NOW, topics=["Sport", "Culture"], frequency=Frequency.INSTANT)
    assert s.topics == ("Sport", "Culture") and s.frequency == "instant" and s.weekly_day is None
    s = subs.set_preferences(s.id, now=NOW, all_topics=True)
    assert s.topics is None
    assert [x.email for x in subs.iter("news", frequency=Frequency.INSTANT)] == ["awa@example.org"]
    assert [x.email for x in subs.iter("news", frequency=Frequency.DAILY)] == []
    assert [e.kind for e in subs.events(s.id)][-2:] == ["preferences", "preferences"]


def test_bounces_and_complaints_suppress(store: Store):
    subs = store.subscribers
    for ch in ("news", "alerts"):
        subs.add(ch, "gone@example.org", None, now=NOW)
        subs.add(ch, "full@example.org", None, now=NOW)
        subs.add(ch, "angry@example.org", None, now=NOW)
    hard = subs.bounce("GONE@example.org", now=NOW, hard=True, reason="550 5.1.1 no such user")
    assert {x.channel_id for x in hard} == {"news", "alerts"} and all(x.status == "bounced" for x in hard)
    day = timedelta(days=1)
    assert subs.bounce("full@example.org", now=NOW, hard=False, reason="452 mailbox full", soft_limit=3) == []
    assert subs.bounce("full@example.org", now=NOW + 40 * day, hard=False, reason="452", soft_limit=3,
                       soft_window=30 * day) == []  # the first fell out of the window: the count restarts
    assert subs.bounce("full@example.org", now=NOW + 41 * day, hard=False, reason="452", soft_limit=3) == []
    third = subs.bounce("full@example.org", now=NOW + 42 * day, hard=False, reason="452", soft_limit=3)
    assert len(third) == 2 and all(x.status == "bounced" for x in third)
    complained = subs.complaint("angry@example.org", now=NOW, reason="abuse report", channel_id="news")
    assert [(x.channel_id, x.status) for x in complained] == [("news", "complained")]
    assert subs.is_active("alerts", "angry@example.org")
    assert subs.add("news", "gone@example.org", None, now=NOW, source=Source.IMPORT).outcome == "suppressed"
    events = subs.events(subs.find("news", "full@example.org").id)
    assert [e.kind for e in events].count("bounce-soft") == 4 and "3 of 3" in events[-1].detail
    assert subs.counts("news") == {SubscriberStatus.BOUNCED: 2, SubscriberStatus.COMPLAINED: 1}


def test_lists_are_per_channel_and_in_arrival_order(store: Store):
    for who in ("c@example.org", "a@example.org", "b@example.org"):
        store.subscribers.add("news", who, None, now=NOW)
    store.subscribers.add("other", "a@example.org", None, now=NOW)
    assert [s.email for s in store.subscribers.iter("news")] == ["c@example.org", "a@example.org", "b@example.org"]
    assert [s.email for s in store.subscribers.list("other")] == ["a@example.org"]
    with store.begin() as conn:  # read inside a caller's transaction (the publisher's)
        assert len(list(store.subscribers.iter("news", conn=conn))) == 3


def _other_process_inserts_first(store: Store, db_url: str, row: dict) -> list[str]:
    """Make another connection insert ``row`` (and commit) just before ``store`` runs its
    INSERT into subscribers: the window between add()'s SELECT and INSERT, hit every time.
    Returns what happened to the other writer: "inserted", or "blocked" when our transaction
    already holds the database's write lock (then the race cannot happen at all)."""
    if db_url.startswith("sqlite"):
        # a short lock wait: blocked on our own thread's lock, it would otherwise wait 10 s
        engine = create_engine(db_url, connect_args={"timeout": 1})
    else:
        engine = make_engine(db_url)
    outcome: list[str] = []

    def before(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if outcome or not statement.lstrip().upper().startswith("INSERT INTO SUBSCRIBERS"):
            return
        try:
            with engine.begin() as c:
                c.execute(t.subscribers.insert().values(**row))
            outcome.append("inserted")
        except OperationalError:
            outcome.append("blocked")
        finally:
            engine.dispose()

    event.listen(store.engine, "before_cursor_execute", before)
    return outcome


@pytest.mark.parametrize("name", [None, "Awa Traoré"])
def test_add_racing_another_process_takes_their_row(store: Store, db_url, name, request):
    """Another process adds the same address between our SELECT and our INSERT. Only the
    savepoint is rolled back (on PostgreSQL a plain INSERT error would abort the whole
    transaction), the row is theirs, and this call did not create it."""
    theirs = "their-token-0123456789"
    other = _other_process_inserts_first(store, db_url, dict(
        channel_id="news", email="awa@example.org", email_key="awa@example.org", name="Awa", token=theirs,
        status="active", frequency="daily", created_at=NOW, status_changed_at=NOW, status_source="import",
        soft_bounces=0))
    added = store.subscribers.add("news", "awa@example.org", name, now=NOW)
    sub, created = added.subscriber, added.created
    with store.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(t.subscribers.c.token, t.subscribers.c.name))]
    if other == ["blocked"]:
        # Our transaction took the write lock before its SELECT: the other writer waits for
        # us (here it gave up, being on our thread), so the address is ours.
        assert db_url.startswith("sqlite") and created and rows == [(sub.token, name)]
    else:
        assert other == ["inserted"]  # the race did happen
        assert not created
        assert sub.token == theirs and sub.active
        # the transaction went on after the conflict and committed its update
        assert sub.name == (name or "Awa") and rows == [(theirs, name or "Awa")]
    # and the connection is healthy for the next call
    assert store.subscribers.add("news", "ali@example.org", None, now=NOW).created


def test_iter_pages_while_the_caller_writes_on_the_same_connection(store: Store):
    """The publisher reads the list page by page and inserts outbox rows between pages on
    the same connection and transaction; reading must survive that on both databases."""
    from bot.store import NewMessage

    for i in range(5):
        store.subscribers.add("news", f"r{i}@example.org", None, now=NOW)
    store.subscribers.remove("news", "r2@example.org", now=NOW)
    with store.begin() as conn:
        seen = []
        for sub in store.subscribers.iter("news", conn=conn, chunk=2):
            seen.append(sub.email)
            store.outbox.enqueue(conn, [NewMessage(f"news:e1:{sub.email}", "news", "email", sub.email, {})], now=NOW)
    assert seen == ["r0@example.org", "r1@example.org", "r3@example.org", "r4@example.org"]
    assert [r.destination for r in store.outbox.list()] == seen


def test_add_many_follows_add_s_rules_in_one_transaction(store: Store):
    """The import's bulk path: the same outcomes as one add() per row, the rows read back as
    add() writes them (aware UTC times, events), on SQLite and PostgreSQL."""
    subs = store.subscribers
    subs.add("news", "active@example.org", "Déjà", now=NOW)
    subs.add("news", "gone@example.org", None, now=NOW)
    subs.remove("news", "gone@example.org", now=NOW)
    subs.add("news", "waiting@example.org", None, now=NOW, source=Source.FORM, confirmed=False)
    later = NOW + timedelta(hours=1)
    people = [("new1@example.org", "Awa"), ("NEW1@example.org", "dup"), ("Active@Example.org", None),
              ("gone@example.org", None), ("waiting@example.org", "Binta"), ("new2@example.org", None)]
    added = subs.add_many("news", people, now=later, source=Source.IMPORT, confirmed=True)
    assert [a.outcome for a in added] == ["created", "already", "suppressed", "reactivated", "created"]
    new1 = subs.find("news", "new1@example.org")
    assert new1 == added[0].subscriber and new1.created_at == later and new1.name == "Awa"
    assert new1.status == "active" and new1.status_source == "import" and new1.confirmed_at == later
    assert [e.kind for e in subs.events(new1.id)] == ["subscribed"]
    assert subs.find("news", "waiting@example.org").active
    assert subs.find("news", "gone@example.org").status == "unsubscribed"
    assert len(subs.list("news")) == 4
    pending = subs.add_many("news", [("later@example.org", None)], now=later, confirmed=False)
    assert pending[0].outcome == "pending" and not subs.is_active("news", "later@example.org")


def test_an_import_of_thousands_leaves_the_planner_its_statistics(db_url, tmp_path):
    """Without them, PostgreSQL checked each batch of 100 readers about to be mailed against
    the whole list (21 ms a batch at 100,000 readers, 0.2 ms with them), until autovacuum
    came by — usually long after the first edition."""
    from sqlalchemy import text

    from bot.subscribers import import_csv

    store = Store(db_url)
    try:
        path = tmp_path / "list.csv"
        path.write_text("email\n" + "".join(f"r{i}@example.org\n" for i in range(1200)), encoding="utf-8")
        assert import_csv(store, "news", path, datetime(2026, 11, 29, tzinfo=timezone.utc)).added == 1200
        with store.engine.connect() as conn:
            if store.db.backend == "sqlite":
                analysed = conn.execute(text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'subscribers'")).scalar()
            else:
                analysed = conn.execute(text("SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'subscribers' "
                                             "AND schemaname = current_schema() AND last_analyze IS NOT NULL")).scalar()
        assert analysed
    finally:
        store.close()


@pytest.mark.parametrize("verdict", ["soft", "complaint"])
def test_two_copies_of_one_report_arriving_together_count_once(pg_url, verdict):
    """A provider that retries a webhook can deliver the same report twice at the same
    moment, to two web workers. Both copies are held at the reader's row (another
    connection locks it), then let go together: one applies, the other finds its event."""
    import threading
    import time

    import psycopg

    from bot.channels.email.bounces.classify import Verdict
    from bot.channels.email.bounces.feedback import Feedback, Tally, apply
    from bot.channels.email.bounces.settings import BounceSettings

    store = Store(pg_url)
    try:
        sub = store.subscribers.add("news", "full@example.org", None, now=NOW).subscriber
        report = Feedback("full@example.org", Verdict(verdict), "4.2.2", "452 mailbox full", "evt-42", "mailgun")
        tallies = [Tally(), Tally()]
        with psycopg.connect(pg_url) as locker:
            locker.execute("SELECT id FROM subscribers WHERE id = %s FOR UPDATE", (sub.id,))
            holder = locker.info.backend_pid
            threads = [threading.Thread(target=apply, args=(store, [report]), kwargs=dict(
                now=NOW, policy=BounceSettings(soft_limit=2), channels=["news"], tally=tally)) for tally in tallies]
            for th in threads:
                th.start()
            with psycopg.connect(pg_url, autocommit=True) as watch:
                deadline = time.monotonic() + 60
                # (the first copy waits for the locker, the second for the first)
                while watch.execute("WITH RECURSIVE held(pid) AS (SELECT %s::int UNION SELECT a.pid "
                                    "FROM pg_stat_activity a JOIN held ON held.pid = ANY(pg_blocking_pids(a.pid))) "
                                    "SELECT count(*) - 1 FROM held", (holder,)).fetchone()[0] < 2:
                    assert time.monotonic() < deadline, "the two copies never reached the reader's row"
                    time.sleep(0.02)
            locker.rollback()
        for th in threads:
            th.join(60)
        counted = sorted(tuple(sorted(t.counts.items())) for t in tallies)
        assert [dict(c).get("duplicate", 0) for c in counted].count(1) == 1, counted
        events = [e for e in store.subscribers.events(sub.id) if e.kind.startswith(("bounce", "complaint"))]
        assert len(events) == 1, events
        again = store.subscribers.get(sub.id)
        if verdict == "soft":  # counted once: one more soft bounce is needed to suppress at 2
            assert again.status == SubscriberStatus.ACTIVE
        else:
            assert again.status == SubscriberStatus.COMPLAINED
    finally:
        store.close()
