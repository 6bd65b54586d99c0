"""The database on SQLite and PostgreSQL: migrations, times, savepoints, the runner lock."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from bot.store import Store
from bot.store import tables as t
from bot.store.db import MIGRATIONS, Database, head_revision
from tests.conftest import ROOT

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=timezone.utc)


def test_migrations_create_every_table_and_are_idempotent(store: Store):
    store.db.migrate()  # a second time changes nothing
    names = set(inspect(store.engine).get_table_names())
    assert {"articles", "sources", "channels", "editions", "edition_articles", "outbox", "subscribers",
            "schedule_runs", "alembic_version"} <= names
    assert "apscheduler_jobs" not in names  # next runs come from schedule_runs now


def test_schema_matches_the_models(store: Store):
    """The migrations and tables.py describe the same columns (autogenerate finds nothing to do)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
    assert diff == []


def _alembic_config(conn) -> AlembicConfig:  # type: ignore[no-untyped-def]
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def _version(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]


def test_the_head_read_from_the_files_is_alembics():
    assert head_revision() is not None
    assert [head_revision()] == ScriptDirectory.from_config(_alembic_config(None)).get_heads()


def test_a_database_at_head_is_not_migrated_again_and_one_behind_is(db_url, monkeypatch):
    """At head, migrate reads the version and stops (Alembic is not even loaded); one
    migration behind, it runs Alembic, which brings it to head."""
    Store(db_url).close()
    upgrades: list[str] = []
    real = command.upgrade
    monkeypatch.setattr(command, "upgrade", lambda cfg, rev, *a, **kw: (upgrades.append(rev), real(cfg, rev, *a, **kw)))
    db = Database(db_url)
    assert db.at_head()
    db.migrate()
    assert upgrades == []

    with db.engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "-1")
    assert _version(db) != [head_revision()] and not db.at_head()
    assert "pruned" not in {c["name"] for c in inspect(db.engine).get_columns("editions")}
    db.migrate()
    assert upgrades == ["head"]
    assert _version(db) == [head_revision()] and db.at_head()
    assert "pruned" in {c["name"] for c in inspect(db.engine).get_columns("editions")}
    db.close()


def test_a_new_database_is_not_at_head(db_url):
    db = Database(db_url)
    assert not db.at_head()  # no alembic_version table yet
    db.migrate()
    assert db.at_head()
    db.close()


def test_opening_a_store_at_head_loads_no_alembic(db_url):
    Store(db_url).close()
    code = f"import sys; from bot.store import Store; Store({db_url!r}).close(); print('alembic' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_upgrade_from_the_job_store_keeps_when_jobs_last_ran(db_url):
    """A database of 0.1 (APScheduler's job table) upgrades with each edition's and poll's
    last run seeded from what it recorded, so the first start plans from there."""
    db = Database(db_url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with db.engine.begin() as conn:
        conn.execute(t.channels.insert(), [{"id": "news", "started_at": NOW - timedelta(days=9),
                                            "last_edition_at": NOW - timedelta(hours=2)},
                                           {"id": "fresh", "started_at": NOW, "last_edition_at": None}])
        conn.execute(t.sources.insert(), [{"id": "echo", "error_count": 0, "last_polled_at": NOW},
                                          {"id": "never", "error_count": 0, "last_polled_at": None}])
        conn.execute(text("INSERT INTO apscheduler_jobs (id, next_run_time, job_state) VALUES ('edition:news', 1, :s)"),
                     {"s": b"pickled"})
    db.migrate()
    names = set(inspect(db.engine).get_table_names())
    with db.engine.connect() as conn:
        runs = {r.job_id: r.last_run_at for r in conn.execute(select(t.schedule_runs))}
    db.close()
    assert "apscheduler_jobs" not in names
    assert runs == {"edition:news": NOW - timedelta(hours=2), "poll:echo": NOW}


def test_upgrade_merges_addresses_that_differ_only_in_case(db_url):
    """0.1 kept dup@ex.ml, DUP@ex.ml and Dup@EX.ML as three subscribers; 0003 makes them
    one (the oldest row, active if any was), and ids keep counting after the copied ones."""
    db = Database(db_url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    rows = [("dup@ex.ml", False), ("DUP@ex.ml", True), ("Dup@EX.ML", False), ("solo@ex.ml", False)]
    with db.engine.begin() as conn:
        for i, (email, active) in enumerate(rows):
            conn.execute(text("INSERT INTO subscribers (channel_id, email, name, token, active, created_at) "
                              "VALUES ('news', :e, NULL, :t, :a, :c)"),
                         {"e": email, "t": f"token-{i}", "a": active, "c": NOW.replace(tzinfo=None)})
    db.migrate()
    store = Store(db_url)
    subs = store.subscribers.list("news", active_only=False)
    assert [(s.email, s.status, s.token) for s in subs] == [("dup@ex.ml", "active", "token-0"),
                                                           ("solo@ex.ml", "unsubscribed", "token-3")]
    assert store.subscribers.add("news", "new@ex.ml", None, now=NOW).created  # the id sequence continues
    store.close()
    db.close()


def test_times_come_back_aware_utc(store: Store):
    from bot.models import Article

    bamako_noon = datetime(2026, 11, 28, 12, 0, tzinfo=timezone(timedelta(hours=0)))
    paris_noon = datetime(2026, 11, 28, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    store.articles.upsert([Article(source_id="s", guid="z", url="https://ex.example/z", title="t",
                                   published_at=bamako_noon)], now=paris_noon)
    with store.engine.connect() as conn:
        row = conn.execute(select(t.articles.c.published_at, t.articles.c.first_seen_at)).one()
    assert row.published_at == bamako_noon and row.published_at.utcoffset() == timedelta(0)
    assert row.first_seen_at == paris_noon and row.first_seen_at.utcoffset() == timedelta(0)
    assert row.first_seen_at.hour == 11


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
    assert store.articles.source_state("x").error_count == 0 and store.articles.source_state("y").error_count == 0
    with store.engine.connect() as conn:
        assert {r.id for r in conn.execute(select(t.sources.c.id))} == {"x", "y"}
