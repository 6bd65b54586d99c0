"""Edition → render → outbox in one transaction (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from bot.config import parse_config
from bot.errors import TemplateError
from bot.models import Article
from bot.publish import publish
from bot.render import Renderer
from bot.store import tables as t

NOW = datetime(2026, 11, 29, 7, 0, tzinfo=timezone.utc)


def make_config(tmp_path, db_url, **channel):
    ch = {"id": "news", "type": "email", "schedule": {"cron": "0 7 * * *"}, "lookback": "7d",
          "unsubscribe_url": "https://echo.example/desabonnement?jeton={token}&a={email}",
          "transport": {"type": "file", "dir": str(tmp_path / "out")}}
    ch.update(channel)
    return parse_config({"site": {"name": "L’Écho du Sahel", "base_url": "https://echo.example"},
                         "storage": {"url": db_url}, "channels": [ch]}, base_dir=str(tmp_path))


def articles(n):
    return [Article(source_id="s", guid=f"g{i}", url=f"https://echo.example/{i}", title=f"Titre « {i} » & co",
                    published_at=NOW - timedelta(hours=i + 1), summary="Résumé de l’article.") for i in range(n)]


def count(store, table):
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_digest_one_row_per_subscriber_shared_part_stored_once(tmp_path, store, db_url):
    cfg = make_config(tmp_path, db_url)
    store.upsert_articles(articles(3), now=NOW)
    for who in ("awa@example.org", "ali@example.org"):
        store.add_subscriber("news", who, None, now=NOW)
    result = publish(cfg, Renderer(cfg), store, cfg.channels[0], now=NOW)
    assert (result.articles, result.messages) == (3, 2)
    with store.engine.connect() as conn:
        rows = conn.execute(select(t.outbox).order_by(t.outbox.c.id)).all()
        shared = conn.execute(select(t.editions.c.shared)).scalar_one()
    assert [r.key for r in rows] == [f"news:e{result.edition_id}:awa@example.org",
                                     f"news:e{result.edition_id}:ali@example.org"]
    assert list(shared["email"]) == ["digest"]
    assert "Titre « 0 » &amp; co" in shared["email"]["digest"]["html"]
    for r in rows:  # per recipient: only the envelope, never the article list
        assert "Titre" not in r.payload["envelope"]["html_head"] + r.payload["envelope"]["html_tail"]
        assert r.payload["headers"]["List-Unsubscribe"].startswith("<https://echo.example/desabonnement?jeton=")
        assert "List-Unsubscribe-Post" in r.payload["headers"]


def test_email_article_mode_sends_one_email_per_article(tmp_path, store, db_url):
    cfg = make_config(tmp_path, db_url, mode="article")
    store.upsert_articles(articles(2), now=NOW)
    store.add_subscriber("news", "awa@example.org", "Awa", now=NOW)
    result = publish(cfg, Renderer(cfg), store, cfg.channels[0], now=NOW)
    assert result.messages == 2
    with store.engine.connect() as conn:
        shared = conn.execute(select(t.editions.c.shared)).scalar_one()
    assert len(shared["email"]) == 2


def test_template_error_records_nothing(tmp_path, store, db_url):
    folder = tmp_path / "tpl" / "email"
    folder.mkdir(parents=True)
    (folder / "digest.html").write_text("{{ edition.nope.title }}", encoding="utf-8")
    cfg = make_config(tmp_path, db_url)
    cfg = cfg.model_copy(update={"templates": cfg.templates.model_copy(update={"folder": str(tmp_path / "tpl")})})
    store.upsert_articles(articles(2), now=NOW)
    store.add_subscriber("news", "awa@example.org", None, now=NOW)
    with pytest.raises(TemplateError, match="email/digest.html"):
        publish(cfg, Renderer(cfg), store, cfg.channels[0], now=NOW)
    assert count(store, t.editions) == 0 and count(store, t.edition_articles) == 0 and count(store, t.outbox) == 0
    # once the template is fixed, the same articles go out: nothing was lost
    (folder / "digest.html").unlink()
    assert publish(cfg, Renderer(cfg), store, cfg.channels[0], now=NOW).articles == 2


def test_no_subscribers_is_reported(tmp_path, store, db_url):
    cfg = make_config(tmp_path, db_url)
    store.upsert_articles(articles(1), now=NOW)
    result = publish(cfg, Renderer(cfg), store, cfg.channels[0], now=NOW)
    assert result.messages == 0 and result.note == "no active subscribers"


def test_telegram_and_x_rows_carry_their_destination(tmp_path, store, db_url):
    cfg = parse_config({
        "site": {"name": "L’Écho du Sahel", "base_url": "https://echo.example"},
        "channels": [
            {"id": "tg", "type": "telegram", "mode": "article", "schedule": {"every": "5m"}, "lookback": "7d",
             "transport": {"type": "telegram", "chat_id": "@echo"}},
            {"id": "x", "type": "x", "mode": "article", "schedule": {"every": "5m"}, "lookback": "7d",
             "transport": {"type": "x", "account": "@echo_sahel"}},
        ]})
    store.upsert_articles(articles(3), now=NOW)
    r = Renderer(cfg)
    assert publish(cfg, r, store, cfg.channels[0], now=NOW).messages == 3
    assert publish(cfg, r, store, cfg.channels[1], now=NOW).messages == 3
    with store.engine.connect() as conn:
        dests = {(row.channel_id, row.destination) for row in conn.execute(select(t.outbox))}
    assert dests == {("tg", "@echo"), ("x", "@echo_sahel")}


def test_preview_renders_waiting_articles_and_records_nothing(tmp_path, store, db_url):
    from bot.publish import preview
    from bot.render import EmailDigest

    cfg = make_config(tmp_path, db_url)
    store.upsert_articles(articles(2), now=NOW)
    store.add_subscriber("news", "awa@example.org", "Awa", now=NOW)
    result = preview(cfg, Renderer(cfg), store, cfg.channels[0], now=NOW)
    edition, items = result.edition, result.items
    assert result.waiting == 2 and not result.sample
    assert [a.guid for a in edition.articles] == ["g0", "g1"]
    digest, envelope = items[0]
    assert isinstance(digest, EmailDigest) and "Titre « 1 » &amp; co" in digest.html
    assert "Awa" in envelope.html_head + envelope.html_tail
    assert count(store, t.editions) == 0 and count(store, t.outbox) == 0 and count(store, t.channels) == 0
    sample = preview(cfg, Renderer(cfg), store, cfg.channels[0], now=NOW, sample=True).edition
    assert sample.articles and {a.guid for a in sample.articles}.isdisjoint({"g0", "g1"})
