"""The outbox table on SQLite and PostgreSQL: a row's life, what costs an attempt, and the
admin's retry and resolve. The dispatcher's decisions are in tests/test_dispatch.py."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError

from bot.store import NewMessage, OutboxError, Status, Store
from bot.store import outbox as outbox_module

T0 = datetime(2026, 11, 28, 7, 0, tzinfo=timezone.utc)
LATER = T0 + timedelta(minutes=5)


def queue(store: Store, n: int, channel: str = "ch", now: datetime = T0) -> list[int]:
    with store.begin() as conn:
        store.outbox.enqueue(conn, [NewMessage(f"{channel}:e1:p{i}", channel, "telegram", "@c", {"text": f"m{i}"})
                                    for i in range(n)], now=now)
    return [r.id for r in store.outbox.pending(channel, after_id=0, limit=1000)]


def test_enqueue_refuses_a_duplicate_key(store: Store):
    queue(store, 1)
    with pytest.raises(IntegrityError):
        queue(store, 1)
    assert [r.key for r in store.outbox.list()] == ["ch:e1:p0"]  # the failed transaction left nothing


def test_enqueue_writes_long_lists_in_chunks(store: Store, monkeypatch):
    monkeypatch.setattr(outbox_module, "ENQUEUE_CHUNK", 2)
    messages = (NewMessage(f"ch:e1:p{i}", "ch", "telegram", "@c", {"text": f"m{i}"}) for i in range(5))
    with store.begin() as conn:
        assert store.outbox.enqueue(conn, messages, now=T0) == 5
    rows = list(store.outbox.list())
    assert [r.key for r in rows] == [f"ch:e1:p{i}" for i in range(5)]
    assert {(r.status, r.attempts, r.next_attempt_at) for r in rows} == {(Status.PENDING, 0, T0)}


def test_due_channels_and_pending_in_queue_order(store: Store):
    a = queue(store, 3, "a")
    queue(store, 1, "b", now=LATER)
    assert store.outbox.due_channels(T0) == ["a"]
    assert store.outbox.due_channels(LATER) == ["a", "b"]
    assert [r.id for r in store.outbox.pending("a", after_id=0, limit=2)] == a[:2]
    assert [r.id for r in store.outbox.pending("a", after_id=a[1], limit=2)] == a[2:]


def test_claim_is_a_compare_and_set(store: Store, db_url):
    (row_id,) = queue(store, 1)
    other = Store(db_url, migrate=False)  # another process's dispatcher
    try:
        assert store.outbox.claim(row_id, T0)
        assert not other.outbox.claim(row_id, T0)
    finally:
        other.close()
    row = store.outbox.get(row_id)
    assert row.status is Status.SENDING and row.attempts == 0  # claiming asks the service nothing
    assert store.outbox.due_channels(T0) == []


def test_only_answers_cost_an_attempt(store: Store):
    ids = queue(store, 4)
    for i in ids:
        store.outbox.claim(i, T0)
    sent, later, failed, unknown = ids
    store.outbox.release(later, T0, when=LATER, reason="connection refused")
    assert store.outbox.get(later).attempts == 0  # the service could not be reached: costs nothing
    assert store.outbox.get(later).status is Status.PENDING
    store.outbox.claim(later, LATER)
    store.outbox.retry_later(later, LATER, when=LATER + timedelta(minutes=1), reason="flood")
    store.outbox.sent(sent, T0, remote_id="42", receipt="ok")
    store.outbox.failed(failed, T0, reason="chat not found")
    store.outbox.unknown(unknown, T0, reason="read timeout")
    got = {i: store.outbox.get(i) for i in ids}
    assert {i: (r.status, r.attempts) for i, r in got.items()} == {
        sent: (Status.SENT, 1), later: (Status.PENDING, 1), failed: (Status.FAILED, 1), unknown: (Status.UNKNOWN, 1)}
    assert got[later].next_attempt_at == LATER + timedelta(minutes=1) and got[later].last_error == "flood"
    assert got[sent].last_error is None


def test_a_failure_nobody_answered_costs_nothing(store: Store):
    (row_id,) = queue(store, 1)
    store.outbox.failed(row_id, T0, reason="cannot rebuild the message", answered=False)
    row = store.outbox.get(row_id)
    assert row.status is Status.FAILED and row.attempts == 0


def test_interrupted_rows_are_settled_once(store: Store):
    ids = queue(store, 3)
    store.outbox.claim(ids[0], T0)
    store.outbox.claim(ids[1], T0)
    assert store.outbox.interrupted() == [(ids[0], "ch"), (ids[1], "ch")]
    store.outbox.settle_interrupted(ids[0], LATER, resend=True, reason="resent")
    store.outbox.settle_interrupted(ids[1], LATER, resend=False, reason="check by hand")
    store.outbox.settle_interrupted(ids[2], LATER, resend=False, reason="not sending")  # pending: untouched
    assert [(r.status, r.last_error) for r in map(store.outbox.get, ids)] == [
        (Status.PENDING, "resent"), (Status.UNKNOWN, "check by hand"), (Status.PENDING, None)]
    assert store.outbox.get(ids[0]).next_attempt_at == LATER
    assert store.outbox.interrupted() == []


def test_admin_retry_and_resolve(store: Store):
    failed, unknown, pending = queue(store, 3)
    for i in (failed, unknown):
        store.outbox.claim(i, T0)
    store.outbox.retry_later(failed, T0, when=T0, reason="busy")  # a first attempt…
    store.outbox.claim(failed, T0)
    store.outbox.failed(failed, T0, reason="gave up")  # …then a second
    store.outbox.unknown(unknown, T0, reason="read timeout")
    assert store.outbox.get(failed).attempts == 2

    store.outbox.retry(failed, LATER)
    row = store.outbox.get(failed)
    assert (row.status, row.attempts, row.next_attempt_at) == (Status.PENDING, 0, LATER)
    store.outbox.resolve(unknown, LATER)
    assert store.outbox.get(unknown).status is Status.SENT
    assert [r.id for r in store.outbox.list(Status.SENT)] == [unknown]
    assert [r.id for r in store.outbox.list()] == [failed, pending]  # everything not sent

    with pytest.raises(OutboxError, match="only failed or unknown messages can be retried"):
        store.outbox.retry(pending, LATER)
    with pytest.raises(OutboxError, match="only unknown messages can be resolved"):
        store.outbox.resolve(pending, LATER)
    with pytest.raises(OutboxError, match="no outbox message 999999"):
        store.outbox.get(999999)


def test_counts_per_channel_and_status(store: Store):
    a = queue(store, 3, "a")
    queue(store, 1, "b")
    store.outbox.claim(a[0], T0)
    store.outbox.sent(a[0], T0, remote_id=None, receipt="ok")
    assert store.outbox.counts() == {"a": {Status.SENT: 1, Status.PENDING: 2}, "b": {Status.PENDING: 1}}


def test_a_claim_after_a_row_starts_there(store: Store):
    """The dispatcher claims its next batch after the last one (a claim from the start would
    walk past every row already claimed, which PostgreSQL keeps in the index until VACUUM)."""
    ids = queue(store, 5)
    lease = T0 + timedelta(minutes=5)
    first = store.outbox.claim_batch("ch", T0, limit=10, lease_until=lease, owner="w", after_id=ids[1])
    assert first == []  # every row is to "@c": the earliest, before ids[1], holds the others back
    with store.begin() as conn:
        store.outbox.enqueue(conn, [NewMessage(f"ch:e2:{i}", "ch", "telegram", f"@d{i}", {"text": "x"})
                                    for i in range(4)], now=T0)
    others = [r.id for r in store.outbox.pending("ch", after_id=ids[-1], limit=10)]
    got = store.outbox.claim_batch("ch", T0, limit=10, lease_until=lease, owner="w", after_id=others[1])
    assert [r.id for r in got] == others[2:]
    got = store.outbox.claim_batch("ch", T0, limit=10, lease_until=lease, owner="w")
    assert [r.id for r in got] == [ids[0], *others[:2]]
