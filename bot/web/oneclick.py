"""Unsubscribes are written in groups: every request that arrives while one group commits
joins the next, and each request is answered once its group is committed.

A one-click unsubscribe must be honoured before it is answered (RFC 8058 §3.2 lets the
sender do it later, but Gmail and Yahoo count a 200 as done). One transaction per request
costs a few milliseconds of commit each, serialised on SQLite: 200 readers pressing
"unsubscribe" at once (a mailbox provider replaying a batch) would wait a second for the
last. One transaction per group costs one commit for all of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import datetime
from typing import Callable

from starlette.concurrency import run_in_threadpool

from ..store import Store
from ..store.subscribers import Source

log = logging.getLogger(__name__)


class GroupCommit:
    def __init__(self, store: Store, clock: Callable[[], datetime]):
        self.store = store
        self.clock = clock
        self._waiting: list[tuple[str, int, Source, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def unsubscribe(self, channel_id: str, subscriber_id: int, source: Source) -> bool:
        """Unsubscribe and return once it is committed: True if this request changed the
        subscriber, False if they were already suppressed. Raises what the store raised."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((channel_id, subscriber_id, source, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write())
        return await future

    async def _write(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            by_list: dict[tuple[str, Source], list[tuple[int, asyncio.Future[bool]]]] = defaultdict(list)
            for channel_id, subscriber_id, source, future in group:
                by_list[channel_id, source].append((subscriber_id, future))
            for (channel_id, source), items in by_list.items():
                try:
                    done = await run_in_threadpool(self.store.subscribers.unsubscribe_many, channel_id,
                                                   [i for i, _ in items], now=self.clock(), source=source)
                except Exception as exc:  # every waiter hears it; the next group tries afresh
                    log.exception("unsubscribing %d reader(s) of %s failed", len(items), channel_id)
                    for _, future in items:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for subscriber_id, future in items:
                    if not future.done():
                        future.set_result(subscriber_id in done)
                        done.discard(subscriber_id)  # a second request for the same reader: already done
