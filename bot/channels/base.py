"""The two interfaces a channel kind implements: :class:`Transport` (send one message) and
:class:`ChannelKind` (everything else that is specific to a service).

The core asks the registry for a channel's kind and then only calls these methods; it
never branches on a kind's name. Adding a network is adding a folder under
``bot/channels/`` with a ``ChannelKind`` subclass, its settings model, its renderer, its
transport and its tests, and one line in :mod:`bot.channels.registry`.

A transport sends one rendered :class:`~bot.models.Message` and returns a
:class:`~bot.models.Receipt`, or raises a :class:`~bot.errors.DeliveryError` subclass:
``TransientError`` (the dispatcher retries later, honouring ``retry_after``),
``PermanentError`` (recorded, never retried), ``UncertainDelivery`` (it may be out) or
``AlreadyDelivered`` (counts as sent). Transports never retry, never sleep for backoff and
never touch the store: the dispatcher is their only caller and decides all of that.
Limits are class attributes, so shared code reads them instead of branching (apprise's idea).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Awaitable, Callable, ClassVar, Iterable, Iterator, Mapping, Protocol

from ..limits import RateLimit
from ..models import Edition, Message, Receipt, Subscriber
from ..render import Templates
from ..settings import ChannelSettings, Schedule, Site, TransportSettings


class Host(Protocol):
    """What a channel needs of the whole config: the site, the admin's template folder, and
    paths relative to the project (:class:`bot.config.Config` is one)."""

    site: Site

    @property
    def templates_folder(self) -> str | None: ...

    def resolve(self, path: str) -> Path: ...


class Transport(ABC):
    """Sends one rendered message of its kind to one service."""

    #: the transport's ``type`` in the config
    name: ClassVar[str]
    #: True when sending the same message twice is harmless (email with a fixed
    #: Message-ID, files overwritten by key). A message left "sending" by a crash is then
    #: retried; otherwise it is flagged "unknown" for the admin and never re-sent.
    at_least_once: ClassVar[bool] = False
    #: the longest text one message may carry, in the service's own measure (None: no limit);
    #: a longer one is refused with PermanentError before any request is made
    max_text: ClassVar[int | None] = None
    #: how many messages the dispatcher may have in :meth:`send` at once (connections, say)
    concurrency: int = 1

    def __init__(self, settings: TransportSettings, host: Host, kind: "ChannelKind"):
        """``settings`` is this transport's table, ``host`` the config it lives in, ``kind``
        the channel kind whose messages it carries (the file transport asks it how a
        message looks as files)."""
        self.settings = settings
        self.host = host
        self.kind = kind

    async def open(self) -> None:
        """Connect and check credentials. Raises ConfigError for a missing secret, a
        DeliveryError when the service cannot be reached."""

    @abstractmethod
    async def send(self, message: Message) -> Receipt:
        """Deliver one message, or raise a DeliveryError subclass saying whether to retry."""

    async def aclose(self) -> None:
        """Release connections. Safe to call twice."""

    def rate_limits(self, message: Message) -> "list[RateLimit]":
        """The quotas sending ``message`` counts against; the dispatcher waits on them
        before it claims the message, so they hold by construction."""
        return []

    async def __aenter__(self) -> "Transport":
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


@dataclass(frozen=True)
class OutboxItem:
    """One message as a kind hands it to the outbox: where it goes and the kind's own
    encoding of it (``payload``, JSON), from which :meth:`ChannelKind.message` rebuilds it."""

    key: str
    destination: str
    payload: dict[str, Any]


@dataclass
class Plan:
    """An edition rendered for the outbox: the items (an iterator, so a long list of
    recipients is never held whole), what every item shares (stored once on the edition)
    and a note for the run report."""

    items: Iterable[OutboxItem]
    shared: dict[str, Any] | None = None
    note: Callable[[int], str] = field(default=lambda n: "")


class Audience(Protocol):
    """Who a channel with its own list of recipients sends to (read inside the publishing
    transaction, so the list and the edition agree): the subscribers this stream serves."""

    def subscribers(self) -> Iterator[Subscriber]: ...


@dataclass(frozen=True)
class Stream:
    """One sequence of editions of a channel, with its own schedule and cursor.

    Most channels are one stream (``id`` = the channel's id). An email channel whose readers
    choose how often they hear from it is several: the channel's own digest, one email per
    article every few minutes, a weekly digest. ``cursor(now)`` names the cursor an edition
    made at ``now`` advances (a weekly digest keeps one per weekday), and ``audience(now)``
    the subscribers it goes to (a filter the store understands, e.g. ``{"frequency": "weekly",
    "weekly_day": 2}``)."""

    id: str
    schedule: Schedule
    mode: str  # "digest" or "article"
    lookback: timedelta
    cursor: Callable[[datetime], str]
    audience: Callable[[datetime], Mapping[str, Any]]


class Services(Protocol):
    """What a kind's background jobs and web routes may use: the store, the clock, the config."""

    store: Any
    config: Any

    def clock(self) -> datetime: ...


@dataclass(frozen=True)
class KindJob:
    """A periodic job a kind needs for one of its channels (reading a bounce mailbox, say).
    The daemon schedules it as ``<name>:<channel id>``; ``run`` returns a line for the log."""

    name: str
    every: timedelta
    run: Callable[[Services, datetime], Awaitable[str]]


@dataclass(frozen=True)
class WebView:
    """A sent edition as the web archive shows it: a title and an HTML fragment (the
    kind's own rendering, already safe to put in a page)."""

    title: str
    html: str


@dataclass(frozen=True)
class PreviewFile:
    """One file of a preview: a suffix for the file name and its text."""

    suffix: str
    text: str


class ChannelKind(ABC):
    """Everything Tamtam knows about one kind of channel, behind one interface."""

    #: the channel's ``type`` in the config
    name: ClassVar[str]
    #: the settings model of a channel of this kind (``type: Literal[name]``, a transport union)
    settings: ClassVar[type[ChannelSettings]]
    #: the type of this kind's message bodies; a transport refuses any other
    body: ClassVar[type]
    #: template role → shipped default template
    roles: ClassVar[Mapping[str, str]]
    #: True when the channel has a list of subscribers (managed by ``subscribers …``)
    has_subscribers: ClassVar[bool] = False
    #: Jinja filters this kind's templates use, added to the one shared environment
    filters: ClassVar[Mapping[str, Callable[..., Any]]] = {}
    #: file suffix → what that file is, when the file transport writes this kind's messages
    file_kinds: ClassVar[Mapping[str, str]] = {}

    def __init__(self, templates: Templates, host: Host):
        self.templates = templates
        self.host = host

    # -- templates ---------------------------------------------------------------------
    def template(self, channel: ChannelSettings, role: str) -> str:
        return self.templates.name(channel, role, self.roles)

    def used_roles(self, channel: ChannelSettings) -> list[str]:
        """The roles a channel renders with (``check`` loads each of them)."""
        return [channel.mode]

    # -- streams ---------------------------------------------------------------------------
    @classmethod
    def streams(cls, channel: ChannelSettings, site: Site) -> list[Stream]:
        """The channel's streams of editions; one by default, the channel's own."""
        return [Stream(channel.id, channel.schedule, channel.mode, channel.lookback,
                       cursor=lambda now: channel.id, audience=lambda now: {})]

    # -- edition → outbox → message ------------------------------------------------------
    @abstractmethod
    def plan(self, channel: ChannelSettings, edition: Edition, audience: Audience) -> Plan:
        """Render ``edition`` into outbox items. Content never raises (it is shortened or
        reduced to fit); a broken template raises TemplateError and nothing is recorded."""

    @abstractmethod
    def message(self, channel: ChannelSettings, key: str, destination: str, payload: dict[str, Any],
                shared: dict[str, Any] | None) -> Message:
        """Rebuild the message an outbox item stands for, from its payload and the edition's shared part."""

    @abstractmethod
    def preview(self, channel: ChannelSettings, edition: Edition, audience: Audience) -> list[PreviewFile]:
        """The next edition as files an admin can open, sending and recording nothing."""

    def trial(self, channel: ChannelSettings, edition: Edition) -> list[str]:
        """Render ``edition`` as the channel would and check every message against the
        service's own rules. Returns problems (one line each); raises TemplateError."""
        return [problem for message in self.trial_messages(channel, edition) for problem in self.validate(message)]

    def trial_messages(self, channel: ChannelSettings, edition: Edition) -> Iterator[Message]:
        """Every message ``edition`` makes, for a trial (a sample audience where one is needed)."""
        return iter(())

    def validate(self, message: Message) -> list[str]:
        """What the service would refuse in this message for its content (empty: nothing)."""
        return []

    def warnings(self, channel: ChannelSettings) -> list[str]:
        """Things ``check`` mentions without failing (a missing optional setting)."""
        return []

    def bounce_policy(self, channel: ChannelSettings) -> dict[str, Any]:
        """How a refusal of a recipient counts (keywords of ``store.subscribers.bounce``)."""
        return {}

    # -- what a kind adds to the daemon and the web service ------------------------------
    def jobs(self, channel: ChannelSettings) -> list[KindJob]:
        """Periodic jobs this channel needs besides its editions (none by default)."""
        return []

    def routes(self, services: Services) -> list[Any]:
        """Starlette routes this kind serves in Tamtam's web service (webhooks, say); mounted
        under ``/hooks/<kind>/``. None by default."""
        return []

    def web_view(self, channel: ChannelSettings, shared: dict[str, Any]) -> WebView | None:
        """A sent edition, from what its messages shared (``editions.shared``), for the web
        archive and "view in browser"; None when this kind has nothing to show there."""
        return None

    # -- transports ----------------------------------------------------------------------
    @abstractmethod
    def transport_class(self, settings: TransportSettings) -> type[Transport]:
        """The class that sends for ``settings`` (imported on first use: service libraries are heavy)."""

    def make_transport(self, channel: ChannelSettings) -> Transport:
        return self.transport_class(channel.transport)(channel.transport, self.host, self)

    def at_least_once(self, channel: ChannelSettings) -> bool:
        return self.transport_class(channel.transport).at_least_once

    def files(self, message: Message, now: datetime) -> list[tuple[str, bytes]]:
        """How the file transport writes a message of this kind: (suffix, bytes) per file."""
        raise NotImplementedError(f"{self.name} messages cannot be written to files")
