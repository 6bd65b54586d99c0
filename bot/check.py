"""``tamtam check``: everything that can be known wrong before anything is sent.

Each channel's kind loads the templates the channel uses, renders the sample edition (and
an empty one when the channel sends empty editions) and checks every message it made
against the service's own rules (Telegram's HTML subset and lengths, X's weighted 280, a
well-formed email), so a template that Telegram would refuse fails here, not at 7:00 in
front of 40,000 readers.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from .channels.registry import Channels
from .config import Config, required_secrets
from .errors import TamtamError, TemplateError
from .models import Edition
from .render import sample_edition
from .store import Store

# ``check`` renders against a sample edition dated here: fixed, so check is repeatable.
CHECK_NOW = datetime(2024, 12, 2, 7, 0, tzinfo=timezone.utc)


def safe_url(url: str) -> str:
    """A storage URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


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
        probe = Store(config.database_url, migrate=False)
        with probe.engine.connect():
            pass
        probe.close()
    except (SQLAlchemyError, OSError) as exc:
        problems.append(f"storage.url: cannot open {safe_url(config.database_url)}: "
                        f"{getattr(exc, 'orig', None) or exc}")
    return problems, warnings
