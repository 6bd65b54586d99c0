"""End to end: ``python main.py once`` as an admin runs it, against real servers on
loopback — an HTTP feed server, an SMTP server, a Bot API look-alike and an X API
look-alike — configured only through the config file and the environment.

Also the promise the project is built on: a run killed half-way through an edition and
started again delivers the rest exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.fakes.bot_api import FakeBotApi, telegram_html_error, telegram_text_length
from tests.fakes.feed_server import FeedServer
from tests.fakes.smtp_server import SmtpServer
from tests.fakes.x_api import MAX_WEIGHTED, FakeXApi, weighted_length

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

def _doubled(feed: bytes) -> bytes:
    """The demo feed with every item twice (the copy under other ids and links), so the
    evening digest is long enough that Telegram needs more than one message."""
    head, rest = feed.split(b"<item>", 1)
    items_part, tail = (b"<item>" + rest).rsplit(b"</item>", 1)
    copy = items_part.replace(b"?p=", b"?p=9").replace(b"/2026/11/", b"/2026/11/suite-")
    return head + items_part + b"</item>" + copy + b"</item>" + tail


FEED = _doubled((ROOT / "config" / "demo" / "feed.xml").read_bytes())
N_ARTICLES = FEED.count(b"<item>")
N_ANNONCES = FEED.count(b"<category><![CDATA[Annonces]]></category>")
SUBSCRIBERS = ["aminata@example.org", "moussa@example.org", "fatou@example.org"]


def write_config(folder: Path, feed_url: str, smtp: SmtpServer, bot: FakeBotApi, x: FakeXApi,
                 channels: tuple[str, ...] = ("newsletter", "tg-digest", "tg-articles", "x"),
                 storage: str = "sqlite:///var/tamtam.db") -> Path:
    blocks = {
        "newsletter": f'''
[[channels]]
id = "newsletter"
type = "email"
schedule = {{ cron = "0 7 * * *" }}
lookback = "3650d"
max_articles = 40
unsubscribe_url = "https://echo.example/desabonnement?jeton={{token}}"
[channels.transport]
type = "smtp"
host = "127.0.0.1"
port = {smtp.port}
security = "none"
username_env = "TT_SMTP_USER"
password_env = "TT_SMTP_PASSWORD"
from = "L’Écho du Sahel <lettre@echo.example>"
''',
        "tg-digest": f'''
[[channels]]
id = "tg-digest"
type = "telegram"
mode = "digest"
schedule = {{ cron = "0 18 * * *" }}
lookback = "3650d"
max_articles = 40
transport = {{ type = "telegram", chat_id = "@tamtam_test", token_env = "TT_TELEGRAM_TOKEN", base_url = "{bot.base_url}", base_file_url = "{bot.base_file_url}", per_chat_limit = {bot.per_chat_limit} }}
''',
        "tg-articles": f'''
[[channels]]
id = "tg-articles"
type = "telegram"
mode = "article"
schedule = {{ every = "10m" }}
lookback = "3650d"
max_articles = 40
transport = {{ type = "telegram", chat_id = "-1001234567890", token_env = "TT_TELEGRAM_TOKEN", base_url = "{bot.base_url}", base_file_url = "{bot.base_file_url}", per_chat_limit = {bot.per_chat_limit} }}
''',
        "x": f'''
[[channels]]
id = "x"
type = "x"
mode = "article"
schedule = {{ every = "30m" }}
lookback = "3650d"
max_articles = 40
exclude_categories = ["Annonces"]
transport = {{ type = "x", api_base_url = "{x.base_url}", consumer_key_env = "TT_X_CK", consumer_secret_env = "TT_X_CS", access_token_env = "TT_X_AT", access_token_secret_env = "TT_X_ATS" }}
''',
    }
    (folder / "config").mkdir(exist_ok=True)
    path = folder / "config" / "tamtam.toml"
    path.write_text(f'''
[site]
name = "L’Écho du Sahel"
base_url = "https://echo.example"

[storage]
url = "{storage}"

[[sources]]
id = "echo"
url = "{feed_url}"
timeout = "5s"
''' + "".join(blocks[c] for c in channels), encoding="utf-8")
    return path


def env_for(smtp: SmtpServer, bot: FakeBotApi, x: FakeXApi) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAMTAM_")}
    env.update(TT_SMTP_USER="tamtam", TT_SMTP_PASSWORD="s3cret", TT_TELEGRAM_TOKEN=bot.token,
               TT_X_CK=x.consumer_key, TT_X_CS=x.consumer_secret, TT_X_AT=x.access_token,
               TT_X_ATS=x.access_token_secret)
    return env


def tamtam(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "--config", str(config), *args],
                          env=env, capture_output=True, text=True, timeout=180)


@pytest.fixture
def servers():
    with FeedServer() as feeds, SmtpServer(auth=("tamtam", "s3cret")) as smtp, FakeBotApi(per_chat_limit=100) as bot, FakeXApi() as x:
        url = feeds.add_feed("/feed/", FEED, etag='"v1"', last_modified="Sat, 28 Nov 2026 08:00:00 GMT")
        yield feeds, url, smtp, bot, x


def test_once_delivers_everything_then_nothing(tmp_path, servers, db_url):
    """On SQLite and on PostgreSQL."""
    feeds, url, smtp, bot, x = servers
    config = write_config(tmp_path, url, smtp, bot, x, storage=db_url)
    env = env_for(smtp, bot, x)
    assert tamtam(config, env, "check").returncode == 0
    for address in SUBSCRIBERS:
        r = tamtam(config, env, "subscribers", "add", "newsletter", address, "--confirmed")  # consent given earlier
        assert r.returncode == 0, r.stderr

    first = tamtam(config, env, "once")
    assert first.returncode == 0, first.stdout + first.stderr

    # email: one digest per subscriber, parsed back with the standard library
    assert sorted(rcpt for m in smtp.received for rcpt in m.rcpt_tos) == sorted(SUBSCRIBERS)
    ids = set()
    for received in smtp.received:
        msg = message_from_bytes(received.raw, policy=policy.default)
        assert msg.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
        assert "L’Écho du Sahel" in str(msg["From"]) and "L’Écho du Sahel" in str(msg["Subject"])
        assert str(msg["List-Unsubscribe"]).strip().startswith("<https://echo.example/desabonnement?jeton=")
        html = msg.get_body(("html",)).get_content()
        text = msg.get_body(("plain",)).get_content()
        for needle in ("«", "»", "’", "é"):
            assert needle in html and needle in text
        assert "&amp;" in html  # the title with « & » is escaped in HTML
        ids.add(msg["Message-ID"])
    assert len(ids) == len(SUBSCRIBERS)

    # telegram: the digest split within limits, one post per article on the other channel
    digest = [m for m in bot.sent if m.chat_id == "@tamtam_test"]
    articles = [m for m in bot.sent if m.chat_id == "-1001234567890"]
    assert len(digest) >= 2, "a long digest is split"
    assert len(articles) == N_ARTICLES
    for m in bot.sent:
        body = m.text if m.method == "sendMessage" else m.caption
        assert telegram_html_error(body) is None
        assert telegram_text_length(body) <= (4096 if m.method == "sendMessage" else 1024)
    assert any(m.method == "sendPhoto" for m in articles)

    # x: one post per article outside « Annonces », each within 280 weighted characters
    assert len(x.posts) == N_ARTICLES - N_ANNONCES
    assert all(0 < weighted_length(t) <= MAX_WEIGHTED for t in x.texts)  # counted by the fake, not by Tamtam
    counts = (len(smtp.received), len(bot.sent), len(x.posts))

    second = tamtam(config, env, "once")
    assert second.returncode == 0, second.stdout + second.stderr
    assert (len(smtp.received), len(bot.sent), len(x.posts)) == counts
    assert "nothing was sent" in second.stdout
    polls = feeds.requests_to("/feed/")
    assert len(polls) == 2
    assert polls[0].header("if-none-match") is None
    assert polls[1].header("if-none-match") == '"v1"'  # the second poll is conditional


def test_a_broken_channel_does_not_stop_the_others(tmp_path, servers):
    feeds, url, smtp, bot, x = servers
    config = write_config(tmp_path, url, smtp, bot, x, channels=("tg-articles", "x"))
    env = env_for(smtp, bot, x)
    env["TT_X_AT"] = "wrong-token"
    r = tamtam(config, env, "once")
    assert r.returncode == 1
    assert len(bot.sent) == N_ARTICLES  # telegram went out
    assert "FAILED" in r.stdout and "x" in r.stdout
    listed = tamtam(config, env, "outbox", "list", "--status", "failed")
    assert listed.stdout.count("\tfailed\tx\t") >= 1


def test_a_broken_feed_is_reported_and_retried(tmp_path, servers):
    feeds, url, smtp, bot, x = servers
    feeds.add_feed("/broken/", b"<html><body>Maintenance</body></html>", content_type="text/html")
    config = write_config(tmp_path, feeds.url("/broken/"), smtp, bot, x, channels=("tg-articles",))
    r = tamtam(config, env_for(smtp, bot, x), "once")
    assert r.returncode == 1
    assert "source echo: FAILED" in r.stdout and "Traceback" not in r.stderr


def test_killed_mid_edition_then_restarted_delivers_the_rest_exactly_once(tmp_path, servers):
    """SIGKILL while the third Telegram post is in flight: the restart never posts the first
    two again, flags the third (it may be out) for the admin, and posts the rest once."""
    feeds, url, smtp, bot, x = servers
    config = write_config(tmp_path, url, smtp, bot, x, channels=("tg-articles",))
    env = env_for(smtp, bot, x)
    original = bot.handle

    def slow_third(method, params):
        status, body, delay = original(method, params)
        if method in ("sendMessage", "sendPhoto") and len(bot.sent) == 3:
            delay = 60.0  # the post is recorded, the answer never comes in time
        return status, body, delay

    bot.handle = slow_third  # type: ignore[method-assign]
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--config", str(config), "once"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(bot.sent) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert len(bot.sent) == 3
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    bot.handle = original  # type: ignore[method-assign]

    r = tamtam(config, env, "once")
    assert r.returncode == 1  # one message needs an admin
    assert "1 message(s) unknown" in r.stdout
    posts = [m.text or m.caption for m in bot.sent]
    assert len(posts) == N_ARTICLES and len(set(posts)) == N_ARTICLES  # every article once, none twice
    listed = tamtam(config, env, "outbox", "list", "--status", "unknown")
    assert listed.stdout.count("\tunknown\t") == 1
    msg_id = listed.stdout.split("\t", 1)[0]
    assert tamtam(config, env, "outbox", "resolve", msg_id).returncode == 0
    assert tamtam(config, env, "once").returncode == 0
    assert len(bot.sent) == N_ARTICLES


async def test_email_interrupted_half_way_resends_only_the_rest(tmp_path, servers):
    """Cancelled while a digest is going out to the subscribers: after recovery every
    subscriber has exactly one distinct message; the interrupted batch may arrive twice, but
    with the same Message-IDs, so mail clients fold them."""
    from bot.app import App
    from bot.config import load_config

    feeds, url, smtp, bot, x = servers
    path = write_config(tmp_path, url, smtp, bot, x, channels=("newsletter",))
    for k, v in env_for(smtp, bot, x).items():
        os.environ.setdefault(k, v)
    try:
        cfg = load_config(path)
        from datetime import datetime, timezone

        from bot.channels.email.smtp import SmtpTransport
        from bot.dispatch import Dispatcher

        class CrashAfterFifth(SmtpTransport):
            """The real SMTP transport; the process 'dies' right after the server accepted the
            fifth message and before Tamtam could record it as sent — the worst moment."""

            sends = 0

            async def send(self, message):
                receipt = await super().send(message)
                CrashAfterFifth.sends += 1
                if CrashAfterFifth.sends == 5:
                    await asyncio.Event().wait()
                return receipt

        app = App(cfg)
        kind = app.channels.kind(cfg.channel("newsletter"))
        app.dispatcher = Dispatcher(cfg, app.store, app.channels,
                                    transport_factory=lambda ch: CrashAfterFifth(ch.transport, cfg, kind))
        many = [f"lecteur{i:02d}@example.org" for i in range(12)]
        for address in many:
            app.store.subscribers.add("newsletter", address, None, now=datetime.now(timezone.utc))
        await app.poll_all()
        app.publish_all()
        task = asyncio.create_task(app.dispatch())
        while CrashAfterFifth.sends < 5:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await app.aclose()
        assert len(smtp.received) >= 5  # the other connections may have carried a few more

        app2 = App(cfg)
        app2.recover()
        report = await app2.dispatch()
        await app2.aclose()
        assert report.ok
        by_rcpt: dict[str, set[str]] = {}
        for m in smtp.received:
            msg = message_from_bytes(m.raw, policy=policy.default)
            for rcpt in m.rcpt_tos:
                by_rcpt.setdefault(rcpt, set()).add(msg["Message-ID"])
        assert sorted(by_rcpt) == sorted(many)
        assert all(len(ids) == 1 for ids in by_rcpt.values())
        # The batch the crash interrupted went again: the emails already accepted arrive a
        # second time with the same Message-ID (mail clients fold them), never more than a
        # batch of them, and nobody gets a second, different email.
        repeats = len(smtp.received) - len(many)
        assert 1 <= repeats <= cfg.delivery.batch_size
    finally:
        for k in env_for(smtp, bot, x):
            if k.startswith("TT_"):
                os.environ.pop(k, None)
