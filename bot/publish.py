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
from .store import NewMessage, OutboxError, Status, Store
from .store.editions import Editions
from .store.outbox import STATISTICS_EVERY

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
    stream = stream or kind.streams(channel, channels.host.site)[0]
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
    if queued >= STATISTICS_EVERY:  # the dispatcher's claims, and its check of who is still subscribed
        store.outbox.refresh_statistics()
        if kind.has_subscribers:
            store.subscribers.refresh_statistics()
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
    problems: list[str]  # what the service would refuse in these messages (empty: nothing)

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
        return Preview(edition, files, waiting, sample, kind.trial(channel, edition))
    finally:
        trans.rollback()
        conn.close()


class _Addresses:
    """The audience of a re-render: the subscribers whose messages failed."""

    def __init__(self, store: Store, channel_id: str, addresses: list[str]):
        self.store, self.channel_id, self.addresses = store, channel_id, addresses

    def subscribers(self) -> Iterator[Subscriber]:
        for address in self.addresses:
            sub = self.store.subscribers.find(self.channel_id, address)
            if sub is not None:
                yield sub


@dataclass(frozen=True)
class Rerendered:
    edition_id: int
    updated: int  # failed messages given their new content, pending again
    added: int  # parts the new rendering has and the old one had not
    dropped: int  # failed messages the new rendering has no place for (dismissed)
    unmatched: int  # new parts left out because part of the edition already went out


def rerender(channels: Channels, store: Store, channel: ChannelSettings, edition_id: int, *,
             now: datetime) -> Rerendered:
    """Render a sent edition again with today's templates and give its *failed* messages the
    new content. For a message refused for its content (a tag Telegram refuses, say): fix the
    template, then ``outbox rerender``. What went out stays as it was; if nothing of the
    edition went out, the new rendering replaces it whole (it may have more or fewer parts)."""
    found = store.editions.get(edition_id)
    if found is None:
        raise OutboxError(f"no edition {edition_id}")
    rows = [r for r in store.outbox.of_edition(edition_id) if r.channel_id == channel.id]
    if not rows:
        raise OutboxError(f"edition {edition_id} has no messages on channel {channel.id}")
    failed = {r.key: r for r in rows if r.status is Status.FAILED}
    if not failed:
        raise OutboxError(f"edition {edition_id} has no failed message to render again")
    any_out = any(r.status in (Status.SENT, Status.UNKNOWN, Status.SENDING) for r in rows)
    cursor, created_at = found
    kind = channels.kind(channel)
    stream = next((s for s in kind.streams(channel, channels.host.site) if s.cursor(created_at) == cursor), kind.streams(channel, channels.host.site)[0])
    shaped = channel if stream.mode == channel.mode else channel.model_copy(update={"mode": stream.mode})
    edition = Edition(cursor, tuple(store.editions.articles_of(edition_id)), created_at, edition_id)
    plan = kind.plan(shaped, edition, _Addresses(store, channel.id, sorted({r.destination for r in failed.values()})))
    known = {r.key for r in rows}
    updated = added = unmatched = 0
    new: list[NewMessage] = []
    with store.begin() as conn:
        made = set()
        for item in plan.items:
            made.add(item.key)
            if item.key in failed:
                store.outbox.replace(conn, failed[item.key].id, item.payload, now)
                updated += 1
            elif item.key not in known:
                if any_out:
                    unmatched += 1
                else:
                    new.append(NewMessage(item.key, channel.id, kind.name, item.destination, item.payload, edition_id))
        added = store.outbox.enqueue(conn, new, now=now)
        gone = [r.id for key, r in failed.items() if key not in made]
        store.outbox.dismiss(conn, gone, now, "replaced by `outbox rerender`: the new rendering has no such part")
        if plan.shared is not None:
            Editions.set_shared(conn, edition_id, plan.shared)
    return Rerendered(edition_id, updated, added, len(gone), unmatched)


def release(store: Store, edition_id: int, *, now: datetime) -> int:
    """Give the articles of an edition that failed whole back to its channel's cursor, so
    the next edition carries them. Returns how many articles. Refused while any message of
    the edition went out or may have."""
    rows = store.outbox.of_edition(edition_id)
    if store.editions.get(edition_id) is None:
        raise OutboxError(f"no edition {edition_id}")
    alive = [r for r in rows if r.status not in (Status.FAILED, Status.DISMISSED)]
    gone = {status: n for status, n in store.editions.pruned(edition_id).items()
            if status not in (Status.FAILED.value, Status.DISMISSED.value) and n}
    if gone:  # retention deleted its rows, and kept what they were
        raise OutboxError(f"edition {edition_id} went out ({', '.join(f'{n} {s}' for s, n in sorted(gone.items()))}, "
                          "since deleted by retention); only an edition whose messages all failed can be released")
    if alive:
        raise OutboxError(f"edition {edition_id} has {len(alive)} message(s) that went out, may have, or still "
                          f"wait ({', '.join(sorted({str(r.status) for r in alive}))}); only an edition whose "
                          "messages all failed can be released")
    with store.begin() as conn:
        released = Editions.release(conn, edition_id)
        store.outbox.dismiss(conn, [r.id for r in rows if r.status is Status.FAILED], now,
                             "released: the edition's articles go in the next edition")
    return released
