"""Secrets never leave the process: every text that goes to a log, the database or the
screen can pass through :func:`redact`.

Secrets enter Tamtam only through :func:`bot.settings.secret`, which registers each value it
reads here; the CLI also registers every secret the config names at start-up, before any
library can log one. A process-wide register is the one global this project keeps, because
the leaks it stops come from places that cannot be handed a parameter: an HTTP library
logging a request URL with a bot token in it, a traceback quoting a connection string.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "[secret]"
# A Telegram bot token in a Bot API URL (``/bot123456:AA…/sendMessage``), even one never registered.
_BOT_TOKEN = re.compile(r"(?<=/bot)\d+:[A-Za-z0-9_-]{20,}")
_lock = threading.Lock()
_secrets: list[str] = []


def register(value: str | None) -> None:
    """Remember a secret so :func:`redact` hides it. Values shorter than 4 characters are
    not secrets worth the name and would mask ordinary text."""
    if not value or len(value) < 4:
        return
    with _lock:
        if value not in _secrets:
            _secrets.append(value)
            _secrets.sort(key=len, reverse=True)  # a secret that contains another is masked whole


def redact(text: str) -> str:
    """``text`` with every registered secret (and any Bot API token) replaced by ``[secret]``."""
    if not text:
        return text
    for value in _secrets:
        if value in text:
            text = text.replace(value, MASK)
    return _BOT_TOKEN.sub(MASK, text)


class RedactingFormatter(logging.Formatter):
    """Redacts the whole formatted record: the message, its arguments and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def install(level: int, fmt: str = "%(asctime)s %(levelname)s %(name)s: %(message)s") -> None:
    """Log to stderr at ``level`` through the redacting formatter. httpx's per-request INFO
    lines are kept to warnings (they are noise, and they carry URLs), and so are
    APScheduler's "running job" lines, one a second in a daemon."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


class RedactingStream:
    """A text stream (stdout, stderr) that writes everything through :func:`redact`."""

    def __init__(self, stream):  # type: ignore[no-untyped-def]
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact(text))
        return len(text)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._stream, name)
