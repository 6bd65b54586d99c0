"""An email's body (:class:`EmailBody`) and the RFC 5322 message built from it.

Shared by the SMTP transport (which sends it) and the file transport (which writes it to
disk), so what the demo shows in ``var/out`` is byte for byte what a reader would get.

Choices, and why:

* ``multipart/alternative`` with text/plain first and text/html last: clients show the
  last part they understand, so HTML readers get HTML and the rest get the text.
* Bodies go through the standard library's content manager with a 7-bit policy, which
  picks quoted-printable (or base64 when shorter) for UTF-8 text. French accents, « », ’
  and long lines then survive any relay, even one without 8BITMIME, and lines stay
  under the 998-octet limit.
* Headers use :data:`email.policy.SMTP` (CRLF, RFC 2047 encoded words for non-ASCII
  subjects and display names such as « L’Écho du Sahel »).
* The Message-ID is derived from the outbox idempotency key, so a message re-sent after a
  crash or a lost reply carries the same id and receivers can deduplicate it.
* A subject is one line, but only line breaks and tabs are folded into a space: the
  no-break space French puts before « : » must reach the reader's inbox.
* With a DKIM key (:func:`load_dkim`), :func:`build_email` signs the message with dkimpy
  (relaxed/relaxed canonicalization) and adds the DKIM-Signature header already folded, so
  the bytes ``as_bytes()`` gives afterwards are exactly the bytes that were signed, plus
  that header.
"""

from __future__ import annotations

import email.policy
import functools
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Mapping

from email_validator import EmailNotValidError, validate_email

from ...errors import ConfigError, PermanentError
from ...models import Message
from .settings import DkimSettings

KIND = "email"


@dataclass(frozen=True)
class EmailBody:
    """One recipient's email: its subject, text and HTML parts, and extra headers (List-Id …)."""

    subject: str
    text: str
    html: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # the complete message as it goes on the wire, when it was spliced from its group's
    # compiled email (:mod:`.wire`); transports send these bytes as they are
    wire: bytes | None = None

class _Policy(email.policy.EmailPolicy):
    """SMTP framing (CRLF, 78-column folding) with 7-bit bodies — except that a header made
    of ``<…>`` addresses (List-Unsubscribe, List-Id …) is written as it is, folded only
    between its entries: the email package would otherwise turn a long URL into RFC 2047
    encoded words, which no mail client reads as a link."""

    def _fold_as_is(self, name: str, value: str) -> str | None:
        flat = str(value)
        if "\r" in flat or "\n" in flat or not flat.isascii() or "<" not in flat or len(flat) + len(name) + 2 > 998:
            return None
        return f"{name}: " + f",{self.linesep} ".join(part.strip() for part in flat.split(",")) + self.linesep

    def fold(self, name: str, value: str) -> str:
        if name.lower() in _AS_IS:
            folded = self._fold_as_is(name, value)
            if folded is not None:
                return folded
        return super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in _AS_IS:
            folded = self._fold_as_is(name, value)
            if folded is not None:
                return folded.encode("ascii")
        return super().fold_binary(name, value)


_AS_IS = frozenset({"list-unsubscribe", "list-archive", "list-help", "list-subscribe", "list-post"})

#: SMTP framing (CRLF, 78-column folding) but 7-bit bodies: see the module docstring.
POLICY = _Policy(linesep="\r\n", cte_type="7bit")

#: Headers build_email owns; ``Message.headers`` may not override them.
_RESERVED = frozenset(
    h.lower()
    for h in ("From", "To", "Cc", "Bcc", "Subject", "Date", "Message-ID", "MIME-Version",
              "Content-Type", "Content-Transfer-Encoding")
)


# What ends a line in a header: a subject keeps every other character, the no-break spaces
# of French typography included (str.split() would have turned them into plain spaces).
_LINE_BREAKS = re.compile(r"[ \t]*[\r\n\t\v\f\x1c-\x1e\x85\u2028\u2029]+[ \t]*")


def one_line_subject(subject: str) -> str:
    """``subject`` on one line: line breaks and tabs (and the spaces around them) become one space."""
    return _LINE_BREAKS.sub(" ", subject).strip(" ")


@dataclass(frozen=True)
class DkimKey:
    """A loaded DKIM signing key: what :func:`build_email` signs with."""

    selector: str
    domain: str
    private_key: bytes  # PEM
    headers: tuple[str, ...]


def load_dkim(settings: DkimSettings, path: Path) -> DkimKey:
    """Read and check the private key at ``path``; ConfigError when it cannot be used."""
    import dkim as dkimpy  # dkimpy (and dnspython) take 0.1 s to load: only when a channel signs

    where = f"smtp transport dkim.key_file {str(path)!r}"
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where} cannot be read: {exc.strerror or exc}") from exc
    try:
        dkimpy.crypto.parse_pem_private_key(pem)
    except (dkimpy.crypto.UnparsableKeyError, ValueError, IndexError, TypeError) as exc:
        raise ConfigError(f"{where} is not an RSA private key in PEM form ({exc}); "
                          "make one with: openssl genrsa -out dkim.pem 2048") from exc
    return DkimKey(settings.selector, settings.domain, pem, tuple(settings.headers))


def _signature(raw: bytes, key: DkimKey, present: list[str]) -> bytes:
    """The DKIM-Signature header line (folded, CRLF-ended) over ``raw``, signing the headers
    of ``present``."""
    import dkim as dkimpy  # only when a channel signs, as in load_dkim

    try:
        return dkimpy.sign(raw, key.selector.encode("ascii"), key.domain.encode("ascii"), key.private_key,
                           canonicalize=(b"relaxed", b"relaxed"),
                           include_headers=[h.lower().encode("ascii") for h in present], linesep=b"\r\n")
    except dkimpy.DKIMException as exc:
        raise ConfigError(f"DKIM signing with selector {key.selector!r} failed: {exc}") from exc


