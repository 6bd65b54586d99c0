"""The X transport (bot.channels.x.transport) against the fake X API, through tweepy,
requests and a real socket; and the fake's own length rules, proven on twitter-text's
official conformance cases."""

from __future__ import annotations

import email.utils
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import tweepy
import yaml

from bot.channels.email.mime import EmailBody
from bot.channels.registry import Channels
from bot.channels.x.render import XPost
from bot.channels.x.transport import XTransport, retry_after
from bot.channels.x.tweet import weighted_length
from bot.config import parse_config
from bot.errors import AlreadyDelivered, ConfigError, PermanentError, TransientError, UncertainDelivery
from bot.models import Message
from tests.fakes import x_api
from tests.fakes.x_api import FakeXApi

ENV = {
    "consumer_key_env": "TEST_X_CONSUMER_KEY",
    "consumer_secret_env": "TEST_X_CONSUMER_SECRET",
    "access_token_env": "TEST_X_ACCESS_TOKEN",
    "access_token_secret_env": "TEST_X_ACCESS_TOKEN_SECRET",
}

FRENCH = (
    "Mali : « La saison des pluies s’achève » — le point sur les récoltes, "
    "2 décembre 2024 🌾🇲🇱\nhttps://journal.example.ml/societe/2024/12/02/saison-des-pluies?utm_source=x"
)


def make_transport(base_url: str, **over: str) -> XTransport:
    """The transport the registry builds for an X channel with this table."""
    table = {"type": "x", "account": "journal", "api_base_url": base_url, "timeout": "5s", **ENV, **over}
    config = parse_config({"site": {"name": "Le Journal", "base_url": "https://journal.example.ml"},
                           "channels": [{"id": "x-main", "type": "x", "schedule": {"every": "1h"},
                                         "transport": table}]})
    channel = config.channels[0]
    transport = Channels(config).kind(channel).make_transport(channel)
    assert isinstance(transport, XTransport)
    return transport


def post(text: str, key: str = "x-main:1:p0") -> Message:
    return Message(key=key, channel_id="x-main", kind="x", destination="journal", body=XPost(text))


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeXApi]:
    fake = FakeXApi()
    monkeypatch.setenv(ENV["consumer_key_env"], fake.consumer_key)
    monkeypatch.setenv(ENV["consumer_secret_env"], fake.consumer_secret)
    monkeypatch.setenv(ENV["access_token_env"], fake.access_token)
    monkeypatch.setenv(ENV["access_token_secret_env"], fake.access_token_secret)
    with fake:
        yield fake


@pytest.fixture
async def x(api: FakeXApi) -> XTransport:
    transport = make_transport(api.base_url)
    await transport.open()
    yield transport
    await transport.aclose()


async def test_a_french_post_arrives_intact(api: FakeXApi, x: XTransport) -> None:
    receipt = await x.send(post(FRENCH))
    assert api.texts == [FRENCH]
    assert receipt.transport == "x"
    assert receipt.remote_id == api.posts[0].id and receipt.remote_id.isdigit()
    assert receipt.remote_id in receipt.detail and "journal" in receipt.detail
    second = await x.send(post("Deuxième article : l’été à Ségou", key="x-main:2:p0"))
    assert second.remote_id != receipt.remote_id
    assert api.texts == [FRENCH, "Deuxième article : l’été à Ségou"]


async def test_a_duplicate_counts_as_already_delivered(api: FakeXApi, x: XTransport) -> None:
    await x.send(post(FRENCH))
    with pytest.raises(AlreadyDelivered, match="duplicate content") as info:
        await x.send(post(FRENCH, key="x-main:1:p0-again"))
    assert isinstance(info.value.__cause__, tweepy.Forbidden)
    assert api.texts == [FRENCH]


async def test_over_length_is_refused_before_sending(api: FakeXApi, x: XTransport) -> None:
    long = "Bamako " * 40 + "fin"
    assert weighted_length(long) > 280
    with pytest.raises(PermanentError, match=r"283 weighted characters"):
        await x.send(post(long))
    assert api.requests == []  # nothing left the building


