"""Typed, validated configuration, loaded once from one TOML file.

Secrets never live in the file: the config names environment variables
(``token_env = "TELEGRAM_BOT_TOKEN"``) and :func:`secret` reads them when needed.
Every validation problem names the key, the bad value and what was expected, so an
admin can fix the file without reading Python.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

CONFIG_ENV = "TAMTAM_CONFIG"
DEFAULT_CONFIG = "config/tamtam.toml"

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


MAX_DURATION = timedelta(days=3650)


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '2h', '1d' → timedelta (at most ten years)."""
    m = _DURATION.match(str(text))
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"expected a duration such as '30s', '15m', '2h' or '1d', got {text!r}")
    n, unit = int(m.group(1)), m.group(2)
    seconds = n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{text!r} is longer than the 3650 days Tamtam accepts")
    return timedelta(seconds=seconds)


def _one_line(v: str) -> str:
    if "\r" in v or "\n" in v:
        raise ValueError(f"must be one line (it goes into email headers), got {v!r}")
    return v


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Schedule(_Model):
    """Either a cron expression (five fields, site timezone) or a fixed interval."""

    cron: str | None = None
    every: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> "Schedule":
        if (self.cron is None) == (self.every is None):
            raise ValueError("give exactly one of 'cron' (e.g. \"0 7 * * *\") or 'every' (e.g. \"15m\")")
        if self.cron is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(self.cron)
            except ValueError as exc:
                raise ValueError(f"cron {self.cron!r} is not a valid five-field cron expression: {exc}") from None
        else:
            parse_duration(self.every)
        return self

    @property
    def interval(self) -> timedelta | None:
        return parse_duration(self.every) if self.every else None

    def describe(self) -> str:
        return f"cron {self.cron}" if self.cron else f"every {self.every}"


class Site(_Model):
    name: str
    base_url: str
    language: Literal["fr", "en"] = "fr"
    timezone: str = "Africa/Bamako"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _one_line(v)

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


class Storage(_Model):
    url: str = "sqlite:///var/tamtam.db"

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(v)
        except ArgumentError:
            raise ValueError(f"expected 'sqlite:///path/to/file.db' or 'postgresql://user@host/db', got {v!r}") from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(f"Tamtam stores its data in SQLite or PostgreSQL, not {url.get_backend_name()!r}")
        if url.get_backend_name() == "postgresql" and url.get_driver_name() not in ("psycopg", "psycopg2"):
            if "+" in v.split("://", 1)[0]:
                raise ValueError(f"use 'postgresql://…' (Tamtam uses psycopg 3), got {v!r}")
        return v


class Delivery(_Model):
    """How the dispatcher retries transient failures."""

    max_attempts: int = Field(8, ge=1, le=100)
    backoff_base: str = "30s"
    backoff_max: str = "6h"
    batch_size: int = Field(100, ge=1, le=10_000)

    @field_validator("backoff_base", "backoff_max")
    @classmethod
    def _dur(cls, v: str) -> str:
        parse_duration(v)
        return v


class Templates(_Model):
    folder: str | None = None  # the admin's own templates, searched before the shipped ones


class Source(_Model):
    id: str
    url: str  # http(s) URL or a local file path
    poll: Schedule = Schedule(every="15m")
    timeout: str = "20s"
    max_bytes: int = Field(5_000_000, ge=1024)
    user_agent: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return _check_id(v)

    @field_validator("timeout")
    @classmethod
    def _dur(cls, v: str) -> str:
        parse_duration(v)
        return v


class FileTransport(_Model):
    type: Literal["file"]
    dir: str = "var/out"


class SmtpTransport(_Model):
    type: Literal["smtp"]
    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username_env: str | None = None
    password_env: str | None = None
    from_addr: str = Field(alias="from")
    reply_to: str | None = None
    timeout: str = "30s"
    rate_per_minute: int = Field(60, ge=1)
    validate_certs: bool = True
    ca_file: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("from_addr", "reply_to")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from email.utils import parseaddr

        from email_validator import EmailNotValidError, validate_email

        _one_line(v)
        _, addr = parseaddr(v)
        try:
            validate_email(addr, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValueError(f"expected an address such as 'Name <news@example.com>', got {v!r}: {exc}") from None
        return v

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: str) -> str:
        parse_duration(v)
        return v


