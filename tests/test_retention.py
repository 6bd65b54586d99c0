"""Retention on SQLite and PostgreSQL: settled messages go once delivery.retention has
passed, editions keep their counts, nothing an admin must decide about is touched, and
nothing is ever sent twice because a row is gone."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.config import Delivery
from bot.publish import release
from bot.retention import prune
from bot.store import Editions, Finished, NewMessage, OutboxError, Status, Store

T0 = datetime(2026, 11, 1, 7, 0, tzinfo=timezone.utc)
MONTH = timedelta(days=30)


def edition(store: Store, channel: str, outcomes: list[Status], now: datetime = T0) -> tuple[int, list[int]]:
    """An edition of ``len(outcomes)`` messages, each settled as given at ``now``."""
    with store.begin() as conn:
        edition_id = Editions.record(conn, channel, [], now)
        store.outbox.enqueue(conn, [NewMessage(f"{channel}:e{edition_id}:{i}", channel, "email", f"r{i}@example.org",
                                               {"n": i}, edition_id) for i in range(len(outcomes))], now=now)
    ids = [r.id for r in store.outbox.of_edition(edition_id)]
    settle(store, ids, outcomes, now)
    return edition_id, ids


def settle(store: Store, ids: list[int], outcomes: list[Status], now: datetime) -> None:
    for row_id, status in zip(ids, outcomes):
        if status is Status.PENDING:
            continue
        store.outbox.claim(row_id, now)
        if status is Status.DISMISSED:
            store.outbox.failed(row_id, now, reason="refused")
            store.outbox.dismiss_where(now, ids=[row_id])
        else:
            store.outbox.finish_many([Finished(row_id, status, now, reason="x")])


def loose(store: Store, status: Status, now: datetime = T0) -> int:
    """A message outside any edition (a sign-up's confirmation)."""
    with store.begin() as conn:
        store.outbox.enqueue(conn, [NewMessage(f"confirm:{now.isoformat()}:{status}", "news", "email",
                                               "new@example.org", {})], now=now)
    (row,) = [r for r in store.outbox.list(Status.PENDING) if r.edition_id is None]
    settle(store, [row.id], [status], now)
    return row.id


def remaining(store: Store) -> set[int]:
    return {r.id for s in Status for r in store.outbox.list(s)}


def test_settled_editions_are_folded_and_the_rest_kept(store: Store):
    done, done_ids = edition(store, "news", [Status.SENT, Status.SENT, Status.CANCELLED, Status.DISMISSED])
    failed, failed_ids = edition(store, "news", [Status.SENT, Status.FAILED])  # an admin must decide
    unknown, unknown_ids = edition(store, "tg", [Status.UNKNOWN])
    waiting, waiting_ids = edition(store, "tg", [Status.SENT, Status.PENDING])  # still going out
    recent, recent_ids = edition(store, "news", [Status.SENT], now=T0 + MONTH)  # within retention
    sent_confirmation = loose(store, Status.SENT)
    failed_confirmation = loose(store, Status.FAILED)

    now = T0 + MONTH + timedelta(days=1)
    dry = prune(store, MONTH, now=now, dry_run=True)
    assert (dry.editions, dry.messages, dry.loose) == (1, {"sent": 2, "cancelled": 1, "dismissed": 1}, 1)
    assert len(remaining(store)) == 4 + 2 + 1 + 2 + 1 + 2  # a dry run deletes nothing
    assert store.editions.pruned(done) == {}

    result = prune(store, MONTH, now=now)
    assert (result.editions, result.messages, result.loose) == (dry.editions, dry.messages, dry.loose)
    assert "deleted 5 settled message(s)" in result.summary()
    assert remaining(store) == {*failed_ids, *unknown_ids, *waiting_ids, *recent_ids, failed_confirmation}
    assert store.editions.pruned(done) == {"sent": 2, "cancelled": 1, "dismissed": 1}
    assert store.editions.pruned(failed) == {}
    assert sent_confirmation not in remaining(store)
    assert prune(store, MONTH, now=now).total == 0  # a second pass finds nothing more


def test_an_edition_goes_in_chunks_and_keeps_every_count(store: Store):
    eid, _ = edition(store, "news", [Status.SENT] * 7 + [Status.CANCELLED] * 2)
    result = prune(store, MONTH, now=T0 + 2 * MONTH, chunk=2)
    assert result.messages == {"sent": 7, "cancelled": 2} and remaining(store) == set()
    assert store.editions.pruned(eid) == {"sent": 7, "cancelled": 2}


def test_a_pruned_edition_that_went_out_cannot_be_released(store: Store):
    """Its rows are gone, so only the folded counts say it went out: releasing it would give
    its articles to the next edition and mail every reader twice."""
    eid, _ = edition(store, "news", [Status.SENT, Status.SENT])
    prune(store, MONTH, now=T0 + 2 * MONTH)
    with pytest.raises(OutboxError, match="went out .*2 sent.*deleted by retention"):
        release(store, eid, now=T0 + 2 * MONTH)


def test_forever_keeps_everything(store: Store):
    edition(store, "news", [Status.SENT])
    assert prune(store, None, now=T0 + 100 * MONTH).total == 0 and len(remaining(store)) == 1


@pytest.mark.parametrize("text, expected", [("30d", MONTH), ("forever", None), ("off", None), (0, None)])
def test_retention_setting(text, expected):
    assert Delivery(retention=text).retention == expected


def test_a_wrong_retention_says_what_is_expected():
    with pytest.raises(ValueError, match="'30d', or 'forever' to keep every message, got '30 jours'"):
        Delivery(retention="30 jours")
