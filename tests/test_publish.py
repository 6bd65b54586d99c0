"""Edition → render → outbox in one transaction (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from bot.channels.registry import Channels
from bot.config import parse_config
from bot.errors import TemplateError
from bot.models import Article
from bot.publish import preview, publish
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
    store.articles.upsert(articles(3), now=NOW)
    for who in ("awa@example.org", "ali@example.org"):
        store.subscribers.add("news", who, None, now=NOW)
    result = publish(Channels(cfg), store, cfg.channels[0], now=NOW)
    assert (result.articles, result.messages) == (3, 2)
    with store.engine.connect() as conn:
        rows = conn.execute(select(t.outbox).order_by(t.outbox.c.id)).all()
        shared = conn.execute(select(t.editions.c.shared)).scalar_one()
    assert [r.key for r in rows] == [f"news:e{result.edition_id}:awa@example.org",
                                     f"news:e{result.edition_id}:ali@example.org"]
    # the digest, and the whole email compiled once for the readers without a name
    assert list(shared) == ["digest", "digest.anonymous"]
    # French typography binds « » to their words with no-break spaces
    assert "Titre «&nbsp;0&nbsp;» &amp; co" in shared["digest"]["html"]
    assert shared["digest.anonymous"]["html_fields"] == ["unsubscribe"]  # the one per-reader piece here
    subs = {s.email: s for s in store.subscribers.iter("news")}
    for r in rows:  # per recipient: which part and who, never the article list nor a rendered envelope
        assert r.payload == {"p": "digest", "s": subs[r.destination].id, "t": subs[r.destination].token} or \
            r.payload == {"p": "digest", "s": subs[r.destination].id}
        assert len(json.dumps(r.payload)) < 100


def test_email_article_mode_sends_one_email_per_article(tmp_path, store, db_url):
    cfg = make_config(tmp_path, db_url, mode="article")
    store.articles.upsert(articles(2), now=NOW)
    store.subscribers.add("news", "awa@example.org", "Awa", now=NOW)
    result = publish(Channels(cfg), store, cfg.channels[0], now=NOW)
    assert result.messages == 2
    with store.engine.connect() as conn:
        shared = conn.execute(select(t.editions.c.shared)).scalar_one()
    # one part per article, each compiled for readers with and without a name
    assert sorted(shared) == ["a1", "a1.anonymous", "a1.named", "a2", "a2.anonymous", "a2.named"]


def test_template_error_records_nothing(tmp_path, store, db_url):
    folder = tmp_path / "tpl" / "email"
    folder.mkdir(parents=True)
    (folder / "digest.html").write_text("{{ edition.nope.title }}", encoding="utf-8")
    cfg = make_config(tmp_path, db_url)
    cfg = cfg.model_copy(update={"templates": cfg.templates.model_copy(update={"folder": str(tmp_path / "tpl")})})
    store.articles.upsert(articles(2), now=NOW)
    store.subscribers.add("news", "awa@example.org", None, now=NOW)
    with pytest.raises(TemplateError, match="email/digest.html"):
        publish(Channels(cfg), store, cfg.channels[0], now=NOW)
    assert count(store, t.editions) == 0 and count(store, t.edition_articles) == 0 and count(store, t.outbox) == 0
    # once the template is fixed, the same articles go out: nothing was lost
    (folder / "digest.html").unlink()
    assert publish(Channels(cfg), store, cfg.channels[0], now=NOW).articles == 2


def test_no_subscribers_is_reported(tmp_path, store, db_url):
    cfg = make_config(tmp_path, db_url)
    store.articles.upsert(articles(1), now=NOW)
    result = publish(Channels(cfg), store, cfg.channels[0], now=NOW)
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
    store.articles.upsert(articles(3), now=NOW)
    channels = Channels(cfg)
    assert publish(channels, store, cfg.channels[0], now=NOW).messages == 3
    assert publish(channels, store, cfg.channels[1], now=NOW).messages == 3
    with store.engine.connect() as conn:
        dests = {(row.channel_id, row.destination) for row in conn.execute(select(t.outbox))}
    assert dests == {("tg", "@echo"), ("x", "@echo_sahel")}


def test_preview_renders_waiting_articles_and_records_nothing(tmp_path, store, db_url):
    cfg = make_config(tmp_path, db_url)
    store.articles.upsert(articles(2), now=NOW)
    store.subscribers.add("news", "awa@example.org", "Awa", now=NOW)
    result = preview(Channels(cfg), store, cfg.channels[0], now=NOW)
    assert result.waiting == 2 and not result.sample
    assert [a.guid for a in result.edition.articles] == ["g0", "g1"]
    files = {f.suffix: f.text for f in result.files}
    assert list(files) == [".html", ".txt"]
    assert "Titre «&nbsp;1&nbsp;» &amp; co" in files[".html"] and "Titre «\u00a01\u00a0» & co" in files[".txt"]
    assert "Awa" in files[".html"]  # the first subscriber's envelope
    assert count(store, t.editions) == 0 and count(store, t.outbox) == 0 and count(store, t.channels) == 0
    written = result.write(cfg.channels[0], tmp_path / "preview")
    assert [p.name for p in written] == ["news.html", "news.txt"]
    assert written[0].read_text(encoding="utf-8") == files[".html"]
    sample = preview(Channels(cfg), store, cfg.channels[0], now=NOW, sample=True)
    assert sample.sample and sample.waiting == 2
    assert sample.edition.articles and {a.guid for a in sample.edition.articles}.isdisjoint({"g0", "g1"})


def test_preview_with_nothing_waiting_uses_the_sample(tmp_path, store, db_url):
    cfg = make_config(tmp_path, db_url)
    result = preview(Channels(cfg), store, cfg.channels[0], now=NOW)
    assert result.sample and result.waiting == 0 and result.edition.articles
    assert count(store, t.channels) == 0  # the channel's start is not recorded by a preview
