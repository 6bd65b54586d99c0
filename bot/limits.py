"""Rate limits that hold by construction: no window of ``period`` ever holds more than
``limit`` sends.

A token bucket that starts full (aiolimiter, and PTB's AIORateLimiter built on it) lets a
burst of ``limit`` through and then refills, so the first minute of a Telegram channel saw
40 posts against Telegram's 20 a minute. Here each key keeps the start times of its recent
sends — a sliding log — and a send waits until the oldest one in the window has aged out.
Memory is ``limit`` timestamps per key.

Transports declare their limits (:class:`RateLimit`: a key shared by everything that
counts against the same quota, a limit, a period); the dispatcher waits on all of them
*before* it claims a message, so a stop while waiting leaves nothing ``sending``. Keys are
process-wide: two channels posting with one bot share the bot's quota.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable


@dataclass(frozen=True)
class RateLimit:
    key: str  # what shares the quota, e.g. "telegram:123456:chat:@echo" (never a secret)
    limit: int  # at most this many sends …
    period: float  # … in any window of this many seconds


class SlidingWindow:
    def __init__(self, limit: int, period: float, clock: Callable[[], float] = time.monotonic):
        if limit < 1 or period <= 0:
            raise ValueError(f"a rate limit needs limit ≥ 1 and period > 0, got {limit} per {period}")
        self.limit, self.period, self.clock = limit, period, clock
        self._starts: deque[float] = deque()
        self._lock = asyncio.Lock()

    def wait_time(self) -> float:
        """Seconds until one more send fits (0 when it fits now)."""
        now = self.clock()
        while self._starts and now - self._starts[0] >= self.period:
            self._starts.popleft()
        if len(self._starts) < self.limit:
            return 0.0
        return self.period - (now - self._starts[0])

    def take(self) -> None:
        self._starts.append(self.clock())

    async def acquire(self) -> None:
        async with self._lock:  # first come, first served
            while (wait := self.wait_time()) > 0:
                await asyncio.sleep(wait)
            self.take()


class Limiters:
    """Every sliding window of a process, by key."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._windows: dict[str, SlidingWindow] = {}

    def window(self, limit: RateLimit) -> SlidingWindow:
        w = self._windows.get(limit.key)
        if w is None or (w.limit, w.period) != (limit.limit, limit.period):
            w = self._windows[limit.key] = SlidingWindow(limit.limit, limit.period, self.clock)
        return w

    async def acquire(self, limits: Iterable[RateLimit]) -> None:
        """Wait until every limit allows one more send, then count it against all of them
        at once (so waiting on one never burns a slot of another)."""
        windows = [self.window(limit) for limit in sorted(limits, key=lambda l: l.key)]
        held: list[SlidingWindow] = []
        try:
            for w in windows:  # in key order, so two senders never wait on each other crosswise
                await w._lock.acquire()
                held.append(w)
            while windows and (wait := max(w.wait_time() for w in windows)) > 0:
                await asyncio.sleep(wait)
            for w in windows:
                w.take()
        finally:
            for w in held:
                w._lock.release()
