"""The commands' entry point: :func:`run` loads the config, runs the command and turns every
error an admin can fix (config, templates, a missing secret, a bad CSV, the storage) into a
plain message and a non-zero exit, never a traceback. ``check`` lives here; every other
command opens the database and lives in :mod:`bot.store_commands`, loaded only when one of
them runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable

from . import check as checks
from . import redact
from .config import Config, find_config, load_config, required_secrets
from .errors import ConfigError, TamtamError, TemplateError

log = logging.getLogger("tamtam")


# -- commands --------------------------------------------------------------------------
def cmd_check(config: Config, args: argparse.Namespace) -> int:
    problems, warnings = checks.check(config)
    for w in warnings:
        print(f"warning: {w}")
    if problems:
        print(f"{config.path}: {len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 2
    print(f"{config.path}: OK — {len(config.sources)} source(s), {len(config.channels)} channel(s); "
          "templates render; every named secret is set.")
    return 0


def _command(name: str) -> Callable[[Config, argparse.Namespace], int]:
    """The function of the command ``name``: ``check`` here, every other one in
    :mod:`bot.store_commands`, loaded only now (it brings SQLAlchemy, the store and the daemon)."""
    if name in globals():
        return globals()[name]  # type: ignore[no-any-return]
    from . import store_commands  # the commands that open the database; `check` never loads them

    return getattr(store_commands, name)  # type: ignore[no-any-return]


# -- the parser ------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    """Load the config and run the command ``args`` names (its ``func``)."""
    redact.install(logging.INFO if args.verbose or args.command in ("run", "serve", "worker") else logging.WARNING)
    path = find_config(args.config)
    config: Config | None = None
    try:
        config = load_config(path)
        for env, _ in required_secrets(config):  # before any library can log one
            redact.register(os.environ.get(env))
        return _command(args.func)(config, args) or 0
    except ConfigError as exc:
        print(f"Configuration error in {exc.path or path}:" if exc.path or len(exc.problems) > 1
              else "Configuration error:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except TemplateError as exc:
        print(f"Template error: {exc}", file=sys.stderr)
        return 2
    except TamtamError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except checks.sqlalchemy_errors() as exc:  # SQLAlchemyError, without loading SQLAlchemy to name it
        where = checks.safe_url(config.database_url) if config else "storage"
        print(f"Storage error ({where}): {getattr(exc, 'orig', None) or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C outside `run`, whose own handler finishes the message in flight
        return 130
