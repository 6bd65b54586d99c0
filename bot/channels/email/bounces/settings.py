"""``[channels.bounces]``: an email channel's bounce policy and where its bounces come from.

::

    [channels.bounces]
    soft_limit = 3          # soft bounces …
    soft_window = "30d"     # … within this long suppress the address
    [channels.bounces.mailbox]          # a mailbox that receives DSNs and ARF reports
    type = "imap"                       # or "maildir", with path = "var/bounces"
    host = "imap.echo-sahel.example"
    username_env = "BOUNCES_IMAP_USER"
    password_env = "BOUNCES_IMAP_PASSWORD"
    every = "10m"
    [channels.bounces.ses]              # Amazon SES through an SNS topic
    topics = ["arn:aws:sns:eu-west-3:123456789012:tamtam-bounces"]
    [channels.bounces.mailgun]
    signing_key_env = "MAILGUN_WEBHOOK_SIGNING_KEY"
    [channels.bounces.postmark]
    username_env = "POSTMARK_HOOK_USER"
    password_env = "POSTMARK_HOOK_PASSWORD"

Every secret is an environment variable named with :func:`~bot.settings.secret_env`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, field_validator

from ....settings import Duration, Model, secret_env, secret_envs

_HOST_PATTERN = re.compile(r"^(?:\*|[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.(?:\*|[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?))*$")


class _Mailbox(Model):
    # processed messages are flagged read (IMAP \Seen, maildir "S"), or moved to ``move_to``
    processed: Literal["seen", "move"] = "seen"
    move_to: str = "Tamtam"
    every: Duration = timedelta(minutes=10)
    batch: int = Field(200, ge=1, le=10_000)  # messages read per run at most

    @field_validator("move_to")
    @classmethod
    def _folder(cls, v: str) -> str:
        if not v.strip() or re.search(r"[\x00-\x1f\"\\*%]|\.\.", v) or v.startswith("/"):
            raise ValueError(f"expected a plain folder name such as 'Tamtam' or 'Bounces/Done', got {v!r}")
        return v


class ImapMailbox(_Mailbox):
    """An IMAP account that receives the list's bounces (its Return-Path)."""

    type: Literal["imap"]
    host: str
    port: int | None = Field(None, ge=1, le=65535)  # 993 with tls, 143 otherwise
    security: Literal["tls", "starttls", "none"] = "tls"
    username_env: str = secret_env(...)
    password_env: str = secret_env(...)
    folder: str = "INBOX"
    timeout: Duration = timedelta(seconds=30)
    validate_certs: bool = True
    ca_file: str | None = None

    @property
    def real_port(self) -> int:
        return self.port or (993 if self.security == "tls" else 143)


class MaildirMailbox(_Mailbox):
    """A local maildir (``new/``, ``cur/``, ``tmp/``) the MTA delivers bounces to."""

    type: Literal["maildir"]
    path: str  # relative to the config's folder


Mailbox = Annotated[Union[ImapMailbox, MaildirMailbox], Field(discriminator="type")]


class SesHook(Model):
    """Amazon SES notifications through an SNS topic subscribed to ``/hooks/email/ses``."""

    # hosts the signing certificate and the subscription link may come from; "*" is one
    # DNS label, so the default is sns.<region>.amazonaws.com; "host:port" for another port
    cert_hosts: tuple[str, ...] = ("sns.*.amazonaws.com", "sns.*.amazonaws.com.cn")
    topics: tuple[str, ...] = ()  # the TopicArns accepted; empty accepts any
    confirm: bool = True  # visit a SubscriptionConfirmation's SubscribeURL
    max_age: Duration = timedelta(hours=1)  # older messages are refused (SNS retries within minutes)
    timeout: Duration = timedelta(seconds=10)  # fetching the certificate, confirming
    ca_file: str | None = None  # a CA bundle for those fetches (a test CA); the system's by default

    @field_validator("cert_hosts")
    @classmethod
    def _hosts(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for host in v:
            name, _, port = host.partition(":")
            if (not _HOST_PATTERN.match(name.lower()) or name.replace("*", "").strip(".") == ""
                    or (port and not (port.isdigit() and 0 < int(port) < 65536))):
                raise ValueError(f"expected a host name, '*' standing for one label, and an optional port "
                                 f"(e.g. 'sns.*.amazonaws.com'), got {host!r}")
        return tuple(h.lower() for h in v)

    @field_validator("topics")
    @classmethod
    def _topics(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for arn in v:
            if not re.fullmatch(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(?:\.fifo)?", arn):
                raise ValueError(f"expected a topic ARN such as 'arn:aws:sns:eu-west-3:123456789012:bounces', "
                                 f"got {arn!r}")
        return v


class MailgunHook(Model):
    """Mailgun's ``failed`` and ``complained`` webhooks, signed with the webhook signing key."""

    signing_key_env: str = secret_env(...)
    max_age: Duration = timedelta(minutes=5)  # a signature older than this is a replay


class PostmarkHook(Model):
    """Postmark's Bounce and SpamComplaint webhooks; Postmark does not sign, so the URL
    carries HTTP basic auth credentials (``https://user:pass@…/hooks/email/postmark``)."""

    username_env: str = secret_env(...)
    password_env: str = secret_env(...)


class BounceSettings(Model):
    soft_limit: int = Field(3, ge=1, le=100)
    soft_window: Duration = timedelta(days=30)
    mailbox: Mailbox | None = None
    ses: SesHook | None = None
    mailgun: MailgunHook | None = None
    postmark: PostmarkHook | None = None

    def secret_envs(self) -> list[tuple[str, str]]:
        """(field under ``bounces``, environment variable) for every secret named here."""
        return secret_envs(self)

    def services(self) -> dict[str, Any]:
        """The webhook services configured, by route name."""
        return {name: getattr(self, name) for name in ("ses", "mailgun", "postmark") if getattr(self, name)}
