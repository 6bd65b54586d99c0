"""A throwaway channel kind, "pigeon", built only from bot/'s public interfaces.

It proves a new network needs no change to the core: a settings model with its own
transport table (``type = "pigeon"``, or the shared ``file``), a renderer that makes one
short note per article from a template, and a transport that POSTs each note to the loft
(tests/channels/pigeon/loft.py). Registered with :func:`bot.channels.registry.register`
by the tests that use it, never at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Iterator, Literal, Union

import httpx
from pydantic import Field

from bot.channels.base import Audience, ChannelKind, OutboxItem, Plan, PreviewFile, Transport
from bot.channels.file import FileSettings, FileTransport
from bot.errors import ConfigError, PermanentError, TransientError, UncertainDelivery
from bot.models import Edition, Message, Receipt
from bot.render import Templates
from bot.settings import ChannelSettings, Duration, TransportSettings, secret, secret_env

KIND = "pigeon"
MAX_TEXT = 140
ROLES = {"note": "pigeon/note.txt"}


class PigeonSettings(TransportSettings):
    """``transport = { type = "pigeon", url = "http://loft.example" }``"""

    type: Literal["pigeon"]
    url: str
    loft: str = "colombier"
    token_env: str = secret_env("PIGEON_TOKEN")
    timeout: Duration = timedelta(seconds=10)


class PigeonChannelSettings(ChannelSettings):
    type: Literal["pigeon"]
    transport: Annotated[Union[PigeonSettings, FileSettings], Field(discriminator="type")]


@dataclass(frozen=True)
class PigeonNote:
    text: str


class PigeonRenderer:
    def __init__(self, templates: Templates):
        self.templates = templates

    def notes(self, channel: PigeonChannelSettings, edition: Edition) -> list[PigeonNote]:
        """One note per article; a long one is cut (content never raises, a broken template does)."""
        name = self.templates.name(channel, "note", ROLES)
        notes = []
        for article in edition.articles:
            text = self.templates.render(name, self.templates.context(channel, edition, [article], article=article))
            text = " ".join(text.split())
            if len(text) > MAX_TEXT:
                text = text[:MAX_TEXT - 1].rstrip() + "…"
            notes.append(PigeonNote(text))
        return notes


class PigeonKind(ChannelKind):
    name = KIND
    settings = PigeonChannelSettings
    roles = ROLES
    body = PigeonNote
    file_kinds = {".txt": "the note a pigeon carries"}

    def __init__(self, templates: Templates, host: Any):
        super().__init__(templates, host)
        self.renderer = PigeonRenderer(templates)

    def used_roles(self, channel: ChannelSettings) -> list[str]:
        return ["note"]

    @staticmethod
    def destination(channel: PigeonChannelSettings) -> str:
        return getattr(channel.transport, "loft", None) or f"file:{channel.id}"

    def plan(self, channel: PigeonChannelSettings, edition: Edition,  # type: ignore[override]
             audience: Audience) -> Plan:
        dest = self.destination(channel)
        return Plan([OutboxItem(f"{channel.id}:e{edition.id}:n{i}", dest, {"text": note.text})
                     for i, note in enumerate(self.renderer.notes(channel, edition), 1)])

    def message(self, channel: ChannelSettings, key: str, destination: str, payload: dict[str, Any],
                shared: dict[str, Any] | None) -> Message:
        return Message(key, channel.id, KIND, destination, PigeonNote(payload["text"]))

    def preview(self, channel: PigeonChannelSettings, edition: Edition,  # type: ignore[override]
                audience: Audience) -> list[PreviewFile]:
        return [PreviewFile(".txt", "\n".join(n.text for n in self.renderer.notes(channel, edition)))]

    def trial_messages(self, channel: PigeonChannelSettings,  # type: ignore[override]
                       edition: Edition) -> Iterator[Message]:
        for i, note in enumerate(self.renderer.notes(channel, edition), 1):
            yield Message(f"check:n{i}", channel.id, KIND, self.destination(channel), note)

    def validate(self, message: Message) -> list[str]:
        if not message.body.text.strip():
            return [f"note {message.key} is empty: a pigeon cannot carry nothing"]
        return []

    def transport_class(self, settings: TransportSettings) -> type[Transport]:
        return PigeonTransport if isinstance(settings, PigeonSettings) else FileTransport

    def files(self, message: Message, now: datetime) -> list[tuple[str, bytes]]:
        return [(".txt", message.body.text.encode("utf-8"))]


class PigeonTransport(Transport):
    """POSTs each note to the loft. At most once: a note that flew cannot be called back."""

    name: ClassVar[str] = "pigeon"
    at_least_once: ClassVar[bool] = False
    max_text: ClassVar[int | None] = MAX_TEXT

    settings: PigeonSettings

    def __init__(self, settings: PigeonSettings, host: Any, kind: ChannelKind):
        super().__init__(settings, host, kind)
        self._client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        if self._client is not None:
            return
        token = secret(self.settings.token_env, "pigeon transport token_env")
        if not token:
            raise ConfigError("pigeon transport: token_env names no variable")
        self._client = httpx.AsyncClient(base_url=self.settings.url, timeout=self.settings.timeout.total_seconds(),
                                         headers={"Authorization": f"Bearer {token}"})

    async def send(self, message: Message) -> Receipt:
        note = message.body
        if not isinstance(note, PigeonNote):
            raise PermanentError(f"pigeon transport: {message.key} is a {message.kind!r} message")
        if not note.text.strip() or len(note.text) > MAX_TEXT:
            raise PermanentError(f"pigeon transport: note {message.key} has {len(note.text)} characters; "
                                 f"a pigeon carries 1 to {MAX_TEXT}")
        await self.open()
        assert self._client is not None
        try:
            answer = await self._client.post("/notes", json={"loft": message.destination, "text": note.text})
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # never left
            raise TransientError(f"pigeon transport: cannot reach {self.settings.url}: {exc}") from exc
        except httpx.TransportError as exc:  # it left: it may have flown
            raise UncertainDelivery(f"pigeon transport: no answer for {message.key}; it may have flown") from exc
        if answer.status_code == 429:
            wait = answer.headers.get("retry-after")
            raise TransientError("pigeon transport: the loft is full", retry_after=float(wait) if wait else None)
        if answer.status_code >= 500:
            raise TransientError(f"pigeon transport: the loft answered {answer.status_code}")
        if answer.status_code >= 400:
            raise PermanentError(f"pigeon transport: the loft refused {message.key}: {answer.json().get('error')}")
        note_id = str(answer.json()["id"])
        return Receipt(transport=self.name, remote_id=note_id, detail=f"note {note_id} to {message.destination}")

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
