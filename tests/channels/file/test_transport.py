"""The file transport (bot.channels.file): what each kind of message becomes on disk, each
kind's transport built from a config through the registry."""

from __future__ import annotations

import email
import errno
import email.policy
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.channels.email.mime import EmailBody, message_id_for
from bot.channels.file import FileTransport
from bot.channels.file.transport import file_stem
from bot.channels.registry import Channels
from bot.channels.telegram.render import TelegramPost
from bot.channels.x.render import XPost
from bot.config import parse_config
from bot.errors import PermanentError, TransientError
from bot.models import Message

NOW = datetime(2024, 12, 2, 7, 30, tzinfo=timezone.utc)
SITE = "L’Écho du Sahel"
SUBJECT = "L’essentiel du 2 décembre 2024 : « Bamako »"
TEXT = "« Le marché rouvre », a dit l’adjoint. Garçons, à vos paniers !\n"
HTML = "<p>« Le marché rouvre », a dit l’adjoint. Garçons, à vos paniers !</p>"


def file_transport(tmp_path: Path, kind: str, folder: str = "var/out") -> FileTransport:
    """The file transport the registry picks for a ``kind`` channel, on a fixed clock."""
    config = parse_config({"site": {"name": SITE, "base_url": "https://www.echo-sahel.example/"},
                           "channels": [{"id": kind, "type": kind, "schedule": {"every": "1h"},
                                         "transport": {"type": "file", "dir": folder}}]},
                          base_dir=str(tmp_path))
    channel = config.channels[0]
    channel_kind = Channels(config).kind(channel)
    assert channel_kind.transport_class(channel.transport) is FileTransport
    return FileTransport(channel.transport, config, channel_kind, clock=lambda: NOW)


@pytest.fixture
def transport(tmp_path):
    return file_transport(tmp_path, "email")


def email_message(key="edition:12:news:ami@example.org", destination="ami@example.org", **body) -> Message:
    values = dict(subject=SUBJECT, text=TEXT, html=HTML,
                  headers={"List-Unsubscribe": "<https://echo-sahel.example/d?t=1>"})
    values.update(body)
    return Message(key=key, channel_id="news", kind="email", destination=destination, body=EmailBody(**values))


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def written(receipt) -> list[Path]:
    assert receipt.detail == ", ".join(receipt.files)
    return [Path(p) for p in receipt.files]


