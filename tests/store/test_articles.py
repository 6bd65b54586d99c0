"""Articles and sources on SQLite and PostgreSQL: upsert semantics and each source's poll state."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from bot.models import Article
from bot.store import Store
from bot.store import tables as t

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=timezone.utc)


def art(guid: str, title: str = "Titre", **kw) -> Article:
    return Article(source_id="s", guid=guid, url=f"https://ex.example/{guid}", title=title,
                   published_at=kw.pop("published_at", NOW - timedelta(hours=1)), **kw)


def test_upsert_new_updated_unchanged(store: Store):
    r = store.articles.upsert([art("a", "Élections : « le jour J »"), art("b")], now=NOW)
    assert (r.new, r.updated, r.unchanged) == (2, 0, 0)
    r = store.articles.upsert([art("a", "Élections : « le jour J » (mis à jour)"), art("b")],
                              now=NOW + timedelta(1))
    assert (r.new, r.updated, r.unchanged) == (0, 1, 1)
    with store.engine.connect() as conn:
        row = conn.execute(select(t.articles).where(t.articles.c.guid == "a")).one()
    assert row.title.endswith("(mis à jour)")
    assert row.first_seen_at == NOW  # an edit is not news a second time
    assert row.published_at.tzinfo is not None and row.published_at == NOW - timedelta(hours=1)


def test_an_edit_never_moves_the_publication_date(store: Store):
    store.articles.upsert([art("a")], now=NOW)
    store.articles.upsert([art("a", "changé", published_at=NOW + timedelta(days=3))], now=NOW + timedelta(days=3))
    with store.engine.connect() as conn:
        row = conn.execute(select(t.articles).where(t.articles.c.guid == "a")).one()
    assert row.published_at == NOW - timedelta(hours=1)


def test_duplicate_guids_in_one_feed_are_stored_once(store: Store):
    r = store.articles.upsert([art("a"), art("a")], now=NOW)
    assert r.new == 1 and store.articles.count() == 1


def test_source_state_keeps_validators_across_errors(store: Store):
    assert store.articles.source_state("s").etag is None  # never polled: empty state
    store.articles.record_poll("s", now=NOW, etag='"v1"', last_modified="Sat, 28 Nov 2026 08:00:00 GMT")
    store.articles.record_poll("s", now=NOW + timedelta(minutes=15), error="timeout")
    st = store.articles.source_state("s")
    assert st.etag == '"v1"' and st.last_error == "timeout" and st.error_count == 1
    assert st.last_ok_at == NOW and st.last_polled_at == NOW + timedelta(minutes=15)
    store.articles.record_poll("s", now=NOW + timedelta(minutes=30), etag='"v2"')
    st = store.articles.source_state("s")
    assert st.etag == '"v2"' and st.last_error is None and st.error_count == 0


def test_a_first_poll_that_fails_counts_one_error(store: Store):
    store.articles.record_poll("s", now=NOW, error="timeout")
    store.articles.record_poll("s", now=NOW + timedelta(minutes=15), error="timeout")
    st = store.articles.source_state("s")
    assert st.error_count == 2 and st.last_ok_at is None and st.etag is None


def test_one_entry_the_database_refuses_does_not_lose_the_others(store: Store):
    monster = art("m" * 3000)  # longer than the guid column: PostgreSQL refuses it
    nul = art("nul", "Titre avec \x00 dedans")  # PostgreSQL refuses NUL in text
    r = store.articles.upsert([art("a"), monster, nul, art("b")], now=NOW)
    assert r.new + r.rejected == 4 and store.articles.count() == r.new
    with store.engine.connect() as conn:
        guids = {row.guid for row in conn.execute(select(t.articles.c.guid))}
    assert {"a", "b"} <= guids


def test_a_long_poll_is_written_in_chunks_new_edited_and_unchanged_alike(store: Store):
    from bot.store.articles import CHUNK

    count = 2 * CHUNK + 3
    first = store.articles.upsert((art(f"g{i}", f"Titre {i}") for i in range(count)), now=NOW)  # a stream
    assert (first.new, first.updated, first.unchanged) == (count, 0, 0)
    again = [art(f"g{i}", f"Titre {i}" + (" (corrigé)" if i % 7 == 0 else "")) for i in range(count)]
    again += [art("nouveau", "Nouveau"), art("g1", "Titre 1")]  # listed twice: stored once
    r = store.articles.upsert(again, now=NOW + timedelta(hours=1))
    edited = len(range(0, count, 7))
    assert (r.new, r.updated, r.unchanged, r.rejected) == (1, edited, count - edited, 0)
    assert store.articles.count() == count + 1
    with store.engine.connect() as conn:
        rows = {row.guid: row for row in conn.execute(select(t.articles))}
    assert rows["g7"].title == "Titre 7 (corrigé)" and rows["g7"].first_seen_at == NOW
    assert rows["g7"].updated_at == NOW + timedelta(hours=1) and rows["g8"].updated_at == NOW
    assert rows["nouveau"].first_seen_at == NOW + timedelta(hours=1)


def test_one_refused_entry_in_a_long_poll_loses_only_itself(store: Store):
    from bot.store.articles import CHUNK

    items = [art(f"g{i}") for i in range(CHUNK + 10)]
    items[CHUNK - 5] = art("nul", "Titre avec \x00 dedans")  # PostgreSQL refuses NUL in text
    items[CHUNK + 2] = art("m" * 3000)  # longer than the guid column: PostgreSQL refuses it
    r = store.articles.upsert(items, now=NOW)
    assert r.new + r.rejected == len(items) and store.articles.count() == r.new
    assert r.new >= len(items) - 2
    with store.engine.connect() as conn:
        guids = {row.guid for row in conn.execute(select(t.articles.c.guid))}
    assert {f"g{i}" for i in range(CHUNK + 10) if i not in (CHUNK - 5, CHUNK + 2)} <= guids


def test_sqlite_driver_insert_stores_what_sqlalchemy_would(tmp_path, monkeypatch):
    """New articles reach SQLite through the driver's executemany (bot.store.articles
    ._insert_sqlite); the rows must be the ones SQLAlchemy's own insert writes, byte for byte."""
    import sqlite3  # here: only this test reads the files without SQLAlchemy

    from bot.store import articles as store_articles

    arts = [art(f"g{i}", "Titre « é »", author=None if i % 2 else "Awa Sangaré",
                categories=() if i % 3 else ("Économie", "b"), image_url=None if i % 2 else "https://ex.example/i.jpg",
                image_alt=None if i % 4 else "une photo", image_width=None if i % 2 else 1024,
                image_height=None if i % 2 else 683)
            for i in range(300)]
    rows = {}
    for name in ("driver", "sqlalchemy"):
        if name == "sqlalchemy":
            monkeypatch.setattr(store_articles, "_insert_sqlite",
                                lambda conn, rows: conn.execute(t.articles.insert(), rows))
        store = Store(f"sqlite:///{tmp_path / name}.db")
        assert store.articles.upsert(arts, now=NOW).new == 300
        store.close()
        with sqlite3.connect(tmp_path / f"{name}.db") as conn:
            rows[name] = conn.execute("SELECT * FROM articles ORDER BY id").fetchall()
    assert rows["driver"] == rows["sqlalchemy"]
