"""An email channel's settings and its SMTP transport's."""

from __future__ import annotations

import re
from datetime import timedelta
from email.utils import parseaddr
from typing import Annotated, Literal, Union

from email_validator import EmailNotValidError, validate_email
from pydantic import ConfigDict, Field, field_validator

from ...settings import ChannelSettings, Duration, Model, TransportSettings, one_line, secret_env
from ..file import FileSettings
from .bounces.settings import BounceSettings


class DkimSettings(Model):
    """``dkim = { selector = "tamtam", domain = "echo.example", key_file = "secrets/dkim.pem" }``:
    sign every email with the RSA (or Ed25519) private key in ``key_file`` (PEM, relative to
    the config's folder), published as ``<selector>._domainkey.<domain>``. The key is read
    when the transport opens; an unreadable key is a ConfigError then."""

    selector: str = Field(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$")
    domain: str = Field(max_length=253, pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                                r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
    key_file: str
    # headers signed (when present); From is always signed
    headers: tuple[str, ...] = ("From", "To", "Subject", "Date", "Message-ID", "Reply-To", "MIME-Version",
                                "Content-Type", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post")

    @field_validator("headers")
    @classmethod
    def _from_is_signed(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not any(h.lower() == "from" for h in v):
            raise ValueError("a DKIM signature must cover From (RFC 6376 §5.4)")
        bad = [h for h in v if not re.match(r"^[!-9;-~]+$", h)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a header name")
        return v


class SmtpSettings(TransportSettings):
    """``transport = { type = "smtp", host = …, from = … }``"""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["smtp"]
    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username_env: str | None = secret_env()
    password_env: str | None = secret_env()
    from_addr: str = Field(alias="from")
    reply_to: str | None = None
    timeout: Duration = timedelta(seconds=30)
    connections: int = Field(4, ge=1, le=32)  # kept open in parallel; providers cap how many
    rate_per_minute: int = Field(60, ge=1)  # the provider's quota: no minute ever holds more
    rate_per_hour: int | None = Field(None, ge=1)
    validate_certs: bool = True
    ca_file: str | None = None
    dkim: DkimSettings | None = None

    @field_validator("from_addr", "reply_to")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is None:
            return v
        one_line(v)
        _, addr = parseaddr(v)
        try:
            validate_email(addr, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValueError(f"expected an address such as 'Name <news@example.com>', got {v!r}: {exc}") from None
        return v


UNSUBSCRIBE_PLACEHOLDERS = ("token", "email")
CAMPAIGN_PLACEHOLDERS = ("channel", "date")


def _placeholders(v: str, known: tuple[str, ...]) -> list[str]:
    placeholders = re.findall(r"\{([^{}]*)\}", v)
    unknown = [p for p in placeholders if p not in known]
    if unknown:
        raise ValueError(f"unknown placeholder {{{unknown[0]}}} in {v!r}; the placeholders are "
                         + " and ".join(f"{{{p}}}" for p in known))
    return placeholders


class EmailChannelSettings(ChannelSettings):
    """``[[channels]] type = "email"``: a digest (or one email per article) to a list of subscribers."""

    type: Literal["email"]
    transport: Annotated[Union[SmtpSettings, FileSettings], Field(discriminator="type")]
    # where a subscriber unsubscribes; {token} and {email} are filled in per recipient
    unsubscribe_url: str | None = None
    # the mailbox a mail client writes to when the reader presses its own "unsubscribe"
    # button (List-Unsubscribe's mailto form): "desabonnement@echo.example", or a mailto: URL
    # with {token}/{email}; without {token}, the subject carries it
    unsubscribe_mailto: str | None = None
    # parameters added to every article link, e.g. { utm_source = "newsletter",
    # utm_medium = "email", utm_campaign = "{channel}" }; {channel} and {date} are filled in
    campaign: dict[str, str] = {}
    # bounce policy, bounce mailbox and the sending services' webhooks (bounces/settings.py)
    bounces: BounceSettings = BounceSettings()
    # how often readers may choose to hear from the list (the channel's own schedule is "daily")
    frequencies: list[Literal["instant", "daily", "weekly"]] = ["instant", "daily", "weekly"]
    instant_every: Duration = timedelta(minutes=10)  # "instant": new articles are sent this often

    @field_validator("unsubscribe_url")
    @classmethod
    def _unsubscribe(cls, v: str | None) -> str | None:
        if v is None:
            return v
        one_line(v)
        if not re.match(r"^(https?://[^\s/?#]+|mailto:[^\s@]+@[^\s@]+)", v, re.IGNORECASE):
            raise ValueError(f"expected an https:// (or http://, mailto:) address, got {v!r}")
        placeholders = _placeholders(v, UNSUBSCRIBE_PLACEHOLDERS)
        if "token" not in placeholders:
            raise ValueError(f"{v!r} has no {{token}}: every reader would get the same link, which cannot say "
                             "who is unsubscribing")
        return v

    @field_validator("unsubscribe_mailto")
    @classmethod
    def _mailto(cls, v: str | None) -> str | None:
        if v is None:
            return v
        one_line(v)
        _placeholders(v, UNSUBSCRIBE_PLACEHOLDERS)
        address = re.sub(r"^mailto:", "", v, flags=re.IGNORECASE).split("?", 1)[0]
        try:
            validate_email(re.sub(r"\{[^{}]*\}", "x", address), check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValueError(f"expected an address such as 'desabonnement@example.org' or a mailto: URL, "
                             f"got {v!r}: {exc}") from None
        if re.search(r"[\s<>\"]", v):
            raise ValueError(f"{v!r} has a space, '<', '>' or '\"', which a List-Unsubscribe header cannot carry")
        return v

    @field_validator("campaign")
    @classmethod
    def _campaign(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():
            one_line(name)
            one_line(value)
            if not name.strip():
                raise ValueError("a campaign parameter needs a name")
            _placeholders(value, CAMPAIGN_PLACEHOLDERS)
        return v