class TelegramTransport(_Model):
    type: Literal["telegram"]
    chat_id: str
    token_env: str = "TELEGRAM_BOT_TOKEN"
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    disable_web_page_preview: bool = False
    timeout: str = "30s"

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: str) -> str:
        parse_duration(v)
        return v


class XTransport(_Model):
    type: Literal["x"]
    account: str = "x"
    api_base_url: str = "https://api.twitter.com"
    consumer_key_env: str = "X_CONSUMER_KEY"
    consumer_secret_env: str = "X_CONSUMER_SECRET"
    access_token_env: str = "X_ACCESS_TOKEN"
    access_token_secret_env: str = "X_ACCESS_TOKEN_SECRET"
    timeout: str = "30s"

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: str) -> str:
        parse_duration(v)
        return v


TransportConfig = Annotated[
    Union[FileTransport, SmtpTransport, TelegramTransport, XTransport], Field(discriminator="type")
]

# Which transports can carry which kind of channel.
COMPATIBLE = {"email": {"file", "smtp"}, "telegram": {"file", "telegram"}, "x": {"file", "x"}}


class Channel(_Model):
    id: str
    type: Literal["email", "telegram", "x"]
    mode: Literal["digest", "article"] = "digest"
    schedule: Schedule
    transport: TransportConfig
    language: Literal["fr", "en"] | None = None  # defaults to the site's
    title: str | None = None  # shown in digests; defaults to the site name

    @field_validator("title")
    @classmethod
    def _title(cls, v: str | None) -> str | None:
        return None if v is None else _one_line(v)
    templates: dict[str, str] = {}  # role → template name, overriding the defaults
    categories: list[str] = []  # only these categories (any of them); empty means all
    exclude_categories: list[str] = []
    max_articles: int = Field(20, ge=1, le=500)
    send_empty: bool = False
    lookback: str = "2d"  # a new channel starts with articles published this recently
    # email: where a subscriber unsubscribes; {token} and {email} are filled in per recipient
    unsubscribe_url: str | None = None
    enabled: bool = True

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return _check_id(v)

    @field_validator("lookback")
    @classmethod
    def _dur(cls, v: str) -> str:
        parse_duration(v)
        return v

    @model_validator(mode="after")
    def _compatible(self) -> "Channel":
        if self.transport.type not in COMPATIBLE[self.type]:
            allowed = " or ".join(sorted(COMPATIBLE[self.type]))
            raise ValueError(
                f"a {self.type} channel cannot use the {self.transport.type!r} transport; expected {allowed}"
            )
        return self


class Config(_Model):
    site: Site
    storage: Storage = Storage()
    delivery: Delivery = Delivery()
    templates: Templates = Templates()
    sources: list[Source] = []
    channels: list[Channel] = []
    path: str | None = None  # where the file was loaded from, for messages
    base_dir: str = "."  # relative paths in the file are relative to the file's project folder

    @model_validator(mode="after")
    def _unique(self) -> "Config":
        for kind, items in (("source", self.sources), ("channel", self.channels)):
            seen: set[str] = set()
            for item in items:
                if item.id in seen:
                    raise ValueError(f"two {kind}s have the id {item.id!r}; ids must be unique")
                seen.add(item.id)
        return self

    def channel(self, channel_id: str) -> Channel:
        for ch in self.channels:
            if ch.id == channel_id:
                return ch
        known = ", ".join(c.id for c in self.channels) or "none"
        raise ConfigError(f"no channel {channel_id!r} in the config (channels: {known})")

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config's project folder."""
        p = Path(path)
        return p if p.is_absolute() else Path(self.base_dir) / p

    @property
    def database_url(self) -> str:
        url = self.storage.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
            return prefix + str(self.resolve(url[len(prefix):]))
        return url


