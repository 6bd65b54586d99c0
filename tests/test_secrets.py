"""Secrets never leave the environment: not in logs at any level (HTTP client logs
included), tracebacks, ``outbox list``, the database or output files.

The defect this guards: httpx logged every Bot API URL at INFO, and the URL holds the bot
token (``POST http://…/bot123456:SECRET…/getMe``), 18 times in one ``once -v``. The test
runs the commands an admin runs, against the local servers, then searches everything they
wrote for each secret.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.bot_api import FakeBotApi
from tests.fakes.feed_server import FeedServer
from tests.fakes.smtp_server import SmtpServer
from tests.fakes.x_api import FakeXApi
from tests.test_end_to_end import FEED, env_for, tamtam, write_config

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


def everything_written(folder: Path, *outputs: str) -> bytes:
    """Every byte the runs left: their output, and every file under the project folder
    (the database and its WAL, lock files, any output)."""
    blobs = [o.encode("utf-8", "replace") for o in outputs]
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            blobs.append(path.read_bytes())
    return b"\n".join(blobs)


def test_no_secret_in_logs_outputs_or_the_database(tmp_path):
    with FeedServer() as feeds, SmtpServer(auth=("tamtam", "s3cret-smtp-pass")) as smtp, FakeBotApi(per_chat_limit=100) as bot, \
            FakeXApi() as x:
        url = feeds.add_feed("/feed/", FEED)
        config = write_config(tmp_path, url, smtp, bot, x)
        env = env_for(smtp, bot, x)
        env["TT_SMTP_PASSWORD"] = "s3cret-smtp-pass"
        secrets = {"smtp password": env["TT_SMTP_PASSWORD"], "telegram token": bot.token,
                   "x consumer key": x.consumer_key, "x consumer secret": x.consumer_secret,
                   "x access token": x.access_token, "x access token secret": x.access_token_secret}
        runs = [tamtam(config, env, "subscribers", "add", "newsletter", "awa@example.org", "--confirmed")]
        # Refusals quote what the service got: Telegram's error text may carry the request URL.
        bot.fail_next(1, status=502, description=f"Bad Gateway: upstream /bot{bot.token}/sendMessage timed out")
        x.fail_next(1, status=401)
        runs.append(tamtam(config, env, "-v", "once"))
        runs.append(tamtam(config, env, "-v", "once"))
        runs.append(tamtam(config, env, "-v", "outbox", "list", "--status", "failed"))
        runs.append(tamtam(config, env, "-v", "outbox", "list"))
        env_bad = {**env, "TT_X_AT": "wrong-token-that-is-also-secret"}
        secrets["a wrong token"] = env_bad["TT_X_AT"]
        runs.append(tamtam(config, env_bad, "-v", "once"))
    assert any("INFO" in r.stderr for r in runs), "the runs logged at INFO: the test searches real logs"
    written = everything_written(tmp_path, *(r.stdout + r.stderr for r in runs))
    leaks = [what for what, value in secrets.items() if value.encode() in written]
    assert not leaks, f"secrets found in what the runs wrote: {leaks}"
    # the token's public half (the bot id) is no secret, but the half after ':' is
    assert bot.token.split(":", 1)[1].encode() not in written
