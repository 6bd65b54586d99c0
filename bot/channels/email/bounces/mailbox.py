"""The ``bounces`` job: read the channel's bounce mailbox — an IMAP account or a local
maildir — and apply what its DSNs and complaint reports say.

Each message is handled on its own, in this order: read it (IMAP ``BODY.PEEK[]``, so
reading does not mark it), apply its feedback to the store, then mark it processed
(``\\Seen``, maildir flag ``S``, or a move to ``move_to``). A crash before the store write
leaves the message unprocessed, so the next run reads it again and nothing is lost; a
crash between the write and the mark makes the next run read it again too, and the
feedback's ``ref`` (the report's Message-ID, recorded with the event) makes that second
reading count nothing. Unprocessed means: in ``new/``, or in ``cur/`` without ``S``; on
IMAP, ``UNSEEN`` — so a person who opens the bounce mailbox first hides a report from
Tamtam (use a mailbox of its own).

The job runs in a worker thread (imaplib and the store are blocking) and stops between
two messages when the daemon shuts down.
"""

from __future__ import annotations

import asyncio
import base64
import imaplib
import ipaddress
import logging
import os
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from ....errors import ConfigError, TamtamError
from ....settings import secret
from ...base import Host, KindJob, Services
from .dsn import parse
from .feedback import Tally, apply, email_channel_ids
from .settings import BounceSettings, ImapMailbox, MaildirMailbox

log = logging.getLogger(__name__)


class MailboxError(TamtamError):
    """The bounce mailbox could not be read (unreachable, refused login, no such folder)."""


@dataclass(frozen=True)
class Item:
    key: str  # maildir: "new/<file>"; IMAP: the UID
    raw: bytes


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def imap_utf7(name: str) -> str:
    """A folder name in IMAP's modified UTF-7 (RFC 3501 §5.1.3): "Traités" → "Trait&AOk-s"."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = base64.b64encode("".join(pending).encode("utf-16-be")).rstrip(b"=").replace(b"/", b",")
            out.append("&" + data.decode("ascii") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def _quoted(name: str) -> str:
    encoded = imap_utf7(name)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MaildirReader:
    """A maildir's unprocessed messages, oldest name first."""

    def __init__(self, settings: MaildirMailbox, root: Path):
        self.settings = settings
        self.root = root

    def __enter__(self) -> "MaildirReader":
        for sub in ("new", "cur"):
            if not (self.root / sub).is_dir():
                raise MailboxError(f"{self.root} is not a maildir (no {sub}/ folder)")
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def unread(self) -> Iterator[Item]:
        waiting = []
        for sub in ("new", "cur"):
            for name in sorted(os.listdir(self.root / sub)):
                if name.startswith("."):
                    continue
                if sub == "cur" and "S" in name.partition(":2,")[2]:
                    continue
                waiting.append(f"{sub}/{name}")
        for key in waiting[: self.settings.batch]:
            try:
                yield Item(key, (self.root / key).read_bytes())
            except FileNotFoundError:
                continue  # another reader (a mail client) took it meanwhile

    def done(self, item: Item, recognised: bool) -> None:
        """Mark processed with one rename (atomic): into ``cur/`` with ``S``, or into the
        Maildir++ folder ``.<move_to>`` when it was a report and moving is asked for."""
        name = item.key.split("/", 1)[1]
        base, _, flags = name.partition(":2,")
        target = self.root / "cur"
        if self.settings.processed == "move" and recognised:
            target = self.root / ("." + self.settings.move_to.replace("/", "."))
            for sub in ("tmp", "new", "cur"):
                (target / sub).mkdir(parents=True, exist_ok=True)
            target = target / "cur"
        os.rename(self.root / item.key, target / f"{base}:2,{''.join(sorted(set(flags) | {'S'}))}")


