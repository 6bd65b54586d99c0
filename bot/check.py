"""``tamtam check``: everything that can be known wrong before anything is sent.

Each channel's kind loads the templates the channel uses, renders the sample edition (and
an empty one when the channel sends empty editions) and checks every message it made
against the service's own rules (Telegram's HTML subset and lengths, X's weighted 280, a
well-formed email), so a template that Telegram would refuse fails here, not at 7:00 in
front of 40,000 readers.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from datetime import datetime, timezone
from pathlib import Path

from .channels.registry import Channels
from .config import Config, required_secrets
from .errors import ConfigError, TamtamError, TemplateError
from .models import Edition
from .render import sample_edition

# ``check`` renders against a sample edition dated here: fixed, so check is repeatable.
CHECK_NOW = datetime(2024, 12, 2, 7, 0, tzinfo=timezone.utc)


def safe_url(url: str) -> str:
    """A storage URL without its password, for messages."""
    from sqlalchemy.engine import make_url  # a storage message is rare; SQLAlchemy loads for it

    return make_url(url).render_as_string(hide_password=True)


def sqlalchemy_errors() -> tuple[type[Exception], ...]:
    """``(SQLAlchemyError,)`` once SQLAlchemy is loaded, else ``()``: for an ``except`` that
    must not load SQLAlchemy only to learn that it raised nothing (only code that loaded it
    can raise its errors; an ``except`` evaluates its types only when something was raised)."""
    loaded = sys.modules.get("sqlalchemy.exc")
    return (loaded.SQLAlchemyError,) if loaded is not None else ()


#: A ``storage.url`` the sqlite3 module opens alone: what SQLAlchemy reads as a SQLite file
#: (or ``:memory:``) with no query options.
_PLAIN_SQLITE = "sqlite:///"


def open_storage(url: str) -> None:
    """Open the database at ``url`` as the store does, without migrating it, and close it.

    A plain SQLite URL is opened with the sqlite3 module alone, by the same steps as
    :func:`bot.store.db.make_engine` and its connect hook (the file created private, then
    the same pragmas, which switch the file to WAL): loading SQLAlchemy and the store's
    tables would add 0.17 s, 40 %, to ``check``. Raises sqlite3.Error, OSError, a
    SQLAlchemyError, or ConfigError when the SQLite file cannot be created."""
    if not url.startswith(_PLAIN_SQLITE) or "?" in url:
        from .store import Store  # any other database: through the store itself (SQLAlchemy)

        probe = Store(url, migrate=False)
        with probe.engine.connect():
            pass
        probe.close()
        return
    path = url[len(_PLAIN_SQLITE):]
    if not path or path == ":memory:":
        conn = sqlite3.connect(":memory:")
    else:
        file = Path(path)
        try:  # as bot.store.db._private_file
            file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(os.open(file, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise ConfigError(f"storage.url: cannot create {str(file)!r}: {exc.strerror or exc}") from None
        conn = sqlite3.connect(os.path.abspath(path))
    try:  # as bot.store.db._sqlite_pragmas
        conn.isolation_level = None
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def check_templates(config: Config, channels: Channels) -> list[str]:
    """Every problem with the templates the configured channels use, one line each."""
    problems: list[str] = []
    for channel in config.channels:
        kind = channels.kind(channel)
        for role in channel.templates:
            if role not in kind.roles:
                problems.append(f"channel {channel.id}: templates.{role}: unknown role for a {channel.type} "
                                f"channel; expected one of {', '.join(kind.roles)}")
        loadable = True
        for role in kind.used_roles(channel):
            try:
                channels.templates.load(kind.template(channel, role))
            except TemplateError as exc:
                problems.append(f"channel {channel.id}: {exc}")
                loadable = False
        if not loadable:
            continue
        trials = [sample_edition(channel, config.site.base_url, CHECK_NOW)]
        if channel.send_empty:
            trials.append(Edition(channel.id, (), CHECK_NOW))
        for edition in trials:
            what = "an empty edition" if not edition.articles else "the sample edition"
            try:
                problems += [f"channel {channel.id}: with {what}: {p}" for p in kind.trial(channel, edition)]
            except TemplateError as exc:
                problems.append(f"channel {channel.id}: with {what}: {exc}")
    return list(dict.fromkeys(problems))


#: The readers' pages and the confirmation email (``[web]``): an admin may override any of them.
READER_TEMPLATES = ("email/confirm.subject.txt", "email/confirm.html", "email/confirm.txt", "web/base.html",
                    "web/_fields.html", "web/index.html", "web/subscribe.html", "web/sent.html", "web/confirm.html",
                    "web/confirmed.html", "web/unsubscribe.html", "web/unsubscribed.html", "web/preferences.html",
                    "web/archive.html", "web/edition.html", "web/error.html")


def check_web(config: Config, channels: Channels) -> tuple[list[str], list[str]]:
    """(problems, warnings) of the ``[web]`` table: its templates load, its secret file is
    readable, and what its links will look like in the inbox."""
    web = config.web
    if web is None:
        return [], []
    problems: list[str] = []
    warnings: list[str] = []
    for name in READER_TEMPLATES:
        try:
            channels.templates.load(name)
        except TemplateError as exc:
            problems.append(f"web: {exc}")
    if web.secret_file:
        path = config.resolve(web.secret_file)
        if path.exists() and not os.access(path, os.R_OK):
            problems.append(f"web.secret_file: {str(path)!r} cannot be read")
    if not web.public_url.startswith("https://"):
        warnings.append(f"web.public_url {web.public_url!r} is not https: mailbox providers offer one-click "
                        "unsubscribe (List-Unsubscribe-Post) only for https links, so emails leave it out")
    for channel in config.channels:
        if getattr(channel, "unsubscribe_url", None):
            warnings.append(f"channel {channel.id!r}: unsubscribe_url is not used: with [web], emails link to "
                            "Tamtam's own signed unsubscribe page (old links with {token} keep working at "
                            f"{web.public_url}/{channel.id}/unsubscribe?token=…)")
    return problems, warnings


def check(config: Config) -> tuple[list[str], list[str]]:
    """(problems, warnings) for the whole config: secrets, templates, storage."""
    problems = [f"{what}: environment variable {env} is not set"
                for env, what in required_secrets(config) if not os.environ.get(env)]
    warnings: list[str] = []
    try:
        channels = Channels(config)
        problems += check_templates(config, channels)
        for channel in config.channels:
            warnings += channels.kind(channel).warnings(channel)
        web_problems, web_warnings = check_web(config, channels)
        problems += web_problems
        warnings += web_warnings
    except TamtamError as exc:
        problems.append(str(exc))
    try:
        open_storage(config.database_url)
    except (sqlite3.Error, OSError, *sqlalchemy_errors()) as exc:
        problems.append(f"storage.url: cannot open {safe_url(config.database_url)}: "
                        f"{getattr(exc, 'orig', None) or exc}")
    return problems, warnings