async def test_the_fake_itself_refuses_over_length(api: FakeXApi, x: XTransport) -> None:
    """Bypass our check and post through tweepy: the fake must validate on its own, or the
    test above would prove nothing about what X does."""
    long = "é" * 270 + " https://journal.example.ml/a " + "👍🏾"  # 270 + 1 + 23 + 1 + 2 = 297
    assert x_api.weighted_length(long) == weighted_length(long) == 297
    with pytest.raises(tweepy.Forbidden, match="too long"):
        x._client.create_tweet(text=long)  # type: ignore[union-attr]
    exactly = "é" * 254 + " https://journal.example.ml/a"  # 254 + 1 + 23 = 278, fits
    x._client.create_tweet(text=exactly)  # type: ignore[union-attr]
    assert api.texts == [exactly]
    assert [status for _, _, status in api.requests] == [403, 201]


async def test_rate_limited_is_transient_with_the_reset_time(api: FakeXApi, x: XTransport) -> None:
    api.fail_next(1, status=429, reset_in=600)
    with pytest.raises(TransientError, match="rate limited") as info:
        await x.send(post(FRENCH))
    assert info.value.retry_after is not None and 590 <= info.value.retry_after <= 601
    assert api.texts == []
    await x.send(post(FRENCH))  # once the limit resets, the same post goes out
    assert api.texts == [FRENCH]


async def test_daily_cap_wins_over_the_fifteen_minute_window(api: FakeXApi, x: XTransport) -> None:
    day_reset = int(time.time()) + 20_000
    api.fail_next(1, status=429, reset_in=60, headers={
        "x-user-limit-24hour-limit": "17",
        "x-user-limit-24hour-remaining": "0",
        "x-user-limit-24hour-reset": str(day_reset),
    })
    with pytest.raises(TransientError) as info:
        await x.send(post(FRENCH))
    assert info.value.retry_after is not None and 19_990 <= info.value.retry_after <= 20_001


async def test_rate_limited_with_only_retry_after(api: FakeXApi, x: XTransport) -> None:
    api.fail_next(1, status=429, reset_in=None, retry_after=42)
    with pytest.raises(TransientError) as info:
        await x.send(post(FRENCH))
    assert info.value.retry_after == 42


