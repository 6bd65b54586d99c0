"""The database: one SQLAlchemy engine, Alembic migrations, transactions and the runner lock.

SQLite (a file) is the default; PostgreSQL runs the same code. The modules beside this one
each own a group of tables (:mod:`.articles`, :mod:`.subscribers`, :mod:`.editions`,
:mod:`.outbox`); nothing else in Tamtam writes SQL.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text

from ..errors import ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


@functools.cache
def head_revision() -> str | None:
    """The newest migration's revision, read from the files in ``migrations/versions``: the
    one revision no other revises. None unless there is exactly one such (Alembic decides then)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision = re.search(r"""^revision\s*=\s*["']([^"']+)["']""", source, re.M)
        if revision is None:
            return None
        revisions.add(revision.group(1))
        down = re.search(r"^down_revision\s*=\s*(.+)$", source, re.M)
        revised.update(re.findall(r"""["']([^"']+)["']""", down.group(1)) if down else ())
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
    # Let SQLAlchemy issue BEGIN itself: pysqlite's own transaction handling breaks SAVEPOINT
    # (the workaround from SQLAlchemy's SQLite dialect documentation).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # busy_timeout first: switching to WAL itself needs the lock another process may hold.
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")  # the scheduler and the CLI may open the file at once
    cur.close()


