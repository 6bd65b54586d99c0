"""Config validation: every problem names the key, the bad value and what is expected."""

from __future__ import annotations

import pytest

from bot.config import load_config, parse_config, required_secrets
from bot.errors import ConfigError
from bot.settings import format_duration, parse_duration, secret

BASE = {"site": {"name": "L’Écho", "base_url": "https://echo.example"}}


def channel(**kw):
    ch = {"id": "news", "type": "email", "schedule": {"cron": "0 7 * * *"},
          "transport": {"type": "file"}}
    ch.update(kw)
    return ch


def problems(data) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    return exc.value.problems


def test_defaults_are_french_and_bamako():
    cfg = parse_config(BASE)
    assert cfg.site.language == "fr" and cfg.site.timezone == "Africa/Bamako"
    assert cfg.storage.url.startswith("sqlite:///")


def test_bundled_configs_load(tmp_path):
    from tests.conftest import ROOT

    demo = load_config(ROOT / "config" / "demo.toml")
    assert {c.id for c in demo.channels} >= {"newsletter", "telegram-soir", "telegram-fil", "x"}
    assert demo.database_url == f"sqlite:///{ROOT / 'var' / 'demo.db'}"
    example = load_config(ROOT / "config" / "example.toml")
    assert {s for s, _ in required_secrets(example)} >= {"SMTP_PASSWORD", "TELEGRAM_BOT_TOKEN", "X_ACCESS_TOKEN"}


@pytest.mark.parametrize("data, expected", [
    ({**BASE, "channels": [channel(port=1)]}, 'channels[0] (id "news").port: unknown key'),
    ({**BASE, "channels": [channel(mode="weekly")]}, "channels[0] (id \"news\").mode: got 'weekly'; expected 'digest' or 'article'"),
    ({**BASE, "channels": [channel(schedule={"cron": "0 7 * *"})]}, "not a valid five-field cron expression"),
    ({**BASE, "channels": [channel(schedule={"every": "soon"})]}, "expected a duration such as '30s'"),
    ({**BASE, "channels": [channel(schedule={})]}, "give exactly one of 'cron'"),
    ({**BASE, "channels": [channel(transport={"type": "smtp", "host": "h", "from": "a@b.c", "port": "abc"})]},
     "transport.port: got 'abc'; expected integer"),
    ({**BASE, "channels": [channel(transport={"type": "pigeon"})]}, "transport.type: got 'pigeon'; expected one of"),
    ({**BASE, "channels": [channel(type="telegram", transport={"type": "smtp", "host": "h", "from": "a@b.c"})]},
     "transport.type: got 'smtp'; expected one of 'telegram', 'file' (the transports a telegram channel can use)"),
    ({"site": {"name": "x", "base_url": "echo.example"}}, "site.base_url: expected an http(s) URL"),
    ({"site": {"name": "x", "base_url": "https://e.example", "timezone": "Afrique/Bamako"}}, "unknown timezone 'Afrique/Bamako'"),
    ({**BASE, "channels": [channel(), channel()]}, "two channels have the id 'news'"),
    ({**BASE, "channels": [channel(id="Mon Canal")]}, "expected lowercase letters"),
    ({"sites": {}}, "site: missing"),
])
def test_errors_name_key_value_and_expectation(data, expected):
    found = problems(data)
    assert any(expected in p for p in found), found


def test_all_problems_reported_at_once():
    found = problems({**BASE, "channels": [channel(mode="x", max_articles=0, lookback="forever")]})
    assert len(found) == 3


def test_bad_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[site]\nname = "unterminated\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_relative_paths_resolve_beside_the_config_folder(tmp_path):
    (tmp_path / "config").mkdir()
    f = tmp_path / "config" / "site.toml"
    f.write_text('[site]\nname = "x"\nbase_url = "https://x.example"\n[storage]\nurl = "sqlite:///var/x.db"\n',
                 encoding="utf-8")
    cfg = load_config(f)
    assert cfg.database_url == f"sqlite:///{tmp_path.resolve() / 'var' / 'x.db'}"


