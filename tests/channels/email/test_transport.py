"""The SMTP transport (bot.channels.email.smtp) against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
from datetime import datetime, timezone

import dkim
import pytest

from bot.channels.email.mime import EmailBody, message_id_for
from bot.channels.email.smtp import SmtpTransport, is_loopback
from bot.channels.registry import Channels
from bot.config import parse_config
from bot.errors import ServiceUnavailable, ConfigError, PermanentError, TransientError
from bot.models import Message
from tests.channels.email.keys import rsa_key
from tests.fakes.smtp_server import SmtpServer, free_port, smtp_server, tls_cert  # noqa: F401 - fixtures

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

NOW = datetime(2024, 12, 2, 7, 30, tzinfo=timezone.utc)
FROM = "L’Écho du Sahel <news@echo-sahel.example>"
SUBJECT = "Les titres du 2 décembre 2024 : « Bamako » et l’économie"
TEXT = "« Le marché de Médina Coura rouvre », a annoncé l’adjoint au maire. Garçons, à vos paniers !\n"
HTML = "<p>« Le marché de Médina Coura rouvre », a annoncé l’adjoint au maire. Garçons, à vos paniers !</p>"


def table(server: SmtpServer | None = None, **kw) -> dict:
    values = {"type": "smtp", "host": "127.0.0.1", "port": server.port if server else free_port(),
              "security": "none", "timeout": "5s", "from": FROM}
    values.update(kw)
    return values


def message(to: str = "ami@example.org", key: str | None = None) -> Message:
    return Message(key=key or f"edition:12:news:{to}", channel_id="news", kind="email", destination=to,
                   body=EmailBody(subject=SUBJECT, text=TEXT, html=HTML,
                                  headers={"List-Unsubscribe": "<https://echo-sahel.example/d?t=1>"}))


def transport(server, tmp_path, **kw) -> SmtpTransport:
    """The transport the registry picks for an email channel with this table, on a fixed clock."""
    config = parse_config({"site": {"name": "L’Écho du Sahel", "base_url": "https://echo-sahel.example"},
                           "channels": [{"id": "news", "type": "email", "schedule": {"every": "1h"},
                                         "transport": table(server, **kw)}]}, base_dir=str(tmp_path))
    channel = config.channels[0]
    kind = Channels(config).kind(channel)
    assert kind.transport_class(channel.transport) is SmtpTransport
    return SmtpTransport(channel.transport, config, kind, clock=lambda: NOW)


def parsed(received):
    return email.message_from_bytes(received.raw, policy=email.policy.default)


async def test_plain_send_delivers_a_well_formed_french_email(smtp_server, tmp_path):
    async with transport(smtp_server, tmp_path) as tr:
        receipt = await tr.send(message())
    assert receipt.transport == "smtp"
    assert receipt.remote_id == message_id_for("edition:12:news:ami@example.org", "echo-sahel.example")
    assert receipt.detail.startswith("250 ") and "queued" in receipt.detail

    [got] = smtp_server.received
    assert got.mail_from == "news@echo-sahel.example"
    assert got.rcpt_tos == ["ami@example.org"]
    msg = parsed(got)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["Subject"] == SUBJECT
    assert msg["From"].addresses[0].display_name == "L’Écho du Sahel"
    assert msg["To"] == "ami@example.org"
    assert msg["Message-ID"] == receipt.remote_id
    assert msg["List-Unsubscribe"] == "<https://echo-sahel.example/d?t=1>"
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == TEXT
    assert HTML in msg.get_body(("html",)).get_content()


async def test_connection_is_reused_across_sends(smtp_server, tmp_path):
    async with transport(smtp_server, tmp_path) as tr:
        for name in ("awa", "binta", "cheick"):
            await tr.send(message(f"{name}@example.org"))
    assert [r.rcpt_tos for r in smtp_server.received] == [["awa@example.org"], ["binta@example.org"],
                                                         ["cheick@example.org"]]
    assert len(smtp_server.sessions) == 1
    assert len({r.peer for r in smtp_server.received}) == 1


async def test_reconnects_after_the_server_dropped_the_connection(smtp_server, tmp_path):
    async with transport(smtp_server, tmp_path) as tr:
        await tr.send(message("awa@example.org"))
        smtp_server.drop_connections()
        await tr.send(message("binta@example.org"))
        await tr.send(message("cheick@example.org"))
    assert [r.rcpt_tos[0] for r in smtp_server.received] == ["awa@example.org", "binta@example.org",
                                                            "cheick@example.org"]
    assert len(smtp_server.sessions) == 2


async def test_reconnects_when_the_drop_was_already_noticed(smtp_server, tmp_path):
    async with transport(smtp_server, tmp_path) as tr:
        await tr.send(message("awa@example.org"))
        smtp_server.drop_connections()
        await asyncio.sleep(0.05)  # let the client see the EOF before the next send
        await tr.send(message("binta@example.org"))
    assert [r.rcpt_tos[0] for r in smtp_server.received] == ["awa@example.org", "binta@example.org"]
    assert len(smtp_server.sessions) == 2


async def test_550_recipient_is_permanent_with_the_server_text(smtp_server, tmp_path):
    smtp_server.refuse("parti@example.org", "550 5.1.1 Boîte inconnue: parti")
    async with transport(smtp_server, tmp_path) as tr:
        with pytest.raises(PermanentError) as info:
            await tr.send(message("parti@example.org"))
        assert "550" in str(info.value) and "inconnue" in str(info.value) and "parti@example.org" in str(info.value)
        await tr.send(message("ami@example.org"))  # the kept connection still works
    assert [r.rcpt_tos for r in smtp_server.received] == [["ami@example.org"]]
    assert len(smtp_server.sessions) == 1


async def test_451_recipient_is_transient(smtp_server, tmp_path):
    smtp_server.refuse("plein@example.org", "451 4.3.0 Try again later")
    async with transport(smtp_server, tmp_path) as tr:
        with pytest.raises(TransientError, match="451"):
            await tr.send(message("plein@example.org"))
    assert smtp_server.received == []


async def test_server_not_listening_is_transient(tmp_path):
    tr = transport(None, tmp_path)
    with pytest.raises(TransientError, match="cannot connect"):
        await tr.open()
    with pytest.raises(TransientError, match="cannot connect"):
        await tr.send(message())
    await tr.aclose()


async def test_server_that_never_greets_times_out_as_transient(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # the kernel completes the handshake; nobody ever answers
        tr = transport(None, tmp_path, port=listener.getsockname()[1], timeout="0.3s")
        with pytest.raises(TransientError, match="cannot connect"):
            await tr.open()
        await tr.aclose()


async def test_drop_after_data_is_transient_and_a_resend_carries_the_same_message_id(smtp_server, tmp_path):
    smtp_server.drop_after_data(1)
    async with transport(smtp_server, tmp_path) as tr:
        with pytest.raises(TransientError, match="after DATA"):
            await tr.send(message())
        receipt = await tr.send(message())
    first, second = smtp_server.received
    assert first.dropped and not second.dropped
    assert parsed(first)["Message-ID"] == parsed(second)["Message-ID"] == receipt.remote_id


async def test_invalid_address_fails_without_contacting_the_server(smtp_server, tmp_path):
    tr = transport(smtp_server, tmp_path)
    with pytest.raises(PermanentError, match="invalid recipient address 'pas-une-adresse'"):
        await tr.send(message("pas-une-adresse"))
    assert smtp_server.sessions == []
    assert smtp_server.received == []
    await tr.aclose()


async def test_login_ok(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_SMTP_USER", "tamtam")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cr3t")
    with SmtpServer(auth=("tamtam", "s3cr3t")) as server:
        async with transport(server, tmp_path, username_env="TEST_SMTP_USER",
                             password_env="TEST_SMTP_PASSWORD") as tr:
            await tr.send(message())
        assert len(server.received) == 1
        assert ("tamtam", True) in server.auth_attempts


async def test_wrong_password_pauses_the_channel_instead_of_failing_messages(tmp_path, monkeypatch):
    """A refused login concerns every message: failing them one by one would fail the whole
    edition for a typo in the environment. The channel waits; the admin sees why."""
    monkeypatch.setenv("TEST_SMTP_USER", "tamtam")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
    with SmtpServer(auth=("tamtam", "s3cr3t")) as server:
        tr = transport(server, tmp_path, username_env="TEST_SMTP_USER", password_env="TEST_SMTP_PASSWORD")
        with pytest.raises(ServiceUnavailable, match="535.*check the credentials"):
            await tr.open()
        with pytest.raises(ServiceUnavailable, match="535"):
            await tr.send(message())
        await tr.aclose()
        assert server.received == []


async def test_no_credentials_against_a_server_that_requires_them_is_permanent(tmp_path):
    with SmtpServer(auth=("tamtam", "s3cr3t")) as server:
        async with transport(server, tmp_path) as tr:
            with pytest.raises(PermanentError, match="530"):
                await tr.send(message())


async def test_missing_password_env_is_a_config_error_at_open(smtp_server, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_SMTP_USER", "tamtam")
    monkeypatch.delenv("TEST_SMTP_PASSWORD_UNSET", raising=False)
    tr = transport(smtp_server, tmp_path, username_env="TEST_SMTP_USER", password_env="TEST_SMTP_PASSWORD_UNSET")
    with pytest.raises(ConfigError, match="TEST_SMTP_PASSWORD_UNSET"):
        await tr.open()
    assert smtp_server.sessions == []


async def test_refuses_credentials_in_clear_text_to_a_remote_host(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_SMTP_USER", "tamtam")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cr3t")
    tr = transport(None, tmp_path, host="smtp.example.org", username_env="TEST_SMTP_USER",
                   password_env="TEST_SMTP_PASSWORD")
    with pytest.raises(ConfigError, match="unencrypted"):
        await tr.open()


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("[::1]")
    assert not is_loopback("smtp.example.org") and not is_loopback("10.0.0.1")


async def test_starttls_with_ca_file_and_login(tls_cert, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_SMTP_USER", "tamtam")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cr3t")
    with SmtpServer(tls="starttls", cert=tls_cert, auth=("tamtam", "s3cr3t")) as server:
        async with transport(server, tmp_path, security="starttls", ca_file=str(tls_cert.cert),
                             username_env="TEST_SMTP_USER", password_env="TEST_SMTP_PASSWORD") as tr:
            await tr.send(message("awa@example.org"))
            await tr.send(message("binta@example.org"))
        assert [r.rcpt_tos[0] for r in server.received] == ["awa@example.org", "binta@example.org"]
        assert len(server.sessions) == 1
        assert parsed(server.received[0])["Subject"] == SUBJECT


async def test_implicit_tls_with_ca_file(tls_cert, tmp_path):
    with SmtpServer(tls="implicit", cert=tls_cert) as server:
        async with transport(server, tmp_path, security="tls", ca_file=str(tls_cert.cert)) as tr:
            receipt = await tr.send(message())
        assert receipt.detail.startswith("250")
        [got] = server.received
        assert parsed(got)["Message-ID"] == receipt.remote_id


async def test_untrusted_certificate_is_not_accepted(tls_cert, tmp_path):
    with SmtpServer(tls="implicit", cert=tls_cert) as server:
        tr = transport(server, tmp_path, security="tls")  # no ca_file: the system store does not know it
        with pytest.raises(TransientError, match="cannot connect"):
            await tr.open()
        await tr.aclose()
        assert server.received == []


async def test_starttls_required_but_not_offered_is_a_config_error(smtp_server, tmp_path):
    tr = transport(smtp_server, tmp_path, security="starttls")
    with pytest.raises(ConfigError, match="STARTTLS"):
        await tr.open()
    await tr.aclose()


async def test_missing_ca_file_is_a_config_error(smtp_server, tmp_path):
    tr = transport(smtp_server, tmp_path, security="tls", ca_file="certs/absent.pem")
    with pytest.raises(ConfigError, match="absent.pem"):
        await tr.open()


async def test_the_provider_quota_is_declared_per_account(smtp_server, tmp_path):
    """The dispatcher holds these before it claims a message (tests/test_limits.py shows no
    window ever holds more); two channels on one account share the keys."""
    tr = transport(smtp_server, tmp_path, rate_per_minute=2, rate_per_hour=100)
    limits = tr.rate_limits(message("awa@example.org"))
    assert [(l.limit, l.period) for l in limits] == [(2, 60.0), (100, 3600.0)]
    assert limits == transport(smtp_server, tmp_path, rate_per_minute=2, rate_per_hour=100).rate_limits(
        message("binta@example.org"))



async def test_421_at_mail_on_a_kept_connection_reconnects_once_and_delivers(smtp_server, tmp_path):
    """A server closing an idle connection says 421 to the next command: that connection is
    stale, not the message, so the transport reconnects and sends it."""
    async with transport(smtp_server, tmp_path) as tr:
        await tr.send(message("awa@example.org"))
        smtp_server.fail_next("421 4.4.2 Idle too long, closing", at="MAIL")
        await tr.send(message("binta@example.org"))
    assert [r.rcpt_tos[0] for r in smtp_server.received] == ["awa@example.org", "binta@example.org"]
    assert len(smtp_server.sessions) == 2
    assert [c for c, _ in smtp_server.commands].count("MAIL") == 3


async def test_421_at_data_is_transient_and_the_next_send_reconnects(smtp_server, tmp_path):
    smtp_server.fail_next("421 4.3.2 Shutting down", at="DATA")
    async with transport(smtp_server, tmp_path) as tr:
        with pytest.raises(TransientError, match="421"):
            await tr.send(message("awa@example.org"))
        await tr.send(message("binta@example.org"))
    assert [r.rcpt_tos[0] for r in smtp_server.received] == ["binta@example.org"]
    assert len(smtp_server.sessions) == 2


async def test_550_at_data_is_permanent_and_the_connection_carries_the_next_message(smtp_server, tmp_path):
    smtp_server.fail_next("550 5.7.1 Message refused: spam score too high", at="DATA")
    async with transport(smtp_server, tmp_path) as tr:
        with pytest.raises(PermanentError, match="spam score"):
            await tr.send(message("awa@example.org"))
        await tr.send(message("binta@example.org"))
    assert [r.rcpt_tos[0] for r in smtp_server.received] == ["binta@example.org"]
    assert len(smtp_server.sessions) == 1


async def test_no_answer_to_data_is_transient_and_the_resend_is_the_same_email(smtp_server, tmp_path):
    """The server stored the message and went quiet: resending is safe because the reader's
    client sees the same Message-ID twice and shows one email."""
    smtp_server.hold_next(30, at="DATA")
    async with transport(smtp_server, tmp_path, timeout="1s") as tr:
        with pytest.raises(TransientError, match="after DATA"):
            await tr.send(message())
        receipt = await tr.send(message())
    first, second = smtp_server.received
    assert parsed(first)["Message-ID"] == parsed(second)["Message-ID"] == receipt.remote_id


# -- DKIM ---------------------------------------------------------------------------------------

DKIM = {"selector": "tamtam", "domain": "echo-sahel.example", "key_file": "secrets/dkim.pem"}


async def test_dkim_signs_the_exact_bytes_the_server_receives(smtp_server, tmp_path):
    key = rsa_key()
    (tmp_path / "secrets").mkdir()
    key.write(tmp_path / "secrets" / "dkim.pem")
    subject = "L’Écho du Sahel\u00a0: Budget 2027, l’Assemblée adopte la loi de finances… (+11)"
    msg = message()
    msg = Message(msg.key, msg.channel_id, msg.kind, msg.destination,
                  EmailBody(subject=subject, text=TEXT, html=HTML, headers=dict(msg.body.headers)))
    async with transport(smtp_server, tmp_path, dkim=DKIM) as tr:
        await tr.send(msg)
    [got] = smtp_server.received
    assert got.raw.startswith(b"Subject:") and b"DKIM-Signature:" in got.raw
    assert dkim.verify(got.raw, dnsfunc=key.dns("tamtam", "echo-sahel.example"))
    assert parsed(got)["Subject"] == subject  # the no-break space before « : » arrived too


async def test_an_unreadable_dkim_key_is_a_config_error_when_the_transport_opens(smtp_server, tmp_path):
    tr = transport(smtp_server, tmp_path, dkim=DKIM)
    with pytest.raises(ConfigError, match=r"dkim\.key_file .*dkim\.pem.* cannot be read"):
        await tr.open()
    assert smtp_server.sessions == []  # refused before any connection


async def test_several_connections_carry_concurrent_sends(smtp_server, tmp_path):
    """With ``connections = 3`` three sends at once go over three kept connections; one at a
    time they stay on one."""
    import asyncio

    async with transport(smtp_server, tmp_path, connections=3) as tr:
        assert tr.concurrency == 3
        await asyncio.gather(*(tr.send(message(f"r{i}@example.org")) for i in range(9)))
        assert len(smtp_server.sessions) == 3
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == sorted(f"r{i}@example.org" for i in range(9))


async def test_an_address_that_is_not_ascii_goes_with_smtputf8_when_the_server_offers_it(tmp_path):
    """josé@… and 用户@例子.广告 (RFC 6531): MAIL FROM carries SMTPUTF8, the envelope and the
    To header hold the address as UTF-8 (the domain in punycode), never an encoded word."""
    with SmtpServer() as server:  # offers SMTPUTF8
        async with transport(server, tmp_path) as tr:
            await tr.send(message("josé@exemple.ml"))
            await tr.send(message("用户@例子.广告"))
            await tr.send(message("ami@example.org"))
    assert [r.rcpt_tos for r in server.received] == [["josé@exemple.ml"], ["用户@xn--fsqu00a.xn--4rr70v"],
                                                    ["ami@example.org"]]
    mails = [arg for command, arg in server.commands if command == "MAIL"]
    assert [("SMTPUTF8" in arg) for arg in mails] == [True, True, False]
    assert parsed(server.received[0])["To"] == "josé@exemple.ml"
    assert b"To: jos\xc3\xa9@exemple.ml\r\n" in server.received[0].raw


async def test_without_smtputf8_only_that_message_fails_and_says_why(tmp_path):
    with SmtpServer(smtputf8=False) as server:
        async with transport(server, tmp_path) as tr:
            with pytest.raises(PermanentError, match="not ASCII .* does not offer SMTPUTF8"):
                await tr.send(message("josé@exemple.ml"))
            await tr.send(message("ami@example.org"))  # the same connection carries the next one
    assert [r.rcpt_tos for r in server.received] == [["ami@example.org"]]
    assert len(server.sessions) == 1
