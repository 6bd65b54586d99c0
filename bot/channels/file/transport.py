"""Write messages to files instead of sending them: the demo's transport, and a dry run.

Each message becomes what it stands for, so an editor can check an edition without any
account; the channel kind says what that is (:meth:`ChannelKind.files`): the complete
``.eml`` a mail client would receive, the Bot API call as ``.json``, a post as ``.txt``.

Files live under ``<dir>/<channel>/`` and are named after the idempotency key, so a resend
of the same message overwrites its file instead of adding a duplicate (this transport is
at-least-once, like email). Every file is written to a temporary name in the same folder
and renamed into place, so a reader never sees half a file, even after a crash.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ...errors import PermanentError, TransientError
from ...models import Message, Receipt
from ..base import ChannelKind, Host, Transport
from . import FileSettings

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


class FileTransport(Transport):
    name = "file"
    at_least_once = True

    settings: FileSettings

    def __init__(self, settings: FileSettings, host: Host, kind: ChannelKind, *,
                 clock: Callable[[], datetime] | None = None):
        super().__init__(settings, host, kind)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.root = Path(host.resolve(settings.dir))

    async def send(self, message: Message) -> Receipt:
        if not _CHANNEL.match(message.channel_id) or ".." in message.channel_id:
            raise PermanentError(f"channel id {message.channel_id!r} cannot be used as a folder name")
        if message.kind != self.kind.name or not isinstance(message.body, self.kind.body):
            raise PermanentError(f"message {message.key!r} is a {message.kind!r} message; this file transport "
                                 f"writes {self.kind.name!r} messages")
        folder = self.root / message.channel_id
        stem = file_stem(message.key)
        files = [(folder / f"{stem}{suffix}", data) for suffix, data in self.kind.files(message, self.clock())]
        self._mkdir(folder)
        for path, data in files:
            self._write(path, data)
        paths = tuple(str(p) for p, _ in files)
        return Receipt(transport=self.name, remote_id=None, detail=", ".join(paths), files=paths)

    @staticmethod
    def _fail(path: Path, exc: OSError, doing: str) -> TransientError | PermanentError:
        reason = exc.strerror or str(exc)
        if exc.errno in _TRANSIENT_ERRNOS:
            return TransientError(f"cannot {doing} {str(path)!r}: {reason}")
        return PermanentError(f"cannot {doing} {str(path)!r}: {reason}")

    def _mkdir(self, folder: Path) -> None:
        """Create ``folder`` and the missing folders above it, for this user only: the files
        hold subscribers' addresses."""
        missing = [p for p in (folder, *folder.parents) if not p.exists()]
        try:
            for p in reversed(missing):
                p.mkdir(mode=0o700, exist_ok=True)
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
            os.replace(tmp, path)  # mkstemp made it 0600: readable by this user only
            tmp = None
        except OSError as exc:
            raise self._fail(path, exc, "write") from exc
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
