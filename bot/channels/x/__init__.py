"""X (Twitter): share snippets, one per article or one per edition, through the API v2.

X's weighted length (twitter-text) lives in :mod:`.tweet`, the renderer that fits posts
into 280 weighted characters in :mod:`.render`, the tweepy transport in :mod:`.transport`.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, Iterator

from ...models import Edition, Message
from ...settings import TransportSettings
from ..base import Audience, ChannelKind, OutboxItem, Plan, PreviewFile, Transport
from ..file import FileSettings, FileTransport
from .render import ROLES, XPost, XRenderer
from .settings import XChannelSettings, XSettings
from .tweet import MAX_WEIGHTED, fits, weighted_length

KIND = "x"


class XKind(ChannelKind):
    name = KIND
    settings = XChannelSettings
    roles = ROLES
    body = XPost
    file_kinds = {".txt": "the X post text"}

    def __init__(self, templates, host):  # type: ignore[no-untyped-def]
        super().__init__(templates, host)
        self.renderer = XRenderer(templates)

    @staticmethod
    def destination(channel: XChannelSettings) -> str:
        return getattr(channel.transport, "account", None) or f"file:{channel.id}"

    def plan(self, channel: XChannelSettings, edition: Edition, audience: Audience) -> Plan:  # type: ignore[override]
        dest = self.destination(channel)
        return Plan([OutboxItem(f"{channel.id}:e{edition.id}:p{i}", dest, asdict(post))
                     for i, post in enumerate(self.renderer.posts(channel, edition), 1)])

    def message(self, channel: XChannelSettings, key: str, destination: str,  # type: ignore[override]
                payload: dict[str, Any], shared: dict[str, Any] | None) -> Message:
        return Message(key=key, channel_id=channel.id, kind=KIND, destination=destination,
                       body=XPost(payload["text"]))

    def preview(self, channel: XChannelSettings, edition: Edition,  # type: ignore[override]
                audience: Audience) -> list[PreviewFile]:
        posts = self.renderer.posts(channel, edition)
        return [PreviewFile(".txt", "\n\n---\n\n".join(p.text for p in posts))]

    def trial_messages(self, channel: XChannelSettings, edition: Edition) -> Iterator[Message]:  # type: ignore[override]
        for i, post in enumerate(self.renderer.posts(channel, edition), 1):
            yield Message(f"check:p{i}", channel.id, KIND, self.destination(channel), post)

    def validate(self, message: Message) -> list[str]:
        text = message.body.text
        if fits(text, MAX_WEIGHTED):
            return []
        return [f"post {message.key} is {weighted_length(text)} weighted characters or holds a character X "
                f"refuses; X takes 1 to {MAX_WEIGHTED}"]

    def transport_class(self, settings: TransportSettings) -> type[Transport]:
        if isinstance(settings, XSettings):
            from .transport import XTransport  # tweepy and requests load only when a channel posts to X

            return XTransport
        assert isinstance(settings, FileSettings), settings
        return FileTransport

    def files(self, message: Message, now: datetime) -> list[tuple[str, bytes]]:
        return [(".txt", message.body.text.encode("utf-8"))]


__all__ = ["XChannelSettings", "XKind", "XPost", "XSettings"]
