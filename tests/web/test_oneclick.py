"""Unsubscribes committed in groups (bot/web/oneclick.py and the store's unsubscribe_many),
on SQLite and PostgreSQL: one transaction for many readers, each answered after the commit,
another list's reader untouched, a second request for the same reader harmless."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from bot.store.subscribers import Source, SubscriberStatus
from bot.web.oneclick import GroupCommit

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=timezone.utc)


def test_unsubscribe_many_changes_only_that_list_s_active_readers(store):
    news = [store.subscribers.add("news", f"r{i}@example.org", None, now=NOW).subscriber.id for i in range(5)]
    other = store.subscribers.add("sport", "r0@example.org", None, now=NOW).subscriber.id
    store.subscribers.remove("news", "r4@example.org", now=NOW)
    done = store.subscribers.unsubscribe_many("news", [*news, other, news[0]], now=NOW, source=Source.ONE_CLICK)
    assert done == set(news[:4])  # r4 already left; the sport list's reader is not this list's
    assert store.subscribers.get(other).status == SubscriberStatus.ACTIVE
    for i in news[:4]:
        sub = store.subscribers.get(i)
        assert (sub.status, sub.status_source) == (SubscriberStatus.UNSUBSCRIBED, "one-click")
        assert [e.kind for e in store.subscribers.events(i)] == ["subscribed", "unsubscribed"]
    assert store.subscribers.unsubscribe_many("news", news, now=NOW, source=Source.ONE_CLICK) == set()
    assert store.subscribers.unsubscribe_many("news", [], now=NOW, source=Source.ONE_CLICK) == set()


async def test_requests_arriving_together_share_a_commit_and_each_hears_its_own_answer(store):
    ids = [store.subscribers.add("news", f"r{i}@example.org", None, now=NOW).subscriber.id for i in range(30)]
    calls = []
    real = store.subscribers.unsubscribe_many

    def counting(*args, **kwargs):
        calls.append(len(args[1]))
        return real(*args, **kwargs)

    store.subscribers.unsubscribe_many = counting
    writer = GroupCommit(store, lambda: NOW)
    answers = await asyncio.gather(*(writer.unsubscribe("news", i, Source.ONE_CLICK) for i in [*ids, ids[0]]))
    assert answers == [True] * 30 + [False]  # the repeated request changed nothing
    assert sum(calls) == 31 and len(calls) < 31  # grouped
    assert store.subscribers.counts("news") == {SubscriberStatus.UNSUBSCRIBED: 30}


async def test_a_failed_commit_is_every_waiter_s_error_and_the_next_group_goes_on(store):
    ids = [store.subscribers.add("news", f"r{i}@example.org", None, now=NOW).subscriber.id for i in range(3)]
    real = store.subscribers.unsubscribe_many
    fail = [True]

    def flaky(*args, **kwargs):
        if fail.pop() if fail else False:
            raise RuntimeError("database is locked")
        return real(*args, **kwargs)

    store.subscribers.unsubscribe_many = flaky
    writer = GroupCommit(store, lambda: NOW)
    first = await asyncio.gather(writer.unsubscribe("news", ids[0], Source.ONE_CLICK), return_exceptions=True)
    assert isinstance(first[0], RuntimeError)
    assert await writer.unsubscribe("news", ids[1], Source.ONE_CLICK) is True
