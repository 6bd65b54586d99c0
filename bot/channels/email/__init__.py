"""Email: a digest (or one email per article) to each subscriber of a list, through SMTP.

Everything email-specific lives in this folder: the settings (:mod:`.settings`), the
renderer that makes one shared digest per edition and a small envelope per recipient
(:mod:`.render`), the MIME message (:mod:`.mime`) and the SMTP transport (:mod:`.smtp`).
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from email.headerregistry import Address
from email.policy import default as default_policy
from email.utils import format_datetime
from typing import Any, Iterator
from urllib.parse import urlsplit

from ...errors import PermanentError
from ...links import Links, ReaderLinks, Signer
from ...models import Edition, Frequency, Message, Subscriber
from ...settings import Schedule, Site, TransportSettings
from ...text import fold
from ..base import Audience, ChannelKind, OutboxItem, Plan, PreviewFile, Stream, Transport
from ..base import KindJob, Services, WebView
from ..file import FileSettings, FileTransport
from .mime import KIND, EmailBody, build_email, html_part, parse_sender, validate_recipient
from .render import (
    ROLES,
    EmailDigest,
    EmailEnvelope,
    EmailRenderer,
    Recipient,
    assemble,
    typo,
    unsubscribe_mailto,
    unsubscribe_url,
)
from .settings import EmailChannelSettings, SmtpSettings
from .wire import Part, WireEmail

def _time_of(schedule: Schedule) -> tuple[str, str]:
    """The minute and hour a cron schedule fires at (a weekly digest goes out then); 07:00
    for an interval schedule."""
    if schedule.cron:
        minute, hour = schedule.cron.split()[:2]
        if re.fullmatch(r"\d{1,2}", minute) and re.fullmatch(r"\d{1,2}", hour):
            return minute, hour
    return "0", "7"


def _edition_of(key: str) -> int | None:
    """The edition an email's idempotency key names (``channel:e12:…``)."""
    m = re.search(r":e(\d+):", key)
    return int(m.group(1)) if m else None


@functools.lru_cache(maxsize=4)
def _date_at(second: int) -> str:
    return format_datetime(datetime.fromtimestamp(second, timezone.utc))


