"""The web app driven through httpx's ASGI transport: real requests, real store, no socket."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from bot.config import parse_config
from bot.web import WebApp

SECRET_ENV = "TAMTAM_TEST_WEB_SECRET"
PUBLIC = "https://lettre.echo.example"
NOW = datetime(2026, 11, 29, 9, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, now: datetime = NOW):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def make_config(db_url: str, tmp_path, **web):
    channel = {"schedule": {"cron": "0 7 * * *"}, "transport": {"type": "file", "dir": str(tmp_path / "out")}}
    return parse_config({
        "site": {"name": "L’Écho du Sahel", "base_url": "https://echo.example"},
        "storage": {"url": db_url},
        "web": {"public_url": PUBLIC, "secret_env": SECRET_ENV, "signup_limit": 5, **web},
        "channels": [{"id": "news", "type": "email", "title": "La lettre de l’Écho", **channel},
                     {"id": "sport", "type": "email", "language": "en", **channel},
                     {"id": "fil", "type": "telegram", **channel}],
    })


@pytest.fixture
def secret_env(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "a-test-secret-that-is-long-enough")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def config(tmp_path, secret_env):
    return make_config(f"sqlite:///{tmp_path / 'web.db'}", tmp_path)


@pytest.fixture
def web(config, clock):
    app = WebApp(config, clock=clock)
    yield app
    app.store.close()


@pytest.fixture
async def client(web):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web, client=("203.0.113.7", 4321)),
                                 base_url=PUBLIC) as c:
        yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def path_of(url: str) -> str:
    assert url.startswith(PUBLIC), url
    return url[len(PUBLIC):]


async def sign_up(client: httpx.AsyncClient, channel: str = "news", **fields: str) -> httpx.Response:
    page = await client.get(f"/{channel}/subscribe")
    data = {"csrf": csrf_of(page.text), "email": "awa@example.org", **fields}
    return await client.post(f"/{channel}/subscribe", data=data)
