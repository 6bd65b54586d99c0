"""Write messages to files instead of sending them: the demo's transport, and a dry run.

Each message becomes what it stands for, so an editor can check an edition without any
account: the complete ``.eml`` a mail client would receive (plus its HTML part to open
in a browser), the Telegram Bot API call as ``.json``, the X post as ``.txt``.

Files live under ``<dir>/<channel>/`` and are named after the idempotency key, so a resend
of the same message overwrites its file instead of adding a duplicate (this transport is
at-least-once, like email). Every file is written to a temporary name in the same folder
and renamed into place, so a reader never sees half a file, even after a crash.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import tempfile
from datetime import datetime, timezone
from email.headerregistry import Address
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from ..config import FileTransport as FileSettings
from ..errors import PermanentError, TransientError
from ..models import Message, Receipt
from .base import Transport
from .email import build_email, html_part

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")
_CHANNEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MAX_STEM = 120
# Out of space is the disk's state, not the message's: it may pass once space is freed.
_TRANSIENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EAGAIN, errno.EINTR, errno.EBUSY}


def file_stem(key: str) -> str:
    """A file name stem for an idempotency key: readable, safe on any filesystem, unique.

    ``"edition:12:news:ami@example.org"`` → ``"edition_12_news_ami@example.org-<10 hex>"``.
    The readable part helps the editor find a file; the hash of the full key keeps two
    keys that clean up the same way (or are cut short) from sharing a file.
    """
    readable = _UNSAFE.sub("_", key).strip("._-") or "message"
    readable = readable[:_MAX_STEM].rstrip("._-")
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]
    return f"{readable}-{digest}"


def telegram_call(message: Message) -> dict[str, Any]:
    """The Bot API request a Telegram message stands for (method name and parameters)."""
    chat_id: int | str = message.destination
    if re.fullmatch(r"-?\d+", message.destination):
        chat_id = int(message.destination)  # numeric ids are integers in the Bot API
    if message.photo_url:
        return {"method": "sendPhoto", "chat_id": chat_id, "photo": message.photo_url,
                "caption": message.text, "parse_mode": "HTML"}
    return {"method": "sendMessage", "chat_id": chat_id, "text": message.text, "parse_mode": "HTML"}


class FileTransport(Transport):
    name = "file"
    at_least_once = True

    settings: FileSettings

    def __init__(self, settings: FileSettings, config: Any, *,
                 clock: Callable[[], datetime] | None = None):
        super().__init__(settings, config)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.root = Path(config.resolve(settings.dir))

    def sender(self) -> str:
        """``"Site name <no-reply@site host>"``: there is no real mailbox behind a file."""
        host = urlsplit(self.config.site.base_url).hostname or "localhost"
        return str(Address(display_name=self.config.site.name, addr_spec=f"no-reply@{host}"))

    async def send(self, message: Message) -> Receipt:
        if not _CHANNEL.match(message.channel_id) or ".." in message.channel_id:
            raise PermanentError(f"channel id {message.channel_id!r} cannot be used as a folder name")
        folder = self.root / message.channel_id
        stem = file_stem(message.key)
        files: list[tuple[Path, bytes]] = []
        if message.kind == "email":
            msg = build_email(message, from_addr=self.sender(), reply_to=None, now=self.clock())
            files.append((folder / f"{stem}.eml", msg.as_bytes()))
            html = html_part(msg)
            if html is not None:
                files.append((folder / f"{stem}.html", html.replace("\r\n", "\n").encode("utf-8")))
        elif message.kind == "telegram":
            body = json.dumps(telegram_call(message), ensure_ascii=False, indent=2) + "\n"
            files.append((folder / f"{stem}.json", body.encode("utf-8")))
        elif message.kind == "x":
            files.append((folder / f"{stem}.txt", message.text.encode("utf-8")))
        else:
            raise PermanentError(f"message {message.key!r}: unknown kind {message.kind!r} "
                                 "(expected 'email', 'telegram' or 'x')")
        self._mkdir(folder)
        for path, data in files:
            self._write(path, data)
        return Receipt(transport=self.name, remote_id=None, detail=", ".join(str(p) for p, _ in files))

    @staticmethod
    def _fail(path: Path, exc: OSError, doing: str) -> TransientError | PermanentError:
        reason = exc.strerror or str(exc)
        if exc.errno in _TRANSIENT_ERRNOS:
            return TransientError(f"cannot {doing} {str(path)!r}: {reason}")
        return PermanentError(f"cannot {doing} {str(path)!r}: {reason}")

    def _mkdir(self, folder: Path) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._fail(folder, exc, "create the folder") from exc

    def _write(self, path: Path, data: bytes) -> None:
        """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, rename."""
        tmp: str | None = None
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes it 0600; these files are meant to be read
            os.replace(tmp, path)
            tmp = None
        except OSError as exc:
            raise self._fail(path, exc, "write") from exc
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