def test_secrets_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("TT_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="TT_TOKEN is not set"):
        secret("TT_TOKEN", "channels[tg].transport.token_env")
    monkeypatch.setenv("TT_TOKEN", "123:abc")
    assert secret("TT_TOKEN", "x") == "123:abc"


def test_secret_values_are_not_accepted_in_the_file():
    found = problems({**BASE, "channels": [channel(type="telegram", transport={"type": "telegram", "chat_id": "@c",
                                                                               "token": "123:abc"})]})
    assert any("token: unknown key" in p for p in found)


def test_durations_are_parsed_once_at_load():
    assert parse_duration("15m").total_seconds() == 900
    assert parse_duration("2d").days == 2
    assert parse_duration("0.5s").total_seconds() == 0.5
    for bad in ("0s", "15", "1w", "-1m", ""):
        with pytest.raises(ValueError):
            parse_duration(bad)
    cfg = parse_config({**BASE, "channels": [channel(lookback="36h")],
                        "sources": [{"id": "s", "url": "f.xml", "timeout": "5s", "poll": {"every": "90s"}}],
                        "delivery": {"backoff_base": "1m"}})
    assert cfg.channels[0].lookback.total_seconds() == 36 * 3600
    assert cfg.sources[0].timeout.total_seconds() == 5 and cfg.sources[0].poll.every.total_seconds() == 90
    assert cfg.delivery.backoff_base.total_seconds() == 60
    assert cfg.sources[0].poll.describe() == "every 90s" and format_duration(cfg.channels[0].lookback) == "36h"


@pytest.mark.parametrize("data, expected", [
    ({**BASE, "channels": [channel(lookback="99999999999d")]}, "longer than the 3650 days"),
    ({**BASE, "sources": [{"id": "s", "url": "f.xml", "max_bytes": 1e20}]}, "sources[0] (id \"s\").max_bytes"),
    ({**BASE, "storage": {"url": "garbage"}}, "storage.url: expected 'sqlite:///path/to/file.db'"),
    ({**BASE, "storage": {"url": "mysql://u@h/db"}}, "SQLite or PostgreSQL, not 'mysql'"),
    ({"site": {"name": "L’Écho\nBcc: x@evil.example", "base_url": "https://e.example"}}, "site.name: must be one line"),
    ({**BASE, "channels": [channel(transport={"type": "smtp", "host": "h", "from": "not an address"})]},
     "transport.from: expected an address such as"),
])
def test_values_that_would_fail_later_are_refused_at_load(data, expected):
    found = problems(data)
    assert any(expected in p for p in found), found


def test_postgresql_url_is_accepted():
    cfg = parse_config({**BASE, "storage": {"url": "postgresql://tamtam@db.internal:5432/tamtam"}})
    assert cfg.database_url.startswith("postgresql://")


@pytest.mark.parametrize("url", ["sqlite:///var/x.db", "sqlite:////abs/x.db", "sqlite:///:memory:", "sqlite:///",
                                 "sqlite:///dossier à moi/l’écho.db", "sqlite:///a:b@c/d.db", "sqlite:///x\ny.db",
                                 "sqlite:///#x.db", "sqlite:///x.db?timeout=5", "sqlite://", "sqlite+pysqlite:///x.db"])
def test_a_sqlite_url_is_judged_as_sqlalchemy_reads_it(url):
    """``sqlite:///…`` without options is accepted without loading SQLAlchemy: make_url reads
    every such URL as a SQLite database, so the answer is the one it would give."""
    from sqlalchemy.engine import make_url

    if url.startswith("sqlite:///") and "?" not in url:
        assert make_url(url).get_backend_name() == "sqlite"
    assert parse_config({**BASE, "storage": {"url": url}}).storage.url == url


def test_the_example_config_shows_every_delivery_setting():
    """A setting the admin cannot find in the example is a setting nobody uses."""
    from bot.config import Delivery
    from tests.conftest import ROOT

    section = (ROOT / "config" / "example.toml").read_text(encoding="utf-8").split("\n[delivery]\n")[1].split("\n[")[0]
    assert [name for name in Delivery.model_fields if f"\n{name} = " not in "\n" + section] == []


def test_the_systemd_unit_waits_longer_than_the_shutdown_grace():
    """systemd sends SIGKILL after TimeoutStopSec: shorter than the grace, it would cut off
    the message in flight that SIGTERM lets finish."""
    import configparser

    from bot.config import Delivery
    from tests.conftest import ROOT

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "config" / "tamtam.service", encoding="utf-8")
    service = unit["Service"]
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > Delivery().shutdown_grace.total_seconds()
    assert service["ExecStart"].split()[-1] == "run" and "--config" in service["ExecStart"]
