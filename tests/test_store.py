"""The store on SQLite and PostgreSQL: migrations, article upsert semantics, subscribers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import inspect, select

from bot.models import Article
from bot.store import Store
from bot.store import tables as t

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=timezone.utc)


def art(guid: str, title: str = "Titre", **kw) -> Article:
    return Article(source_id="s", guid=guid, url=f"https://ex.example/{guid}", title=title,
                   published_at=kw.pop("published_at", NOW - timedelta(hours=1)), **kw)


def test_migrations_create_every_table_and_are_idempotent(store: Store):
    store.migrate()  # a second time changes nothing
    names = set(inspect(store.engine).get_table_names())
    assert {"articles", "sources", "channels", "editions", "edition_articles", "outbox", "subscribers",
            "apscheduler_jobs", "alembic_version"} <= names


def test_schema_matches_the_models(store: Store):
    """The migration and tables.py describe the same columns (autogenerate finds nothing to do)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
    assert [d for d in diff if not (isinstance(d, tuple) and "apscheduler" in str(d))] == []


def test_upsert_new_updated_unchanged(store: Store):
    r = store.upsert_articles([art("a", "Élections : « le jour J »"), art("b")], now=NOW)
    assert (r.new, r.updated, r.unchanged) == (2, 0, 0)
    r = store.upsert_articles([art("a", "Élections : « le jour J » (mis à jour)"), art("b")], now=NOW + timedelta(1))
    assert (r.new, r.updated, r.unchanged) == (0, 1, 1)
    with store.engine.connect() as conn:
        row = conn.execute(select(t.articles).where(t.articles.c.guid == "a")).one()
    assert row.title.endswith("(mis à jour)")
    assert row.first_seen_at == NOW  # an edit is not news a second time
    assert row.published_at.tzinfo is not None and row.published_at == NOW - timedelta(hours=1)


def test_an_edit_never_moves_the_publication_date(store: Store):
    store.upsert_articles([art("a")], now=NOW)
    store.upsert_articles([art("a", "changé", published_at=NOW + timedelta(days=3))], now=NOW + timedelta(days=3))
    with store.engine.connect() as conn:
        row = conn.execute(select(t.articles).where(t.articles.c.guid == "a")).one()
    assert row.published_at == NOW - timedelta(hours=1)


def test_duplicate_guids_in_one_feed_are_stored_once(store: Store):
    r = store.upsert_articles([art("a"), art("a")], now=NOW)
    assert r.new == 1 and store.article_count() == 1


def test_source_state_keeps_validators_across_errors(store: Store):
    store.record_poll("s", now=NOW, etag='"v1"', last_modified="Sat, 28 Nov 2026 08:00:00 GMT")
    store.record_poll("s", now=NOW + timedelta(minutes=15), error="timeout")
    st = store.source_state("s")
    assert st.etag == '"v1"' and st.last_error == "timeout" and st.error_count == 1
    assert st.last_ok_at == NOW
    store.record_poll("s", now=NOW + timedelta(minutes=30), etag='"v2"')
    st = store.source_state("s")
    assert st.etag == '"v2"' and st.last_error is None and st.error_count == 0


def test_subscribers_add_remove_readd(store: Store):
    s, created = store.add_subscriber("news", "awa@example.org", "Awa", now=NOW)
    assert created and s.active and len(s.token) >= 20
    _, created = store.add_subscriber("news", "awa@example.org", None, now=NOW)
    assert not created
    assert store.remove_subscriber("news", "awa@example.org")
    assert store.subscribers("news") == []
    assert len(store.subscribers("news", active_only=False)) == 1
    again, created = store.add_subscriber("news", "awa@example.org", None, now=NOW)
    assert created and again.name == "Awa" and again.token == s.token


def test_times_come_back_aware_utc(store: Store):
    bamako_noon = datetime(2026, 11, 28, 12, 0, tzinfo=timezone(timedelta(hours=0)))
    store.upsert_articles([art("z", published_at=bamako_noon)], now=NOW)
    with store.engine.connect() as conn:
        row = conn.execute(select(t.articles.c.published_at)).one()
    assert row.published_at == bamako_noon and row.published_at.utcoffset() == timedelta(0)


def test_sqlite_relative_path_is_created(tmp_path):
    db = tmp_path / "nested" / "dir" / "x.db"
    s = Store(f"sqlite:///{db}")
    assert db.exists()
    s.close()


def test_one_runner_per_database(store: Store, db_url):
    other = Store(db_url, migrate=False)
    try:
        with store.runner_lock() as first:
            assert first
            with other.runner_lock() as second:
                assert not second  # a second daemon or `once` must not run beside the first
        with other.runner_lock() as again:
            assert again  # released when the first runner stopped
    finally:
        other.close()


def test_one_entry_the_database_refuses_does_not_lose_the_others(store: Store):
    monster = art("m" * 3000)  # longer than the guid column: PostgreSQL refuses it
    nul = art("nul", "Titre avec \x00 dedans")  # PostgreSQL refuses NUL in text
    r = store.upsert_articles([art("a"), monster, nul, art("b")], now=NOW)
    assert r.new + r.rejected == 4 and store.article_count() == r.new
    with store.engine.connect() as conn:
        guids = {row.guid for row in conn.execute(select(t.articles.c.guid))}
    assert {"a", "b"} <= guids


def test_savepoint_rolls_back_only_the_bad_entry(store: Store):
    from sqlalchemy.exc import IntegrityError

    with store.begin() as conn:
        conn.execute(t.sources.insert().values(id="x", error_count=0))
        try:
            with conn.begin_nested():
                conn.execute(t.sources.insert().values(id="x", error_count=0))
        except IntegrityError:
            pass
        conn.execute(t.sources.insert().values(id="y", error_count=0))
    assert store.source_state("x").error_count == 0 and store.source_state("y").error_count == 0
    with store.engine.connect() as conn:
        assert {r.id for r in conn.execute(select(t.sources.c.id))} == {"x", "y"}
