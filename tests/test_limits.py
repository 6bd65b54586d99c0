"""bot.limits: no window of ``period`` ever holds more than ``limit`` sends, from the first
send on (a bucket that starts full let 40 Telegram posts through in a channel's first
minute against Telegram's 20). Time is a parameter: a fake clock, no sleeping for real."""

from __future__ import annotations

import asyncio

import pytest

from bot.limits import Limiters, RateLimit, SlidingWindow


class Clock:
    """A monotonic clock that asyncio.sleep advances (patched below)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float, *a: object) -> None:
        c.now += max(0.0, seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return c


def max_in_any_window(times: list[float], period: float) -> int:
    return max(sum(1 for u in times if t <= u < t + period) for t in times)


async def test_no_window_ever_holds_more_than_the_limit(clock: Clock) -> None:
    limiters = Limiters(clock)
    times = []
    for _ in range(200):
        await limiters.acquire([RateLimit("telegram:1:chat:@echo", 20, 60.0)])
        times.append(clock.now)
    assert max_in_any_window(times, 60.0) == 20
    assert times[19] == 0.0 and times[20] == 60.0  # 20 at once, then none until the first ages out
    assert times[-1] == 9 * 60.0  # and no slower than the limit allows


async def test_two_limits_hold_together_and_keys_are_shared(clock: Clock) -> None:
    limiters = Limiters(clock)
    chat_a, chat_b = RateLimit("bot:chat:a", 20, 60.0), RateLimit("bot:chat:b", 20, 60.0)
    bot = RateLimit("bot", 30, 1.0)
    times: dict[str, list[float]] = {"a": [], "b": [], "all": []}

    async def channel(name: str, chat: RateLimit) -> None:
        for _ in range(50):
            await limiters.acquire([chat, bot])
            times[name].append(clock.now)
            times["all"].append(clock.now)

    await asyncio.gather(channel("a", chat_a), channel("b", chat_b), channel("a", chat_a))
    assert max_in_any_window(times["a"], 60.0) <= 20  # two channels on one chat share its quota
    assert max_in_any_window(times["b"], 60.0) <= 20
    assert max_in_any_window(times["all"], 1.0) <= 30


async def test_a_window_refuses_a_nonsense_limit() -> None:
    with pytest.raises(ValueError):
        SlidingWindow(0, 60.0)
