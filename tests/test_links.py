"""Signed reader links: purpose- and list-bound, confirm links expire, the others never do,
and a rotated secret keeps old links working."""

from __future__ import annotations

import base64
import os
import stat
import time
from datetime import timedelta

import pytest

from bot.config import parse_config
from bot.errors import ConfigError
from bot.links import LinkError, Links, Purpose, Signer, secret_from_file

PUBLIC = "https://lettre.echo.example"


def links(*secrets: str, ttl: timedelta = timedelta(days=7)) -> Links:
    return Links(PUBLIC, Signer(secrets or ("current-secret-0123456789",)), ttl)


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def refused(l: Links, purpose: Purpose, token: str, channel: str = "news") -> str:
    with pytest.raises(LinkError) as exc:
        l.verify(purpose, token, channel)
    return exc.value.reason


def test_each_url_carries_a_token_for_its_own_purpose_and_list():
    l = links()
    assert l.unsubscribe("news", 42).startswith(f"{PUBLIC}/news/unsubscribe/")
    assert l.preferences("news", 42).startswith(f"{PUBLIC}/news/preferences/")
    assert l.confirm("news", 42).startswith(f"{PUBLIC}/news/confirm/")
    assert l.archive("news", 7) == f"{PUBLIC}/news/archive/7" and l.feed("news") == f"{PUBLIC}/news/feed.atom"
    for purpose, url in ((Purpose.UNSUBSCRIBE, l.unsubscribe("news", 42)), (Purpose.PREFERENCES, l.preferences("news", 42)),
                         (Purpose.CONFIRM, l.confirm("news", 42))):
        assert l.verify(purpose, token_of(url), "news") == 42


def test_a_token_for_one_purpose_opens_no_other():
    l = links()
    confirm = token_of(l.confirm("news", 42))
    assert refused(l, Purpose.UNSUBSCRIBE, confirm) == "invalid"
    assert refused(l, Purpose.PREFERENCES, confirm) == "invalid"
    assert refused(l, Purpose.CONFIRM, token_of(l.unsubscribe("news", 42))) == "invalid"


def test_a_token_for_one_list_cannot_touch_another():
    l = links()
    assert refused(l, Purpose.UNSUBSCRIBE, token_of(l.unsubscribe("news", 42)), channel="sport") == "other-list"


def test_forged_tokens_are_refused():
    l = links()
    good = token_of(l.unsubscribe("news", 42))
    payload, stamp, signature = good.split(".")
    other = base64.urlsafe_b64encode(b'["news",43]').rstrip(b"=").decode()
    assert refused(l, Purpose.UNSUBSCRIBE, f"{other}.{stamp}.{signature}") == "invalid"  # someone else's id
    # a character in the middle: the last one's low bits are base64 padding, ignored when decoding
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    assert refused(l, Purpose.UNSUBSCRIBE, f"{payload}.{stamp}.{flipped}") == "invalid"
    assert refused(l, Purpose.UNSUBSCRIBE, "") == "invalid"
    assert refused(l, Purpose.UNSUBSCRIBE, "not-a-token") == "invalid"
    elsewhere = links("another-site-secret-0123456789")
    assert refused(l, Purpose.UNSUBSCRIBE, token_of(elsewhere.unsubscribe("news", 42))) == "invalid"
    # a well-signed payload of the wrong shape
    odd = l.signer.sign(Purpose.UNSUBSCRIBE.value, {"c": "news", "s": 42})
    assert refused(l, Purpose.UNSUBSCRIBE, odd) == "invalid"


def test_confirm_links_expire_and_the_others_never_do(monkeypatch):
    l = links(ttl=timedelta(days=7))
    confirm = token_of(l.confirm("news", 1))
    unsubscribe = token_of(l.unsubscribe("news", 1))
    preferences = token_of(l.preferences("news", 1))
    later = time.time() + timedelta(days=7, minutes=1).total_seconds()
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: later)
    assert refused(l, Purpose.CONFIRM, confirm) == "expired"
    years = time.time() + timedelta(days=3650).total_seconds()
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: years)
    assert l.verify(Purpose.UNSUBSCRIBE, unsubscribe, "news") == 1
    assert l.verify(Purpose.PREFERENCES, preferences, "news") == 1


def test_a_rotated_secret_keeps_old_links_working_and_signs_with_the_new_one():
    old = links("the-old-secret-0123456789")
    sent_last_year = token_of(old.unsubscribe("news", 5))
    rotated = links("the-new-secret-0123456789", "the-old-secret-0123456789")
    assert rotated.verify(Purpose.UNSUBSCRIBE, sent_last_year, "news") == 5
    fresh = token_of(rotated.unsubscribe("news", 5))
    assert links("the-new-secret-0123456789").verify(Purpose.UNSUBSCRIBE, fresh, "news") == 5
    assert refused(old, Purpose.UNSUBSCRIBE, fresh) == "invalid"  # made with the new secret


def test_the_config_reads_current_and_previous_secrets_from_the_environment(monkeypatch):
    data = {"site": {"name": "x", "base_url": "https://x.example"},
            "web": {"public_url": PUBLIC, "secret_env": "WEB_NOW", "previous_secret_envs": ["WEB_BEFORE", "WEB_GONE"]}}
    monkeypatch.setenv("WEB_NOW", "now-secret-0123456789")
    monkeypatch.setenv("WEB_BEFORE", "before-secret-0123456789")
    monkeypatch.delenv("WEB_GONE", raising=False)
    l = parse_config(data).links
    assert l is not None and l.signer.secrets == ("now-secret-0123456789", "before-secret-0123456789")
    monkeypatch.delenv("WEB_NOW")
    with pytest.raises(ConfigError, match="WEB_NOW is not set"):
        parse_config(data).links


def test_a_secret_file_is_made_private_once_and_reused(tmp_path):
    path = tmp_path / "var" / "web-secret"
    first = secret_from_file(path)
    assert len(first) >= 32 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert secret_from_file(path) == first
    path.write_text("short\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="fewer than 16"):
        secret_from_file(path)


@pytest.mark.parametrize("web, expected", [
    ({"public_url": "lettre.example"}, "web.public_url: expected an http(s) address"),
    ({"public_url": "https://x.example/?a=1"}, "without query"),
    ({"public_url": "https://x.example/{token}"}, "has a placeholder"),
    ({"public_url": PUBLIC, "secret_env": "MY SECRET"}, "web.secret_env: expected the name of an environment variable"),
    ({"public_url": PUBLIC}, "give exactly one of 'secret_env'"),
    ({"public_url": PUBLIC, "secret_env": "S", "cors_origins": ["https://www.example.com/"]}, "expected an origin"),
    ({"public_url": PUBLIC, "secret_env": "S", "bind": "0.0.0.0:80"}, "web.bind"),
    ({"public_url": PUBLIC, "secret_env": "S", "port": 0}, "web.port"),
    ({"public_url": PUBLIC, "secret_env": "S", "confirm_ttl": "7 jours"}, "web.confirm_ttl"),
    ({"public_url": PUBLIC, "secret_env": "S", "previous_secret_envs": ["OK", "pas bon"]}, "web.previous_secret_envs"),
])
def test_web_settings_are_checked_at_load(web, expected):
    with pytest.raises(ConfigError) as exc:
        parse_config({"site": {"name": "x", "base_url": "https://x.example"}, "web": web})
    assert any(expected in p for p in exc.value.problems), exc.value.problems
