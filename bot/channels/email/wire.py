"""The bytes of an email, built once per group of readers and spliced per reader.

A digest goes to a hundred thousand readers who differ in a name and three links. Building
each message with the standard library's ``email`` package (parsing the From header,
folding, choosing a transfer encoding, serialising) cost half of the dispatch time. So an
edition's email is *compiled* once per group of identical readers (:class:`WireEmail`):
every header that does not depend on the reader is folded and encoded once, and the text
and HTML parts are cut at the per-reader fields, each piece quoted-printable encoded once.
A reader's message is then a join of byte strings around a few short encoded values.

Quoted-printable allows this splicing because a soft line break (``=`` at the end of an
encoded line) may stand anywhere: each piece ends with one, so pieces encoded apart join
into one valid body whose decoded text is exactly the pieces' texts joined. Lines stay
under 76 characters; the result is 7-bit, so it survives any relay.

The bytes are what :func:`~bot.channels.email.mime.build_email` would produce for the same
content (same headers, same decoded parts; tests compare them through the standard
library's parser); :mod:`.mime` remains the reference and handles anything unusual (DKIM
signing, headers a kind adds per message).
"""

from __future__ import annotations

import binascii
import hashlib
import html
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Mapping, Sequence

from .mime import POLICY, message_id_for

CRLF = b"\r\n"
SOFT = b"=\r\n"


def qp(text: str) -> bytes:
    """``text`` quoted-printable encoded (UTF-8, CRLF line ends), ending with a soft line
    break unless it ends a line, so the next piece may follow directly.

    No encoded line starts with a dot (it is written ``=2E``), so the message needs no
    SMTP dot-stuffing and its bytes go on the wire as they are (:data:`WIRE_READY`)."""
    if not text:
        return b""
    raw = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    out = binascii.b2a_qp(raw, quotetabs=False, istext=True, header=False).replace(b"\n", CRLF)
    out = out.replace(b"\r\n.", b"\r\n=2E")
    if out.startswith(b"."):
        out = b"=2E" + out[1:]
    return out if raw.endswith(b"\n") else out + SOFT


#: What :meth:`WireEmail.message` guarantees: CRLF line ends only, no line starting with a
#: dot, 7-bit. An SMTP client may send such bytes after DATA without rewriting them.
WIRE_READY = True


#: How a field's value is escaped in each part: HTML gets entities (it may sit in an
#: attribute), text stays as it is.
def _html(value: str) -> str:
    return html.escape(value, quote=True)


@dataclass(frozen=True)
class Part:
    """A body cut at its per-reader fields: ``pieces[0] field[0] pieces[1] field[1] …``."""

    pieces: Sequence[str]
    fields: Sequence[str]

    def __post_init__(self) -> None:
        if len(self.pieces) != len(self.fields) + 1:
            raise ValueError("a part has one more piece than it has fields")


class WireEmail:
    """One group's email, compiled: ``message(to, key, date, values)`` gives a reader's bytes."""

    def __init__(self, *, subject: str, from_addr: str, text: Part, html: Part | None,
                 headers: Mapping[str, str], domain: str, reply_to: str | None = None):
        self.domain = domain
        head = EmailMessage(policy=POLICY)
        head["Subject"] = subject
        head["From"] = from_addr
        if reply_to:
            head["Reply-To"] = reply_to
        for name, value in headers.items():
            head[name] = value
        head["MIME-Version"] = "1.0"
        digest = hashlib.sha256(repr((subject, tuple(text.pieces), html and tuple(html.pieces))).encode()).hexdigest()
        self.boundary = f"=_tamtam_{digest[:24]}"
        if html is not None:
            head["Content-Type"] = f'multipart/alternative; boundary="{self.boundary}"'
        else:
            head["Content-Type"] = 'text/plain; charset="utf-8"'
            head["Content-Transfer-Encoding"] = "quoted-printable"
        self._head = head.as_bytes().split(CRLF + CRLF, 1)[0] + CRLF  # the headers, folded and encoded once
        self._parts = [(b'Content-Type: text/plain; charset="utf-8"', text, str)]
        if html is not None:
            self._parts.append((b'Content-Type: text/html; charset="utf-8"', html, _html))
        # Text ends with a line break, as the email package's set_content makes it.
        self._encoded = [([qp(p) for p in part.pieces[:-1]] + [qp(part.pieces[-1].rstrip("\r\n") + "\n")],
                          list(part.fields), escape, ctype)
                         for ctype, part, escape in self._parts]

    @staticmethod
    def _body(pieces: list[bytes], fields: list[str], escape, values: Mapping[str, str]) -> bytes:  # type: ignore[no-untyped-def]
        out = [pieces[0]]
        for field, piece in zip(fields, pieces[1:]):
            out.append(qp(escape(values.get(field) or "")))
            out.append(piece)
        return b"".join(out)

    def message(self, *, to: str, key: str, date: str, values: Mapping[str, str] = {},
                headers: Mapping[str, str] = {}) -> bytes:
        """The complete message for one reader: ``to`` (an address, ASCII or already
        accepted by the server), the idempotency ``key`` (it makes the Message-ID), the
        ``date`` header value, the reader's field ``values`` and headers of their own
        (List-Unsubscribe …, one line each, no line breaks)."""
        lines = [self._head, b"To: ", to.encode("utf-8"), CRLF, b"Date: ", date.encode("ascii"), CRLF,
                 b"Message-ID: ", message_id_for(key, self.domain).encode("ascii"), CRLF]
        for name, value in headers.items():
            if "\r" in value or "\n" in value:
                raise ValueError(f"header {name} has a line break")
            lines += [name.encode("ascii"), b": ", value.encode("utf-8"), CRLF]
        if len(self._encoded) == 1:
            pieces, fields, escape, _ = self._encoded[0]
            lines += [b"Content-Transfer-Encoding: quoted-printable", CRLF, CRLF,
                      self._body(pieces, fields, escape, values)]
            return b"".join(lines)
        boundary = self.boundary.encode("ascii")
        lines.append(CRLF)
        for pieces, fields, escape, ctype in self._encoded:
            # the body ends a line; the line break before the boundary belongs to the boundary
            lines += [b"--", boundary, CRLF, ctype, CRLF, b"Content-Transfer-Encoding: quoted-printable", CRLF, CRLF,
                      self._body(pieces, fields, escape, values), CRLF]
        lines += [b"--", boundary, b"--", CRLF]
        return b"".join(lines)
