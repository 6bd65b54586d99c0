"""``check`` on the readers' side: the pages' and the confirmation's templates load, and it
says what an http public address costs."""

from __future__ import annotations

from bot.check import check
from bot.config import parse_config


def config(tmp_path, **web):
    return parse_config({
        "site": {"name": "L’Écho", "base_url": "https://echo.example"},
        "storage": {"url": f"sqlite:///{tmp_path / 't.db'}"},
        "templates": {"folder": str(tmp_path / "tpl")},
        "web": {"secret_file": "var/secret", **web},
        "channels": [{"id": "news", "type": "email", "schedule": {"cron": "0 7 * * *"},
                      "unsubscribe_url": "https://echo.example/desabonnement?jeton={token}",
                      "transport": {"type": "file", "dir": "out"}}],
    }, base_dir=str(tmp_path))


def test_a_broken_page_override_and_an_http_address_are_reported(tmp_path):
    (tmp_path / "tpl" / "web").mkdir(parents=True)
    (tmp_path / "tpl" / "web" / "subscribe.html").write_text("{% block content %}{{ w.x }", encoding="utf-8")
    problems, warnings = check(config(tmp_path, public_url="http://lettre.echo.example"))
    assert any("web/subscribe.html" in p and "syntax error" in p for p in problems), problems
    assert any("is not https" in w for w in warnings)
    assert any("unsubscribe_url is not used" in w for w in warnings)
    assert not any("no unsubscribe link" in w for w in warnings)  # [web] gives every email one


def test_a_sound_web_table_passes(tmp_path):
    (tmp_path / "tpl").mkdir()
    problems, warnings = check(config(tmp_path, public_url="https://lettre.echo.example"))
    assert problems == [] and not any("is not https" in w for w in warnings)
