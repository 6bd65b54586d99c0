"""Edition → render → outbox, in one transaction; and the preview of the next edition.

This is the step that turns "the channel's schedule fired" into messages waiting to be
delivered. Because the edition, the per-channel cursor and every outbox row are written
in the same transaction, a crash leaves either all of them or none: an article can never
be marked sent without its messages existing, nor a message exist twice. The channel's
kind renders; this module never looks at what it made.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Mapping

from sqlalchemy import Connection

from . import editions
from .channels.base import PreviewFile, Stream
from .channels.registry import Channels
from .models import Edition, Subscriber
from .render import sample_edition
from .settings import ChannelSettings
from .store import NewMessage, Store
from .store.editions import Editions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishResult:
    channel_id: str
    edition_id: int | None
    articles: int
    messages: int
    note: str = ""


class _Audience:
    """The channel's active subscribers (those a stream serves), read in the publishing transaction."""

    def __init__(self, store: Store, conn: Connection, channel_id: str, only: Mapping[str, Any] | None = None):
        self.store, self.conn, self.channel_id, self.only = store, conn, channel_id, dict(only or {})

    def subscribers(self) -> Iterator[Subscriber]:
        return self.store.subscribers.iter(self.channel_id, conn=self.conn, **self.only)


def publish(channels: Channels, store: Store, channel: ChannelSettings, *, now: datetime,
            stream: Stream | None = None) -> PublishResult:
    """Build the next edition of the channel (or of one of its streams) and queue its
    messages. Raises TemplateError (nothing recorded)."""
    kind = channels.kind(channel)
    stream = stream or kind.streams(channel)[0]
    shaped = channel if stream.mode == channel.mode else channel.model_copy(update={"mode": stream.mode})
    with store.begin() as conn:
        edition = editions.record_edition(conn, channel, now, stream)
        if edition is None:
            return PublishResult(stream.id, None, 0, 0, "nothing new")
        plan = kind.plan(shaped, edition, _Audience(store, conn, channel.id, stream.audience(now)))
        queued = store.outbox.enqueue(conn, (NewMessage(item.key, channel.id, kind.name, item.destination,
                                                        item.payload, edition.id) for item in plan.items), now=now)
        if plan.shared is not None:  # after the items: a kind may add shared parts as it meets its readers
            Editions.set_shared(conn, edition.id, plan.shared)  # type: ignore[arg-type]
    note = plan.note(queued)
    if note:
        log.warning("channel %s: edition %s: %s", channel.id, edition.id, note)
    return PublishResult(stream.id, edition.id, len(edition.articles), queued, note)


@dataclass(frozen=True)
class Preview:
    edition: Edition
    files: list[PreviewFile]
    waiting: int  # articles the channel would send now
    sample: bool  # True when the shipped sample articles stood in

    def write(self, channel: ChannelSettings, folder: Path) -> list[Path]:
        """Write the preview files as ``<folder>/<channel id><suffix>``; returns their paths."""
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for f in self.files:
            path = folder / f"{channel.id}{f.suffix}"
            path.write_text(f.text, encoding="utf-8")
            written.append(path)
        return written


def preview(channels: Channels, store: Store, channel: ChannelSettings, *, now: datetime,
            sample: bool = False) -> Preview:
    """Render the next edition without recording anything: the transaction is rolled back.

    With ``sample`` (or when nothing is waiting) the shipped sample articles stand in, so an
    admin can see a template change before any article exists.
    """
    kind = channels.kind(channel)
    conn = store.engine.connect()
    trans = conn.begin()
    try:
        edition = editions.preview_edition(conn, channel, now)
        waiting = len(edition.articles)
        sample = sample or not waiting
        if sample:
            edition = sample_edition(channel, channels.host.site.base_url, now)
        edition = Edition(edition.channel_id, edition.articles, edition.created_at, id=0)
        files = kind.preview(channel, edition, _Audience(store, conn, channel.id))
        return Preview(edition, files, waiting, sample)
    finally:
        trans.rollback()
        conn.close()
