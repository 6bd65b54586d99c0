"""Rendering: editions → email (shared digest + per-recipient envelope), Telegram posts
and X posts, from Jinja2 templates (shipped defaults in ``templates/``, overridable by
the admin's folder)."""

from .renderer import (
    DEFAULT_TEMPLATES,
    EmailDigest,
    EmailEnvelope,
    Renderer,
    TelegramPost,
    assemble_email,
)
from .sample import sample_edition
from .telegram import escape, to_telegram_html

__all__ = [
    "DEFAULT_TEMPLATES",
    "EmailDigest",
    "EmailEnvelope",
    "Renderer",
    "TelegramPost",
    "assemble_email",
    "escape",
    "sample_edition",
    "to_telegram_html",
]
