"""Telegram's flood limits hold by construction: no window of the configured period ever
holds more than the per-chat limit, from the very first post, and two channels posting
with one bot to one chat share the quota. The fake Bot API enforces the limits as Telegram
does (429 with retry_after) and remembers when it accepted each post, so the test judges
what arrived, not what Tamtam thinks it did.

The defect: 200 posts to one channel went out 20 in the first second, then one every 3 s —
40 in the first 60 s — because PTB's rate limiter starts with a full bucket. The periods
here are shortened (5 posts per 2 s) so the test runs in seconds; the rule is the same.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import httpx
import pytest

from bot.channels.registry import Channels
from bot.config import parse_config
from bot.dispatch import Dispatcher
from bot.store import NewMessage, Status, Store
from tests.fakes.bot_api import FakeBotApi

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

NOW = datetime(2026, 11, 29, 7, 0, tzinfo=timezone.utc)
LIMIT, PERIOD = 5, 2.0


def config(api: FakeBotApi, db_url: str, channels: tuple[str, ...]):
    transport = {"type": "telegram", "chat_id": "@tamtam_test", "token_env": "FLOOD_TG_TOKEN",
                 "base_url": api.base_url, "base_file_url": api.base_file_url, "timeout": "10s",
                 "per_chat_limit": LIMIT, "per_chat_period": f"{PERIOD}s"}
    return parse_config({"site": {"name": "L’Écho du Sahel", "base_url": "https://echo.example"},
                         "storage": {"url": db_url},
                         "channels": [{"id": c, "type": "telegram", "mode": "article", "schedule": {"every": "1h"},
                                       "transport": transport} for c in channels]})


async def test_no_window_holds_more_than_the_per_chat_limit_across_two_channels(db_url, monkeypatch):
    with FakeBotApi(per_chat_limit=LIMIT, per_chat_period=PERIOD) as api:
        monkeypatch.setenv("FLOOD_TG_TOKEN", api.token)
        cfg = config(api, db_url, ("fil", "alertes"))
        store = Store(db_url)
        with store.begin() as conn:
            store.outbox.enqueue(conn, [NewMessage(f"{ch}:e1:p{i}", ch, "telegram", "@tamtam_test",
                                                   {"text": f"« Dépêche {ch} n° {i} »", "photo_url": None})
                                        for i in range(6) for ch in ("fil", "alertes")], now=NOW)
        channels = Channels(cfg)
        dispatcher = Dispatcher(cfg, store, channels, clock=lambda: datetime.now(timezone.utc))
        t0 = time.monotonic()
        report = await dispatcher.run_once()
        elapsed = time.monotonic() - t0
        await dispatcher.aclose()
        sent_rows = list(store.outbox.list(Status.SENT))
        store.close()
        assert report.sent == 12 and len(sent_rows) == 12 and len(api.sent) == 12
        assert api.flood_refusals == 0  # never over the limit, so Telegram never said 429
        assert api.sends_in_window("@tamtam_test", PERIOD) <= LIMIT
        assert elapsed >= 2 * PERIOD  # 12 posts at 5 per window need two waits: the limit was held, not dodged


async def test_the_fake_refuses_a_client_that_ignores_the_limit(monkeypatch):
    """The fake is strict: a client posting faster than the limit gets Telegram's 429."""
    with FakeBotApi(per_chat_limit=LIMIT, per_chat_period=PERIOD) as api:
        async with httpx.AsyncClient() as client:
            answers = [await client.post(f"{api.base_url}{api.token}/sendMessage",
                                         data={"chat_id": "@tamtam_test", "text": f"n° {i}"}) for i in range(LIMIT + 2)]
    assert [a.status_code for a in answers] == [200] * LIMIT + [429, 429]
    assert answers[-1].json()["parameters"]["retry_after"] >= 1 and api.flood_refusals == 2
