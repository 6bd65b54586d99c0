"""``tamtam test-send CHANNEL ADDRESS``: the channel's next edition, rendered as its kind
renders it and sent to one address through the channel's own transport, recorded nowhere.

An editor checks the real thing in a real inbox (their mail client, their phone) before
the subscribers get it. Nothing is written: the edition is read in a transaction that is
rolled back, no outbox row is made, no article is marked sent, and the message keys are
unique to the trial so a provider never folds the test into the real edition. When
nothing is waiting, the shipped sample articles stand in (as for ``preview``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator

from . import editions
from .channels.registry import Channels
from .models import Edition, Receipt, Subscriber
from .render import sample_edition
from .settings import ChannelSettings
from .store import Store


@dataclass(frozen=True)
class TestSend:
    __test__ = False  # not a pytest class

    articles: int
    sample: bool
    receipts: list[Receipt]


class _One:
    """An audience of one: the reader's own preferences when they are on the list."""

    def __init__(self, subscriber: Subscriber):
        self.subscriber = subscriber

    def subscribers(self) -> Iterator[Subscriber]:
        yield self.subscriber


def next_edition(channels: Channels, store: Store, channel: ChannelSettings, now: datetime) -> tuple[Edition, bool]:
    """(the edition the channel would send now, True when sample articles stand in)."""
    with store.engine.connect() as conn:
        trans = conn.begin()
        try:
            edition = editions.preview_edition(conn, channel, now)
        finally:
            trans.rollback()
    sample = not edition.articles
    if sample:
        edition = sample_edition(channel, channels.host.site.base_url, now)
    return Edition(edition.channel_id, edition.articles, edition.created_at, id=0), sample


async def test_send(channels: Channels, store: Store, channel: ChannelSettings, address: str, *,
                    now: datetime) -> TestSend:
    """Render and send; raises what the transport raises (a DeliveryError, a ConfigError)."""
    kind = channels.kind(channel)
    edition, sample = next_edition(channels, store, channel, now)
    reader = store.subscribers.find(channel.id, address) if kind.has_subscribers else None
    if reader is None:
        reader = Subscriber(id=0, channel_id=channel.id, email=address, name=None, token="test-send", active=True,
                            created_at=now)
    plan = kind.plan(channel, edition, _One(reader))
    items = list(plan.items)  # before reading plan.shared: a kind may add shared parts as it goes
    trial = f"test-{uuid.uuid4().hex[:12]}"
    messages = [kind.message(channel, f"{trial}:{item.key}", address, item.payload, plan.shared) for item in items]
    receipts = []
    transport = kind.make_transport(channel)
    async with transport:
        for message in messages:
            receipts.append(await transport.send(message))
    return TestSend(len(edition.articles), sample, receipts)
