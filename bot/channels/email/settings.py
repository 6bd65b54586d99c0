"""An email channel's settings and its SMTP transport's."""

from __future__ import annotations

import re
from datetime import timedelta
from email.utils import parseaddr
from typing import Annotated, Literal, Union

from email_validator import EmailNotValidError, validate_email
from pydantic import ConfigDict, Field, field_validator

from ...settings import ChannelSettings, Duration, TransportSettings, one_line, secret_env
from ..file import FileSettings


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
    rate_per_minute: int = Field(60, ge=1)  # the provider's quota: no minute ever holds more
    rate_per_hour: int | None = Field(None, ge=1)
    validate_certs: bool = True
    ca_file: str | None = None

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


class EmailChannelSettings(ChannelSettings):
    """``[[channels]] type = "email"``: a digest (or one email per article) to a list of subscribers."""

    type: Literal["email"]
    transport: Annotated[Union[SmtpSettings, FileSettings], Field(discriminator="type")]
    # where a subscriber unsubscribes; {token} and {email} are filled in per recipient
    unsubscribe_url: str | None = None

    @field_validator("unsubscribe_url")
    @classmethod
    def _unsubscribe(cls, v: str | None) -> str | None:
        if v is None:
            return v
        one_line(v)
        if not re.match(r"^(https?://[^\s/?#]+|mailto:[^\s@]+@[^\s@]+)", v, re.IGNORECASE):
            raise ValueError(f"expected an https:// (or http://, mailto:) address, got {v!r}")
        placeholders = re.findall(r"\{([^{}]*)\}", v)
        unknown = [p for p in placeholders if p not in UNSUBSCRIBE_PLACEHOLDERS]
        if unknown:
            raise ValueError(f"unknown placeholder {{{unknown[0]}}} in {v!r}; the placeholders are "
                             + " and ".join(f"{{{p}}}" for p in UNSUBSCRIBE_PLACEHOLDERS))
        if "token" not in placeholders:
            raise ValueError(f"{v!r} has no {{token}}: every reader would get the same link, which cannot say "
                             "who is unsubscribing")
        return v
