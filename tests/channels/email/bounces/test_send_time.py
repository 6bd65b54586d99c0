"""A recipient refused at send time (bot.channels.email.smtp → bot.errors.RecipientRefused),
against the real aiosmtpd server of tests/fakes/smtp_server.py: a refusal that names the
mailbox is a bounce the dispatcher reports to the subscriber list; one about policy, our
relay or our message stays a plain PermanentError, so it can never suppress a whole list."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.channels.email.mime import EmailBody
from bot.channels.email.smtp import SmtpTransport
from bot.channels.registry import Channels
from bot.config import parse_config
from bot.errors import PermanentError, RecipientRefused
from bot.models import Message
from tests.channels.email.bounces.conftest import SITE
from tests.fakes.smtp_server import SmtpServer, smtp_server  # noqa: F401 - fixture


def transport(server: SmtpServer, tmp_path) -> SmtpTransport:
    config = parse_config({"site": SITE, "channels": [{
        "id": "news", "type": "email", "schedule": {"every": "1h"},
        "transport": {"type": "smtp", "host": "127.0.0.1", "port": server.port, "security": "none",
                      "timeout": "5s", "from": "L’Écho du Sahel <news@echo-sahel.example>"}}]}, base_dir=str(tmp_path))
    channel = config.channels[0]
    return SmtpTransport(channel.transport, config, Channels(config).kind(channel),
                         clock=lambda: datetime(2024, 12, 5, 9, 0, tzinfo=timezone.utc))


def message(to: str) -> Message:
    return Message(key=f"news:e12:{to}", channel_id="news", kind="email", destination=to,
                   body=EmailBody(subject="Les titres du 5 décembre", text="Bonjour,\n", html="<p>Bonjour,</p>",
                                  headers={}))


@pytest.mark.parametrize("reply, hard, status", [
    ("550 5.1.1 <parti@example.org>: Recipient address rejected: User unknown", True, "5.1.1"),
    ("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found", True, "5.1.10"),
    ("550 5.2.1 Ce compte est désactivé", True, "5.2.1"),
    ("552 5.2.2 Boîte aux lettres pleine", False, "5.2.2"),
    ("550 Utilisateur inconnu", True, None),
])
async def test_a_refusal_naming_the_mailbox_is_recipient_refused(smtp_server, tmp_path, reply, hard, status):
    smtp_server.refuse("parti@example.org", reply)
    async with transport(smtp_server, tmp_path) as tr:
        with pytest.raises(RecipientRefused) as info:
            await tr.send(message("parti@example.org"))
        await tr.send(message("ami@example.org"))  # the kept connection still carries the next one
    refused = info.value
    assert (refused.address, refused.hard, refused.status) == ("parti@example.org", hard, status)
    assert reply.split(" ", 1)[1] in refused.reason and "parti@example.org" in refused.reason
    assert [r.rcpt_tos for r in smtp_server.received] == [["ami@example.org"]]


@pytest.mark.parametrize("reply", [
    "550 5.7.1 Relaying denied",
    "554 5.7.1 Client host rejected: blocked using zen.spamhaus.org",
    "550 5.4.7 Delivery time expired",
    "553 5.1.8 Sender address rejected: Domain not found",
])
async def test_a_refusal_about_policy_or_our_side_is_a_plain_permanent_error(smtp_server, tmp_path, reply):
    smtp_server.refuse("parti@example.org", reply)
    async with transport(smtp_server, tmp_path) as tr:
        with pytest.raises(PermanentError) as info:
            await tr.send(message("parti@example.org"))
    assert not isinstance(info.value, RecipientRefused)


async def test_after_data_only_a_mailbox_status_is_a_bounce(smtp_server, tmp_path):
    smtp_server.fail_next("550 5.1.1 User unknown", at="DATA")
    smtp_server.fail_next("554 5.7.1 Message refused: spam score too high", at="DATA")
    smtp_server.fail_next("550 Message rejected", at="DATA")
    async with transport(smtp_server, tmp_path) as tr:
        with pytest.raises(RecipientRefused) as bounced:
            await tr.send(message("parti@example.org"))
        for _ in range(2):
            with pytest.raises(PermanentError) as refused:
                await tr.send(message("ami@example.org"))
            assert not isinstance(refused.value, RecipientRefused)
    assert bounced.value.address == "parti@example.org" and bounced.value.hard
