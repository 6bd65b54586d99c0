"""The one Jinja2 environment a Renderer uses.

Lookup order: the admin's own folder (``[templates] folder``) first, then the templates
shipped with Tamtam. The shipped ones are also reachable as ``default:<name>`` so an
admin can override ``email/digest.html`` and still ``{% extends "default:email/digest.html" %}``
to change one block (the pattern datasette uses). HTML templates are autoescaped, text
templates are not; StrictUndefined turns a typo'd variable into an error at ``check`` time
instead of an empty gap in thousands of emails.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

import bot
from bot.config import Config
from bot.errors import ConfigError

from .filters import FILTERS

SHIPPED_TEMPLATES = Path(bot.__file__).resolve().parent.parent / "templates"


def template_folders(config: Config) -> list[Path]:
    """The folders searched, in order. Raises ConfigError if the admin's folder is missing."""
    folders: list[Path] = []
    if config.templates.folder:
        admin = config.resolve(config.templates.folder)
        if not admin.is_dir():
            raise ConfigError(
                f"templates.folder: {str(admin)!r} is not a folder; create it or remove the key "
                "to use the shipped templates"
            )
        folders.append(admin)
    folders.append(SHIPPED_TEMPLATES)
    return folders


def build_environment(config: Config) -> jinja2.Environment:
    folders = template_folders(config)
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
    return env
