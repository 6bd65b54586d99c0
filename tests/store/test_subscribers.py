"""Subscribers on SQLite and PostgreSQL: add, remove, re-add, and two processes adding the
same address at once."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine, event, select
from sqlalchemy.exc import OperationalError

from bot.store import Store
from bot.store import tables as t
from bot.store.db import make_engine

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=timezone.utc)


def test_subscribers_add_remove_readd(store: Store):
    subs = store.subscribers
    s, created = subs.add("news", "awa@example.org", "Awa", now=NOW)
    assert created and s.active and len(s.token) >= 20 and s.created_at == NOW
    _, created = subs.add("news", "awa@example.org", None, now=NOW)
    assert not created
    assert subs.remove("news", "awa@example.org")
    assert not subs.remove("news", "awa@example.org")  # already gone: nothing changed
    assert subs.list("news") == []
    assert len(subs.list("news", active_only=False)) == 1
    again, created = subs.add("news", "awa@example.org", None, now=NOW)
    assert created and again.name == "Awa" and again.token == s.token  # the old unsubscribe link still works


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
        channel_id="news", email="awa@example.org", name="Awa", token=theirs, active=True, created_at=NOW))
    sub, created = store.subscribers.add("news", "awa@example.org", name, now=NOW)
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
    assert store.subscribers.add("news", "ali@example.org", None, now=NOW)[1]


def test_iter_pages_while_the_caller_writes_on_the_same_connection(store: Store):
    """The publisher reads the list page by page and inserts outbox rows between pages on
    the same connection and transaction; reading must survive that on both databases."""
    from bot.store import NewMessage

    for i in range(5):
        store.subscribers.add("news", f"r{i}@example.org", None, now=NOW)
    store.subscribers.remove("news", "r2@example.org")
    with store.begin() as conn:
        seen = []
        for sub in store.subscribers.iter("news", conn=conn, chunk=2):
            seen.append(sub.email)
            store.outbox.enqueue(conn, [NewMessage(f"news:e1:{sub.email}", "news", "email", sub.email, {})], now=NOW)
    assert seen == ["r0@example.org", "r1@example.org", "r3@example.org", "r4@example.org"]
    assert [r.destination for r in store.outbox.list()] == seen
