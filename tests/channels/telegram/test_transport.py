"""The Telegram transport (bot.channels.telegram.transport) against a real local Bot API
look-alike (tests/fakes/bot_api.py), and the HTML checker that look-alike (and the render
tests) rely on."""

from __future__ import annotations

import socket

import httpx
import pytest
from telegram import Bot
from telegram.error import BadRequest

from bot.channels.registry import Channels
from bot.channels.telegram.html import visible_length
from bot.channels.telegram.render import TelegramPost
from bot.channels.telegram.transport import TelegramTransport, translate
from bot.channels.x.render import XPost
from bot.config import parse_config
from bot.errors import ConfigError, PermanentError, TransientError, UncertainDelivery
from bot.models import Message
from tests.fakes.bot_api import FakeBotApi, telegram_html_error, telegram_plain_text, telegram_text_length

TOKEN_ENV = "TAMTAM_TEST_TELEGRAM_TOKEN"
CHANNEL = "@tamtam_test"

FRENCH = (
    "<b>Bamako : « la saison des pluies s’achève »</b>\n"
    "Le 2 décembre 2024, l’Assemblée a voté — à l’unanimité — le budget de l’État.\n"
    '<a href="https://journal.example/2024/12/02/budget?utm=x&amp;ref=tg">Lire l’article</a>'
)


@pytest.fixture
def api():
    with FakeBotApi() as fake:
        yield fake


def make_transport(api: FakeBotApi | None, **overrides) -> TelegramTransport:
    """The transport the registry builds for a Telegram channel with this table."""
    table = dict(type="telegram", chat_id=CHANNEL, token_env=TOKEN_ENV, timeout="5s")
    if api is not None:
        table.update(base_url=api.base_url, base_file_url=api.base_file_url)
    table.update(overrides)
    config = parse_config({"site": {"name": "Le Quotidien", "base_url": "https://journal.example"},
                           "channels": [{"id": "fil", "type": "telegram", "schedule": {"every": "1h"},
                                         "transport": table}]})
    channel = config.channels[0]
    transport = Channels(config).kind(channel).make_transport(channel)
    assert isinstance(transport, TelegramTransport)
    return transport


@pytest.fixture
async def transport(api, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, api.token)
    tr = make_transport(api)
    await tr.open()
    yield tr
    await tr.aclose()


def msg(text: str = FRENCH, photo_url: str | None = None, destination: str = CHANNEL,
        key: str = "edition-1/telegram") -> Message:
    return Message(key=key, channel_id="fil", kind="telegram", destination=destination,
                   body=TelegramPost(text, photo_url))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the transport: happy paths ----------------------------------------------------------------

async def test_open_checks_the_token_with_getme(transport, api):
    assert api.calls == ["getMe"]
    assert api.sent == []


async def test_text_post_arrives_with_french_text_intact(transport, api):
    receipt = await transport.send(msg())
    assert receipt.transport == "telegram"
    assert receipt.remote_id == "1"
    assert receipt.detail == f"chat {CHANNEL} message 1"
    [sent] = api.sent
    assert sent.method == "sendMessage"
    assert sent.chat_id == CHANNEL
    assert sent.text == FRENCH  # « », ’, accents and — all survive the wire
    assert sent.parse_mode == "HTML"
    assert sent.link_preview_options == {"is_disabled": False}


async def test_numeric_chat_id_and_disabled_preview(api, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, api.token)
    async with make_transport(api, disable_web_page_preview=True) as tr:
        receipt = await tr.send(msg(destination="-1001234567890"))
    assert receipt.remote_id == "1"
    [sent] = api.sent
    assert sent.chat_id == "-1001234567890"
    assert sent.link_preview_options == {"is_disabled": True}


async def test_photo_post_sends_the_text_as_caption(transport, api):
    url = "https://journal.example/wp-content/uploads/2024/12/assemblee.jpg"
    receipt = await transport.send(msg(photo_url=url))
    assert receipt.remote_id == "1"
    [sent] = api.sent
    assert sent.method == "sendPhoto"
    assert sent.photo == url
    assert sent.caption == FRENCH
    assert sent.text is None


async def test_photo_telegram_cannot_fetch_falls_back_to_text(transport, api):
    url = "https://journal.example/missing.jpg"
    api.refuse_photo(url)
    receipt = await transport.send(msg(photo_url=url))
    assert api.calls == ["getMe", "sendPhoto", "sendMessage"]
    [sent] = api.sent
    assert sent.method == "sendMessage"
    assert sent.text == FRENCH
    assert receipt.remote_id == str(sent.message_id)
    assert "sent as text" in receipt.detail


# -- the transport: errors ------------------------------------------------------------------

async def test_hostile_html_is_refused_by_the_fake(transport, api):
    with pytest.raises(PermanentError) as info:
        await transport.send(msg("Alerte <script>alert(1)</script>"))
    assert 'unsupported start tag "script"' in str(info.value).lower()
    assert api.sent == []


