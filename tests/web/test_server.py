"""The web service as ``run`` and ``serve`` start it: a real socket, the daemon's event loop,
a clean stop; a sign-up's confirmation is sent by the running daemon at once."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from email import message_from_bytes, policy

import httpx
import pytest

from bot.app import App
from bot.config import parse_config
from bot.daemon import run
from bot.errors import ConfigError
from bot.web.server import bind_socket
from tests.conftest import ROOT
from tests.fakes.smtp_server import SmtpServer, free_port

SECRET_ENV = "TAMTAM_TEST_WEB_SECRET"
DEADLINE = 60


def config_for(tmp_path, port: int, smtp_port: int | None = None, **web):
    transport = ({"type": "smtp", "host": "127.0.0.1", "port": smtp_port, "security": "none",
                  "from": "L’Écho <lettre@echo.example>"} if smtp_port else {"type": "file", "dir": "var/out"})
    return parse_config({
        "site": {"name": "L’Écho du Sahel", "base_url": "https://echo.example"},
        "storage": {"url": f"sqlite:///{tmp_path / 'tamtam.db'}"},
        "web": {"public_url": f"http://127.0.0.1:{port}", "port": port, "secret_env": SECRET_ENV, **web},
        "channels": [{"id": "news", "type": "email", "schedule": {"cron": "0 7 * * *"}, "transport": transport}],
    }, base_dir=str(tmp_path))


async def wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_run_serves_the_pages_and_sends_a_confirmation_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "daemon-test-secret-0123456789")
    port = free_port()
    with SmtpServer() as smtp:
        app = App(config_for(tmp_path, port, smtp.port))
        ready, stop = asyncio.Event(), asyncio.Event()
        daemon = asyncio.ensure_future(run(app, ready=ready, stop=stop))
        await asyncio.wait_for(ready.wait(), DEADLINE)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
                assert (await c.get("/healthz")).text == "ok"
                page = await c.get("/news/subscribe")
                csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
                r = await c.post("/news/subscribe", data={"csrf": csrf, "email": "awa@example.org"})
                assert r.status_code == 303
            # the daemon dispatched it right away (its periodic dispatch is 30 s away)
            await wait_for(lambda: smtp.received, "the confirmation email")
            msg = message_from_bytes(smtp.received[0].raw, policy=policy.default)
            assert "Confirmez votre abonnement" in str(msg["Subject"]) and msg["To"] == "awa@example.org"
            assert f"http://127.0.0.1:{port}/news/confirm/" in msg.get_body(("plain",)).get_content()
        finally:
            stop.set()
            assert await asyncio.wait_for(daemon, DEADLINE) is True
    with pytest.raises(OSError):  # stopped with the daemon
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.mark.parametrize("trusted, second", [(None, 303), ([], 429), (["10.0.0.0/8"], 429)])
async def test_the_per_ip_limit_reads_the_reader_s_address_from_trusted_proxies_only(
        tmp_path, monkeypatch, trusted, second):
    """Two readers behind the proxy at 127.0.0.1 (one sign-up per IP allowed): each has
    its own count when the proxy is trusted (the default), and share the proxy's when it is
    not, because then X-Forwarded-For, which any client can write, is not believed."""
    monkeypatch.setenv(SECRET_ENV, "daemon-test-secret-0123456789")
    port = free_port()
    web = {"signup_limit": 1} | ({} if trusted is None else {"trusted_proxies": trusted})
    app = App(config_for(tmp_path, port, **web))
    ready, stop = asyncio.Event(), asyncio.Event()
    daemon = asyncio.ensure_future(run(app, ready=ready, stop=stop))
    await asyncio.wait_for(ready.wait(), DEADLINE)
    try:
        codes = []
        for reader, email in (("198.51.100.7", "awa@example.org"), ("203.0.113.9", "oumar@example.org")):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                         headers={"X-Forwarded-For": reader}) as c:
                page = await c.get("/news/subscribe")
                csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
                codes.append((await c.post("/news/subscribe", data={"csrf": csrf, "email": email})).status_code)
        assert codes == [303, second]
    finally:
        stop.set()
        assert await asyncio.wait_for(daemon, DEADLINE) is True


@pytest.mark.parametrize("entry", ["*", "proxy.internal", "10.0.0.0/33"])
def test_a_trusted_proxy_must_be_an_address_or_a_network(tmp_path, entry):
    with pytest.raises(ConfigError, match=r"trusted_proxies.*expected the proxy's IP address or network"):
        config_for(tmp_path, 8080, trusted_proxies=[entry])


def test_a_port_in_use_is_a_plain_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1:\d+ \(\[web\] bind and port\)"):
            bind_socket("127.0.0.1", taken.getsockname()[1])


def test_serve_alone_until_sigterm(tmp_path):
    port = free_port()
    (tmp_path / "config").mkdir()
    path = tmp_path / "config" / "tamtam.toml"
    path.write_text(f'''[site]
name = "L’Écho"
base_url = "https://echo.example"
[storage]
url = "sqlite:///var/tamtam.db"
[web]
public_url = "http://127.0.0.1:{port}"
port = {port}
secret_file = "var/web-secret"
[[channels]]
id = "news"
type = "email"
schedule = {{ cron = "0 7 * * *" }}
transport = {{ type = "file", dir = "var/out" }}
''', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAMTAM_")}
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--config", str(path), "serve"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/news/subscribe", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.1)
        assert r.status_code == 200 and "S’abonner" in r.text
        assert (tmp_path / "var" / "web-secret").stat().st_mode & 0o077 == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


async def test_run_stops_before_any_job_when_the_web_secret_is_missing(tmp_path, monkeypatch):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    app = App(config_for(tmp_path, free_port()))
    with pytest.raises(ConfigError, match=f"{SECRET_ENV} is not set"):
        await asyncio.wait_for(run(app, stop=asyncio.Event()), DEADLINE)
    assert app.store.schedule.last_runs() == {}
