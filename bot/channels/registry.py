"""Channel kind name → its :class:`~bot.channels.base.ChannelKind` class. A plain dict.

The core reaches a channel only through here: the config builds its channel-settings
union from :func:`settings_union`, the publisher and the dispatcher ask :class:`Channels`
for a channel's kind. A new kind is registered by one line in ``KINDS`` (or, for a test or
a plug-in, by :func:`register`).
"""

from __future__ import annotations

from typing import Annotated, Any, Callable, Iterator, Mapping, Union

from pydantic import Field

from ..errors import ConfigError
from ..render import Templates
from ..settings import ChannelSettings
from .base import ChannelKind, Host
from .email import EmailKind
from .telegram import TelegramKind
from .x import XKind

KINDS: dict[str, type[ChannelKind]] = {kind.name: kind for kind in (EmailKind, TelegramKind, XKind)}


def register(kind: type[ChannelKind]) -> None:
    """Add a kind (a plug-in, or a test's throwaway kind). Configs parsed afterwards accept it."""
    KINDS[kind.name] = kind


def unregister(name: str) -> None:
    KINDS.pop(name, None)


def settings_union() -> Any:
    """The type of one ``[[channels]]`` entry: the union of every kind's settings, told apart by ``type``."""
    models = tuple(kind.settings for kind in KINDS.values())
    if len(models) == 1:
        return models[0]
    return Annotated[Union[models], Field(discriminator="type")]  # type: ignore[valid-type]


def filters() -> dict[str, Callable[..., Any]]:
    """The Jinja filters every kind adds to the one shared environment."""
    out: dict[str, Callable[..., Any]] = {}
    for kind in KINDS.values():
        out.update(kind.filters)
    return out


class Channels:
    """Every kind, instantiated once for a config, sharing one template engine."""

    def __init__(self, host: Host):
        self.host = host
        folder = host.resolve(host.templates_folder) if host.templates_folder else None
        self.templates = Templates(host.site, folder, filters())
        self._kinds: dict[str, ChannelKind] = {name: cls(self.templates, host) for name, cls in KINDS.items()}

    def kind(self, channel: ChannelSettings) -> ChannelKind:
        """The kind of ``channel`` (its ``type``)."""
        try:
            return self._kinds[channel.type]
        except KeyError:
            raise ConfigError(f"channel {channel.id!r}: no channel kind {channel.type!r} is registered "
                              f"(known: {', '.join(sorted(self._kinds))})") from None

    def __iter__(self) -> Iterator[ChannelKind]:
        return iter(self._kinds.values())

    def file_kinds(self) -> Mapping[str, str]:
        """File suffix → what it is, for every kind (the run report explains the demo's files)."""
        out: dict[str, str] = {}
        for kind in self._kinds.values():
            out.update(kind.file_kinds)
        return out