# PTB itself reads RetryAfter.retry_after while building the exception and warns about the
# coming int → timedelta change; the transport handles both types.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_flood_answer_is_transient_with_retry_after(transport, api):
    api.fail_next(1, status=429, retry_after=3)
    with pytest.raises(TransientError) as info:
        await transport.send(msg())
    assert info.value.retry_after == 3
    assert api.sent == []
    # the rate limiter did not retry on its own: the outbox decides
    assert api.calls == ["getMe", "sendMessage"]
    assert (await transport.send(msg())).remote_id == "1"


async def test_bot_kicked_from_channel_is_permanent(transport, api):
    api.fail_next(1, status=403)
    with pytest.raises(PermanentError) as info:
        await transport.send(msg())
    assert "kicked" in str(info.value)


async def test_server_error_is_transient(transport, api):
    api.fail_next(1, status=500)
    with pytest.raises(TransientError) as info:
        await transport.send(msg())
    assert not isinstance(info.value, UncertainDelivery)
    assert "Internal Server Error" in str(info.value)


async def test_unknown_chat_is_permanent(transport, api):
    with pytest.raises(PermanentError) as info:
        await transport.send(msg(destination="@somewhere_else"))
    assert "chat not found" in str(info.value).lower()


async def test_answer_slower_than_read_timeout_is_uncertain(api, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, api.token)
    tr = make_transport(api, timeout="1s")
    await tr.open()
    try:
        api.delay_next(30)  # cut short when the fake stops
        with pytest.raises(UncertainDelivery):
            await tr.send(msg())
        # and that is the right word: the fake did post it
        assert [s.text for s in api.sent] == [FRENCH]
    finally:
        await tr.aclose()


async def test_connection_cut_before_the_answer_is_uncertain(transport, api):
    api.drop_next()
    with pytest.raises(UncertainDelivery):
        await transport.send(msg())
    assert [s.text for s in api.sent] == [FRENCH]


async def test_server_not_listening_at_send_is_transient(api, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, api.token)
    tr = make_transport(api)
    await tr.open()
    try:
        api.stop()
        with pytest.raises(TransientError) as info:
            await tr.send(msg())
        assert not isinstance(info.value, UncertainDelivery)
    finally:
        await tr.aclose()


async def test_server_not_listening_at_open_is_transient(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "123456789:AAtamtam")
    base = f"http://127.0.0.1:{closed_port()}"
    tr = make_transport(None, base_url=base + "/bot", base_file_url=base + "/file/bot", timeout="2s")
    with pytest.raises(TransientError):
        await tr.open()
    await tr.aclose()


async def test_wrong_token_is_a_clear_config_error_without_the_token(api, monkeypatch):
    wrong = "987654321:AAwrong-token-value"
    monkeypatch.setenv(TOKEN_ENV, wrong)
    tr = make_transport(api)
    with pytest.raises(ConfigError) as info:
        await tr.open()
    text = str(info.value)
    assert TOKEN_ENV in text and "rejected" in text
    assert wrong not in text
    assert api.calls == []  # a wrong token never reaches a method
    await tr.aclose()


