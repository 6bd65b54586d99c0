"""Email: a digest (or one email per article) to each subscriber of a list, through SMTP.

Everything email-specific lives in this folder: the settings (:mod:`.settings`), the
renderer that makes one shared digest per edition and a small envelope per recipient
(:mod:`.render`), the MIME message (:mod:`.mime`) and the SMTP transport (:mod:`.smtp`).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from email.headerregistry import Address
from typing import Any, Iterator
from urllib.parse import urlsplit

from ...errors import PermanentError
from ...models import Edition, Message
from ...settings import TransportSettings
from ..base import Audience, ChannelKind, OutboxItem, Plan, PreviewFile, Transport
from ..file import FileSettings, FileTransport
from .mime import KIND, EmailBody, build_email, html_part
from .render import ROLES, EmailDigest, EmailEnvelope, EmailRenderer, Recipient, assemble, unsubscribe_url
from .settings import EmailChannelSettings, SmtpSettings

#: Who a preview or a trial render greets when the list is empty.
SAMPLE_RECIPIENTS = (Recipient("lecteur@example.org", "Aminata", "https://example.org/unsub?t=a&b=1"),
                     Recipient("anonyme@example.org"))


class EmailKind(ChannelKind):
    name = KIND
    settings = EmailChannelSettings
    roles = ROLES
    body = EmailBody
    has_subscribers = True
    file_kinds = {".eml": "the complete email, as a mail client receives it",
                  ".html": "the email's HTML part, to open in a browser"}

    def __init__(self, templates, host):  # type: ignore[no-untyped-def]
        super().__init__(templates, host)
        self.renderer = EmailRenderer(templates)

    def used_roles(self, channel: EmailChannelSettings) -> list[str]:  # type: ignore[override]
        return list(ROLES)

    # -- rendering -----------------------------------------------------------------------
    def _digests(self, channel: EmailChannelSettings, edition: Edition) -> dict[str, EmailDigest]:
        """A digest is one shared part; article mode sends one email per article, each its own part."""
        if channel.mode == "digest":
            return {"digest": self.renderer.digest(channel, edition)}
        return {f"a{a.id}": self.renderer.digest(channel, Edition(edition.channel_id, (a,), edition.created_at,
                                                                  edition.id))
                for a in edition.articles}

    def _headers(self, channel: EmailChannelSettings, unsubscribe: str | None) -> dict[str, str]:
        host = urlsplit(self.host.site.base_url).hostname or "localhost"
        headers = {"List-Id": f"{channel.title or self.host.site.name} <{channel.id}.{host}>"}
        if unsubscribe:
            headers["List-Unsubscribe"] = f"<{unsubscribe}>"
            if unsubscribe.startswith("https://"):
                headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return headers

    def _body(self, channel: EmailChannelSettings, digest: EmailDigest, envelope: EmailEnvelope,
              headers: dict[str, str]) -> EmailBody:
        subject, html, text = assemble(digest, envelope)
        return EmailBody(subject=subject, text=text, html=html, headers=headers)

    def plan(self, channel: EmailChannelSettings, edition: Edition, audience: Audience) -> Plan:  # type: ignore[override]
        digests = self._digests(channel, edition)
        base = f"{channel.id}:e{edition.id}"

        def items() -> Iterator[OutboxItem]:
            for sub in audience.subscribers():
                unsubscribe = unsubscribe_url(channel, sub.token, sub.email)
                recipient = Recipient(sub.email, sub.name, unsubscribe)
                headers = self._headers(channel, unsubscribe)
                for name, digest in digests.items():
                    envelope = self.renderer.envelope(channel, digest, recipient)
                    key = f"{base}:{sub.email}" if name == "digest" else f"{base}:{name}:{sub.email}"
                    yield OutboxItem(key, sub.email, {"part": name, "envelope": asdict(envelope), "headers": headers})

        return Plan(items(), shared={name: asdict(d) for name, d in digests.items()},
                    note=lambda n: "" if n else "no active subscribers")

    def message(self, channel: EmailChannelSettings, key: str, destination: str,  # type: ignore[override]
                payload: dict[str, Any], shared: dict[str, Any] | None) -> Message:
        parts = (shared or {}).get("email", shared or {})  # editions stored before 0.2 nest the parts under "email"
        digest = EmailDigest(**parts[payload.get("part", "digest")])
        body = self._body(channel, digest, EmailEnvelope(**payload["envelope"]), payload.get("headers") or {})
        return Message(key=key, channel_id=channel.id, kind=KIND, destination=destination, body=body)

    def _recipient(self, channel: EmailChannelSettings, audience: Audience) -> Recipient:
        sub = next(iter(audience.subscribers()), None)
        if sub is None:
            sample = SAMPLE_RECIPIENTS[0]
            return Recipient(sample.email, sample.name, unsubscribe_url(channel, "exemple", sample.email))
        return Recipient(sub.email, sub.name, unsubscribe_url(channel, sub.token, sub.email))

    def preview(self, channel: EmailChannelSettings, edition: Edition,  # type: ignore[override]
                audience: Audience) -> list[PreviewFile]:
        digest = next(iter(self._digests(channel, edition).values()))
        recipient = self._recipient(channel, audience)
        subject, html, text = assemble(digest, self.renderer.envelope(channel, digest, recipient))
        return [PreviewFile(".html", html), PreviewFile(".txt", f"Subject: {subject}\n\n{text}")]

    def trial_messages(self, channel: EmailChannelSettings, edition: Edition) -> Iterator[Message]:  # type: ignore[override]
        for name, digest in self._digests(channel, edition).items():
            for recipient in SAMPLE_RECIPIENTS:
                envelope = self.renderer.envelope(channel, digest, recipient)
                body = self._body(channel, digest, envelope, self._headers(channel, recipient.unsubscribe_url))
                yield Message(f"check:{name}", channel.id, KIND, recipient.email, body)

    def validate(self, message: Message) -> list[str]:
        try:
            build_email(message, from_addr=self._sender(), now=datetime(2024, 12, 2))
        except PermanentError as exc:
            return [exc.reason]
        return []

    def warnings(self, channel: EmailChannelSettings) -> list[str]:  # type: ignore[override]
        if not channel.unsubscribe_url:
            return [f"channel {channel.id!r} has no unsubscribe_url; its emails carry no unsubscribe link"]
        return []

    # -- sending -------------------------------------------------------------------------
    def transport_class(self, settings: TransportSettings) -> type[Transport]:
        if isinstance(settings, SmtpSettings):
            from .smtp import SmtpTransport  # aiosmtplib loads only when a channel sends by SMTP

            return SmtpTransport
        assert isinstance(settings, FileSettings), settings
        return FileTransport

    def _sender(self) -> str:
        """``"Site name <no-reply@site host>"``: the From of files, which have no real mailbox."""
        host = urlsplit(self.host.site.base_url).hostname or "localhost"
        return str(Address(display_name=self.host.site.name, addr_spec=f"no-reply@{host}"))

    def files(self, message: Message, now: datetime) -> list[tuple[str, bytes]]:
        msg = build_email(message, from_addr=self._sender(), reply_to=None, now=now)
        out = [(".eml", msg.as_bytes())]
        html = html_part(msg)
        if html is not None:
            out.append((".html", html.replace("\r\n", "\n").encode("utf-8")))
        return out


__all__ = ["EmailBody", "EmailChannelSettings", "EmailKind", "SmtpSettings"]
