"""The template engine every channel kind renders with: one Jinja2 environment, the shared
template context, and template errors that name the file and the line.

A channel kind (``bot/channels/<kind>/render.py``) turns an edition into that service's
messages by calling :meth:`Templates.render` with :meth:`Templates.context`; it never
builds an environment of its own, so an admin's folder, the ``default:`` prefix, the
filters and StrictUndefined behave the same for email, Telegram and X.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import jinja2

from ..errors import TemplateError
from ..models import Article, Edition
from ..settings import ChannelSettings, Site
from .environment import build_environment, template_folders
from .strings import Strings


class Templates:
    """Finds, compiles and renders templates; one per process, shared by every channel."""

    def __init__(self, site: Site, folder: Path | None = None,
                 filters: Mapping[str, Callable[..., Any]] = {}):
        self.site = site
        self.folders: list[Path] = template_folders(folder)
        self.env: jinja2.Environment = build_environment(self.folders, filters)
        self._strings: dict[str, Strings] = {}

    @staticmethod
    def name(channel: ChannelSettings, role: str, roles: Mapping[str, str]) -> str:
        """The template ``channel`` uses for ``role``: its override, else the kind's default."""
        if role not in roles:
            raise TemplateError(role, f"a {channel.type} channel has no template role {role!r}; "
                                      f"expected one of {', '.join(roles)}")
        return channel.templates.get(role) or roles[role]

    def load(self, name: str) -> jinja2.Template:
        """Find and compile a template; a missing, unreadable or unparsable one is a TemplateError."""
        try:
            return self.env.get_template(name)
        except jinja2.TemplateNotFound as exc:
            missing = exc.name or name
            searched = ", ".join(str(f) for f in self.folders)
            via = "" if missing == name else f" (needed by {name})"
            raise TemplateError(missing, f"not found{via}; searched {searched}") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(exc.name or name, f"syntax error: {exc.message}", exc.lineno) from exc
        except (OSError, UnicodeDecodeError) as exc:
            # A folder where a file should be, no permission, not UTF-8: say which file.
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise TemplateError(name, f"cannot be read: {reason}") from exc

    def render(self, name: str, context: dict[str, Any]) -> str:
        """Render one template, turning every failure into a TemplateError with a line."""
        template = self.load(name)
        try:
            return template.render(context)
        except jinja2.TemplateNotFound as exc:  # an {% include %}/{% import %} names a missing file
            where, line = self._locate(exc, name)
            searched = ", ".join(str(f) for f in self.folders)
            raise TemplateError(where, f"uses {exc.name or '?'!s}, which is not found; searched {searched}", line) from exc
        except jinja2.TemplateSyntaxError as exc:  # … or a file that does not parse
            raise TemplateError(exc.name or name, f"syntax error: {exc.message}", exc.lineno) from exc
        except Exception as exc:  # an admin's template can fail in any way; never crash the run
            where, line = self._locate(exc, name)
            if isinstance(exc, jinja2.UndefinedError):
                message = f"undefined variable: {exc.message}"
            else:
                message = f"{type(exc).__name__}: {exc}"
            raise TemplateError(where, message, line) from exc

    def _locate(self, exc: BaseException, name: str) -> tuple[str, int | None]:
        """The template and line where a render error happened. Jinja rewrites the
        traceback so template frames carry the template's file name and line."""
        found: tuple[str, int | None] = (name, None)
        for frame in traceback.extract_tb(exc.__traceback__):
            path = Path(frame.filename)
            for folder in self.folders:
                try:
                    rel = path.resolve().relative_to(folder.resolve())
                except (ValueError, OSError):
                    continue
                found = (rel.as_posix(), frame.lineno)
                break
        return found

    def strings(self, language: str) -> Strings:
        if language not in self._strings:
            self._strings[language] = Strings(language)
        return self._strings[language]

    def base_context(self, channel: ChannelSettings) -> dict[str, Any]:
        """What every template sees: the site, the channel, its title and language strings."""
        lang = channel.language or self.site.language
        return {
            "site": self.site,
            "channel": channel,
            "title": channel.title or self.site.name,
            "t": self.strings(lang),
            "lang": lang,
            "locale": lang,
            "tz": self.site.tz,
        }

    def context(self, channel: ChannelSettings, edition: Edition, articles: Sequence[Article] | None = None,
                **extra: Any) -> dict[str, Any]:
        """The context of a template that shows (some of) an edition's articles."""
        arts = list(edition.articles if articles is None else articles)
        return {
            **self.base_context(channel),
            "edition": edition,
            "articles": arts,
            "count": len(edition.articles),
            "now": edition.created_at,
            **extra,
        }
