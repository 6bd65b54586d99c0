"""Retention: the outbox forgets what is settled once ``delivery.retention`` has passed.

A 100,000-reader list adds 100,000 rows a day; kept for ever they make the database, its
backups and every admin query grow without bound. What may go is what nobody needs to act
on: sent, cancelled and dismissed messages. Failed, unknown, pending and sending rows stay
whatever their age, because an admin or the dispatcher still has to decide about them.

An edition is folded whole, once all of its messages are settled: its counts by status
move into ``editions.pruned`` in the same transaction as each chunk of deleted rows, so a
crash in the middle loses no count, and ``outbox release`` still refuses an edition that
went out. Nothing here can cause a second send: an edition's articles stay in its
channel's cursor (``edition_articles``), so no later edition takes them again. Rows are
deleted in chunks so the dispatcher and the web service are never held up for long.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .store import Editions, Store

log = logging.getLogger(__name__)

CHUNK = 5000
# A message outside any edition may be deduplicated by a time window in its outbox key: the
# sign-up confirmation's key names its 10-minute window (bot.web.signup.CONFIRM_EVERY), and
# that row is what stops a second email to the same reader in the same window. Such rows are
# kept at least this long, whatever `--older-than` says, so pruning can never let one through.
LOOSE_KEPT = timedelta(hours=1)


@dataclass
class Pruned:
    """What one pass deleted (or, for a dry run, would delete)."""

    before: datetime
    editions: int = 0
    messages: Counter[str] = field(default_factory=Counter)  # {status: count} of edition messages
    loose: int = 0  # settled messages outside any edition (sign-up confirmations)

    @property
    def total(self) -> int:
        return sum(self.messages.values()) + self.loose

    def summary(self, *, dry_run: bool = False) -> str:
        verb = "would delete" if dry_run else "deleted"
        when = self.before.strftime("%Y-%m-%d %H:%M UTC")
        if not self.total:
            return f"outbox: nothing settled before {when}"
        parts = ", ".join(f"{n} {status}" for status, n in sorted(self.messages.items()))
        text = f"outbox: {verb} {self.total} settled message(s) last changed before {when}"
        if self.editions:
            text += f"; {self.editions} edition(s) keep their counts ({parts})"
        if self.loose:
            text += f"; {self.loose} outside any edition"
        return text


def prune(store: Store, retention: timedelta | None, *, now: datetime, dry_run: bool = False,
          chunk: int = CHUNK) -> Pruned:
    """Delete the settled messages older than ``retention`` (None keeps everything)."""
    result = Pruned(before=now - (retention or timedelta(0)))
    if retention is None:
        return result
    for edition_id in store.outbox.settled_editions(result.before):
        result.editions += 1
        if dry_run:
            result.messages.update({s.value: n for s, n in store.outbox.count_edition(edition_id).items()})
            continue
        while True:
            with store.begin() as conn:
                gone = {s.value: n for s, n in store.outbox.delete_of_edition(conn, edition_id, limit=chunk).items()}
                Editions.add_pruned(conn, edition_id, gone)
            result.messages.update(gone)
            if sum(gone.values()) < chunk:
                break
    loose_before = min(result.before, now - LOOSE_KEPT)
    if dry_run:
        result.loose = store.outbox.loose_settled(loose_before)
    else:
        while (n := store.outbox.delete_loose(loose_before, limit=chunk)):
            result.loose += n
            if n < chunk:
                break
    if result.total and not dry_run:
        log.info("%s", result.summary())
    return result

