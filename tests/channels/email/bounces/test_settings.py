"""``[channels.bounces]`` (bot.channels.email.bounces.settings): defaults, every secret it
names, and errors that name the key."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.channels.email.bounces.settings import ImapMailbox, MaildirMailbox
from bot.errors import ConfigError
from tests.channels.email.bounces.conftest import make_config


def test_defaults_need_no_table(tmp_path):
    bounces = make_config(tmp_path).channels[0].bounces
    assert (bounces.soft_limit, bounces.soft_window) == (3, timedelta(days=30))
    assert bounces.mailbox is None and bounces.services() == {} and bounces.secret_envs() == []


def test_a_full_table_and_every_secret_it_names(tmp_path):
    bounces = make_config(tmp_path, {
        "soft_limit": 5, "soft_window": "14d",
        "mailbox": {"type": "imap", "host": "imap.echo-sahel.example", "username_env": "IMAP_USER",
                    "password_env": "IMAP_PASSWORD", "every": "2m", "processed": "move", "move_to": "Traités"},
        "ses": {"topics": ["arn:aws:sns:eu-west-3:123456789012:tamtam-bounces"]},
        "mailgun": {"signing_key_env": "MAILGUN_KEY"},
        "postmark": {"username_env": "PM_USER", "password_env": "PM_PASSWORD"},
    }).channels[0].bounces
    assert (bounces.soft_limit, bounces.soft_window) == (5, timedelta(days=14))
    assert isinstance(bounces.mailbox, ImapMailbox) and bounces.mailbox.real_port == 993
    assert bounces.mailbox.every == timedelta(minutes=2)
    assert bounces.ses.cert_hosts == ("sns.*.amazonaws.com", "sns.*.amazonaws.com.cn")
    assert sorted(bounces.services()) == ["mailgun", "postmark", "ses"]
    assert bounces.secret_envs() == [("mailbox.username_env", "IMAP_USER"), ("mailbox.password_env", "IMAP_PASSWORD"),
                                     ("mailgun.signing_key_env", "MAILGUN_KEY"), ("postmark.username_env", "PM_USER"),
                                     ("postmark.password_env", "PM_PASSWORD")]


def test_a_maildir_and_imap_ports(tmp_path):
    mailbox = make_config(tmp_path, {"mailbox": {"type": "maildir", "path": "var/bounces"}}).channels[0].bounces.mailbox
    assert isinstance(mailbox, MaildirMailbox) and mailbox.processed == "seen"
    imap = {"type": "imap", "host": "h", "username_env": "U", "password_env": "P"}
    assert make_config(tmp_path, {"mailbox": {**imap, "security": "starttls"}}).channels[0].bounces.mailbox.real_port == 143


@pytest.mark.parametrize("table, words", [
    ({"soft_limit": 0}, "bounces.soft_limit"),
    ({"soft_window": "forever"}, "bounces.soft_window"),
    ({"mailbox": {"type": "pop3"}}, "bounces.mailbox"),
    ({"mailbox": {"type": "imap", "host": "h"}}, "username_env"),
    ({"mailbox": {"type": "maildir", "path": "x", "move_to": "../ailleurs"}}, "move_to"),
    ({"ses": {"topics": ["tamtam-bounces"]}}, "topic ARN"),
    ({"ses": {"cert_hosts": ["https://sns.eu-west-3.amazonaws.com"]}}, "cert_hosts"),
    ({"ses": {"cert_hosts": ["*"]}}, "cert_hosts"),
    ({"mailgun": {}}, "signing_key_env"),
    ({"postmark": {"username_env": "U"}}, "password_env"),
    ({"sendgrid": {}}, "sendgrid"),
])
def test_errors_name_the_key(tmp_path, table, words):
    with pytest.raises(ConfigError) as info:
        make_config(tmp_path, table)
    assert words in str(info.value) and 'channels[0] (id "news").bounces' in str(info.value)
