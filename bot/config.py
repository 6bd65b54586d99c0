"""Typed, validated configuration, loaded once from one TOML file.

The core tables (site, storage, delivery, templates, sources) are defined here; each
``[[channels]]`` entry is validated by its kind's own settings model, taken from the
channel registry, so this module names no service. Secrets never live in the file: the
config names environment variables (``token_env = "TELEGRAM_BOT_TOKEN"``) and
:func:`bot.settings.secret` reads them when needed. Every validation problem names the
key, the bad value and what was expected, so an admin can fix the file without reading
Python.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, create_model, field_validator, model_validator

from .channels import registry
from .errors import ConfigError
from .links import Links
from .settings import ChannelSettings, Duration, Model, Schedule, Site, check_id, parse_duration, secret_env, secret_envs

CONFIG_ENV = "TAMTAM_CONFIG"
DEFAULT_CONFIG = "config/tamtam.toml"

#: Channels are ChannelSettings subclasses chosen by ``type``; the core only needs the base.
Channel = ChannelSettings


class Storage(Model):
    url: str = "sqlite:///var/tamtam.db"

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v.startswith("sqlite:///") and "?" not in v:
            # SQLAlchemy's make_url reads any such URL as a SQLite file (or :memory:) with no
            # options, which passes below: known without loading SQLAlchemy (`check` never does)
            return v
        # a 7th of a second to load: only for the other URLs
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


class Delivery(Model):
    """How the dispatcher retries transient failures."""

    max_attempts: int = Field(8, ge=1, le=100)
    backoff_base: Duration = timedelta(seconds=30)
    backoff_max: Duration = timedelta(hours=6)
    # a service that cannot be reached pauses its channel at most this long before the next probe
    pause_max: Duration = timedelta(minutes=10)
    batch_size: int = Field(100, ge=1, le=10_000)
    # how long `run` waits, after SIGTERM, for the message in flight (longer than a transport's 30 s timeout)
    shutdown_grace: Duration = timedelta(seconds=60)
    # how often `run` looks for messages due (retries, a paused channel's probe, a confirmation)
    dispatch_every: Duration = timedelta(seconds=30)
    # how long a claimed message is a worker's: one that dies leaves it to the others after this
    lease: Duration = timedelta(minutes=5)
    # how soon a worker takes the scheduler over when the worker running it dies
    takeover: Duration = timedelta(seconds=10)
    # sent, cancelled and dismissed messages are deleted this long after they settled
    # (failed and unknown ones wait for an admin whatever their age); "forever" keeps them
    retention: Duration | None = timedelta(days=30)

    @field_validator("retention", mode="before")
    @classmethod
    def _retention(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and v.strip().lower() in ("forever", "off", "0")) or v is False or v == 0:
            return None
        try:
            return parse_duration(v)
        except ValueError:
            raise ValueError(f"expected a duration such as '30d', or 'forever' to keep every message, got {v!r}") from None


class TemplateSettings(Model):
    folder: str | None = None  # the admin's own templates, searched before the shipped ones


class Source(Model):
    id: str
    url: str  # http(s) URL or a local file path
    poll: Schedule = Schedule(every=timedelta(minutes=15))
    timeout: Duration = timedelta(seconds=20)
    max_bytes: int = Field(5_000_000, ge=1024, le=1_000_000_000)
    user_agent: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_id(v)


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
                   r"|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")


def _env_name(v: str) -> str:
    if not _ENV_NAME.match(v):
        raise ValueError(f"expected the name of an environment variable such as 'TAMTAM_WEB_SECRET', got {v!r}")
    return v


class Web(Model):
    """``[web]``: the readers' door — sign-up, confirmation, unsubscribe, preferences and the
    archive, served by ``run`` (or ``serve``) and linked from every email.

    The signing secret lives in the environment variable ``secret_env`` names (or in
    ``secret_file``); when it is rotated, the old values go in the variables
    ``previous_secret_envs`` names, so links in emails already sent keep working."""

    enabled: bool = True  # False: `run` does not serve (another process runs `serve`)
    bind: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    public_url: str  # where readers reach it, e.g. "https://lettre.example.com" (behind your proxy)
    # the signing secret: an environment variable (production), or a file Tamtam creates
    # with a random secret the first time (readable by this user only; the demo uses one)
    secret_env: str | None = secret_env()
    secret_file: str | None = None
    previous_secret_envs: list[str] = []
    cors_origins: list[str] = []  # sites whose own forms post to the JSON endpoint
    signup_limit: int = Field(5, ge=1, le=10_000)  # sign-ups from one address (IP) …
    signup_window: Duration = timedelta(hours=1)  # … within this window
    # The reverse proxies whose X-Forwarded-For names the reader (addresses or networks).
    # Only they are believed: anyone else could write the header to escape the per-IP limit.
    # A proxy on another host or in a container network must be listed here, or every
    # reader counts as the proxy and the whole site shares one sign-up limit.
    trusted_proxies: list[str] = ["127.0.0.1", "::1"]
    confirm_ttl: Duration = timedelta(days=7)  # how long a confirmation link works
    topics: list[str] = []  # the topics readers choose from (empty: the site's most common categories)
    # serve HTTPS itself (PEM files, relative to the project folder) instead of behind a proxy
    tls_cert: str | None = None
    tls_key: str | None = None

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str) -> str:
        m = re.match(r"^(https?)://([^/?#\s]+)(/[^?#\s]*)?$", v)
        if not m or not _HOST.match(m.group(2)):
            raise ValueError(f"expected an http(s) address without query or fragment, such as "
                             f"'https://lettre.example.com' or 'https://example.com/lettre', got {v!r}")
        if "{" in v or "}" in v:
            raise ValueError(f"{v!r} has a placeholder; public_url is fixed (Tamtam adds each link's path itself)")
        return v.rstrip("/")

    @field_validator("bind")
    @classmethod
    def _bind(cls, v: str) -> str:
        try:
            return str(ipaddress.ip_address(v.strip("[]")))
        except ValueError:
            pass
        if not re.match(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$", v):
            raise ValueError(f"expected an address to listen on such as '127.0.0.1', '0.0.0.0' or '::1', got {v!r}")
        return v

    @field_validator("secret_env")
    @classmethod
    def _secret_env(cls, v: str | None) -> str | None:
        return v if v is None else _env_name(v)

    @model_validator(mode="after")
    def _tls_pair(self) -> "Web":
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give both 'tls_cert' and 'tls_key' (PEM files), or neither")
        return self

    @model_validator(mode="after")
    def _one_secret(self) -> "Web":
        if (self.secret_env is None) == (self.secret_file is None):
            raise ValueError("give exactly one of 'secret_env' (the environment variable holding the signing "
                             "secret, e.g. \"TAMTAM_WEB_SECRET\") or 'secret_file' (a file Tamtam creates)")
        return self

    @field_validator("previous_secret_envs")
    @classmethod
    def _previous(cls, v: list[str]) -> list[str]:
        return [_env_name(name) for name in v]

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: list[str]) -> list[str]:
        for entry in v:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"expected the proxy's IP address or network, such as '10.0.0.5' or "
                                 f"'172.16.0.0/12', got {entry!r} (trusting every address would let any "
                                 f"client choose its own IP)") from None
        return v

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        for origin in v:
            m = re.match(r"^https?://([^/?#\s]+)$", origin)
            if not m or not _HOST.match(m.group(1)):
                raise ValueError(f"expected an origin such as 'https://www.example.com' (scheme and host, no path), "
                                 f"got {origin!r}")
        return [o.lower() for o in v]

    @field_validator("topics")
    @classmethod
    def _topics(cls, v: list[str]) -> list[str]:
        if any(not t.strip() or "\n" in t for t in v):
            raise ValueError("each topic is a category name on one line")
        return v


class Config(Model):
    """The whole file. Use :func:`parse_config`/:func:`load_config`: they validate
    ``channels`` against the registered kinds (this base class only knows the common part)."""

    site: Site
    storage: Storage = Storage()
    delivery: Delivery = Delivery()
    templates: TemplateSettings = TemplateSettings()
    web: Web | None = None
    sources: list[Source] = []
    channels: list[ChannelSettings] = []
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

    def channel(self, channel_id: str) -> ChannelSettings:
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
    def templates_folder(self) -> str | None:
        return self.templates.folder

    @functools.cached_property
    def links(self) -> Links | None:
        """The readers' links (signed with the ``[web]`` secret), or None without ``[web]``.
        Raises ConfigError when the secret's variable is not set."""
        return Links.from_settings(self.web, self.resolve) if self.web is not None else None

    @property
    def database_url(self) -> str:
        url = self.storage.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
            return prefix + str(self.resolve(url[len(prefix):]))
        return url


