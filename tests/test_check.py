"""``check`` opens a plain SQLite URL with the sqlite3 module alone: the same steps, the same
file, the same messages as the store's own engine, without loading SQLAlchemy."""

from __future__ import annotations

import sqlite3
import stat

import pytest

from bot import check as checks
from bot.check import open_storage
from bot.config import parse_config
from bot.errors import ConfigError
from bot.store import Store
from bot.store import db as store_db


def _through_the_store(url: str) -> None:
    probe = Store(url, migrate=False)
    with probe.engine.connect():
        pass
    probe.close()


def _mode(path) -> int:  # type: ignore[no-untyped-def]
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_file_is_made_as_the_store_makes_it(tmp_path):
    for name, opener in (("alone", open_storage), ("store", _through_the_store)):
        db = tmp_path / name / "sub" / "t.db"
        opener(f"sqlite:///{db}")
        assert _mode(db) == 0o600 and _mode(db.parent) == 0o700, name
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal", name


class _Recorder:
    """A DB-API connection that only records what is asked of it."""

    def __init__(self) -> None:
        self.isolation_level: object = "DEFERRED"
        self.statements: list[str] = []

    def cursor(self) -> "_Recorder":
        return self

    def execute(self, sql: str, *args: object) -> "_Recorder":
        self.statements.append(sql)
        return self

    def close(self) -> None:
        pass


def test_the_pragmas_are_the_stores(tmp_path, monkeypatch):
    """If bot.store.db changes its connect hook, check must change with it."""
    store_side = _Recorder()
    store_db._sqlite_pragmas(store_side, None)
    check_side = _Recorder()
    monkeypatch.setattr(checks.sqlite3, "connect", lambda *a, **kw: check_side)
    open_storage(f"sqlite:///{tmp_path / 't.db'}")
    assert check_side.statements == store_side.statements
    assert check_side.isolation_level is None and store_side.isolation_level is None


def test_a_file_that_is_not_a_database_gets_the_same_message(tmp_path):
    db = tmp_path / "t.db"
    db.write_bytes(b"not a database at all, not even close" * 100)
    db.chmod(0o600)
    url = f"sqlite:///{db}"
    with pytest.raises(sqlite3.DatabaseError) as alone:
        open_storage(url)
    with pytest.raises(Exception) as through_store:
        _through_the_store(url)
    assert str(alone.value) == str(through_store.value.orig) == "file is not a database"  # type: ignore[attr-defined]

    config = parse_config({"site": {"name": "x", "base_url": "https://x.example"}, "storage": {"url": url}})
    problems, _ = checks.check(config)
    assert problems == [f"storage.url: cannot open {url}: file is not a database"]


def test_a_folder_that_cannot_be_made_is_the_same_config_error(tmp_path):
    (tmp_path / "blocked").write_text("a file where the folder should be", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'blocked' / 't.db'}"
    with pytest.raises(ConfigError) as alone:
        open_storage(url)
    with pytest.raises(ConfigError) as through_store:
        _through_the_store(url)
    assert alone.value.problems == through_store.value.problems
    assert "storage.url: cannot create" in str(alone.value)


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite:///", "sqlite:///{tmp}/q.db?timeout=5"])
def test_other_sqlite_forms_open_too(url, tmp_path):
    open_storage(url.format(tmp=tmp_path))  # the last one through the store (SQLAlchemy): it has options


def test_sqlalchemy_errors_are_caught_only_once_sqlalchemy_is_loaded():
    import sqlalchemy.exc

    assert checks.sqlalchemy_errors() == (sqlalchemy.exc.SQLAlchemyError,)
