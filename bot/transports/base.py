"""The one interface every transport implements.

A transport sends one fully rendered :class:`~bot.models.Message` and returns a
:class:`~bot.models.Receipt`, or raises a :class:`~bot.errors.DeliveryError` subclass:
``TransientError`` (the outbox retries later, honouring ``retry_after``),
``PermanentError`` (recorded, never retried) or ``AlreadyDelivered`` (counts as sent).
Transports never retry, never sleep for backoff and never touch the store: the
dispatcher in :mod:`bot.outbox` is their only caller and decides all of that.

Limits are class attributes so shared code reads them instead of branching on the
service (the apprise idea).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from ..models import Message, Receipt


class Transport(ABC):
    #: the ``type`` used in the config
    name: ClassVar[str]
    #: longest text one message may carry (None: no limit)
    max_text: ClassVar[int | None] = None
    #: longest caption of a photo message (Telegram)
    max_caption: ClassVar[int | None] = None
    #: True when sending the same message twice is harmless (email with a fixed
    #: Message-ID, files overwritten by key). A message left "sending" by a crash is then
    #: retried; otherwise it is flagged "unknown" for the admin and never re-sent.
    at_least_once: ClassVar[bool] = False

    def __init__(self, settings: Any, config: Any):
        """``settings`` is this transport's config table, ``config`` the whole :class:`~bot.config.Config`."""
        self.settings = settings
        self.config = config

    async def open(self) -> None:
        """Connect and check credentials. Raises ConfigError for a missing secret."""

    @abstractmethod
    async def send(self, message: Message) -> Receipt:
        """Deliver one message, or raise TransientError / PermanentError / AlreadyDelivered."""

    async def aclose(self) -> None:
        """Release connections. Safe to call twice."""

    async def __aenter__(self) -> "Transport":
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
