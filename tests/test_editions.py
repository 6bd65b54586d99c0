"""The per-channel cursor: what a channel sends next (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError

from bot import editions
from bot.config import parse_config
from bot.models import Article
from bot.store import tables as t

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=timezone.utc)


def cfg(**chan):
    ch = {"id": "news", "type": "email", "schedule": {"cron": "0 7 * * *"}, "transport": {"type": "file"}}
    ch.update(chan)
    return parse_config({"site": {"name": "x", "base_url": "https://x.example"}, "channels": [ch]}).channels[0]


def art(guid, hours_ago=1, cats=()):
    return Article(source_id="s", guid=guid, url=f"https://x.example/{guid}", title=guid,
                   published_at=NOW - timedelta(hours=hours_ago), categories=tuple(cats))


def edition(store, channel, now=NOW):
    with store.begin() as conn:
        return editions.record_edition(conn, channel, now)


def test_each_article_goes_out_once_per_channel(store):
    ch = cfg()
    store.articles.upsert([art("a"), art("b", 2)], now=NOW)
    e1 = edition(store, ch)
    assert [a.guid for a in e1.articles] == ["a", "b"]  # newest first
    assert edition(store, ch, NOW + timedelta(hours=1)) is None  # nothing new: skipped
    store.articles.upsert([art("a"), art("c", 0)], now=NOW + timedelta(hours=2))
    e3 = edition(store, ch, NOW + timedelta(hours=2))
    assert [a.guid for a in e3.articles] == ["c"]


def test_channels_have_independent_cursors(store):
    store.articles.upsert([art("a")], now=NOW)
    assert len(edition(store, cfg(id="one")).articles) == 1
    assert len(edition(store, cfg(id="two")).articles) == 1


def test_database_refuses_the_same_article_twice_on_a_channel(store):
    ch = cfg()
    store.articles.upsert([art("a")], now=NOW)
    e = edition(store, ch)
    with pytest.raises(IntegrityError):
        with store.begin() as conn:
            conn.execute(t.edition_articles.insert().values(channel_id="news", article_id=e.articles[0].id,
                                                            edition_id=e.id))


def test_an_edited_article_is_not_sent_again(store):
    ch = cfg()
    store.articles.upsert([art("a")], now=NOW)
    edition(store, ch)
    changed = Article(source_id="s", guid="a", url="https://x.example/a", title="a (corrigé)",
                      published_at=NOW)
    assert store.articles.upsert([changed], now=NOW + timedelta(hours=1)).updated == 1
    assert edition(store, ch, NOW + timedelta(hours=1)) is None


def test_cap_takes_oldest_first_and_keeps_the_rest(store):
    ch = cfg(max_articles=2)
    store.articles.upsert([art(f"a{i}", hours_ago=i) for i in range(1, 6)], now=NOW)
    first = edition(store, ch)
    assert {a.guid for a in first.articles} == {"a5", "a4"}
    second = edition(store, ch, NOW + timedelta(minutes=1))
    assert {a.guid for a in second.articles} == {"a3", "a2"}
    third = edition(store, ch, NOW + timedelta(minutes=2))
    assert {a.guid for a in third.articles} == {"a1"}


def test_new_channel_looks_back_only_so_far(store):
    store.articles.upsert([art("old", hours_ago=24 * 30), art("recent", hours_ago=5)], now=NOW)
    e = edition(store, cfg(lookback="1d"))
    assert [a.guid for a in e.articles] == ["recent"]
    # an article first seen after the channel started always counts, whatever its date
    store.articles.upsert([art("backdated", hours_ago=24 * 90)], now=NOW + timedelta(hours=1))
    e2 = edition(store, cfg(lookback="1d"), NOW + timedelta(hours=2))
    assert [a.guid for a in e2.articles] == ["backdated"]


def test_category_filters_fold_case_and_accents(store):
    store.articles.upsert([art("p", cats=["Politique"]), art("e", cats=["Économie"]),
                           art("x", cats=["Économie", "Annonces"])], now=NOW)
    e = edition(store, cfg(categories=["economie", "politique"], exclude_categories=["annonces"]))
    assert sorted(a.guid for a in e.articles) == ["e", "p"]


def test_empty_edition_sent_only_when_asked(store):
    assert edition(store, cfg()) is None
    e = edition(store, cfg(id="always", send_empty=True))
    assert e is not None and e.articles == ()


def test_preview_records_nothing(store):
    ch = cfg()
    store.articles.upsert([art("a")], now=NOW)
    conn = store.engine.connect()
    trans = conn.begin()
    assert len(editions.preview_edition(conn, ch, NOW).articles) == 1
    trans.rollback()
    conn.close()
    assert len(edition(store, ch).articles) == 1
