"""The config's building blocks, shared by the core config and by every channel kind.

This module sits *below* the channels: a channel's settings model is built from these
types, and :mod:`bot.config` assembles the whole file from the core tables plus the
settings models the channel registry knows. Nothing here imports a channel.

* :data:`Duration` — ``"90s"``, ``"15m"``, ``"2h"``, ``"1d"``, parsed once at load into a
  :class:`~datetime.timedelta` (the file keeps the admin's text; the code never re-parses).
* :class:`Schedule` — a cron expression or an interval.
* :class:`ChannelSettings` — what every channel has (id, schedule, filters, look-back …);
  a kind subclasses it with ``type: Literal["<kind>"]`` and its own ``transport`` union.
* :class:`TransportSettings` — the base of a transport table; fields declared with
  :func:`secret_env` name the environment variables that hold secrets, so the registry can
  list every secret a config needs without knowing any service.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from . import redact
from .errors import ConfigError

MAX_DURATION = timedelta(days=3650)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: Any) -> timedelta:
    """'90s', '15m', '2h', '1d', '0.5s' → timedelta (at most ten years). A timedelta passes through."""
    if isinstance(text, timedelta):
        if text <= timedelta(0) or text > MAX_DURATION:
            raise ValueError(f"expected a duration between 1 second and 3650 days, got {text}")
        return text
    m = _DURATION.match(str(text))
    if not m or float(m.group(1)) == 0:
        raise ValueError(f"expected a duration such as '30s', '15m', '2h' or '1d', got {text!r}")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{text!r} is longer than the 3650 days Tamtam accepts")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling: timedelta(minutes=15) → '15m'."""
    total = value.total_seconds()
    seconds = int(total)
    if seconds != total:
        return f"{total:g}s"
    for unit in ("d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


#: A duration in the file, a timedelta in the code.
Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)]


def one_line(v: str) -> str:
    """Values that go into email headers or single-line displays."""
    if "\r" in v or "\n" in v:
        raise ValueError(f"must be one line (it goes into email headers), got {v!r}")
    return v


def check_id(v: str) -> str:
    if not _ID.match(v):
        raise ValueError(f"expected lowercase letters, digits, '-' or '_' (max 64), got {v!r}")
    return v


class Model(BaseModel):
    """Frozen, and an unknown key is an error (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Schedule(Model):
    """Either a cron expression (five fields, site timezone) or a fixed interval."""

    cron: str | None = None
    every: Duration | None = None

    @model_validator(mode="after")
    def _one_of(self) -> "Schedule":
        if (self.cron is None) == (self.every is None):
            raise ValueError("give exactly one of 'cron' (e.g. \"0 7 * * *\") or 'every' (e.g. \"15m\")")
        if self.cron is not None:
            # APScheduler is only needed to validate a cron text; loading it at import time
            # would slow every command, `--help` included.
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(self.cron)
            except ValueError as exc:
                raise ValueError(f"cron {self.cron!r} is not a valid five-field cron expression: {exc}") from None
        return self

    def describe(self) -> str:
        return f"cron {self.cron}" if self.cron else f"every {format_duration(self.every)}"  # type: ignore[arg-type]


class Site(Model):
    """The publication: its name, address, language and timezone (every channel shows them)."""

    name: str
    base_url: str
    language: Literal["fr", "en"] = "fr"
    timezone: str = "Africa/Bamako"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return one_line(v)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {v!r}; expected an IANA name such as 'Africa/Bamako'") from None
        return v

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError(f"expected an http(s) URL such as 'https://example.com', got {v!r}")
        return v.rstrip("/")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


_SECRET = "tamtam_secret"


def secret_env(default: str | None = None, **kwargs: Any) -> Any:
    """A field naming the environment variable that holds a secret (never the secret itself)."""
    return Field(default, json_schema_extra={_SECRET: True}, **kwargs)


def secret_envs(model: BaseModel, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted field, environment variable) for every :func:`secret_env` field set in
    ``model`` and the models inside it (a channel's transport, its bounce webhooks …)."""
    out: list[tuple[str, str]] = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get(_SECRET) and value:
            out.append((prefix + name, value))
        elif isinstance(value, BaseModel):
            out.extend(secret_envs(value, f"{prefix}{name}."))
    return out


class TransportSettings(Model):
    """The base of every transport table (``[channels.transport]``). ``type`` picks the transport."""

    type: str

    def secret_envs(self) -> list[tuple[str, str]]:
        """(field, environment variable) for every secret this transport reads."""
        return secret_envs(self)


class ChannelSettings(Model):
    """What every channel has, whatever its kind. A kind subclasses this with
    ``type: Literal["<kind>"]`` and ``transport`` set to a union of its transports."""

    KIND: ClassVar[str] = ""

    id: str
    type: str
    mode: Literal["digest", "article"] = "digest"
    schedule: Schedule
    transport: TransportSettings
    language: Literal["fr", "en"] | None = None  # defaults to the site's
    title: str | None = None  # shown in digests; defaults to the site name
    templates: dict[str, str] = {}  # role → template name, overriding the defaults
    categories: list[str] = []  # only these categories (any of them); empty means all
    exclude_categories: list[str] = []
    max_articles: int = Field(20, ge=1, le=500)
    send_empty: bool = False
    lookback: Duration = timedelta(days=2)  # a new channel starts with articles published this recently
    enabled: bool = True

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_id(v)

    @field_validator("title")
    @classmethod
    def _title(cls, v: str | None) -> str | None:
        return None if v is None else one_line(v)


def secret(env_name: str | None, what: str) -> str | None:
    """Read a secret from the environment variable the config names (None when none is named)."""
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if value is None or value == "":
        raise ConfigError(f"{what}: environment variable {env_name} is not set")
    redact.register(value)
    return value
