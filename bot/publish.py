"""Edition → render → outbox, in one transaction.

This is the step that turns "the channel's schedule fired" into messages waiting to be
delivered. Because the edition, the per-channel cursor and every outbox row are written
in the same transaction, a crash leaves either all of them or none: an article can never
be marked sent without its messages existing, nor a message exist twice.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from urllib.parse import quote

from sqlalchemy import update

from . import editions
from .config import Channel, Config
from .models import Edition, Recipient
from .outbox import OutboxRow, enqueue
from .render import Renderer
from .store import Store
from .store import tables as t

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishResult:
    channel_id: str
    edition_id: int | None
    articles: int
    messages: int
    note: str = ""


def destination_of(channel: Channel) -> str:
    s = channel.transport
    if channel.type == "telegram":
        return getattr(s, "chat_id", None) or f"file:{channel.id}"
    if channel.type == "x":
        return getattr(s, "account", None) or f"file:{channel.id}"
    raise ValueError(channel.type)


def unsubscribe_url(channel: Channel, token: str, email: str) -> str | None:
    if not channel.unsubscribe_url:
        return None
    return channel.unsubscribe_url.replace("{token}", quote(token, safe="")).replace("{email}", quote(email, safe="@"))


def build_rows(config: Config, renderer: Renderer, store: Store, conn, channel: Channel,  # type: ignore[no-untyped-def]
               edition: Edition) -> tuple[list[OutboxRow], dict | None]:
    """Render an edition into outbox rows. Returns (rows, shared part stored once on the edition)."""
    base = f"{channel.id}:e{edition.id}"
    if channel.type == "email":
        # A digest is one shared part; article mode sends one email per article, each its own part.
        if channel.mode == "digest":
            parts = {"digest": edition}
        else:
            parts = {f"a{a.id}": Edition(edition.channel_id, (a,), edition.created_at, edition.id)
                     for a in edition.articles}
        digests = {name: renderer.email_digest(channel, part) for name, part in parts.items()}
        rows = []
        for sub in store.subscribers(channel.id, conn=conn):
            unsub = unsubscribe_url(channel, sub.token, sub.email)
            recipient = Recipient(sub.email, sub.name, unsub)
            headers = {"List-Id": f"{channel.title or config.site.name} <{channel.id}.{_host(config.site.base_url)}>"}
            if unsub:
                headers["List-Unsubscribe"] = f"<{unsub}>"
                if unsub.startswith("https://"):
                    headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            for name, digest in digests.items():
                envelope = renderer.email_envelope(channel, digest, recipient)
                key = f"{base}:{sub.email}" if name == "digest" else f"{base}:{name}:{sub.email}"
                rows.append(OutboxRow(
                    key=key, channel_id=channel.id, kind="email", destination=sub.email,
                    payload={"part": name, "envelope": asdict(envelope), "headers": headers}, edition_id=edition.id,
                ))
        return rows, {"email": {name: asdict(d) for name, d in digests.items()}}
    dest = destination_of(channel)
    if channel.type == "telegram":
        posts = renderer.telegram_posts(channel, edition)
        return [OutboxRow(key=f"{base}:p{i}", channel_id=channel.id, kind="telegram", destination=dest,
                          payload={"text": p.text, "photo_url": p.photo_url}, edition_id=edition.id)
                for i, p in enumerate(posts, 1)], None
    posts_x = renderer.x_posts(channel, edition)
    return [OutboxRow(key=f"{base}:p{i}", channel_id=channel.id, kind="x", destination=dest,
                      payload={"text": text}, edition_id=edition.id)
            for i, text in enumerate(posts_x, 1)], None


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname or "localhost"


def publish(config: Config, renderer: Renderer, store: Store, channel: Channel, *, now: datetime) -> PublishResult:
    """Build the channel's next edition and queue its messages. Raises TemplateError (nothing recorded)."""
    with store.begin() as conn:
        edition = editions.record_edition(conn, channel, now)
        if edition is None:
            return PublishResult(channel.id, None, 0, 0, "nothing new")
        rows, shared = build_rows(config, renderer, store, conn, channel, edition)
        if shared is not None:
            conn.execute(update(t.editions).where(t.editions.c.id == edition.id).values(shared=shared))
        enqueue(conn, rows, now=now)
    note = ""
    if channel.type == "email" and not rows:
        note = "no active subscribers"
        log.warning("channel %s: edition %s has no active subscribers", channel.id, edition.id)
    return PublishResult(channel.id, edition.id, len(edition.articles), len(rows), note)


@dataclass(frozen=True)
class Preview:
    edition: Edition
    items: list  # (EmailDigest, EmailEnvelope) for email, TelegramPost or str otherwise
    waiting: int  # articles the channel would send now
    sample: bool  # True when the shipped sample articles stood in


def preview(config: Config, renderer: Renderer, store: Store, channel: Channel, *, now: datetime,
            sample: bool = False) -> Preview:
    """Render the next edition without recording anything: the transaction is rolled back.

    With ``sample`` (or when nothing is waiting) the shipped sample articles stand in, so an
    admin can see a template change before any article exists.
    """
    from .render import sample_edition

    conn = store.engine.connect()
    trans = conn.begin()
    try:
        edition = editions.preview_edition(conn, channel, now)
        waiting = len(edition.articles)
        sample = sample or not waiting
        if sample:
            edition = sample_edition(channel, config, now)
        edition = Edition(edition.channel_id, edition.articles, edition.created_at, id=0)
        if channel.type == "email":
            digest = renderer.email_digest(channel, edition)
            subs = store.subscribers(channel.id, conn=conn)
            sub = subs[0] if subs else None
            recipient = Recipient(sub.email, sub.name, unsubscribe_url(channel, sub.token, sub.email)) if sub else \
                Recipient("lecteur@example.org", "Aminata", unsubscribe_url(channel, "exemple", "lecteur@example.org"))
            items: list = [(digest, renderer.email_envelope(channel, digest, recipient))]
        elif channel.type == "telegram":
            items = list(renderer.telegram_posts(channel, edition))
        else:
            items = list(renderer.x_posts(channel, edition))
        return Preview(edition, items, waiting, sample)
    finally:
        trans.rollback()
        conn.close()