@functools.lru_cache(maxsize=8)
def _model(kinds: tuple[str, ...]) -> type[Config]:
    """Config with ``channels`` typed as the union of the registered kinds' settings."""
    return create_model("Config", __base__=Config, channels=(list[registry.settings_union()], []))  # type: ignore[call-overload]


def config_model() -> type[Config]:
    return _model(tuple(sorted(registry.KINDS)))


def _loc(loc: tuple[Any, ...], data: Any) -> str:
    """('channels', 1, 'email', 'transport', 'smtp', 'port') → 'channels[1] (id "news").transport.port'."""
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
        if isinstance(node, dict) and node.get("type") == part and part not in node:
            continue  # a discriminated union adds a level (the type's name) the admin never wrote
        if part.startswith("function-") or part.startswith("tagged-union"):
            continue
        out += ("." if out else "") + str(part)
        node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"


def _node(data: Any, loc: tuple[Any, ...]) -> Any:
    """The part of the admin's data at ``loc``, skipping the levels pydantic adds."""
    node = data
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and part < len(node):
            node = node[part]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        elif not (isinstance(node, dict) and node.get("type") == part):
            return None
    return node


def _explain(err: dict[str, Any], data: Any) -> str:
    where = _loc(tuple(err["loc"]), data)
    kind = err["type"]
    if kind == "missing":
        return f"{where}: missing; this key is required"
    if kind == "extra_forbidden":
        return f"{where}: unknown key (check the spelling; see config/example.toml)"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        given = err.get("input", {}).get("type") if isinstance(err.get("input"), dict) else err.get("input")
        expected = err.get("ctx", {}).get("expected_tags", "")
        owner = _node(data, tuple(err["loc"])[:-1])
        if where.endswith(".transport") and isinstance(owner, dict) and "type" in owner:
            return (f"{where}.type: got {given!r}; expected one of {expected} "
                    f"(the transports a {owner['type']} channel can use)")
        return f"{where}.type: got {given!r}; expected one of {expected}"
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
        return config_model().model_validate({**data, "path": path, "base_dir": base_dir})
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


def required_secrets(config: Config) -> list[tuple[str, str]]:
    """(environment variable, what needs it) for every secret the config names."""
    found = [(env, f"channels[{ch.id}].{field}") for ch in config.channels for field, env in secret_envs(ch)]
    if config.web is not None:
        if config.web.secret_env:
            found.append((config.web.secret_env, "web.secret_env"))
        found += [(env, f"web.previous_secret_envs[{i}]") for i, env in enumerate(config.web.previous_secret_envs)]
    return found

