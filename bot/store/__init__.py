"""Persistence: the database and one owner per group of tables.

:class:`Store` is what the rest of Tamtam holds: ``store.articles`` (articles, sources),
``store.subscribers``, ``store.editions`` (the per-channel cursor), ``store.outbox`` and
``store.schedule`` (when each job last ran),
all on one :class:`~bot.store.db.Database`. The store knows rows, not policy: what goes
into an edition lives in :mod:`bot.editions`, when to retry in :mod:`bot.dispatch`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from sqlalchemy import Connection

from .articles import Articles, SourceState, UpsertResult, row_to_article
from .db import Database
from .editions import Editions
from .outbox import Finished, NewMessage, Outbox, OutboxError, OutboxRow, Status
from .schedule import ScheduleRuns
from .subscribers import Subscribers


class Store:
    def __init__(self, url: str, *, migrate: bool = True):
        self.db = Database(url)
        if migrate:
            self.db.migrate()
        self.articles = Articles(self.db)
        self.subscribers = Subscribers(self.db)
        self.editions = Editions(self.db)
        self.outbox = Outbox(self.db)
        self.schedule = ScheduleRuns(self.db)

    @property
    def engine(self):  # type: ignore[no-untyped-def]
        return self.db.engine

    def begin(self) -> AbstractContextManager[Connection]:
        return self.db.begin()

    def runner_lock(self, *, shared: bool = False) -> AbstractContextManager[bool]:
        return self.db.runner_lock(shared=shared)

    def close(self) -> None:
        self.db.close()


__all__ = ["Articles", "Database", "Editions", "Finished", "NewMessage", "Outbox", "OutboxError", "OutboxRow", "ScheduleRuns", "SourceState",
           "Status", "Store", "Subscribers", "UpsertResult", "row_to_article"]
