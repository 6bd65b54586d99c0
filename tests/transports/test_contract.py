"""One contract, every transport: each is built through the registry from a config, sends
to its real local server, and keeps the promises the dispatcher relies on.

A rig per transport starts the server, says how to write a message of its kind and how
to read back what arrived. Service-specific behaviour lives in the other test files.
"""

from __future__ import annotations

import contextlib
import json
from email import message_from_bytes, policy
from pathlib import Path
from typing import Callable, Iterator

import pytest

from bot.config import parse_config
from bot.errors import TransientError
from bot.models import Message, Receipt
from bot.transports import make_transport, registry
from bot.transports.base import Transport
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.smtp_server import SmtpServer, free_port
from tests.fakes.x_api import FakeXApi

TEXT = "« Le marché de Médine rouvre » : l’État promet 2 000 étals — Bamako, 2 décembre"
KIND = {"file": "email", "smtp": "email", "telegram": "telegram", "x": "x"}
DESTINATION = {"email": "aminata@example.org", "telegram": "@tamtam_test", "x": "x"}


def message(kind: str, key: str = "contract:e1:p1") -> Message:
    if kind == "email":
        return Message(key=key, channel_id="contract", kind="email", destination=DESTINATION["email"],
                       subject=TEXT[:40], text=TEXT, html=f"<p>{TEXT}</p>")
    text = TEXT if kind == "x" else f"<b>{TEXT.replace('&', '&amp;')}</b>"
    return Message(key=key, channel_id="contract", kind=kind, destination=DESTINATION[kind], text=text)


class Rig:
    """A transport's local world: its settings, and what has arrived there."""

    def __init__(self, name: str, transport: dict, arrived: Callable[[], list[str]], down: dict | None):
        self.name, self.transport, self.arrived, self.down = name, transport, arrived, down

    def config(self, tmp_path: Path, transport: dict | None = None):
        t = transport or self.transport
        return parse_config({
            "site": {"name": "L’Écho du Sahel", "base_url": "https://echo.example"},
            "channels": [{"id": "contract", "type": "email" if t["type"] in ("file", "smtp") else t["type"],
                          "schedule": {"every": "5m"}, "transport": t}],
        }, base_dir=str(tmp_path))

    def make(self, tmp_path: Path, transport: dict | None = None) -> Transport:
        cfg = self.config(tmp_path, transport)
        return make_transport(cfg.channels[0].transport, cfg)


@contextlib.contextmanager
def rig(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    if name == "file":
        out = tmp_path / "out"

        def arrived() -> list[str]:
            return [message_from_bytes(p.read_bytes(), policy=policy.default).get_body(("plain",)).get_content()
                    for p in sorted(out.rglob("*.eml"))]

        yield Rig(name, {"type": "file", "dir": str(out)}, arrived, None)
    elif name == "smtp":
        with SmtpServer() as server:
            def arrived() -> list[str]:
                return [message_from_bytes(r.raw, policy=policy.default).get_body(("plain",)).get_content()
                        for r in server.received]

            base = {"type": "smtp", "host": "127.0.0.1", "security": "none", "from": "Écho <lettre@echo.example>",
                    "timeout": "5s"}
            yield Rig(name, {**base, "port": server.port}, arrived, {**base, "port": free_port()})
    elif name == "telegram":
        with FakeBotApi() as api:
            monkeypatch.setenv("CONTRACT_TG_TOKEN", api.token)
            base = {"type": "telegram", "chat_id": "@tamtam_test", "token_env": "CONTRACT_TG_TOKEN", "timeout": "5s"}
            yield Rig(name, {**base, "base_url": api.base_url, "base_file_url": api.base_file_url},
                      lambda: [m.text for m in api.sent],
                      {**base, "base_url": f"http://127.0.0.1:{free_port()}/bot"})
    else:
        with FakeXApi() as api:
            for env, value in (("CONTRACT_X_CK", api.consumer_key), ("CONTRACT_X_CS", api.consumer_secret),
                               ("CONTRACT_X_AT", api.access_token), ("CONTRACT_X_ATS", api.access_token_secret)):
                monkeypatch.setenv(env, value)
            base = {"type": "x", "consumer_key_env": "CONTRACT_X_CK", "consumer_secret_env": "CONTRACT_X_CS",
                    "access_token_env": "CONTRACT_X_AT", "access_token_secret_env": "CONTRACT_X_ATS",
                    "timeout": "5s"}
            yield Rig(name, {**base, "api_base_url": api.base_url}, lambda: api.texts,
                      {**base, "api_base_url": f"http://127.0.0.1:{free_port()}"})


NAMES = sorted(registry())


def test_the_registry_holds_every_transport():
    assert NAMES == ["file", "smtp", "telegram", "x"]


@pytest.mark.parametrize("name", NAMES)
def test_limits_and_semantics_are_declared(name):
    cls = registry()[name]
    assert cls.name == name
    # resending is harmless only where the receiver can tell it is the same message
    assert cls.at_least_once is (name in ("file", "smtp"))
    assert {"telegram": 4096, "x": 280}.get(name) == cls.max_text


@pytest.mark.parametrize("name", NAMES)
async def test_send_delivers_the_french_text_intact_and_returns_a_receipt(name, tmp_path, monkeypatch):
    with rig(name, tmp_path, monkeypatch) as r:
        transport = r.make(tmp_path)
        await transport.open()
        try:
            receipt = await transport.send(message(KIND[name]))
        finally:
            await transport.aclose()
        await transport.aclose()  # closing twice is safe
        assert isinstance(receipt, Receipt) and receipt.transport == name
        arrived = r.arrived()
        assert len(arrived) == 1
        assert TEXT in arrived[0].replace("\r\n", "\n") or TEXT in json.dumps(arrived[0], ensure_ascii=False)


@pytest.mark.parametrize("name", NAMES)
async def test_several_messages_on_one_open_transport(name, tmp_path, monkeypatch):
    with rig(name, tmp_path, monkeypatch) as r:
        async with r.make(tmp_path) as transport:
            for i in range(3):
                m = message(KIND[name], key=f"contract:e1:p{i}")
                if KIND[name] == "x":  # X refuses the same text twice
                    m = Message(**{**m.__dict__, "text": f"{TEXT} ({i})"})
                await transport.send(m)
        assert len(r.arrived()) == 3


@pytest.mark.parametrize("name", [n for n in NAMES if n != "file"])
async def test_an_unreachable_service_is_a_typed_transient_error(name, tmp_path, monkeypatch):
    """Nothing listens there: the request never left, so the outbox may safely retry."""
    with rig(name, tmp_path, monkeypatch) as r:
        transport = r.make(tmp_path, r.down)
        with pytest.raises(TransientError):
            await transport.open()
            await transport.send(message(KIND[name]))
        await transport.aclose()
        assert r.arrived() == []
