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
"""

from __future__ import annotations

import email.policy
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Mapping

from email_validator import EmailNotValidError, validate_email

from ...errors import ConfigError, PermanentError
from ...models import Message

KIND = "email"


@dataclass(frozen=True)
class EmailBody:
    """One recipient's email: its subject, text and HTML parts, and extra headers (List-Id …)."""

    subject: str
    text: str
    html: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

#: SMTP framing (CRLF, 78-column folding) but 7-bit bodies: see the module docstring.
POLICY = email.policy.SMTP.clone(cte_type="7bit")

#: Headers build_email owns; ``Message.headers`` may not override them.
_RESERVED = frozenset(
    h.lower()
    for h in ("From", "To", "Cc", "Bcc", "Subject", "Date", "Message-ID", "MIME-Version",
              "Content-Type", "Content-Transfer-Encoding")
)


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


def validate_recipient(address: str) -> str:
    """The recipient in ASCII form (IDN domains in punycode), or PermanentError.

    Checked before any connection is made: a bad address never reaches the server."""
    try:
        info = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise PermanentError(f"invalid recipient address {address!r}: {exc}") from exc
    return info.ascii_email or info.normalized


def build_email(message: Message, *, from_addr: str, reply_to: str | None = None,
                domain: str | None = None, now: datetime) -> EmailMessage:
    """The complete MIME message for an email ``message``.

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
    if not body.subject or not body.subject.strip():
        raise PermanentError(f"email {message.key!r} has no subject")
    sender = parse_sender(from_addr)
    domain = domain or sender.domain
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)

    msg = EmailMessage(policy=POLICY)
    try:
        msg["Subject"] = " ".join(body.subject.split())  # a subject is one line
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
    return msg


def html_part(msg: EmailMessage) -> str | None:
    """The text/html body of a message built by :func:`build_email`, decoded."""
    part = msg.get_body(preferencelist=("html",))
    return part.get_content() if part is not None else None