def sign_bytes(raw: bytes, key: DkimKey) -> bytes:
    """``raw`` with a DKIM-Signature header put in front (for a spliced message)."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    present = [h for h in key.headers if re.search(rb"(?im)^" + re.escape(h.encode("ascii")) + rb":", head)]
    return _signature(raw, key, present) + raw


def sign(msg: EmailMessage, key: DkimKey) -> None:
    """Add a DKIM-Signature over ``msg`` as it serialises now (see the module docstring)."""
    header = _signature(msg.as_bytes(), key, [h for h in key.headers if h in msg])
    name, value = header.decode("ascii").split(":", 1)
    # Already folded by dkimpy under 78 columns: the policy writes a raw value as it is.
    msg.set_raw(name, value.lstrip(" ").rstrip("\r\n"))


def message_id_for(key: str, domain: str) -> str:
    """A Message-ID that depends only on the idempotency key and the domain.

    A resend after a crash is then recognisably the same message, and receivers that
    deduplicate on Message-ID show it once."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"<{digest}@{domain}>"


def parse_sender(from_addr: str, where: str = "from") -> Address:
    """``"L’Écho du Sahel <news@example.org>"`` or ``"news@example.org"`` → one Address.

    A bad sender is the admin's config, not the message: it raises ConfigError."""
    probe = EmailMessage(policy=POLICY)
    try:
        probe["From"] = from_addr
        addresses = probe["From"].addresses
    except (ValueError, IndexError, TypeError) as exc:
        raise ConfigError(f"{where}: {from_addr!r} is not an email address ({exc})") from exc
    if len(addresses) != 1 or "@" not in addresses[0].addr_spec or not addresses[0].domain:
        raise ConfigError(
            f"{where}: expected one address such as 'Mon Journal <news@example.org>', got {from_addr!r}"
        )
    if not addresses[0].addr_spec.isascii():
        raise ConfigError(f"{where}: {from_addr!r}: the address itself must be ASCII (the display name may not be)")
    return addresses[0]


# An ASCII local part of the plainest kind (RFC 5322 dot-atom): most readers' addresses.
_PLAIN_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


@functools.lru_cache(maxsize=4096)
def _ascii_domain(domain: str) -> str | None:
    try:
        info = validate_email(f"a@{domain}", check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return info.ascii_domain


def validate_recipient(address: str) -> str:
    """The recipient with its domain in ASCII (IDN domains in punycode), or PermanentError.
    A local part that is not ASCII (``josé@…``, RFC 6531) is kept as it is: the transport
    sends it with SMTPUTF8 when the server offers it, and fails that one message, saying
    why, when it does not.

    Checked before any connection is made: a bad address never reaches the server. A
    digest checks thousands: a plain local part is judged here, its domain once by
    email-validator; anything else by email-validator whole."""
    local, at, domain = address.rpartition("@")
    if at and len(local) <= 64 and _PLAIN_LOCAL.fullmatch(local):
        ascii_domain = _ascii_domain(domain)
        if ascii_domain is not None and len(local) + 1 + len(ascii_domain) <= 254:
            return f"{local}@{ascii_domain}"
    try:
        info = validate_email(address, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise PermanentError(f"invalid recipient address {address!r}: {exc}") from exc
    return info.ascii_email or f"{info.local_part}@{info.ascii_domain}"


def build_email(message: Message, *, from_addr: str, reply_to: str | None = None,
                domain: str | None = None, now: datetime, dkim: DkimKey | None = None) -> EmailMessage:
    """The complete MIME message for an email ``message``, DKIM-signed with ``dkim``.

    ``domain`` names the Message-ID's right-hand side and defaults to the From address's
    domain. ``now`` becomes the Date header (a naive datetime is taken as UTC).
    Raises PermanentError when the message itself can never be sent as it is (bad
    recipient, no subject, wrong kind, a header with a line break) and ConfigError for a
    bad sender address.
    """
    body = message.body
    if message.kind != KIND or not isinstance(body, EmailBody):
        raise PermanentError(f"message {message.key!r} is a {message.kind!r} message, not an email")
    to = validate_recipient(message.destination)
    subject = one_line_subject(body.subject or "")
    if not subject.strip():
        raise PermanentError(f"email {message.key!r} has no subject")
    sender = parse_sender(from_addr)
    domain = domain or sender.domain
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)

    msg = EmailMessage(policy=POLICY)
    try:
        msg["Subject"] = subject
        msg["From"] = sender
        msg["To"] = to
        if reply_to:
            msg["Reply-To"] = reply_to
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = message_id_for(message.key, domain)
    except ValueError as exc:
        raise PermanentError(f"email {message.key!r}: bad header value: {exc}") from exc

    for name, value in body.headers.items():
        if name.lower() in _RESERVED:
            raise PermanentError(f"email {message.key!r}: header {name!r} is set by the transport, not the message")
        try:
            del msg[name]
            msg[name] = value
        except (ValueError, TypeError) as exc:
            raise PermanentError(f"email {message.key!r}: header {name!r} has a bad value {value!r}: {exc}") from exc

    msg.set_content(body.text, subtype="plain", charset="utf-8")
    if body.html:
        msg.add_alternative(body.html, subtype="html", charset="utf-8")
    if dkim is not None:
        sign(msg, dkim)
    return msg


def html_part(msg: EmailMessage) -> str | None:
    """The text/html body of a message built by :func:`build_email`, decoded."""
    part = msg.get_body(preferencelist=("html",))
    return part.get_content() if part is not None else None
