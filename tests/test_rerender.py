"""A template Telegram refuses, then fixed: the failed posts are rendered again and go out
(``outbox rerender``); an edition that failed whole can give its articles back to the
channel's cursor (``outbox release``). Against the fake Bot API, which refuses what
Telegram refuses.

The defect: with ``<p>`` in article.html every post failed permanently ("Unsupported tag"),
and restoring the template could not recover them: the rendered text was stored and the
cursor already counted the articles.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.app import App
from bot.config import parse_config
from bot.publish import release, rerender
from bot.store import OutboxError, Status
from tests.conftest import ROOT
from tests.fakes.bot_api import FakeBotApi

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

NOW = datetime(2026, 11, 29, 7, 0, tzinfo=timezone.utc)
BAD = "<p><b>{{ article.title|tg }}</b></p>\n{{ article.url }}\n"
GOOD = "<b>{{ article.title|tg }}</b>\n{{ article.url }}\n"


def app_with(tmp_path, db_url, api, monkeypatch) -> App:
    (tmp_path / "tpl" / "telegram").mkdir(parents=True)
    (tmp_path / "tpl" / "telegram" / "article.html").write_text(BAD, encoding="utf-8")
    monkeypatch.setenv("RR_TG_TOKEN", api.token)
    cfg = parse_config({
        "site": {"name": "L’Écho du Sahel", "base_url": "https://echo.example"},
        "storage": {"url": db_url},
        "templates": {"folder": "tpl"},
        "sources": [{"id": "echo", "url": str(ROOT / "config" / "demo" / "feed.xml")}],
        "channels": [{"id": "fil", "type": "telegram", "mode": "article", "schedule": {"every": "1h"},
                      "lookback": "3650d", "max_articles": 20,
                      "transport": {"type": "telegram", "chat_id": "@tamtam_test", "token_env": "RR_TG_TOKEN",
                                    "base_url": api.base_url, "base_file_url": api.base_file_url,
                                    "per_chat_limit": 100}}],
    }, base_dir=str(tmp_path))
    return App(cfg, clock=lambda: datetime.now(timezone.utc))


async def settle(app: App) -> None:
    """once, then dispatch until nothing is pending (a failure holds a chat's later posts back
    until the next dispatch, to keep their order)."""
    await app.once()
    while any(True for _ in app.store.outbox.list(Status.PENDING)):
        await app.dispatch()


async def test_a_fixed_template_recovers_the_failed_posts(tmp_path, db_url, monkeypatch):
    with FakeBotApi(per_chat_limit=100) as api:
        app = app_with(tmp_path, db_url, api, monkeypatch)
        await settle(app)
        rows = list(app.store.outbox.list(Status.FAILED))
        assert len(rows) == 12 and all("unsupported start tag" in r.last_error.lower() for r in rows)
        assert api.sent == []
        edition = rows[0].edition_id
        # the admin fixes the template (a new App reads it), then renders the edition again
        (tmp_path / "tpl" / "telegram" / "article.html").write_text(GOOD, encoding="utf-8")
        await app.aclose()
        app = App(app.config, store=app.store, clock=app.clock)
        done = rerender(app.channels, app.store, app.config.channels[0], edition, now=NOW)
        assert (done.updated, done.added, done.dropped, done.unmatched) == (12, 0, 0, 0)
        report = await app.dispatch()
        await app.aclose()
    assert report.sent == 12 and len(api.sent) == 12 and all("<p>" not in (m.text or m.caption) for m in api.sent)
    assert {r.status for r in app.store.outbox.of_edition(edition)} == {Status.SENT}


async def test_an_edition_that_failed_whole_can_be_released_to_the_next(tmp_path, db_url, monkeypatch):
    with FakeBotApi(per_chat_limit=100) as api:
        app = app_with(tmp_path, db_url, api, monkeypatch)
        await settle(app)
        edition = next(iter(app.store.outbox.list(Status.FAILED))).edition_id
        assert app.publish(app.config.channels[0]).edition_id is None  # the cursor counts those articles
        assert release(app.store, edition, now=NOW) == 12
        assert {r.status for r in app.store.outbox.of_edition(edition)} == {Status.DISMISSED}
        (tmp_path / "tpl" / "telegram" / "article.html").write_text(GOOD, encoding="utf-8")
        await app.aclose()
        app = App(app.config, store=app.store, clock=app.clock)
        result = app.publish(app.config.channels[0])
        assert result.articles == 12  # the released articles went in the next edition
        report = await app.dispatch()
        await app.aclose()
    assert report.sent == 12 and len(api.sent) == 12
    with pytest.raises(OutboxError, match="only an edition whose messages all failed"):
        release(app.store, result.edition_id, now=NOW)


def test_preview_says_what_telegram_would_refuse(tmp_path, db_url, monkeypatch):
    """check and preview validate each rendered message against the channel's own rules."""
    from bot.publish import preview

    with FakeBotApi() as api:
        app = app_with(tmp_path, db_url, api, monkeypatch)
        result = preview(app.channels, app.store, app.config.channels[0], now=NOW, sample=True)
    assert result.problems and all("<p>" in p for p in result.problems)
