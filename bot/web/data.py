"""Read-only views the readers' pages need and the store does not offer yet: a list's sent
editions (the archive, the feed) and the site's most common categories (the topics a
reader picks from).

They only read. Every write still goes through :mod:`bot.store` (nothing here changes a
row); once the store offers these reads they move there.
"""

from __future__ import annotations

import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ..settings import ChannelSettings
from ..store import Store
from ..store import tables as t

#: how many recent articles the topic list is counted on, and how many topics it shows
TOPIC_SAMPLE = 500
MAX_TOPICS = 12
TOPICS_TTL = 300.0  # seconds a channel's topic list is kept before it is counted again


@dataclass(frozen=True)
class EditionRow:
    id: int
    channel_id: str
    created_at: datetime
    article_count: int
    shared: dict[str, Any] | None


def editions(store: Store, channel_id: str, *, limit: int = 30, before: int | None = None) -> list[EditionRow]:
    """The channel's editions that went out with something to show, newest first."""
    e = t.editions
    q = (select(e).where(e.c.channel_id == channel_id, e.c.shared.is_not(None), e.c.article_count > 0)
         .order_by(e.c.id.desc()).limit(limit))
    if before is not None:
        q = q.where(e.c.id < before)
    with store.db.connect() as conn:
        return [EditionRow(r.id, r.channel_id, r.created_at, r.article_count, r.shared) for r in conn.execute(q)]


def edition(store: Store, channel_id: str, edition_id: int) -> EditionRow | None:
    e = t.editions
    q = select(e).where(e.c.id == edition_id, e.c.channel_id == channel_id, e.c.shared.is_not(None))
    with store.db.connect() as conn:
        r = conn.execute(q).first()
    return None if r is None else EditionRow(r.id, r.channel_id, r.created_at, r.article_count, r.shared)


def _fold(label: str) -> str:
    text = unicodedata.normalize("NFKD", label.strip().casefold())
    return "".join(c for c in text if not unicodedata.combining(c))


def common_categories(store: Store, *, sample: int = TOPIC_SAMPLE) -> list[str]:
    """Categories of the newest ``sample`` articles, most common first (spelled as most
    often written; 'Économie' and 'economie' count as one)."""
    q = select(t.articles.c.categories).order_by(t.articles.c.id.desc()).limit(sample)
    counts: Counter[str] = Counter()
    spellings: dict[str, Counter[str]] = {}
    with store.db.connect() as conn:
        for (cats,) in conn.execute(q):
            for c in dict.fromkeys(cats or []):
                if not isinstance(c, str) or not c.strip():
                    continue
                key = _fold(c)
                counts[key] += 1
                spellings.setdefault(key, Counter())[c.strip()] += 1
    return [spellings[k].most_common(1)[0][0] for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


class Topics:
    """The topics a list's readers choose from: the channel's own categories when it has
    some, else the ``[web] topics`` list, else the site's most common categories (less
    the channel's excluded ones), counted again every few minutes."""

    def __init__(self, store: Store, configured: list[str]):
        self.store = store
        self.configured = configured
        self._cache: dict[str, tuple[float, list[str]]] = {}

    def __call__(self, channel: ChannelSettings) -> list[str]:
        if channel.categories:
            return list(channel.categories)
        if self.configured:
            return list(self.configured)
        found = self._cache.get(channel.id)
        if found is None or time.monotonic() - found[0] > TOPICS_TTL:
            excluded = {_fold(c) for c in channel.exclude_categories}
            names = [c for c in common_categories(self.store) if _fold(c) not in excluded][:MAX_TOPICS]
            found = (time.monotonic(), names)
            self._cache[channel.id] = found
        return found[1]

    def pick(self, channel: ChannelSettings, chosen: list[str]) -> list[str] | None:
        """The chosen topics as the list names them (None: every topic, when none or all
        are chosen); an unknown topic is dropped."""
        known = {_fold(c): c for c in self(channel)}
        picked = list(dict.fromkeys(known[_fold(c)] for c in chosen if _fold(c) in known))
        if not picked or len(picked) == len(known):
            return None
        return picked
