"""What the bounce tests share: a config with two email lists, the services a kind's jobs
and routes are handed, and the samples in tests/data/bounces/."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from bot.config import Config, parse_config
from tests.conftest import ROOT

SAMPLES = ROOT / "tests" / "data" / "bounces"
NOW = datetime(2024, 12, 5, 9, 0, tzinfo=timezone.utc)
SITE = {"name": "L’Écho du Sahel", "base_url": "https://echo-sahel.example"}


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def make_config(tmp_path: Path, bounces: dict[str, Any] | None = None, *, other: dict[str, Any] | None = None) -> Config:
    """Two email lists, "news" (with ``bounces``) and "alerts" (with ``other``), plus a
    Telegram channel that has no list."""
    def email(channel_id: str, table: dict[str, Any] | None) -> dict[str, Any]:
        out = {"id": channel_id, "type": "email", "schedule": {"every": "1h"},
               "transport": {"type": "file", "dir": str(tmp_path / "out")}}
        return {**out, "bounces": table} if table is not None else out

    return parse_config({"site": SITE, "channels": [
        email("news", bounces), email("alerts", other),
        {"id": "fil", "type": "telegram", "schedule": {"every": "1h"},
         "transport": {"type": "file", "dir": str(tmp_path / "out")}},
    ]}, base_dir=str(tmp_path))


@dataclass
class FakeServices:
    """What the daemon and the web service hand a kind: the store, the config, a clock."""

    store: Any
    config: Config
    now: datetime = NOW

    def clock(self) -> datetime:
        return self.now


@pytest.fixture
def services(store: Any, tmp_path: Path) -> Callable[..., FakeServices]:
    def make(bounces: dict[str, Any] | None = None, **kw: Any) -> FakeServices:
        return FakeServices(store, make_config(tmp_path, bounces, **kw))
    return make