def _check_id(v: str) -> str:
    if not _ID.match(v):
        raise ValueError(f"expected lowercase letters, digits, '-' or '_' (max 64), got {v!r}")
    return v


def _loc(loc: tuple[Any, ...], data: Any) -> str:
    """('channels', 1, 'transport', 'smtp', 'port') → 'channels[1] (id "news").transport.port'."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            try:
                node = node[part]
                if isinstance(node, dict) and "id" in node:
                    out += f' (id "{node["id"]}")'
            except (IndexError, KeyError, TypeError):
                node = None
            continue
        if part in ("file", "smtp", "telegram", "x") and isinstance(node, dict) and node.get("type") == part:
            continue  # the discriminator adds a level the admin never wrote
        if part.startswith("function-") or part.startswith("tagged-union"):
            continue
        out += ("." if out else "") + str(part)
        node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"


def _explain(err: dict[str, Any], data: Any) -> str:
    where = _loc(tuple(err["loc"]), data)
    kind = err["type"]
    if kind == "missing":
        return f"{where}: missing; this key is required"
    if kind == "extra_forbidden":
        return f"{where}: unknown key (check the spelling; see config/example.toml)"
    if kind == "union_tag_invalid" or kind == "union_tag_not_found":
        return f"{where}.type: got {err.get('input', {}).get('type') if isinstance(err.get('input'), dict) else err.get('input')!r}; expected one of 'file', 'smtp', 'telegram', 'x'"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    given = err.get("input")
    if kind in ("literal_error", "int_parsing", "bool_parsing", "string_type", "int_type", "greater_than_equal",
                "less_than_equal", "list_type", "dict_type", "float_parsing", "model_type"):
        msg = re.sub(r"^Input should be (a valid )?", "", msg)
        return f"{where}: got {given!r}; expected {msg}"
    return f"{where}: {msg}"


def parse_config(data: dict[str, Any], path: str | None = None, base_dir: str = ".") -> Config:
    """Validate already-parsed TOML data. Raises ConfigError listing every problem."""
    try:
        return Config.model_validate({**data, "path": path, "base_dir": base_dir})
    except ValidationError as exc:
        problems = [_explain(e, data) for e in exc.errors(include_url=False)]
        raise ConfigError(problems[0], problems=problems, path=path) from None


def find_config(explicit: str | None) -> Path:
    """--config wins, then $TAMTAM_CONFIG, then config/tamtam.toml."""
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a TOML config file.

    Relative paths inside it (the storage file, sources, output folders, templates) are
    taken relative to the folder *above* ``config/`` when the file lives in a folder named
    ``config``, else relative to the file's own folder, so the bundled configs work from
    a clean checkout whatever the current directory.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {str(p)!r} not found (use --config or ${CONFIG_ENV})") from None
    except OSError as exc:
        raise ConfigError(f"config file {str(p)!r} cannot be read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError("the file is not UTF-8 text", path=str(p)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(p)) from None
    folder = p.resolve().parent
    base = folder.parent if folder.name == "config" else folder
    return parse_config(data, path=str(p), base_dir=str(base))


def secret(env_name: str | None, what: str) -> str | None:
    """Read a secret from the environment variable the config names."""
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if value is None or value == "":
        raise ConfigError(f"{what}: environment variable {env_name} is not set")
    return value


def required_secrets(config: Config) -> list[tuple[str, str]]:
    """(environment variable, what needs it) for every secret the config names."""
    out: list[tuple[str, str]] = []
    for ch in config.channels:
        t = ch.transport
        where = f"channels[{ch.id}].transport"
        if isinstance(t, SmtpTransport):
            for attr in ("username_env", "password_env"):
                if getattr(t, attr):
                    out.append((getattr(t, attr), f"{where}.{attr}"))
        elif isinstance(t, TelegramTransport):
            out.append((t.token_env, f"{where}.token_env"))
        elif isinstance(t, XTransport):
            for attr in ("consumer_key_env", "consumer_secret_env", "access_token_env", "access_token_secret_env"):
                out.append((getattr(t, attr), f"{where}.{attr}"))
    return out
