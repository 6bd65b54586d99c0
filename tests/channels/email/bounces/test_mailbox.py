"""The ``bounces`` job (bot.channels.email.bounces.mailbox): reading a maildir and an IMAP
account (tests/fakes/imap_server.py, over real TCP and TLS), applying what the reports
say, marking each message processed, and never counting a report twice nor losing one
when a run is cut between the two."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

import pytest

from bot.channels.email.bounces import mailbox
from bot.channels.email.bounces.mailbox import ImapReader, MailboxError, imap_utf7, read_mailbox
from bot.channels.registry import Channels
from bot.errors import ConfigError
from tests.channels.email.bounces.conftest import NOW, sample
from tests.fakes.imap_server import ImapServer, imap_server  # noqa: F401 - fixture
from tests.fakes.tls import TestCA

HARD_DSN = "postfix-5.1.1-user-unknown.eml"
SOFT_DSN = "orange-5.2.2-boite-pleine-latin1.eml"


def subscribe(store, *emails: str) -> None:
    for email in emails:
        store.subscribers.add("news", email, None, now=NOW)


def status(store, email: str) -> str:
    return store.subscribers.find("news", email).status


def soft_count(store, email: str) -> int:
    sub = store.subscribers.find("news", email)
    return sum(e.kind == "bounce-soft" for e in store.subscribers.events(sub.id))


# -- maildir ------------------------------------------------------------------------------------

def maildir(tmp_path: Path, *names: str) -> Path:
    root = tmp_path / "bounces"
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        (root / "new" / f"17331246{i:02d}.M{i}P1.mx").write_bytes(sample(name))
    return root


def maildir_table(**kw) -> dict:
    return {"soft_limit": 2, "mailbox": {"type": "maildir", "path": "bounces", **kw}}


def test_the_job_reads_a_maildir_and_flags_what_it_read(services, tmp_path):
    root = maildir(tmp_path, HARD_DSN, SOFT_DSN, "auto-reply-absent-fr.eml")
    svc = services(maildir_table(every="5m"))
    subscribe(svc.store, "parti@bamako-mail.example", "awa.diallo@orange-fr.example")
    channel = svc.config.channels[0]
    job, = Channels(svc.config).kind(channel).jobs(channel)
    assert (job.name, job.every) == ("bounces", timedelta(minutes=5))
    line = asyncio.run(job.run(svc, NOW))
    assert line == "3 message(s): 1 hard, 1 soft, 1 suppressed (and an auto-reply)"
    assert status(svc.store, "parti@bamako-mail.example") == "bounced"
    assert soft_count(svc.store, "awa.diallo@orange-fr.example") == 1
    assert os.listdir(root / "new") == []
    assert sorted(n.split(":2,")[1] for n in os.listdir(root / "cur")) == ["S", "S", "S"]
    # a second run finds nothing left to read
    assert asyncio.run(job.run(svc, NOW)) == "0 message(s): nothing to do"
    assert soft_count(svc.store, "awa.diallo@orange-fr.example") == 1


def test_a_channel_without_a_mailbox_has_no_job(services):
    svc = services()
    channel = svc.config.channels[0]
    assert Channels(svc.config).kind(channel).jobs(channel) == []


def test_messages_a_client_moved_to_cur_unread_are_read_and_read_ones_are_not(services, tmp_path):
    root = maildir(tmp_path)
    (root / "cur" / "1.M1.mx:2,").write_bytes(sample(SOFT_DSN))
    (root / "cur" / "2.M2.mx:2,FS").write_bytes(sample(HARD_DSN))  # flagged and seen: left alone
    svc = services(maildir_table())
    subscribe(svc.store, "parti@bamako-mail.example", "awa.diallo@orange-fr.example")
    assert read_mailbox(svc, svc.config.channels[0].bounces, NOW) == "1 message(s): 1 soft"
    assert sorted(os.listdir(root / "cur")) == ["1.M1.mx:2,S", "2.M2.mx:2,FS"]
    assert status(svc.store, "parti@bamako-mail.example") == "active"


def test_reports_can_be_moved_to_a_folder_and_the_rest_stay_flagged(services, tmp_path):
    root = maildir(tmp_path, HARD_DSN, "auto-reply-absent-fr.eml")
    svc = services(maildir_table(processed="move", move_to="Traités/DSN"))
    read_mailbox(svc, svc.config.channels[0].bounces, NOW)
    moved = root / ".Traités.DSN"
    assert [n.split(":2,")[1] for n in os.listdir(moved / "cur")] == ["S"]
    assert (moved / "new").is_dir() and (moved / "tmp").is_dir()
    assert len(os.listdir(root / "cur")) == 1  # the auto-reply, flagged read, for a person to see


def test_a_run_cut_after_counting_never_counts_twice_nor_loses_a_message(services, tmp_path, monkeypatch):
    root = maildir(tmp_path, SOFT_DSN, HARD_DSN)
    svc = services(maildir_table())
    subscribe(svc.store, "parti@bamako-mail.example", "awa.diallo@orange-fr.example")
    real_rename = os.rename

    def crash(*args):  # the process dies after the first report was counted, before it was flagged
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(KeyboardInterrupt):
        read_mailbox(svc, svc.config.channels[0].bounces, NOW)
    assert soft_count(svc.store, "awa.diallo@orange-fr.example") == 1
    assert status(svc.store, "parti@bamako-mail.example") == "active"  # not reached yet
    monkeypatch.setattr(os, "rename", real_rename)
    line = read_mailbox(svc, svc.config.channels[0].bounces, NOW + timedelta(minutes=10))
    assert line == "2 message(s): 1 hard, 1 suppressed, 1 duplicate"
    assert soft_count(svc.store, "awa.diallo@orange-fr.example") == 1
    assert status(svc.store, "parti@bamako-mail.example") == "bounced"
    assert os.listdir(root / "new") == []


def test_a_message_the_parser_cannot_read_is_flagged_and_does_not_block_the_rest(services, tmp_path, monkeypatch):
    root = maildir(tmp_path, HARD_DSN)
    (root / "new" / "0000.broken.mx").write_bytes(b"From: MAILER-DAEMON@x\n\n")
    svc = services(maildir_table())
    subscribe(svc.store, "parti@bamako-mail.example")
    real = mailbox.parse

    def parse(raw: bytes, channels):  # a parser bug on one message
        if raw.endswith(b"x\n\n"):
            raise ValueError("boom")
        return real(raw, channels=channels)

    monkeypatch.setattr(mailbox, "parse", parse)
    line = read_mailbox(svc, svc.config.channels[0].bounces, NOW)
    assert line == "2 message(s): 1 hard, 1 suppressed, 1 unreadable"


def test_a_missing_maildir_is_said_by_the_job_not_raised(services, tmp_path):
    svc = services(maildir_table())
    channel = svc.config.channels[0]
    job, = Channels(svc.config).kind(channel).jobs(channel)
    assert asyncio.run(job.run(svc, NOW)).startswith(f"mailbox not read: {tmp_path / 'bounces'} is not a maildir")


# -- IMAP ------------------------------------------------------------------------------------------

def imap_table(server: ImapServer, **kw) -> dict:
    return {"soft_limit": 2, "mailbox": {"type": "imap", "host": "127.0.0.1", "port": server.port,
                                         "security": "none", "username_env": "BOUNCE_USER",
                                         "password_env": "BOUNCE_PASSWORD", **kw}}


@pytest.fixture
def imap_env(monkeypatch):
    monkeypatch.setenv("BOUNCE_USER", "bounces")
    monkeypatch.setenv("BOUNCE_PASSWORD", "mot de passe")


def test_imap_reads_unseen_reports_and_flags_them_seen(services, imap_server, imap_env):
    hard = imap_server.deliver(sample(HARD_DSN))
    old = imap_server.deliver(sample(SOFT_DSN), flags={r"\Seen"})  # read earlier: not read again
    other = imap_server.deliver(sample("auto-reply-absent-fr.eml"))
    svc = services(imap_table(imap_server))
    subscribe(svc.store, "parti@bamako-mail.example", "awa.diallo@orange-fr.example")
    line = read_mailbox(svc, svc.config.channels[0].bounces, NOW)
    assert line == "2 message(s): 1 hard, 1 suppressed (and an auto-reply)"
    assert status(svc.store, "parti@bamako-mail.example") == "bounced"
    assert soft_count(svc.store, "awa.diallo@orange-fr.example") == 0
    assert imap_server.flags() == {hard: {r"\Seen"}, old: {r"\Seen"}, other: {r"\Seen"}}
    assert "UID FETCH" in imap_server.log and imap_server.log[-1] == "LOGOUT"
    assert read_mailbox(svc, svc.config.channels[0].bounces, NOW) == "0 message(s): nothing to do"


def test_imap_moves_reports_to_a_folder_with_copy_store_expunge(services, imap_server, imap_env):
    imap_server.deliver(sample(HARD_DSN))
    person = imap_server.deliver(sample("auto-reply-absent-fr.eml"))
    svc = services(imap_table(imap_server, processed="move", move_to="Traités"))
    read_mailbox(svc, svc.config.channels[0].bounces, NOW)
    folder = imap_utf7("Traités")
    assert folder == "Trait&AOk-s"
    assert [m.raw for m in imap_server.folders[folder].messages] == [sample(HARD_DSN)]
    assert imap_server.flags() == {person: {r"\Seen"}}  # the report left INBOX; the auto-reply stayed
    assert imap_server.log.count("EXPUNGE") == 1


@pytest.mark.parametrize("capability, commands", [("MOVE", ["UID MOVE"]), ("UIDPLUS", ["UID COPY", "UID EXPUNGE"])])
def test_imap_moves_with_the_servers_extensions_and_leaves_others_deleted_messages(
        services, imap_env, capability, commands):
    server = ImapServer(capabilities=(capability,)).start()
    try:
        report = server.deliver(sample(HARD_DSN))
        kept = server.deliver(sample(SOFT_DSN), flags={r"\Seen", r"\Deleted"})  # a person's, not ours to expunge
        svc = services(imap_table(server, processed="move"))
        read_mailbox(svc, svc.config.channels[0].bounces, NOW)
        assert [m.raw for m in server.folders["Tamtam"].messages] == [sample(HARD_DSN)]
        assert report not in server.flags() and kept in server.flags()
        assert all(c in server.log for c in commands) and "EXPUNGE" not in server.log
    finally:
        server.stop()


def test_imap_cut_between_counting_and_flagging_counts_once_on_the_next_run(services, imap_server, imap_env):
    soft = imap_server.deliver(sample(SOFT_DSN))
    svc = services(imap_table(imap_server))
    subscribe(svc.store, "awa.diallo@orange-fr.example")
    imap_server.drop_on("UID STORE")
    with pytest.raises(MailboxError, match="UID STORE"):
        read_mailbox(svc, svc.config.channels[0].bounces, NOW)
    assert soft_count(svc.store, "awa.diallo@orange-fr.example") == 1
    assert imap_server.flags() == {soft: set()}  # still unseen: nothing lost
    line = read_mailbox(svc, svc.config.channels[0].bounces, NOW + timedelta(minutes=10))
    assert line == "1 message(s): 1 duplicate"
    assert soft_count(svc.store, "awa.diallo@orange-fr.example") == 1
    assert imap_server.flags() == {soft: {r"\Seen"}}


@pytest.mark.parametrize("mode", ["tls", "starttls"])
def test_imap_over_tls_verifies_the_server_before_sending_the_password(services, tmp_path, imap_env, mode):
    ca = TestCA(tmp_path)
    context = ca.server().server_context()
    server = ImapServer(**{"implicit_tls" if mode == "tls" else "starttls": context}).start()
    try:
        server.deliver(sample(HARD_DSN))
        # without the test CA, the certificate is refused before any password is sent
        untrusted = services(imap_table(server, security=mode))
        with pytest.raises(MailboxError, match="CERTIFICATE_VERIFY_FAILED"):
            read_mailbox(untrusted, untrusted.config.channels[0].bounces, NOW)
        assert "LOGIN" not in server.log
        svc = services(imap_table(server, security=mode, ca_file=str(ca.ca_file)))
        subscribe(svc.store, "parti@bamako-mail.example")
        before = len(server.log)
        assert read_mailbox(svc, svc.config.channels[0].bounces, NOW) == "1 message(s): 1 hard, 1 suppressed"
        handshake = ["CAPABILITY", "STARTTLS", "CAPABILITY"] if mode == "starttls" else ["CAPABILITY"]
        assert server.log[before:before + len(handshake) + 1] == [*handshake, "LOGIN"]
    finally:
        server.stop()


def test_imap_refused_login_and_missing_folder_are_mailbox_errors(services, imap_server, imap_env, monkeypatch):
    monkeypatch.setenv("BOUNCE_PASSWORD", "faux")
    svc = services(imap_table(imap_server))
    with pytest.raises(MailboxError, match="AUTHENTICATIONFAILED"):
        read_mailbox(svc, svc.config.channels[0].bounces, NOW)
    monkeypatch.setenv("BOUNCE_PASSWORD", "mot de passe")
    svc = services(imap_table(imap_server, folder="Rebonds"))
    with pytest.raises(MailboxError, match="Rebonds"):
        read_mailbox(svc, svc.config.channels[0].bounces, NOW)


def test_imap_refuses_to_send_a_password_in_clear_to_a_remote_host(services, imap_server, imap_env):
    table = imap_table(imap_server)
    table["mailbox"]["host"] = "imap.echo-sahel.example"
    svc = services(table)
    with pytest.raises(ConfigError, match="unencrypted"):
        ImapReader(svc.config.channels[0].bounces.mailbox, svc.config).__enter__()
