"""The contract suite's view of every channel kind and transport (tests/channels/test_contract.py).

Two registries, both keyed by name:

* a :class:`Sample` per channel kind says how to write a message of that kind and how a
  reader sees a file of it (the file transport writes every kind);
* a :class:`Rig` per transport starts that transport's real local server, gives the
  transport table pointing at it, reads back what arrived there (decoded as a client
  would), counts the requests that reached it, and injects the faults the contract needs.
  A fault a transport has no notion of (a rate limit for SMTP, a timeout for files) skips
  with the reason.

The contract runs on every (kind, transport) pair the channel registry knows, plus the kinds
that live in the test folder (:data:`TEST_KIND_MODULES`), which it registers only around the
tests that use them. A new channel joins by registering its sample and a rig for each new
transport here (or in its own test module, listed in :data:`TEST_KIND_MODULES`); a kind or
transport without them fails the contract with a message saying so.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import html
import importlib
import json
import typing
from pathlib import Path
from typing import Any, ClassVar, Iterator

import pytest

from bot.channels import registry
from bot.channels.base import ChannelKind, Transport
from bot.channels.email.mime import EmailBody
from bot.channels.registry import Channels
from bot.channels.telegram.render import TelegramPost
from bot.channels.x.render import XPost
from bot.config import Config, parse_config
from bot.models import Message
from tests.fakes.bot_api import FakeBotApi, telegram_plain_text
from tests.fakes.smtp_server import SmtpServer, free_port
from tests.fakes.x_api import FakeXApi

CHANNEL = "contract"
SITE = {"name": "L’Écho du Sahel", "base_url": "https://echo-sahel.example"}
#: French as a newsroom writes it: guillemets, apostrophe, accents, an ellipsis and a dash.
TEXT = "« Le marché de Médine rouvre… » : l’État promet 2 000 étals — Bamako, 2 décembre, à l’aube"

#: Modules of channel kinds that live in the test folder, not in bot/. Each defines ``KIND``
#: (its ChannelKind class) and registers its sample and rigs here when imported.
TEST_KIND_MODULES = ("tests.channels.pigeon.rig",)


# -- kinds ---------------------------------------------------------------------------------

class Sample:
    """How the contract writes a message of one channel kind, and reads one back from a file."""

    kind: ClassVar[str]
    destination: ClassVar[str]

    def body(self, text: str) -> Any:
        raise NotImplementedError

    def message(self, text: str = TEXT, key: str = f"{CHANNEL}:e1:p1") -> Message:
        return Message(key=key, channel_id=CHANNEL, kind=self.kind, destination=self.destination,
                       body=self.body(text))

    def read_file(self, suffix: str, data: bytes) -> str | None:
        """The text a reader of this file sees, or None for a file that repeats another
        (an email's .html next to its .eml)."""
        raise NotImplementedError


SAMPLES: dict[str, Sample] = {}


def register_sample(cls: type[Sample]) -> type[Sample]:
    SAMPLES[cls.kind] = cls()
    return cls


def read_email(raw: bytes) -> str:
    """The text part as a mail client shows it (line ends as LF, no trailing line break)."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    return msg.get_body(("plain",)).get_content().replace("\r\n", "\n").rstrip("\n")


@register_sample
class EmailSample(Sample):
    kind = "email"
    destination = "aminata@example.org"

    def body(self, text: str) -> EmailBody:
        return EmailBody(subject="Les titres du 2 décembre", text=text, html=f"<p>{html.escape(text)}</p>")

    def read_file(self, suffix: str, data: bytes) -> str | None:
        return read_email(data) if suffix == ".eml" else None


@register_sample
class TelegramSample(Sample):
    kind = "telegram"
    destination = "@tamtam_test"

    def body(self, text: str) -> TelegramPost:
        return TelegramPost(f"<b>{html.escape(text, quote=False)}</b>")

    def read_file(self, suffix: str, data: bytes) -> str | None:
        call = json.loads(data)
        return telegram_plain_text(call.get("text") or call.get("caption") or "")


@register_sample
class XSample(Sample):
    kind = "x"
    destination = "x"

    def body(self, text: str) -> XPost:
        return XPost(text)

    def read_file(self, suffix: str, data: bytes) -> str | None:
        return data.decode("utf-8")


def local_kinds() -> dict[str, type[ChannelKind]]:
    """The kinds defined in the test folder (importing them registers their samples and rigs)."""
    out = {}
    for module in TEST_KIND_MODULES:
        kind = importlib.import_module(module).KIND
        out[kind.name] = kind
    return out


def kinds() -> dict[str, type[ChannelKind]]:
    """Every kind the contract covers: the registry's, and the test folder's."""
    return {**local_kinds(), **registry.KINDS}


def transport_types(kind: type[ChannelKind]) -> list[str]:
    """The ``type`` of every transport a kind's settings accept (its ``transport`` union)."""
    annotation = kind.settings.model_fields["transport"].annotation
    models = typing.get_args(annotation) or (annotation,)
    return [typing.get_args(m.model_fields["type"].annotation)[0] for m in models]


def pairs() -> list[tuple[str, str]]:
    """(kind, transport) for every transport of every kind."""
    return [(name, transport) for name, kind in sorted(kinds().items()) for transport in transport_types(kind)]


@contextlib.contextmanager
def registered(name: str) -> Iterator[None]:
    """The kind ``name`` in the channel registry for the duration (test kinds are not there otherwise)."""
    if name in registry.KINDS:
        yield
        return
    registry.register(local_kinds()[name])
    try:
        yield
    finally:
        registry.unregister(name)


# -- transports --------------------------------------------------------------------------------

class Rig:
    """One transport's local world. Use as a context manager (starts and stops the server)."""

    #: the transport's ``type``
    name: ClassVar[str]

    def __init__(self, sample: Sample, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        self.sample = sample
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch

    def __enter__(self) -> "Rig":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    # what each rig says about its service
    def table(self) -> dict[str, Any]:
        """The ``[channels.transport]`` table that points at the local server."""
        raise NotImplementedError

    def arrived(self) -> list[str]:
        """The text of every message the service holds, in order, decoded as a reader sees it."""
        raise NotImplementedError

    def requests(self) -> int:
        """How many requests have reached the service so far (accepted or not)."""
        raise NotImplementedError

    def unreachable(self) -> dict[str, Any]:
        """Table keys that point the transport where nothing listens."""
        pytest.skip(f"the {self.name} transport has no service to be unreachable")

    def answer_late(self) -> None:
        """Make the service take the next message and never answer in time (connecting and
        logging in stay quick)."""
        pytest.skip(f"the {self.name} transport waits for no answer")

    def fail_service(self) -> None:
        """Make the service answer the next message with a temporary error of its own (5xx, 4xx SMTP)."""
        pytest.skip(f"the {self.name} transport has no service to fail")

    def rate_limit(self, seconds: int) -> None:
        """Make the service refuse the next message for flood control, saying when to come back."""
        pytest.skip(f"the {self.name} service has no notion of retry-after")

    def filler(self, n: int) -> str:
        """A text of exactly ``n`` characters in the service's own measure."""
        return "é" * n

    # built on the above
    def config(self, **table: Any) -> Config:
        return parse_config({
            "site": SITE,
            "channels": [{"id": CHANNEL, "type": self.sample.kind, "schedule": {"every": "5m"},
                          "transport": {**self.table(), **table}}],
        }, base_dir=str(self.tmp_path))

    def transport(self, **table: Any) -> Transport:
        """The transport, built from a config through the registry as the dispatcher builds it."""
        config = self.config(**table)
        channel = config.channels[0]
        return Channels(config).kind(channel).make_transport(channel)

    def message(self, text: str = TEXT, key: str = f"{CHANNEL}:e1:p1") -> Message:
        return self.sample.message(text, key)


RIGS: dict[str, type[Rig]] = {}


def register_rig(cls: type[Rig]) -> type[Rig]:
    RIGS[cls.name] = cls
    return cls


@contextlib.contextmanager
def rig(kind: str, transport: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    """The rig of ``transport`` carrying ``kind`` messages, with the kind registered."""
    kinds()  # imports the test kinds, which register their samples and rigs
    if kind not in SAMPLES:
        pytest.fail(f"channel kind {kind!r} has no contract sample: register one in tests/channels/rigs.py")
    if transport not in RIGS:
        pytest.fail(f"transport {transport!r} has no contract rig: register one in tests/channels/rigs.py")
    with registered(kind), RIGS[transport](SAMPLES[kind], tmp_path, monkeypatch) as r:
        yield r


@register_rig
class FileRig(Rig):
    name = "file"

    @property
    def out(self) -> Path:
        return self.tmp_path / "out"

    def table(self) -> dict[str, Any]:
        return {"type": "file", "dir": str(self.out)}

    def _files(self) -> list[Path]:
        return sorted(p for p in self.out.rglob("*") if p.is_file()) if self.out.exists() else []

    def arrived(self) -> list[str]:
        texts = (self.sample.read_file(p.suffix, p.read_bytes()) for p in self._files())
        return [t for t in texts if t is not None]

    def requests(self) -> int:
        return len(self._files())


@register_rig
class SmtpRig(Rig):
    """An SMTP server that requires AUTH, so the credentials are secrets the contract can remove."""

    name = "smtp"
    USER, PASSWORD = "tamtam", "s3cr3t-é"

    def __enter__(self) -> "SmtpRig":
        self.monkeypatch.setenv("CONTRACT_SMTP_USER", self.USER)
        self.monkeypatch.setenv("CONTRACT_SMTP_PASSWORD", self.PASSWORD)
        self.server = SmtpServer(auth=(self.USER, self.PASSWORD)).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def table(self) -> dict[str, Any]:
        return {"type": "smtp", "host": "127.0.0.1", "port": self.server.port, "security": "none",
                "from": "L’Écho du Sahel <lettre@echo-sahel.example>", "timeout": "5s",
                "username_env": "CONTRACT_SMTP_USER", "password_env": "CONTRACT_SMTP_PASSWORD"}

    def arrived(self) -> list[str]:
        return [read_email(r.raw) for r in self.server.received]

    def requests(self) -> int:
        return len(self.server.commands)

    def unreachable(self) -> dict[str, Any]:
        return {"port": free_port()}

    def answer_late(self) -> None:
        self.server.hold_next(60, at="DATA")

    def fail_service(self) -> None:
        self.server.fail_next("451 4.3.0 Mailbox busy, try again later", at="DATA")

    def rate_limit(self, seconds: int) -> None:
        pytest.skip("SMTP has no retry-after: a 4xx reply carries no delay")


@register_rig
class TelegramRig(Rig):
    name = "telegram"

    def __enter__(self) -> "TelegramRig":
        self.api = FakeBotApi().start()
        self.monkeypatch.setenv("CONTRACT_TG_TOKEN", self.api.token)
        return self

    def __exit__(self, *exc: object) -> None:
        self.api.stop()

    def table(self) -> dict[str, Any]:
        return {"type": "telegram", "chat_id": "@tamtam_test", "token_env": "CONTRACT_TG_TOKEN",
                "base_url": self.api.base_url, "base_file_url": self.api.base_file_url, "timeout": "5s"}

    def arrived(self) -> list[str]:
        return [telegram_plain_text(m.text if m.text is not None else m.caption or "") for m in self.api.sent]

    def requests(self) -> int:
        return len(self.api.calls)

    def unreachable(self) -> dict[str, Any]:
        return {"base_url": f"http://127.0.0.1:{free_port()}/bot"}

    def answer_late(self) -> None:
        self.api.delay_next(60, method="sendMessage")

    def fail_service(self) -> None:
        self.api.fail_next(status=502)

    def rate_limit(self, seconds: int) -> None:
        self.api.fail_next(status=429, retry_after=seconds)


@register_rig
class XRig(Rig):
    name = "x"
    ENVS = {"consumer_key_env": "CONTRACT_X_CK", "consumer_secret_env": "CONTRACT_X_CS",
            "access_token_env": "CONTRACT_X_AT", "access_token_secret_env": "CONTRACT_X_ATS"}

    def __enter__(self) -> "XRig":
        self.api = FakeXApi().start()
        for field, env in self.ENVS.items():
            self.monkeypatch.setenv(env, getattr(self.api, field.removesuffix("_env")))
        return self

    def __exit__(self, *exc: object) -> None:
        self.api.stop()

    def table(self) -> dict[str, Any]:
        return {"type": "x", "api_base_url": self.api.base_url, "timeout": "5s", **self.ENVS}

    def arrived(self) -> list[str]:
        return self.api.texts

    def requests(self) -> int:
        return len(self.api.requests)

    def unreachable(self) -> dict[str, Any]:
        return {"api_base_url": f"http://127.0.0.1:{free_port()}"}

    def answer_late(self) -> None:
        self.api.delay = 60  # the X transport sends nothing before the post

    def fail_service(self) -> None:
        self.api.fail_next(status=503)

    def rate_limit(self, seconds: int) -> None:
        self.api.fail_next(status=429, reset_in=seconds)