async def test_missing_token_variable_is_a_config_error(api, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(ConfigError) as info:
        await make_transport(api).open()
    assert TOKEN_ENV in str(info.value)
    assert api.calls == []


async def test_too_long_text_is_refused_before_any_request(transport, api):
    with pytest.raises(PermanentError) as info:
        await transport.send(msg("é" * 4097))
    assert "4097" in str(info.value) and "4096" in str(info.value)
    with pytest.raises(PermanentError):
        await transport.send(msg("👍" * 2049))  # 2,049 characters but 4,098 UTF-16 units
    with pytest.raises(PermanentError):
        await transport.send(msg("x" * 1025, photo_url="https://journal.example/a.jpg"))
    assert api.calls == ["getMe"]


async def test_length_is_counted_after_tags_and_entities_like_telegram(transport, api):
    text = "<b>" + "a" * 4000 + "</b>" + "&amp;" * 96  # 4,096 once parsed, 4,583 raw
    receipt = await transport.send(msg(text))
    assert receipt.remote_id == "1"
    assert api.sent[0].text == text


async def test_wrong_kind_is_permanent(transport, api):
    with pytest.raises(PermanentError, match="'x' message"):
        await transport.send(Message("edition-1/x", "fil", "x", CHANNEL, XPost("« Bamako »")))
    assert api.calls == ["getMe"]


# -- the fake itself -----------------------------------------------------------------------

async def test_fake_refuses_too_long_text_and_caption_like_telegram(api):
    bot = Bot(api.token, base_url=api.base_url)
    async with bot:
        with pytest.raises(BadRequest, match="too long"):
            await bot.send_message(CHANNEL, "<i>" + "x" * 4097 + "</i>", parse_mode="HTML")
        with pytest.raises(BadRequest, match="caption is too long"):
            await bot.send_photo(CHANNEL, photo="https://journal.example/a.jpg", caption="y" * 1025)
        with pytest.raises(BadRequest, match="empty"):
            await bot.send_message(CHANNEL, "<b> </b>", parse_mode="HTML")
        ok = await bot.send_message(CHANNEL, "x" * 4096)
    assert ok.text == "x" * 4096
    assert len(api.sent) == 1


def test_fake_speaks_the_wire_format():
    with FakeBotApi() as api:
        api.fail_next(1, status=429, retry_after=3)
        url = f"{api.base_url}{api.token}/sendMessage"
        flood = httpx.post(url, json={"chat_id": CHANNEL, "text": "x"})
        assert flood.status_code == 429
        assert flood.json() == {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 3",
                                "parameters": {"retry_after": 3}}
        ok = httpx.post(url, data={"chat_id": CHANNEL, "text": "« é »"})
        assert ok.json()["ok"] is True and ok.json()["result"]["text"] == "« é »"
        denied = httpx.post(f"{api.base_url}123:nope/getMe")
        assert denied.status_code == 401
        assert denied.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


# -- Telegram's HTML rules --------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "Texte simple : « guillemets », l’apostrophe, les accents éèàç.",
    "<b>gras</b> <strong>fort</strong> <i>it</i> <em>em</em> <u>u</u> <ins>ins</ins> <s>s</s> <strike>st</strike> "
    "<del>del</del>",
    '<b>gras <i>italique <u>souligné <a href="https://x.example/?a=1&amp;b=2">lien</a></u></i></b>',
    '<span class="tg-spoiler">caché</span> <tg-spoiler>caché</tg-spoiler>',
    '<pre><code class="language-python">print("&lt;ok&gt;")</code></pre> <code>x &amp;&amp; y</code>',
    "<blockquote>cité</blockquote><blockquote expandable>long</blockquote>",
    "l&#39;été &#x2019; &#8217; &quot;ok&quot; &lt;b&gt; &amp;",
    '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>',
    "<B>majuscules</b>",
    "",
])
def test_valid_telegram_html(text):
    assert telegram_html_error(text) is None


@pytest.mark.parametrize("text, expected", [
    ("Tom & Jerry", 'Unescaped "&" at byte offset 4'),
    ("Bonjour <div>x</div>", 'Unsupported start tag "div" at byte offset 8'),
    ("é<div>x</div>", 'Unsupported start tag "div" at byte offset 2'),  # bytes, not characters
    ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
    ("<a>lien</a>", 'Tag "a" must have a non-empty "href" attribute'),
    ("a&nbsp;b", 'Unsupported HTML entity "&nbsp;"'),
    ("<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
    ('<span class="spoiler">x</span>', 'Tag "span" must have class "tg-spoiler"'),
    ("<b>pas fermé", 'Can\'t find end tag corresponding to start tag "b"'),
    ("fermé</b>", "Unexpected end tag"),
    ("1 < 2", 'Unsupported start tag ""'),
    ("2 > 1", 'Unescaped ">"'),
    ("<br>", 'Unsupported start tag "br"'),
    ("<b", "Unclosed start tag"),
    ("<i>x</i", "Unclosed end tag"),
    ('<a href="https://x.example/?a=1&b=2">l</a>', 'Unescaped "&" in an attribute of the tag "a"'),
    ("<blockquote collapsed>x</blockquote>", "Expected equal sign"),
    ("<tg-emoji>x</tg-emoji>", "Invalid custom emoji identifier"),
    ("&#0;", "Invalid numeric entity"),
])
def test_invalid_telegram_html(text, expected):
    error = telegram_html_error(text)
    assert error is not None
    assert error.startswith("Bad Request: can't parse entities: ")
    assert expected in error


@pytest.mark.parametrize("text, length", [
    ("abc", 3),
    ("<b>é</b>", 1),
    ("&amp;&lt;&#x2019;", 3),
    ("👍", 2),  # outside the BMP: a surrogate pair
    ('<a href="https://very.long.example/path">lien</a>', 4),
    (FRENCH, len(telegram_plain_text(FRENCH))),
])
def test_telegram_text_length(text, length):
    assert telegram_text_length(text) == length
    assert visible_length(text) == length  # the transport counts the same way


def test_telegram_text_length_refuses_invalid_html():
    with pytest.raises(ValueError, match="Unsupported start tag"):
        telegram_text_length("<p>x</p>")


def test_unknown_client_failure_is_uncertain_and_5xx_is_transient():
    """An error inside the HTTP client may come after the request left: never retried blindly.
    A 5xx answer is Telegram saying it did not post: retried."""
    from telegram.error import NetworkError

    try:
        try:
            raise RuntimeError("client closed mid-request")
        except RuntimeError as inner:
            raise NetworkError("Unknown error in HTTP implementation: RuntimeError()") from inner
    except NetworkError as exc:
        assert isinstance(translate(exc, "chat @c"), UncertainDelivery)
    assert isinstance(translate(NetworkError("Bad Gateway"), "chat @c"), TransientError)
