"""Golden files: a fixed edition in, the exact email / Telegram / X output out.

When a template or the renderer changes on purpose, regenerate and review the diff:

    TAMTAM_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_render_golden.py -q
    git diff tests/golden/

Without the variable a missing or different golden file fails the test.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.channels.email.render import Recipient, assemble
from bot.channels.registry import Channels
from bot.channels.telegram.html import MAX_CAPTION, MAX_TEXT
from bot.channels.x.tweet import fits
from bot.config import Config, parse_config
from bot.models import Edition
from bot.render import sample_edition
from bot.settings import ChannelSettings
from tests.fakes.bot_api import telegram_html_error, telegram_text_length

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("TAMTAM_UPDATE_GOLDEN") == "1"
NOW = datetime(2024, 12, 2, 7, 0, tzinfo=timezone.utc)


def _config() -> Config:
    channel = {"schedule": {"cron": "0 7 * * *"}, "transport": {"type": "file"}}
    return parse_config({
        "site": {"name": "L’Écho du Sahel", "base_url": "https://echo.example.ml"},
        "channels": [
            {"id": "lettre", "type": "email", **channel},
            {"id": "letter", "type": "email", "language": "en", "title": "Sahel Echo", **channel},
            {"id": "telegram", "type": "telegram", **channel},
            {"id": "telegram-article", "type": "telegram", "mode": "article", **channel},
            {"id": "x", "type": "x", **channel},
            {"id": "x-article", "type": "x", "mode": "article", **channel},
        ],
    })


def _compare(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"golden file {path} is missing; run with TAMTAM_UPDATE_GOLDEN=1 to create it")
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} differs from its golden file; if intended, regenerate (see module docstring)"


@pytest.fixture(scope="module")
def config() -> Config:
    return _config()


@pytest.fixture(scope="module")
def channels(config: Config) -> Channels:
    return Channels(config)


def _sample(config: Config, channel: ChannelSettings) -> Edition:
    return sample_edition(channel, config.site.base_url, NOW)


@pytest.mark.parametrize("channel_id", ["lettre", "letter"])
def test_email_golden(config: Config, channels: Channels, channel_id: str) -> None:
    channel = config.channel(channel_id)
    renderer = channels.kind(channel).renderer  # type: ignore[attr-defined]
    digest = renderer.digest(channel, _sample(config, channel))
    recipient = Recipient("awa@example.org", "Awa",
                          "https://echo.example.ml/desabonnement?token=abc&email=awa%40example.org")
    subject, html, text = assemble(digest, renderer.envelope(channel, digest, recipient))
    _compare(f"{channel_id}.subject.txt", subject + "\n")
    _compare(f"{channel_id}.html", html)
    _compare(f"{channel_id}.txt", text)


@pytest.mark.parametrize("channel_id", ["telegram", "telegram-article"])
def test_telegram_golden(config: Config, channels: Channels, channel_id: str) -> None:
    channel = config.channel(channel_id)
    posts = channels.kind(channel).renderer.posts(channel, _sample(config, channel))  # type: ignore[attr-defined]
    for post in posts:
        assert telegram_html_error(post.text) is None
        assert telegram_text_length(post.text) <= (MAX_CAPTION if post.photo_url else MAX_TEXT)
    data = [{"text": p.text, "photo_url": p.photo_url} for p in posts]
    _compare(f"{channel_id}.json", json.dumps(data, ensure_ascii=False, indent=2) + "\n")


@pytest.mark.parametrize("channel_id", ["x", "x-article"])
def test_x_golden(config: Config, channels: Channels, channel_id: str) -> None:
    channel = config.channel(channel_id)
    posts = [p.text for p in channels.kind(channel).renderer.posts(channel, _sample(config, channel))]  # type: ignore[attr-defined]
    assert all(fits(p) for p in posts)
    _compare(f"{channel_id}.json", json.dumps(posts, ensure_ascii=False, indent=2) + "\n")