async def test_email_writes_a_parseable_eml_and_its_html(transport, tmp_path):
    receipt = await transport.send(email_message())
    folder = tmp_path / "var" / "out" / "news"
    stem = file_stem("edition:12:news:ami@example.org")
    assert stem.startswith("edition_12_news_ami@example.org-")
    assert files_in(folder) == [f"{stem}.eml", f"{stem}.html"]
    assert receipt.transport == "file" and receipt.remote_id is None
    assert written(receipt) == [folder / f"{stem}.eml", folder / f"{stem}.html"]

    msg = email.message_from_bytes((folder / f"{stem}.eml").read_bytes(), policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["Subject"] == SUBJECT
    sender = msg["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == (SITE, "no-reply@www.echo-sahel.example")
    assert msg["To"] == "ami@example.org"
    assert msg["Message-ID"] == message_id_for("edition:12:news:ami@example.org", "www.echo-sahel.example")
    assert msg["List-Unsubscribe"] == "<https://echo-sahel.example/d?t=1>"
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == TEXT
    assert (folder / f"{stem}.html").read_text(encoding="utf-8").rstrip("\n") == HTML


async def test_email_without_html_writes_only_the_eml(transport, tmp_path):
    receipt = await transport.send(email_message(html=None))
    assert [p.suffix for p in written(receipt)] == [".eml"]
    assert len(list((tmp_path / "var/out/news").iterdir())) == 1


async def test_telegram_text_becomes_a_send_message_call(tmp_path):
    text = "<b>« Bamako »</b> : l’économie reprend, à suivre…"
    transport = file_transport(tmp_path, "telegram")
    receipt = await transport.send(Message(key="edition:3:fil:p0", channel_id="fil", kind="telegram",
                                           destination="-1001234567890", body=TelegramPost(text)))
    [path] = written(receipt)
    assert path.parent == tmp_path / "var/out" / "fil" and path.suffix == ".json"
    raw = path.read_text(encoding="utf-8")
    assert "« Bamako »" in raw and "\\u" not in raw  # readable UTF-8, not escapes
    assert raw.startswith("{\n  ")  # indented for people
    assert json.loads(raw) == {"method": "sendMessage", "chat_id": -1001234567890, "text": text, "parse_mode": "HTML"}


async def test_telegram_photo_becomes_a_send_photo_call(tmp_path):
    transport = file_transport(tmp_path, "telegram")
    receipt = await transport.send(Message(key="edition:3:fil:p1", channel_id="fil", kind="telegram",
                                           destination="@echo_sahel",
                                           body=TelegramPost("Légende « photo »",
                                                             "https://echo-sahel.example/img/une.jpg")))
    [path] = written(receipt)
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "method": "sendPhoto", "chat_id": "@echo_sahel", "photo": "https://echo-sahel.example/img/une.jpg",
        "caption": "Légende « photo »", "parse_mode": "HTML"}


async def test_x_post_becomes_a_text_file(tmp_path):
    text = "L’Assemblée vote le budget 2025 « sans surprise » https://echo-sahel.example/a/1"
    transport = file_transport(tmp_path, "x")
    receipt = await transport.send(Message(key="edition:4:x:p0", channel_id="x", kind="x", destination="x",
                                           body=XPost(text)))
    [path] = written(receipt)
    assert path.parent == tmp_path / "var" / "out" / "x" and path.suffix == ".txt"
    assert path.read_text(encoding="utf-8") == text


async def test_resending_the_same_key_overwrites(transport, tmp_path):
    await transport.send(email_message(subject="Première version"))
    receipt = await transport.send(email_message(subject="Seconde version"))
    folder = tmp_path / "var/out/news"
    assert len(files_in(folder)) == 2  # one .eml and one .html, no duplicates, no temp files left
    eml = email.message_from_bytes(written(receipt)[0].read_bytes(), policy=email.policy.default)
    assert eml["Subject"] == "Seconde version"


async def test_different_keys_get_different_files(transport, tmp_path):
    await transport.send(email_message(key="edition:12:news:ami@example.org"))
    await transport.send(email_message(key="edition:12:news:bob@example.org", destination="bob@example.org"))
    await transport.send(email_message(key="edition/12/news/ami@example.org"))  # cleans up like the first
    assert len(files_in(tmp_path / "var/out/news")) == 6


def test_file_stem_is_safe_readable_and_unique():
    assert file_stem("a:b") != file_stem("a/b") != file_stem("a b")
    assert file_stem("edition:1:x:p0") == file_stem("edition:1:x:p0")
    for key in ("../../etc/passwd", "..", "a\\b", "é\x00\n", "x" * 1000, ""):
        stem = file_stem(key)
        assert "/" not in stem and "\\" not in stem and not stem.startswith(".")
        assert 0 < len(stem) <= 140 and stem.isascii() and stem.isprintable()


async def test_invalid_email_recipient_is_permanent_and_writes_nothing(transport, tmp_path):
    with pytest.raises(PermanentError, match="invalid recipient address"):
        await transport.send(email_message(destination="pas-une-adresse"))
    assert not (tmp_path / "var/out/news").exists()


async def test_another_kind_and_unsafe_channel_are_permanent(tmp_path):
    transport = file_transport(tmp_path, "x")
    with pytest.raises(PermanentError, match="is a 'fax' message; this file transport writes 'x' messages"):
        await transport.send(Message(key="k", channel_id="news", kind="fax", destination="d", body=XPost("t")))
    with pytest.raises(PermanentError, match="is a 'email' message"):
        await transport.send(email_message())
    with pytest.raises(PermanentError, match="folder name"):
        await transport.send(Message(key="k", channel_id="../etc", kind="x", destination="d", body=XPost("t")))
    assert not (tmp_path / "var").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
async def test_unwritable_folder_is_permanent_and_names_the_path(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        tr = file_transport(tmp_path, "x", folder=str(locked))
        with pytest.raises(PermanentError, match=str(locked / "x")):
            await tr.send(Message(key="k", channel_id="x", kind="x", destination="d", body=XPost("t")))
    finally:
        locked.chmod(0o700)


async def test_a_file_where_the_folder_should_be_is_permanent(tmp_path):
    (tmp_path / "occupied").write_text("not a folder")
    tr = file_transport(tmp_path, "x", folder="occupied")
    with pytest.raises(PermanentError, match="occupied"):
        await tr.send(Message(key="k", channel_id="x", kind="x", destination="d", body=XPost("t")))


def test_full_disk_is_transient_other_write_errors_permanent():
    # A full disk cannot be produced portably in a test, so check the classification the
    # write path uses on the real errno values.
    path = Path("/var/out/news/a.eml")
    full = FileTransport._fail(path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), "write")
    assert isinstance(full, TransientError) and "/var/out/news/a.eml" in str(full)
    denied = FileTransport._fail(path, PermissionError(errno.EACCES, os.strerror(errno.EACCES)), "write")
    assert isinstance(denied, PermanentError) and "Permission denied" in str(denied)