def _private_file(path: Path) -> None:
    """Create ``path`` (and its folder) readable by this user only, if it does not exist.
    SQLite gives its -wal and -shm files the database file's permissions."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    except OSError as exc:
        raise ConfigError(f"storage.url: cannot create {str(path)!r}: {exc.strerror or exc}") from None


WRITE = "tamtam_write"  # execution option of a connection opened to write


def _sqlite_begin(conn: Connection) -> None:
    """A transaction that will write takes SQLite's write lock at BEGIN (IMMEDIATE): a
    deferred one that reads first fails with "database is locked" (SQLITE_BUSY_SNAPSHOT)
    when another process commits between its read and its write, and no busy timeout helps.
    Reads stay deferred, so in WAL mode they never wait for a writer."""
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            _private_file(Path(path))
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_pre_ping=True)


class Database:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent). Two processes starting on
        a fresh database at once take turns: the second finds the schema made and does nothing."""
        if self.at_head():
            return
        # Alembic costs a quarter of a second to import; only a database behind the code pays it.
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self._migration_lock(), self.engine.begin() as conn:
            if self.backend == "postgresql":  # held until this transaction ends
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.tamtam-migrate'))"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def at_head(self) -> bool:
        """True when the database records the newest migration (:func:`head_revision`) and
        nothing else: :meth:`migrate` has nothing to do, and Alembic is not even loaded. A
        migration commits its schema and its new version together, so reading the version
        needs no lock. Anything else (a new database, one behind or ahead, several heads) is
        Alembic's to judge. The version table is looked up as Alembic looks it up."""
        head = head_revision()
        if head is None:
            return False
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):  # a new database
                return False
            versions = [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]
        return versions == [head]

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """A SQLite database is migrated under an exclusive lock on ``<file>.migrate.lock``."""
        database = self.engine.url.database
        if self.backend != "sqlite" or not database or database == ":memory:":
            yield
            return
        fd = os.open(f"{database}.migrate.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction that writes: committed on success, rolled back on any exception."""
        with self.engine.connect() as conn:
            conn.execution_options(**{WRITE: True})
            with conn.begin():
                yield conn

    def connect(self) -> Connection:
        return self.engine.connect()

    def analyze(self, table: str) -> None:
        """Refresh the planner's statistics of ``table`` (its owner calls this after writing
        many rows at once). Without them both planners guess, and for the dispatcher's
        queries they guessed badly: a claim read every pending row; the check that a batch's
        readers are still subscribed read the whole list on PostgreSQL (21 ms a batch, from
        0.2). SQLite samples at most 1,000 rows per index, so this takes a fraction of a
        second either way."""
        with self.engine.connect() as conn:
            if self.backend == "sqlite":
                conn.exec_driver_sql("PRAGMA analysis_limit = 1000")
                conn.exec_driver_sql(f"ANALYZE {table}")
                conn.commit()
            else:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(f"ANALYZE {table}")

    def close(self) -> None:
        self.engine.dispose()

    @property
    def backend(self) -> str:
        return self.engine.url.get_backend_name()

    @contextmanager
    def runner_lock(self, *, shared: bool = False) -> Iterator[bool]:
        """Hold the database's runner lock while the body runs; yields False if it is taken.

        ``run`` and ``once`` take it exclusively: they settle every message left ``sending``
        at start-up (:func:`bot.dispatch.recover`), which is right only when no other process
        is sending. Workers (``tamtam worker``) take it shared: any number of them may deliver
        together, each settling only what a dead worker's expired lease left behind, and none
        of them beside a ``run``. A lock file beside a SQLite database, an advisory lock on
        PostgreSQL (per schema).
        """
        url = self.engine.url
        if url.get_backend_name() == "sqlite":
            if not url.database or url.database == ":memory:":
                yield True
                return
            with os.fdopen(os.open(f"{url.database}.lock", os.O_CREAT | os.O_RDWR, 0o600), "r+") as fh:
                try:
                    fcntl.flock(fh, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                except BlockingIOError:
                    yield False
                    return
                try:
                    yield True
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
            return
        take, give = (("pg_try_advisory_lock_shared", "pg_advisory_unlock_shared") if shared
                      else ("pg_try_advisory_lock", "pg_advisory_unlock"))
        with self.engine.connect() as conn:
            lock_id = conn.execute(text("SELECT hashtext(current_schema() || '.tamtam-runner')")).scalar_one()
            got = conn.execute(text(f"SELECT {take}(:k)"), {"k": lock_id}).scalar_one()
            conn.commit()
            try:
                yield bool(got)
            finally:
                if got:
                    conn.execute(text(f"SELECT {give}(:k)"), {"k": lock_id})
                    conn.commit()

    def leader_lock(self) -> "LeaderLock":
        """The lock that makes one worker the scheduler (see :class:`LeaderLock`)."""
        return LeaderLock(self)


class LeaderLock:
    """Exactly one process across the workers runs the scheduler: the one holding this lock.

    On PostgreSQL it is a session advisory lock held on a connection of its own, so it goes
    when its process dies (the server notices the connection drop) and another worker takes
    it at its next try; on SQLite, an exclusive lock on ``<file>.scheduler.lock``. The holder
    checks it still holds it (:meth:`held`) before each scheduled job, so a leader cut off
    from the database stops scheduling instead of racing its successor."""

    def __init__(self, db: Database):
        self.db = db
        self._conn: Connection | None = None
        self._fh: Any = None
        self._key: int | None = None

    def try_take(self) -> bool:
        if self.db.backend == "sqlite":
            database = self.db.engine.url.database
            if not database or database == ":memory:":
                return True
            fh = os.fdopen(os.open(f"{database}.scheduler.lock", os.O_CREAT | os.O_RDWR, 0o600), "r+")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                return False
            self._fh = fh
            return True
        conn = self.db.engine.connect()
        try:
            key = conn.execute(text("SELECT hashtext(current_schema() || '.tamtam-scheduler')")).scalar_one()
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one()
            conn.commit()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn, self._key = conn, key
        return True

    def held(self) -> bool:
        """True while the lock is ours (on PostgreSQL: its connection still answers)."""
        if self._fh is not None:
            return True
        if self._conn is None:
            return self.db.backend == "sqlite"  # a database in memory: one process only
        try:
            self._conn.execute(text("SELECT 1")).scalar_one()
            self._conn.commit()
            return True
        except Exception:  # the connection (and with it the lock) is gone
            self.release()
            return False

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # already broken; closing is best effort
                pass
            self._conn = None
