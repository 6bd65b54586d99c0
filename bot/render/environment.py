"""The one Jinja2 environment every channel renders with.

Lookup order: the admin's own folder (``[templates] folder``) first, then the templates
shipped with Tamtam. The shipped ones are also reachable as ``default:<name>`` so an
admin can override ``email/digest.html`` and still ``{% extends "default:email/digest.html" %}``
to change one block (the pattern datasette uses). HTML templates are autoescaped, text
templates are not; StrictUndefined turns a typo'd variable into an error at ``check`` time
instead of an empty gap in thousands of emails.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

import jinja2
import jinja2.bccache

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


#: How templates are compiled; also part of the bytecode cache's file names, so a change of
#: these (or of Jinja2) never reuses code compiled under the old ones.
_OPTIONS: dict[str, Any] = dict(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)
_FINGERPRINT = hashlib.sha1(repr((jinja2.__version__, sorted(_OPTIONS.items()))).encode()).hexdigest()[:12]


def build_environment(folders: list[Path], filters: Mapping[str, Callable[..., Any]] = {}) -> jinja2.Environment:
    """The environment over ``folders`` with the shared filters plus the channels' own.

    Compiled templates are kept in Jinja2's bytecode cache (a folder of the user's own in
    the system's temporary directory, mode 0700, files written atomically): compiling the
    28 shipped templates was an eighth of ``check``. A template is recompiled whenever its
    source changes (Jinja2 compares a checksum), and the file names carry the compile
    options and the Jinja2 and Python versions."""
    loader = jinja2.ChoiceLoader([
        jinja2.FileSystemLoader([str(f) for f in folders]),
        jinja2.PrefixLoader({"default": jinja2.FileSystemLoader(str(SHIPPED_TEMPLATES))}, delimiter=":"),
    ])
    env = jinja2.Environment(
        loader=loader,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=jinja2.StrictUndefined,
        auto_reload=False,
        bytecode_cache=_bytecode_cache(),
        **_OPTIONS,
    )
    env.filters.update(FILTERS)
    env.filters.update(filters)
    return env


class _BytecodeCache(jinja2.FileSystemBytecodeCache):
    """Jinja2's file cache, where a cache that cannot be read or written (a full disk, a
    file cut short) only costs the compile it would have saved, never a render."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError, TypeError):
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


@functools.lru_cache(maxsize=1)
def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """The cache in Jinja2's default per-user folder; none when that folder cannot be made
    safely (Jinja2 refuses one that is not the user's own), which only costs time."""
    version = "%d%d" % sys.version_info[:2]
    try:
        return _BytecodeCache(pattern=f"tamtam-{_FINGERPRINT}-py{version}-%s.cache")
    except (RuntimeError, OSError):
        return None
