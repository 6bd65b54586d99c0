"""Telegram: digests and per-article posts in a channel or group, through the Bot API.

Telegram's HTML subset and its 4,096 / 1,024-character limits live in :mod:`.html`; the
renderer that fits posts into them in :mod:`.render`; the python-telegram-bot transport in
:mod:`.transport`.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import datetime
from typing import Any, Iterator

from ...models import Edition, Message
from ...settings import TransportSettings
from ..base import Audience, ChannelKind, OutboxItem, Plan, PreviewFile, Transport
from ..file import FileSettings, FileTransport
from .html import FILTERS, MAX_CAPTION, MAX_TEXT, html_problems, visible_length
from .render import ROLES, TelegramPost, TelegramRenderer
from .settings import TelegramChannelSettings, TelegramSettings

KIND = "telegram"


def bot_api_call(message: Message) -> dict[str, Any]:
    """The Bot API request a Telegram message stands for (method name and parameters)."""
    post: TelegramPost = message.body
    chat_id: int | str = message.destination
    if re.fullmatch(r"-?\d+", message.destination):
        chat_id = int(message.destination)  # numeric ids are integers in the Bot API
    if post.photo_url:
        return {"method": "sendPhoto", "chat_id": chat_id, "photo": post.photo_url,
                "caption": post.text, "parse_mode": "HTML"}
    return {"method": "sendMessage", "chat_id": chat_id, "text": post.text, "parse_mode": "HTML"}


class TelegramKind(ChannelKind):
    name = KIND
    settings = TelegramChannelSettings
    roles = ROLES
    body = TelegramPost
    filters = FILTERS
    file_kinds = {".json": "the Telegram Bot API call (sendMessage / sendPhoto) with its text"}

    def __init__(self, templates, host):  # type: ignore[no-untyped-def]
        super().__init__(templates, host)
        self.renderer = TelegramRenderer(templates)

    @staticmethod
    def destination(channel: TelegramChannelSettings) -> str:
        return getattr(channel.transport, "chat_id", None) or f"file:{channel.id}"

    def plan(self, channel: TelegramChannelSettings, edition: Edition, audience: Audience) -> Plan:  # type: ignore[override]
        dest = self.destination(channel)
        posts = self.renderer.posts(channel, edition)
        return Plan([OutboxItem(f"{channel.id}:e{edition.id}:p{i}", dest, asdict(post))
                     for i, post in enumerate(posts, 1)])

    def message(self, channel: TelegramChannelSettings, key: str, destination: str,  # type: ignore[override]
                payload: dict[str, Any], shared: dict[str, Any] | None) -> Message:
        post = TelegramPost(text=payload["text"], photo_url=payload.get("photo_url"))
        return Message(key=key, channel_id=channel.id, kind=KIND, destination=destination, body=post)

    def preview(self, channel: TelegramChannelSettings, edition: Edition,  # type: ignore[override]
                audience: Audience) -> list[PreviewFile]:
        posts = self.renderer.posts(channel, edition)
        return [PreviewFile(".json", json.dumps([asdict(p) for p in posts], ensure_ascii=False, indent=2))]

    def trial_messages(self, channel: TelegramChannelSettings, edition: Edition) -> Iterator[Message]:  # type: ignore[override]
        for i, post in enumerate(self.renderer.posts(channel, edition), 1):
            yield Message(f"check:p{i}", channel.id, KIND, self.destination(channel), post)

    def validate(self, message: Message) -> list[str]:
        """What Telegram would refuse: tags outside its HTML subset, bad entities, a post over the limit."""
        post: TelegramPost = message.body
        problems = [f"post {message.key}: {p}" for p in html_problems(post.text)]
        limit, what = (MAX_CAPTION, "caption") if post.photo_url else (MAX_TEXT, "text")
        if visible_length(post.text) > limit:
            problems.append(f"post {message.key}: the {what} is {visible_length(post.text)} characters, "
                            f"Telegram allows {limit}")
        if not post.photo_url and not post.text.strip():
            problems.append(f"post {message.key} is empty")
        return problems

    def transport_class(self, settings: TransportSettings) -> type[Transport]:
        if isinstance(settings, TelegramSettings):
            from .transport import TelegramTransport  # python-telegram-bot loads only when a channel posts

            return TelegramTransport
        assert isinstance(settings, FileSettings), settings
        return FileTransport

    def files(self, message: Message, now: datetime) -> list[tuple[str, bytes]]:
        body = json.dumps(bot_api_call(message), ensure_ascii=False, indent=2) + "\n"
        return [(".json", body.encode("utf-8"))]


__all__ = ["TelegramChannelSettings", "TelegramKind", "TelegramPost", "TelegramSettings"]
