"""A channel kind from outside bot/ — the pigeon (tests/channels/pigeon/kind.py) — works
end to end with no change to the core: the config validates its channels, ``check`` runs
its trial render, ``once`` publishes and dispatches through its transport to a real local
server, and the contract suite covers it. The kind is registered only by the tests that
use it, and unregistered after.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.channels import registry
from bot.channels.file import FileSettings
from bot.check import check
from bot.config import parse_config, required_secrets
from bot.errors import ConfigError
from tests.channels import rigs
from tests.channels.pigeon.kind import PigeonChannelSettings, PigeonKind, PigeonSettings
from tests.channels.pigeon.loft import Loft

TEMPLATES = Path(__file__).resolve().parent / "templates"
NOW = datetime(2024, 12, 2, 7, 0, tzinfo=timezone.utc)
TOKEN_ENV = "PIGEON_TEST_TOKEN"


@pytest.fixture
def pigeon():
    registry.register(PigeonKind)
    yield PigeonKind
    registry.unregister(PigeonKind.name)


def data(tmp_path: Path, templates: Path = TEMPLATES, **channel: Any) -> dict[str, Any]:
    return {
        "site": {"name": "L’Écho du Sahel", "base_url": "https://echo-sahel.example"},
        "storage": {"url": f"sqlite:///{tmp_path / 'tamtam.db'}"},
        "templates": {"folder": str(templates)},
        "channels": [{"id": "pigeons", "type": "pigeon", "schedule": {"every": "1h"},
                      "transport": {"type": "pigeon", "url": "http://127.0.0.1:9", "token_env": TOKEN_ENV},
                      **channel}],
    }


def admin_templates(tmp_path: Path, note: str) -> Path:
    """An admin template folder whose pigeon/note.txt is ``note``."""
    folder = tmp_path / "admin"
    (folder / "pigeon").mkdir(parents=True)
    (folder / "pigeon" / "note.txt").write_text(note, encoding="utf-8")
    return folder


# -- the config ---------------------------------------------------------------------------------

def test_the_config_accepts_pigeon_channels_once_the_kind_is_registered(tmp_path, pigeon):
    config = parse_config(data(tmp_path))
    channel = config.channels[0]
    assert isinstance(channel, PigeonChannelSettings) and isinstance(channel.transport, PigeonSettings)
    assert channel.transport.timeout == timedelta(seconds=10)  # its own Duration, parsed by the core
    assert required_secrets(config) == [(TOKEN_ENV, "channels[pigeons].transport.token_env")]
    on_disk = parse_config(data(tmp_path, transport={"type": "file", "dir": "var/out"}))
    assert isinstance(on_disk.channels[0].transport, FileSettings)


def test_without_registration_pigeons_are_refused(tmp_path):
    with pytest.raises(ConfigError) as info:
        parse_config(data(tmp_path))
    assert info.value.problems == [
        """channels[0] (id "pigeons").type: got 'pigeon'; expected one of 'email', 'telegram', 'x'"""]


@pytest.mark.parametrize("channel, problem", [
    ({"transport": {"type": "pigeon", "url": "http://127.0.0.1:9", "wings": 2}},
     'channels[0] (id "pigeons").transport.wings: unknown key (check the spelling; see config/example.toml)'),
    ({"transport": {"type": "pigeon"}},
     'channels[0] (id "pigeons").transport.url: missing; this key is required'),
    ({"transport": {"type": "smtp", "host": "127.0.0.1", "from": "a@echo-sahel.example"}},
     """channels[0] (id "pigeons").transport.type: got 'smtp'; expected one of 'pigeon', 'file'"""),
    ({"transport": {"type": "pigeon", "url": "http://127.0.0.1:9", "timeout": "soon"}},
     """channels[0] (id "pigeons").transport.timeout: expected a duration such as '30s', '15m', '2h' or '1d', """
     "got 'soon'"),
    ({"feathers": "grey"},
     'channels[0] (id "pigeons").feathers: unknown key (check the spelling; see config/example.toml)'),
])
def test_the_config_rejects_bad_pigeon_keys_with_a_clear_message(tmp_path, pigeon, channel, problem):
    with pytest.raises(ConfigError) as info:
        parse_config(data(tmp_path, **channel))
    [said] = info.value.problems
    assert said.startswith(problem)  # the core may add a hint after it


# -- check ----------------------------------------------------------------------------------------

def test_check_passes_a_good_pigeon_channel(tmp_path, pigeon, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "t")
    assert check(parse_config(data(tmp_path))) == ([], [])


def test_check_runs_the_trial_render_and_the_kinds_own_rules(tmp_path, pigeon, monkeypatch):
    """The sample edition's third article has no summary: a note of its summary is empty,
    which only the pigeon kind knows is wrong."""
    monkeypatch.setenv(TOKEN_ENV, "t")
    problems, _ = check(parse_config(data(tmp_path, admin_templates(tmp_path, "{{ article.summary }}"))))
    assert problems == ["channel pigeons: with the sample edition: note check:n3 is empty: "
                        "a pigeon cannot carry nothing"]


def test_check_names_a_broken_template_and_a_missing_token(tmp_path, pigeon, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    problems, _ = check(parse_config(data(tmp_path, admin_templates(tmp_path, "🕊 {{ article.wings }}"))))
    assert problems[0] == f"channels[pigeons].transport.token_env: environment variable {TOKEN_ENV} is not set"
    assert problems[1].startswith("channel pigeons: with the sample edition: template pigeon/note.txt, line 1: "
                                  "undefined variable")
    assert "wings" in problems[1] and len(problems) == 2


# -- once -------------------------------------------------------------------------------------------

FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>L’Écho du Sahel</title><link>https://echo-sahel.example/</link>
<item><title>Bamako : « la saison des pluies s’achève »</title>
<link>https://echo-sahel.example/2024/12/02/pluies/</link><guid>https://echo-sahel.example/?p=1</guid>
<pubDate>Mon, 02 Dec 2024 05:00:00 GMT</pubDate></item>
<item><title>Ségou : le festival revient en février</title>
<link>https://echo-sahel.example/2024/12/01/festival/</link><guid>https://echo-sahel.example/?p=2</guid>
<pubDate>Sun, 01 Dec 2024 18:00:00 GMT</pubDate></item>
</channel></rss>
"""