def test_retry_after_reads_every_form() -> None:
    now = 1_733_100_000.0
    assert retry_after({"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(now) + 90)}, now) == 90
    assert retry_after({"X-Rate-Limit-Reset": str(int(now) + 30)}, now) == 30  # case-insensitive
    assert retry_after({"x-rate-limit-reset": str(int(now) - 30)}, now) == 1  # clocks disagree
    assert retry_after({"Retry-After": "120"}, now) == 120
    http_date = email.utils.formatdate(now + 300, usegmt=True)
    assert retry_after({"Retry-After": http_date}, now) == pytest.approx(300)
    assert retry_after({"Retry-After": "soon"}, now) is None
    assert retry_after({}, now) is None


async def test_server_error_is_transient(api: FakeXApi, x: XTransport) -> None:
    api.fail_next(1, status=503)
    with pytest.raises(TransientError, match="503") as info:
        await x.send(post(FRENCH))
    assert isinstance(info.value.__cause__, tweepy.TwitterServerError)
    assert info.value.retry_after is None
    assert api.texts == []


async def test_wrong_keys_are_permanent(api: FakeXApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV["access_token_env"], "someone-else")
    transport = make_transport(api.base_url)
    async with transport:
        with pytest.raises(PermanentError, match="401 Unauthorized"):
            await transport.send(post(FRENCH))
    assert api.texts == []


async def test_a_wrong_secret_breaks_the_signature(api: FakeXApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake checks the HMAC-SHA1 signature over the URL actually called, so this also
    proves the host is swapped before requests signs the request, as X requires."""
    monkeypatch.setenv(ENV["consumer_secret_env"], "not-the-secret")
    async with make_transport(api.base_url) as transport:
        with pytest.raises(PermanentError, match="401"):
            await transport.send(post(FRENCH))
    assert api.texts == []


async def test_no_answer_in_time_is_uncertain(api: FakeXApi) -> None:
    api.delay = 30  # the fake posts, then holds the answer back (cut short at stop)
    async with make_transport(api.base_url, timeout="0.5s") as x:
        with pytest.raises(UncertainDelivery, match="may be public"):
            await x.send(post(FRENCH))
    assert api.texts == [FRENCH]  # why retrying would double-post


async def test_server_down_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeXApi() as gone:
        base_url = gone.base_url  # a port nobody listens on once it is stopped
        for name, value in zip(ENV.values(), ("k", "s", "t", "ts")):
            monkeypatch.setenv(name, value)
    async with make_transport(base_url) as transport:
        with pytest.raises(TransientError, match="cannot reach X"):
            await transport.send(post(FRENCH))


async def test_connection_dropped_after_sending_is_uncertain(api: FakeXApi) -> None:
    """A server that reads the whole request and hangs up: the post may exist."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            while len(body) < length:
                body += conn.recv(65536)
            received.append(body)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    try:
        async with make_transport(f"http://127.0.0.1:{port}") as transport:
            with pytest.raises(UncertainDelivery, match="connection to X broke"):
                await transport.send(post(FRENCH))
    finally:
        thread.join(timeout=5)
        listener.close()
    assert [json.loads(body)["text"] for body in received] == [FRENCH]  # the whole post had left


async def test_missing_secret_is_a_config_error(api: FakeXApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV["access_token_secret_env"])
    transport = make_transport(api.base_url)
    with pytest.raises(ConfigError, match="TEST_X_ACCESS_TOKEN_SECRET"):
        await transport.open()
    with pytest.raises(ConfigError, match="TEST_X_ACCESS_TOKEN_SECRET"):
        await transport.send(post(FRENCH))  # send opens lazily and fails the same way
    assert api.requests == []


async def test_a_bad_base_url_is_a_config_error(api: FakeXApi) -> None:
    with pytest.raises(ConfigError, match="api_base_url"):
        await make_transport("ftp://127.0.0.1/").open()


async def test_only_x_messages(api: FakeXApi, x: XTransport) -> None:
    email = Message(key="k", channel_id="c", kind="email", destination="a@b.ml",
                    body=EmailBody(subject="S", text="Bonjour"))
    with pytest.raises(PermanentError, match="'email'"):
        await x.send(email)
    with pytest.raises(PermanentError, match="weighted"):
        await x.send(post("   "))
    assert api.requests == []



# -- the fake's own length rules ----------------------------------------------------------------

#: The conformance sections on weighted length, and the twitter-text config each is written for.
#: "tweets" is left out: it is the 140-character v1 rule X no longer applies (its "valid"
#: cases count a URL by its characters); the other sections test entity extraction, not length.
SECTIONS = {
    "WeightedTweetsCounterTest": "version2",
    "WeightedTweetsWithDiscountedEmojiCounterTest": "version3",
    "UnicodeDirectionalMarkerCounterTest": "version3",
}


def test_the_fakes_counter_agrees_with_every_conformance_case(corpora: Path) -> None:
    """The fake judges length with its own counter, not the product's: this is what makes
    that counter trustworthy. No case is excused."""
    cases = yaml.safe_load((corpora / "twitter-text" / "validate.yml").read_text(encoding="utf-8"))["tests"]
    checked, wrong = 0, []
    for section, config in SECTIONS.items():
        for case in cases[section]:
            got = x_api.weigh(case["text"], config)
            expected = case["expected"]
            if (got.weighted_length, got.valid, got.permillage) != (
                    expected["weightedLength"], expected["valid"], expected["permillage"]):
                wrong.append(f"{section}: {case['description']}: got {got}, expected {expected}")
            checked += 1
    assert wrong == []
    assert checked == 44  # the pinned corpus: 20 + 22 + 2 cases


@pytest.mark.parametrize("text, length", [
    ("Bamako : « la saison des pluies s’achève » — à l’aube", 53),
    ("https://journal.example.ml/societe/2024/12/02/saison-des-pluies?utm_source=x", 23),
    ("https://echo.example/2024/12/02/a", 33),  # "example" is no real TLD: X counts every character
    ("voir journal.example.ml/a.", 5 + 23 + 1),  # no scheme, and the full stop is the sentence's
    ("écrire à redaction@journal.ml", 29),  # an address is not a link
    ("🇲🇱 👍🏾 👨‍👩‍👧 1️⃣ ©", 2 + 1 + 2 + 1 + 2 + 1 + 2 + 1 + 2),
])
def test_the_fakes_counter_on_french_posts(text: str, length: int) -> None:
    assert x_api.weighted_length(text) == length


async def test_the_fake_refuses_characters_x_refuses(api: FakeXApi, x: XTransport) -> None:
    with pytest.raises(tweepy.Forbidden, match="does not accept"):
        x._client.create_tweet(text="Bamako\ufeff")  # type: ignore[union-attr]
    with pytest.raises(tweepy.BadRequest):
        x._client.create_tweet(text="  ")  # type: ignore[union-attr]
    assert api.texts == []
