"""The email kind (bot.channels.email.EmailKind) and its channel settings: the list headers
each reader's email carries (List-Id, List-Unsubscribe in its https and mailto forms), the
settings that feed them, and what ``check`` warns about."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import pytest

from bot.channels.registry import Channels
from bot.config import parse_config
from bot.errors import ConfigError
from bot.models import Edition, Subscriber
from tests.test_render import BASE, article, make_config

UNSUB = "https://echo.example.ml/desabonnement?jeton={token}"


class Readers:
    """An audience of readers with the fields plan() reads."""

    def __init__(self, *emails: str):
        self.emails = emails

    def subscribers(self) -> Iterator[Any]:
        for i, email in enumerate(self.emails):
            yield Subscriber(id=i + 1, channel_id="mail", email=email, name=None, token=f"jeton/{i}", active=True,
                             created_at=article(1).published_at)


def headers_for(**channel: Any) -> list[dict[str, str]]:
    config = make_config({"id": "mail", "type": "email", **channel})
    ch = config.channel("mail")
    kind = Channels(config).kind(ch)
    plan = kind.plan(ch, Edition("mail", (replace(article(1), id=1),), article(1).published_at, id=7),
                     Readers("awa@example.org", "moussa@example.org"))
    items = list(plan.items)  # the headers are made when each message is built for sending
    return [dict(kind.message(ch, item.key, item.destination, item.payload, plan.shared).body.headers)
            for item in items]


def test_list_unsubscribe_carries_the_https_link_and_the_mailto_form() -> None:
    first, second = headers_for(unsubscribe_url=UNSUB, unsubscribe_mailto="desabonnement@echo.example.ml")
    assert first["List-Unsubscribe"] == ("<https://echo.example.ml/desabonnement?jeton=jeton%2F0>, "
                                         "<mailto:desabonnement@echo.example.ml?subject=unsubscribe%20jeton%2F0>")
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert first["List-Id"] == f"L’Écho du Sahel <mail.{BASE.split('//')[1]}>"
    assert "jeton%2F1" in second["List-Unsubscribe"] and "jeton%2F0" not in second["List-Unsubscribe"]


def test_mailto_with_its_own_token_or_alone() -> None:
    (first, _) = headers_for(unsubscribe_mailto="mailto:sortie+{token}@echo.example.ml?subject=stop")
    assert first["List-Unsubscribe"] == "<mailto:sortie+jeton%2F0@echo.example.ml?subject=stop>"
    assert "List-Unsubscribe-Post" not in first  # one-click needs an https link (RFC 8058)
    (plain, _) = headers_for(unsubscribe_url=UNSUB)
    assert plain["List-Unsubscribe"] == "<https://echo.example.ml/desabonnement?jeton=jeton%2F0>"


def test_the_mime_message_keeps_both_forms() -> None:
    config = make_config({"id": "mail", "type": "email", "unsubscribe_url": UNSUB,
                          "unsubscribe_mailto": "desabonnement@echo.example.ml"})
    ch = config.channel("mail")
    kind = Channels(config).kind(ch)
    [message] = list(kind.trial_messages(ch, Edition("mail", (article(1),), article(1).published_at)))[:1]
    assert kind.validate(message) == []
    assert message.body.headers["List-Unsubscribe"].count("<") == 2


@pytest.mark.parametrize("value, error", [
    ("desabonnement@{jeton}.example", "unknown placeholder {jeton}"),
    ("pas une adresse", "expected an address"),
    ("mailto:a@echo.example?subject=<x>", "cannot carry"),
])
def test_bad_unsubscribe_mailto_is_refused_at_load(value: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        make_config({"id": "mail", "type": "email", "unsubscribe_mailto": value})


def test_campaign_placeholders_are_checked_at_load() -> None:
    with pytest.raises(ConfigError, match=r"unknown placeholder \{canal\}"):
        make_config({"id": "mail", "type": "email", "campaign": {"utm_campaign": "{canal}"}})
    config = make_config({"id": "mail", "type": "email", "campaign": {"utm_campaign": "{channel}-{date}"}})
    assert config.channel("mail").campaign == {"utm_campaign": "{channel}-{date}"}


def smtp_config(tmp_path: Path, **dkim: Any) -> Any:
    return parse_config({
        "site": {"name": "L’Écho du Sahel", "base_url": BASE},
        "channels": [{"id": "mail", "type": "email", "schedule": {"every": "1h"}, "unsubscribe_url": UNSUB,
                      "transport": {"type": "smtp", "host": "127.0.0.1", "from": "news@echo.example.ml",
                                    "dkim": {"selector": "tamtam", "key_file": "dkim.pem", **dkim}}}],
    }, base_dir=str(tmp_path))


def test_dkim_settings_are_checked_at_load(tmp_path: Path) -> None:
    assert smtp_config(tmp_path, domain="echo.example.ml").channels[0].transport.dkim.selector == "tamtam"
    with pytest.raises(ConfigError, match="must cover From"):
        smtp_config(tmp_path, domain="echo.example.ml", headers=["Subject"])
    with pytest.raises(ConfigError, match="domain"):
        smtp_config(tmp_path, domain="echo example")


def test_check_warns_when_the_dkim_domain_does_not_match_the_sender(tmp_path: Path) -> None:
    for domain, warned in (("echo.example.ml", False), ("example.ml", False), ("autre.example", True)):
        config = smtp_config(tmp_path, domain=domain)
        warnings = Channels(config).kind(config.channels[0]).warnings(config.channels[0])
        assert any("DMARC" in w for w in warnings) is warned, (domain, warnings)