async def test_once_publishes_and_dispatches_through_the_pigeon(tmp_path, pigeon, monkeypatch):
    feed = tmp_path / "feed.xml"
    feed.write_text(FEED, encoding="utf-8")
    with Loft() as loft:
        monkeypatch.setenv(TOKEN_ENV, loft.token)
        config_data = data(tmp_path, transport={"type": "pigeon", "url": loft.url, "token_env": TOKEN_ENV,
                                                "loft": "bamako"})
        config_data["sources"] = [{"id": "echo", "url": str(feed)}]
        app = App(parse_config(config_data, base_dir=str(tmp_path)), clock=lambda: NOW)
        try:
            report = await app.once()
            again = await app.once()  # nothing new: nothing flies twice
        finally:
            await app.aclose()
            app.store.close()
    assert [(e.channel_id, e.articles, e.messages) for e in report.editions] == [("pigeons", 2, 2)]
    assert report.dispatch.sent == 2 and report.dispatch.ok
    assert loft.texts == [
        "🕊 Bamako : « la saison des pluies s’achève » — https://echo-sahel.example/2024/12/02/pluies/",
        "🕊 Ségou : le festival revient en février — https://echo-sahel.example/2024/12/01/festival/",
    ]
    assert {note.loft for note in loft.notes} == {"bamako"}
    assert again.dispatch.sent == 0 and len(loft.notes) == 2


# -- the contract ---------------------------------------------------------------------------------

def test_the_pigeon_joins_the_contract_suite_without_staying_registered():
    assert {("pigeon", "pigeon"), ("pigeon", "file")} <= set(rigs.pairs())
    assert "pigeon" not in registry.KINDS
    with rigs.registered("pigeon"):
        assert registry.KINDS["pigeon"] is PigeonKind
    assert "pigeon" not in registry.KINDS