class ImapReader:
    """An IMAP folder's unseen messages, by UID."""

    def __init__(self, settings: ImapMailbox, host: Host):
        self.settings = settings
        self.host = host
        self.imap: imaplib.IMAP4 | None = None
        self._moved: list[bytes] = []
        self._can_move = False
        self._uidplus = False

    def _context(self) -> ssl.SSLContext:
        s = self.settings
        cafile = None
        if s.ca_file:
            path = self.host.resolve(s.ca_file)
            if not path.is_file():
                raise ConfigError(f"bounces.mailbox.ca_file {str(path)!r} not found")
            cafile = str(path)
        ctx = ssl.create_default_context(cafile=cafile)
        if not s.validate_certs:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def __enter__(self) -> "ImapReader":
        s = self.settings
        user = secret(s.username_env, "bounces.mailbox username_env")
        password = secret(s.password_env, "bounces.mailbox password_env")
        if s.security == "none" and not _is_loopback(s.host):
            raise ConfigError(f"bounces.mailbox: refusing to send the password unencrypted to {s.host!r}; "
                              "set security = \"tls\" or \"starttls\"")
        where = f"{s.host}:{s.real_port}"
        timeout = s.timeout.total_seconds()
        try:
            if s.security == "tls":
                self.imap = imaplib.IMAP4_SSL(s.host, s.real_port, ssl_context=self._context(), timeout=timeout)
            else:
                self.imap = imaplib.IMAP4(s.host, s.real_port, timeout=timeout)
                if s.security == "starttls":
                    self.imap.starttls(self._context())
        except (OSError, imaplib.IMAP4.error) as exc:
            self.imap = None
            raise MailboxError(f"cannot connect to IMAP server {where}: {exc}") from exc
        try:
            self.imap.login(user, password)
            typ, data = self.imap.select(_quoted(s.folder))
            if typ != "OK":
                raise MailboxError(f"IMAP folder {s.folder!r} on {where}: {_said(data)}")
            caps = {c.upper() for c in self.imap.capabilities}
            self._can_move, self._uidplus = "MOVE" in caps, "UIDPLUS" in caps
        except imaplib.IMAP4.error as exc:
            self._close()
            raise MailboxError(f"IMAP login or folder refused by {where}: {exc}") from exc
        except (OSError, MailboxError):
            self._close()
            raise
        return self

    def _close(self) -> None:
        if self.imap is not None:
            try:
                self.imap.logout()
            except (OSError, imaplib.IMAP4.error):
                pass  # the server went first; nothing is lost
            self.imap = None

    def __exit__(self, *exc: object) -> None:
        try:
            if self._moved and self.imap is not None and not self._can_move:
                uids = b",".join(self._moved).decode()
                if self._uidplus:
                    self._call("UID EXPUNGE", lambda: self.imap.uid("EXPUNGE", uids))  # type: ignore[union-attr]
                else:
                    self._call("EXPUNGE", self.imap.expunge)
        finally:
            self._close()

    def _call(self, what: str, fn: Any) -> list[Any]:
        try:
            typ, data = fn()
        except (OSError, imaplib.IMAP4.error) as exc:
            raise MailboxError(f"IMAP {what} failed: {exc}") from exc
        if typ != "OK":
            raise MailboxError(f"IMAP {what} refused: {_said(data)}")
        return data

    def unread(self) -> Iterator[Item]:
        assert self.imap is not None
        imap = self.imap
        data = self._call("UID SEARCH", lambda: imap.uid("SEARCH", None, "UNSEEN"))
        uids = b" ".join(d for d in data if d).split()
        for uid in uids[: self.settings.batch]:
            fetched = self._call("UID FETCH", lambda: imap.uid("FETCH", uid, "(BODY.PEEK[])"))
            raw = next((part[1] for part in fetched if isinstance(part, tuple) and len(part) == 2), None)
            if raw is not None:  # None: expunged meanwhile
                yield Item(uid.decode(), raw)

    def done(self, item: Item, recognised: bool) -> None:
        assert self.imap is not None
        imap, uid, s = self.imap, item.key, self.settings
        if s.processed == "move" and recognised:
            folder = _quoted(s.move_to)
            if not self._moved:
                imap.create(folder)  # NO when it exists already: fine
            if self._can_move:
                self._call("UID MOVE", lambda: imap.uid("MOVE", uid, folder))
            else:
                self._call("UID COPY", lambda: imap.uid("COPY", uid, folder))
                self._call("UID STORE", lambda: imap.uid("STORE", uid, "+FLAGS.SILENT", r"(\Seen \Deleted)"))
            self._moved.append(uid.encode())
        else:
            self._call("UID STORE", lambda: imap.uid("STORE", uid, "+FLAGS.SILENT", r"(\Seen)"))


def _said(data: Any) -> str:
    parts = data if isinstance(data, list) else [data]
    return " ".join(p.decode("utf-8", "replace") if isinstance(p, bytes) else str(p) for p in parts if p)


def reader_for(policy: BounceSettings, host: Host) -> MaildirReader | ImapReader:
    mailbox = policy.mailbox
    if isinstance(mailbox, MaildirMailbox):
        return MaildirReader(mailbox, host.resolve(mailbox.path))
    assert isinstance(mailbox, ImapMailbox), mailbox
    return ImapReader(mailbox, host)


def read_mailbox(services: Services, policy: BounceSettings, now: datetime,
                 stop: threading.Event | None = None) -> str:
    """Read the mailbox once; returns the line for the log. Blocking: run it in a thread."""
    channels = email_channel_ids(services.config)
    tally, seen = Tally(), 0
    notes: set[str] = set()  # what the messages that were no report were (auto-replies …)
    with reader_for(policy, services.config) as reader:
        for item in reader.unread():
            if stop is not None and stop.is_set():
                break
            seen += 1
            try:
                report = parse(item.raw, channels=channels)
            except Exception:  # a message the parser chokes on must not block the ones behind it
                log.exception("bounce mailbox: cannot read message %s; marked read and left for a person", item.key)
                tally.add("unreadable")
                reader.done(item, recognised=False)
                continue
            apply(services.store, report.feedback, now=now, policy=policy, channels=channels, tally=tally)
            if not report.feedback and report.note:
                notes.add(report.note)
            reader.done(item, recognised=bool(report.feedback))
    line = f"{seen} message(s): {tally.line()}"
    return line + (f" (and {'; '.join(sorted(notes))})" if notes else "")


def mailbox_jobs(policy: BounceSettings) -> list[KindJob]:
    """The ``bounces`` job of a channel with a bounce mailbox (none without one)."""
    if policy.mailbox is None:
        return []

    async def run(services: Services, now: datetime) -> str:
        stop = threading.Event()
        try:
            return await asyncio.to_thread(read_mailbox, services, policy, now, stop)
        except asyncio.CancelledError:
            stop.set()  # the thread finishes the message in hand, then returns
            raise
        except (MailboxError, ConfigError) as exc:
            log.warning("bounce mailbox not read: %s", exc)
            return f"mailbox not read: {exc}"

    return [KindJob("bounces", policy.mailbox.every, run)]


__all__ = ["ImapReader", "MailboxError", "MaildirReader", "mailbox_jobs", "read_mailbox"]
