"""The one Jinja2 environment every channel renders with.

Lookup order: the admin's own folder (``[templates] folder``) first, then the templates
shipped with Tamtam. The shipped ones are also reachable as ``default:<name>`` so an
admin can override ``email/digest.html`` and still ``{% extends "default:email/digest.html" %}``
to change one block (the pattern datasette uses). HTML templates are autoescaped, text
templates are not; StrictUndefined turns a typo'd variable into an error at ``check`` time
instead of an empty gap in thousands of emails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import jinja2

from ..errors import ConfigError
from .filters import FILTERS

SHIPPED_TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"


def template_folders(admin: Path | None) -> list[Path]:
    """The folders searched, in order. Raises ConfigError if the admin's folder is missing."""
    folders: list[Path] = []
    if admin is not None:
        if not admin.is_dir():
            raise ConfigError(
                f"templates.folder: {str(admin)!r} is not a folder; create it or remove the key "
                "to use the shipped templates"
            )
        folders.append(admin)
    folders.append(SHIPPED_TEMPLATES)
    return folders


def build_environment(folders: list[Path], filters: Mapping[str, Callable[..., Any]] = {}) -> jinja2.Environment:
    """The environment over ``folders`` with the shared filters plus the channels' own."""
    loader = jinja2.ChoiceLoader([
        jinja2.FileSystemLoader([str(f) for f in folders]),
        jinja2.PrefixLoader({"default": jinja2.FileSystemLoader(str(SHIPPED_TEMPLATES))}, delimiter=":"),
    ])
    env = jinja2.Environment(
        loader=loader,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    env.filters.update(FILTERS)
    env.filters.update(filters)
    return env
