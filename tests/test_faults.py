"""A fault-injection run: a whole ``tamtam run`` daemon against the local SMTP, Bot API, X
API and feed servers while faults are switched on and off — a mail-server outage, a 429
storm on Telegram and X, SIGTERM, kill -9, restarts — then a report of what every reader
and follower received: delivered, failed with a reason, flagged unknown, duplicated.

The promise checked: nothing lost (every message of every edition is delivered, or failed
with a reason, or flagged unknown for the admin), no social post twice, and an email twice
only as a repeat of one Message-ID (mail clients fold those).

Run it on its own with the report printed: ``.venv/bin/python -m pytest tests/test_faults.py -s``
(the report is also written to ``var/fault-report.txt``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from bot.store import tables as t
from tests.conftest import ROOT
from tests.fakes.bot_api import FakeBotApi
from tests.fakes.feed_server import FeedServer
from tests.fakes.smtp_server import SmtpServer
from tests.fakes.x_api import FakeXApi
from tests.test_end_to_end import FEED, N_ANNONCES, N_ARTICLES

pytestmark = [pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")]

READERS = [f"lecteur{i:02d}@example.org" for i in range(25)]
PER_EDITION = 6  # articles an edition takes: several editions, so faults land between and inside them
EMAIL_EDITIONS = -(-N_ARTICLES // PER_EDITION)


def write_config(folder: Path, feed_url: str, smtp: SmtpServer, bot: FakeBotApi, x: FakeXApi) -> Path:
    (folder / "config").mkdir(exist_ok=True)
    path = folder / "config" / "tamtam.toml"
    path.write_text(f'''
[site]
name = "L’Écho du Sahel"
base_url = "https://echo.example"

[storage]
url = "sqlite:///var/tamtam.db"

[delivery]
max_attempts = 3
backoff_base = "1s"
backoff_max = "3s"
pause_max = "2s"
dispatch_every = "1s"
shutdown_grace = "20s"

[[sources]]
id = "echo"
url = "{feed_url}"
poll = {{ every = "1s" }}
timeout = "5s"

[[channels]]
id = "lettre"
type = "email"
schedule = {{ every = "2s" }}
lookback = "3650d"
max_articles = {PER_EDITION}
[channels.transport]
type = "smtp"
host = "127.0.0.1"
port = {smtp.port}
security = "none"
from = "L’Écho du Sahel <lettre@echo.example>"
timeout = "5s"
rate_per_minute = 1200

[[channels]]
id = "fil"
type = "telegram"
mode = "article"
schedule = {{ every = "2s" }}
lookback = "3650d"
max_articles = {PER_EDITION}
transport = {{ type = "telegram", chat_id = "-1001234567890", token_env = "TT_TELEGRAM_TOKEN", base_url = "{bot.base_url}", base_file_url = "{bot.base_file_url}", per_chat_limit = {bot.per_chat_limit}, per_chat_period = "{bot.per_chat_period}s", timeout = "5s" }}

[[channels]]
id = "x"
type = "x"
mode = "article"
schedule = {{ every = "2s" }}
lookback = "3650d"
max_articles = {PER_EDITION}
exclude_categories = ["Annonces"]
transport = {{ type = "x", api_base_url = "{x.base_url}", consumer_key_env = "TT_X_CK", consumer_secret_env = "TT_X_CS", access_token_env = "TT_X_AT", access_token_secret_env = "TT_X_ATS", timeout = "5s" }}
''', encoding="utf-8")
    return path


class Daemon:
    """``tamtam run`` in its own process, its log in a file (a full pipe must not stall it)."""

    def __init__(self, config: Path, env: dict[str, str], log: Path):
        self.config, self.env, self.log = config, env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.exits: list[int] = []

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--config", str(self.config), "run"],
                                         env=self.env, stdout=out, stderr=out)

    def stop(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        self.exits.append(code)
        self.proc = None
        return code


def wait_for(what, deadline: float = 90.0, every: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if what():
            return True
        time.sleep(every)
    return False


def rows(db: Path) -> list:  # type: ignore[type-arg]
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(t.outbox.c.key, t.outbox.c.channel_id, t.outbox.c.destination,
                                            t.outbox.c.status, t.outbox.c.last_error, t.outbox.c.payload)))
    finally:
        engine.dispose()


def settled(db: Path, expected: int) -> bool:
    current = rows(db) if db.exists() else []
    return len(current) >= expected and all(r.status in ("sent", "failed", "unknown", "dismissed") for r in current)


def report(db: Path, smtp: SmtpServer, bot: FakeBotApi, x: FakeXApi, exits: list[int]) -> tuple[str, dict[str, int]]:
    """What every reader and follower received, against what the outbox says."""
    outbox = rows(db)
    by_status = Counter((r.channel_id, r.status) for r in outbox)
    # email: one Message-ID per (recipient, message); a repeat of one id is the same email
    ids: dict[str, Counter[str]] = defaultdict(Counter)
    for m in smtp.received:
        msg = message_from_bytes(m.raw, policy=policy.default)
        for rcpt in m.rcpt_tos:
            ids[rcpt][str(msg["Message-ID"])] += 1
    email_rows = [r for r in outbox if r.channel_id == "lettre"]
    posts_tg = Counter(m.text or m.caption for m in bot.sent)
    posts_x = Counter(x.texts)
    numbers = {
        "email messages queued": len(email_rows),
        "email messages received (distinct Message-IDs)": sum(len(c) for c in ids.values()),
        "email repeats of one Message-ID": sum(n - 1 for c in ids.values() for n in c.values() if n > 1),
        "telegram posts queued": sum(1 for r in outbox if r.channel_id == "fil"),
        "telegram posts received": sum(posts_tg.values()),
        "telegram posts received twice": sum(n - 1 for n in posts_tg.values() if n > 1),
        "x posts queued": sum(1 for r in outbox if r.channel_id == "x"),
        "x posts received": sum(posts_x.values()),
        "x posts received twice": sum(n - 1 for n in posts_x.values() if n > 1),
        "failed with a reason": sum(1 for r in outbox if r.status == "failed" and r.last_error),
        "failed without a reason": sum(1 for r in outbox if r.status == "failed" and not r.last_error),
        "unknown (flagged for the admin)": sum(1 for r in outbox if r.status == "unknown"),
        "telegram 429s from flood limits": bot.flood_refusals,
    }
    # lost: a row marked sent whose message never arrived, or a message no row accounts for
    tg_texts = {(r.payload or {}).get("text") for r in outbox if r.channel_id == "fil"}
    x_texts = {(r.payload or {}).get("text") for r in outbox if r.channel_id == "x"}
    lost = sum(1 for r in outbox if r.channel_id == "fil" and r.status == "sent"
               and posts_tg[r.payload["text"]] == 0)
    lost += sum(1 for r in outbox if r.channel_id == "x" and r.status == "sent" and posts_x[r.payload["text"]] == 0)
    lost += sum(1 for r in email_rows if r.status == "sent" and not ids.get(r.destination))
    lost += (N_ARTICLES - numbers["telegram posts queued"]) + (N_ARTICLES - N_ANNONCES - numbers["x posts queued"])
    lost += len(READERS) * EMAIL_EDITIONS - len(email_rows)
    numbers["lost"] = lost
    numbers["received but not queued"] = (sum(1 for t_ in posts_tg if t_ not in tg_texts)
                                          + sum(1 for t_ in posts_x if t_ not in x_texts))
    lines = ["fault-injection run: outage, 429 storm, SIGTERM, kill -9, restarts",
             f"daemon exits: {exits}", ""]
    lines += [f"{k:<48} {v}" for k, v in numbers.items()]
    lines += ["", "outbox by channel and status:"]
    lines += [f"  {ch:<8} {status:<10} {n}" for (ch, status), n in sorted(by_status.items())]
    return "\n".join(lines), numbers


def test_faults_lose_nothing_and_send_nothing_twice(tmp_path):
    with FeedServer() as feeds, SmtpServer() as smtp, \
            FakeBotApi(per_chat_limit=8, per_chat_period=3.0) as bot, FakeXApi() as x:
        url = feeds.add_feed("/feed/", FEED)
        config = write_config(tmp_path, url, smtp, bot, x)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAMTAM_")}
        env.update(TT_TELEGRAM_TOKEN=bot.token, TT_X_CK=x.consumer_key, TT_X_CS=x.consumer_secret,
                   TT_X_AT=x.access_token, TT_X_ATS=x.access_token_secret)
        for reader in READERS:
            r = subprocess.run([sys.executable, str(ROOT / "main.py"), "--config", str(config), "subscribers", "add",
                                "lettre", reader, "--confirmed"], env=env, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
        db = tmp_path / "var" / "tamtam.db"
        daemon = Daemon(config, env, tmp_path / "daemon.log")
        daemon.start()

        # 1. the mail server goes away mid-edition, for a few seconds
        assert wait_for(lambda: len(smtp.received) >= 10), "the first emails never went out"
        smtp.stop()
        time.sleep(4)
        smtp.start()
        # 2. a 429 storm on Telegram and X
        bot.fail_next(6, status=429, retry_after=1)
        x.fail_next(4, status=429, reset_in=1)
        # 3. SIGTERM while messages are going out, then a restart
        assert wait_for(lambda: len(bot.sent) >= 6 and len(smtp.received) >= 40), "delivery stalled"
        assert daemon.stop(signal.SIGTERM) == 0  # a clean stop: the message in flight finished
        assert all(r.status != "sending" for r in rows(db)), "a clean stop left a message half-sent"
        daemon.start()
        # 4. kill -9 while messages are going out, then a restart
        assert wait_for(lambda: len(smtp.received) >= 70 or len(bot.sent) >= 14), "delivery stalled"
        daemon.stop(signal.SIGKILL)
        daemon.start()
        # 5. everything settles
        expected = len(READERS) * EMAIL_EDITIONS + N_ARTICLES + N_ARTICLES - N_ANNONCES
        done = wait_for(lambda: settled(db, expected), deadline=150, every=0.5)
        daemon.stop(signal.SIGTERM)
        text, numbers = report(db, smtp, bot, x, daemon.exits)
    print("\n" + text)
    (ROOT / "var").mkdir(exist_ok=True)
    (ROOT / "var" / "fault-report.txt").write_text(text + "\n", encoding="utf-8")
    assert done, f"the outbox never settled:\n{text}\n{(tmp_path / 'daemon.log').read_text()[-3000:]}"
    assert numbers["lost"] == 0, text
    assert numbers["telegram posts received twice"] == 0 and numbers["x posts received twice"] == 0, text
    assert numbers["failed without a reason"] == 0 and numbers["received but not queued"] == 0, text
    # every reader has every edition once (a repeat only as the same Message-ID)
    assert numbers["email messages received (distinct Message-IDs)"] == len(READERS) * EMAIL_EDITIONS, text
    assert numbers["telegram 429s from flood limits"] == 0, text  # the limits held by construction
    assert "Traceback" not in (tmp_path / "daemon.log").read_text()