def _date_now() -> str:
    """The Date header for now (formatted once a second: thousands of emails share it)."""
    return _date_at(int(time.time()))


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
    filters = {"typo": typo}

    def __init__(self, templates, host):  # type: ignore[no-untyped-def]
        super().__init__(templates, host)
        self.renderer = EmailRenderer(templates)
        self._wires: dict[Any, WireEmail] = {}

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

    def _headers(self, channel: EmailChannelSettings, unsubscribe: str | None,
                 mailto: str | None = None) -> dict[str, str]:
        """List-Id, and List-Unsubscribe with the https link (one-click, RFC 8058) and the
        mailto form (RFC 2369) a mail client can use when it cannot post."""
        host = urlsplit(self.host.site.base_url).hostname or "localhost"
        headers = {"List-Id": f"{channel.title or self.host.site.name} <{channel.id}.{host}>"}
        links = [u for u in (unsubscribe, mailto) if u]
        if mailto and unsubscribe and unsubscribe.lower().startswith("mailto:"):
            links = [unsubscribe]  # the channel's link already is a mailto
        if links:
            headers["List-Unsubscribe"] = ", ".join(f"<{u}>" for u in links)
            if any(u.startswith("https://") for u in links):
                headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return headers

    def _reader_headers(self, channel: EmailChannelSettings, token: str, email: str) -> dict[str, str]:
        return self._headers(channel, unsubscribe_url(channel, token, email),
                             unsubscribe_mailto(channel, token, email))

    def _body(self, channel: EmailChannelSettings, digest: EmailDigest, envelope: EmailEnvelope,
              headers: dict[str, str]) -> EmailBody:
        subject, html, text = assemble(digest, envelope)
        return EmailBody(subject=subject, text=text, html=html, headers=headers)

    # -- streams: how often a reader hears from the list -----------------------------------
    @classmethod
    def streams(cls, channel: EmailChannelSettings, site: Site) -> list[Stream]:  # type: ignore[override]
        """The channel's own editions go to readers who chose ``daily`` (the default); those
        who chose ``instant`` get one email per article every ``instant_every``; ``weekly``
        readers get a digest on the day they chose, at the channel's time, with a cursor
        per weekday so each gets the whole of their week."""
        tz = site.tz
        own = Stream(channel.id, channel.schedule, channel.mode, channel.lookback,
                     cursor=lambda now: channel.id, audience=lambda now: {"frequency": Frequency.DAILY})
        streams = [own]
        if "instant" in channel.frequencies:
            streams.append(Stream(f"{channel.id}~instant", Schedule(every=channel.instant_every), "article",
                                  channel.lookback, cursor=lambda now: f"{channel.id}~instant",
                                  audience=lambda now: {"frequency": Frequency.INSTANT}))
        if "weekly" in channel.frequencies:
            minute, hour = _time_of(channel.schedule)

            def weekday(now: datetime) -> int:
                return now.astimezone(tz).weekday()

            streams.append(Stream(f"{channel.id}~weekly", Schedule(cron=f"{minute} {hour} * * *"), "digest",
                                  max(channel.lookback, timedelta(days=7)),
                                  cursor=lambda now: f"{channel.id}~weekly-{weekday(now)}",
                                  audience=lambda now: {"frequency": Frequency.WEEKLY, "weekly_day": weekday(now)}))
        return streams

    # -- edition → outbox: one compiled email per group of identical readers -----------------
    def _group(self, channel: EmailChannelSettings, edition: Edition, sub: Subscriber | None,
               cache: dict[Any, list[str]], shared: dict[str, Any]) -> list[str]:
        """The shared parts (their names) a reader gets: readers of the same language and
        topics share them, rendered once, and compiled once with and once without a name."""
        default = channel.language or self.host.site.language
        language = (sub.language if sub and sub.language in ("fr", "en") else None) or default
        topics = tuple(sorted({fold(t) for t in sub.topics})) if sub and sub.topics is not None else None
        group = (language, topics)
        if group not in cache:
            articles = edition.articles if topics is None else tuple(
                a for a in edition.articles if {fold(c) for c in a.categories} & set(topics))
            lang = "" if language == default else f".{language}"
            tag = lang + ("" if topics is None else f".t{sum(1 for g in cache if g[1] is not None)}")
            if channel.mode == "digest":
                parts = {"digest" + tag: Edition(edition.channel_id, articles, edition.created_at, edition.id)} \
                    if articles or channel.send_empty else {}
            else:  # one email per article: the article's part, in the reader's language
                parts = {f"a{a.id}{lang}": Edition(edition.channel_id, (a,), edition.created_at, edition.id)
                         for a in articles}
            shaped = channel if language == default else channel.model_copy(update={"language": language})
            for name, part in parts.items():
                if name not in shared:
                    shared[name] = asdict(self.renderer.digest(shaped, part))
            cache[group] = list(parts)
            cache[("shape", group)] = [shaped]  # type: ignore[assignment]
        names = cache[group]
        named = bool(sub and sub.name)
        for name in names:
            variant = f"{name}.{'named' if named else 'anonymous'}"
            if variant not in shared:
                shaped = cache[("shape", group)][0]
                shared[variant] = self.renderer.compile_envelope(
                    shaped, EmailDigest(**shared[name]), named=named, unsubscribe=self._has_links(channel),
                    pages=self._links() is not None)
        return names

    def _has_links(self, channel: EmailChannelSettings) -> bool:
        return self._links() is not None or bool(channel.unsubscribe_url)

    def plan(self, channel: EmailChannelSettings, edition: Edition, audience: Audience) -> Plan:  # type: ignore[override]
        base = f"{channel.id}:e{edition.id}"
        shared: dict[str, Any] = {}
        cache: dict[Any, list[str]] = {}
        self._group(channel, edition, None, cache, shared)  # the whole edition, for the archive's view

        def items() -> Iterator[OutboxItem]:
            for sub in audience.subscribers():
                for name in self._group(channel, edition, sub, cache, shared):
                    key = f"{base}:{sub.email}" if channel.mode == "digest" else f"{base}:{name}:{sub.email}"
                    payload: dict[str, Any] = {"p": name, "s": sub.id}
                    if sub.name:
                        payload["n"] = sub.name
                    if channel.unsubscribe_mailto or (self._links() is None and channel.unsubscribe_url):
                        payload["t"] = sub.token  # the channel's own unsubscribe page or address names readers by it
                    yield OutboxItem(key, sub.email, payload)

        return Plan(items(), shared=shared, note=lambda n: "" if n else "no active subscribers")

    def message(self, channel: EmailChannelSettings, key: str, destination: str,  # type: ignore[override]
                payload: dict[str, Any], shared: dict[str, Any] | None) -> Message:
        if "body" in payload:  # a message outside any edition (a sign-up's confirmation) carries its whole body
            body = EmailBody(**payload["body"])
            return Message(key=key, channel_id=channel.id, kind=KIND, destination=destination, body=body)
        parts = (shared or {}).get("email", shared or {})  # editions stored before 0.2 nest the parts under "email"
        if "envelope" in payload:  # queued before emails were compiled: the reader's envelope is in the row
            digest = EmailDigest(**parts[payload.get("part", "digest")])
            body = self._body(channel, digest, EmailEnvelope(**payload["envelope"]), payload.get("headers") or {})
            return Message(key=key, channel_id=channel.id, kind=KIND, destination=destination, body=body)
        return Message(key=key, channel_id=channel.id, kind=KIND, destination=destination,
                       body=self._wire(channel, key, destination, payload, parts))

    def _wire(self, channel: EmailChannelSettings, key: str, destination: str, payload: dict[str, Any],
              parts: dict[str, Any]) -> EmailBody:
        """A reader's email spliced from its group's compiled email (built once per process)."""
        name, sid, reader_name = payload["p"], payload["s"], payload.get("n")
        digest = EmailDigest(**parts[name])
        compiled = parts.get(f"{name}.{'named' if reader_name else 'anonymous'}")
        edition_id = _edition_of(key)
        links = self._links()
        if links is not None:
            reader = links.for_reader(channel.id, sid, edition_id)
            unsubscribe, preferences, archive = reader.unsubscribe, reader.preferences, reader.archive
        else:
            unsubscribe = unsubscribe_url(channel, payload.get("t", ""), destination) if payload.get("t") else None
            preferences = archive = None
        headers = self._headers(channel, unsubscribe, unsubscribe_mailto(channel, payload.get("t", ""), destination)
                                if payload.get("t") else None)
        if compiled is None:  # a layout that alters reader fields: render this reader's envelope
            recipient = Recipient(destination, reader_name, unsubscribe, preferences, archive)
            return self._body(channel, digest, self.renderer.envelope(channel, digest, recipient), headers)
        wire = self._compiled(channel, key.rsplit(":", 1)[0], name, digest, compiled)
        values = {"email": destination, "name": reader_name or "", "unsubscribe": unsubscribe or "",
                  "preferences": preferences or "", "archive": archive or ""}
        raw = wire.message(to=validate_recipient(destination), key=key, date=_date_now(), values=values,
                           headers={k: v for k, v in headers.items() if k != "List-Id"})
        return EmailBody(subject=digest.subject, text="", html=None, headers=headers, wire=raw)

    def _compiled(self, channel: EmailChannelSettings, edition_key: str, name: str, digest: EmailDigest,
                  compiled: dict[str, Any]) -> WireEmail:
        cache_key = (channel.id, edition_key, name, id(compiled))
        wire = self._wires.get(cache_key)
        if wire is None:
            sender, reply_to = self._from(channel)
            headers = {k: v for k, v in self._headers(channel, None).items()}
            wire = WireEmail(subject=digest.subject, from_addr=sender, reply_to=reply_to, headers=headers,
                             text=Part(compiled["text"], compiled["text_fields"]),
                             html=Part(compiled["html"], compiled["html_fields"]),
                             domain=parse_sender(sender).domain)
            if len(self._wires) > 64:  # a few editions at a time is the common case
                self._wires.clear()
            self._wires[cache_key] = wire
        return wire

    def _from(self, channel: EmailChannelSettings) -> tuple[str, str | None]:
        """The From and Reply-To the channel's transport sends with (files: the site's no-reply)."""
        transport = channel.transport
        if isinstance(transport, SmtpSettings):
            return transport.from_addr, transport.reply_to
        return self._sender(), None

    def _recipient(self, channel: EmailChannelSettings, audience: Audience) -> Recipient:
        sub = next(iter(audience.subscribers()), None)
        if sub is None:
            sample = SAMPLE_RECIPIENTS[0]
            return self._sample(channel, Recipient(sample.email, sample.name,
                                                   unsubscribe_url(channel, "exemple", sample.email)))
        return self._reader(channel, sub, None)[0]

    def preview(self, channel: EmailChannelSettings, edition: Edition,  # type: ignore[override]
                audience: Audience) -> list[PreviewFile]:
        digest = next(iter(self._digests(channel, edition).values()))
        recipient = self._recipient(channel, audience)
        subject, html, text = assemble(digest, self.renderer.envelope(channel, digest, recipient))
        return [PreviewFile(".html", html), PreviewFile(".txt", f"Subject: {subject}\n\n{text}")]

    def trial_messages(self, channel: EmailChannelSettings, edition: Edition) -> Iterator[Message]:  # type: ignore[override]
        for name, digest in self._digests(channel, edition).items():
            for recipient in SAMPLE_RECIPIENTS:
                recipient = self._sample(channel, recipient)
                envelope = self.renderer.envelope(channel, digest, recipient)
                headers = self._headers(channel, recipient.unsubscribe_url,
                                        unsubscribe_mailto(channel, "exemple", recipient.email))
                body = self._body(channel, digest, envelope, headers)
                yield Message(f"check:{name}", channel.id, KIND, recipient.email, body)

    def validate(self, message: Message) -> list[str]:
        try:
            build_email(message, from_addr=self._sender(), now=datetime(2024, 12, 2))
        except PermanentError as exc:
            return [exc.reason]
        return []

    def warnings(self, channel: EmailChannelSettings) -> list[str]:  # type: ignore[override]
        found = []
        if not channel.unsubscribe_url and getattr(self.host, "web", None) is None:
            found.append(f"channel {channel.id!r} has no unsubscribe_url and the config no [web] table; "
                         "its emails carry no unsubscribe link")
        transport = channel.transport
        if isinstance(transport, SmtpSettings) and transport.dkim is not None:
            sender = parse_sender(transport.from_addr, where="smtp transport 'from'").domain.lower()
            signer = transport.dkim.domain.lower()
            if sender != signer and not sender.endswith("." + signer):
                found.append(f"channel {channel.id!r} signs with DKIM domain {signer!r} but sends from {sender!r}; "
                             "DMARC passes only when they match (or the sender is a subdomain)")
        return found

    # -- the readers' links and pages ([web], bot/links.py, bot/web) ---------------------
    def _links(self) -> Links | None:
        """The config's signed-link maker, or None without ``[web]`` (ConfigError when its
        secret is missing: better no edition than emails no one can leave)."""
        return getattr(self.host, "links", None)

    def _reader(self, channel: EmailChannelSettings, sub: Subscriber,
                edition_id: int | None) -> tuple[Recipient, dict[str, str]]:
        """One reader's recipient (greeting and links) and headers. With ``[web]``, Tamtam's
        own signed pages (the https unsubscribe link also takes RFC 8058's one-click POST);
        without it, the channel's ``unsubscribe_url``."""
        links = self._links()
        if links is None:
            return (Recipient(sub.email, sub.name, unsubscribe_url(channel, sub.token, sub.email)),
                    self._reader_headers(channel, sub.token, sub.email))
        reader = links.for_reader(channel.id, sub.id, edition_id)
        return (Recipient(sub.email, sub.name, reader.unsubscribe, reader.preferences,
                          reader.archive if edition_id else None),
                self._headers(channel, reader.unsubscribe, unsubscribe_mailto(channel, sub.token, sub.email)))

    def _sample(self, channel: EmailChannelSettings, recipient: Recipient) -> Recipient:
        """A preview's or check's reader with links of the real shape (signed with a
        throwaway key, so they open nothing and need no secret)."""
        web = getattr(self.host, "web", None)
        if web is None:
            return recipient
        reader: ReaderLinks = Links(web.public_url, Signer(("preview only: opens nothing",))).for_reader(
            channel.id, 0, 1)
        return Recipient(recipient.email, recipient.name, reader.unsubscribe, reader.preferences, reader.archive)

    def web_view(self, channel: EmailChannelSettings, shared: dict[str, Any]) -> WebView | None:  # type: ignore[override]
        """The digest as its email showed it, without the per-reader greeting and footer;
        article mode shows each article's email one after the other."""
        parts = shared.get("email", shared)
        digests = [EmailDigest(**part) for name, part in parts.items()  # in the edition's order
                   if "." not in name and isinstance(part, dict) and {"subject", "html", "text"} <= set(part)]
        if not digests:
            return None
        return WebView(title=digests[0].subject, html="\n<hr>\n".join(d.html for d in digests))

    # -- bounces and complaints -----------------------------------------------------------
    def jobs(self, channel: EmailChannelSettings) -> list[KindJob]:  # type: ignore[override]
        """``bounces``: read the channel's bounce mailbox every ``bounces.mailbox.every``."""
        from .bounces.mailbox import mailbox_jobs  # imaplib and the DSN parser load only with a mailbox

        return mailbox_jobs(channel.bounces)

    def routes(self, services: Services) -> list[Any]:
        """The bounce and complaint webhooks of SES, Mailgun and Postmark (``/ses/<channel>`` …)."""
        from .bounces.webhooks import routes  # Starlette and cryptography load only in the web service

        return routes(services)

    def bounce_policy(self, channel: EmailChannelSettings) -> dict[str, Any]:
        """The soft-bounce policy, for a refusal at send time (``store.subscribers.bounce``'s keywords)."""
        return {"soft_limit": channel.bounces.soft_limit, "soft_window": channel.bounces.soft_window}

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
        if message.body.wire is not None:
            msg = message_from_bytes(message.body.wire, policy=default_policy)
            out = [(".eml", message.body.wire)]
        else:
            msg = build_email(message, from_addr=self._sender(), reply_to=None, now=now)
            out = [(".eml", msg.as_bytes())]
        html = html_part(msg)
        if html is not None:
            out.append((".html", html.replace("\r\n", "\n").encode("utf-8")))
        return out


__all__ = ["EmailBody", "EmailChannelSettings", "EmailKind", "SmtpSettings"]
