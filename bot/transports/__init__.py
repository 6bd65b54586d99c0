"""Transports: one module per external service behind :class:`~bot.transports.base.Transport`."""

from __future__ import annotations

from typing import Any

from .base import Transport


def registry() -> dict[str, type[Transport]]:
    """Config ``type`` → transport class. A plain dict; imported lazily so a missing
    optional dependency only matters for the transport that needs it."""
    from .file import FileTransport
    from .smtp import SmtpTransport
    from .telegram import TelegramTransport
    from .x import XTransport

    return {
        "file": FileTransport,
        "smtp": SmtpTransport,
        "telegram": TelegramTransport,
        "x": XTransport,
    }


def make_transport(settings: Any, config: Any) -> Transport:
    return registry()[settings.type](settings, config)


__all__ = ["Transport", "make_transport", "registry"]
