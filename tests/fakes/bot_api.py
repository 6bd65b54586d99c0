"""A local stand-in for Telegram's Bot API, and Telegram's HTML rules as a checker.

Two things live here because they belong together: the fake server refuses what
Telegram would refuse, and render tests reuse the very same checker
(:func:`telegram_html_error`, :func:`telegram_text_length`) to prove their output
would be accepted.

The HTML checker follows the rules Telegram documents for ``parse_mode=HTML``
(https://core.telegram.org/bots/api#html-style) and the error wording of TDLib's
parser ("Unsupported start tag "div" at byte offset 12", …). Where the real server is
*more lenient* than its documentation — it shows an unknown entity such as ``&nbsp;``
or a stray ``&`` / ``>`` literally, and turns ``<a>url</a>`` into a link — the checker
follows the documentation, so output it accepts is safe on both counts.
"""

from __future__ import annotations

import email.policy
import json
import math
import re
import threading
import time
from dataclasses import dataclass
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PARSE_ERROR = "Bad Request: can't parse entities: "

_TAGS = frozenset({
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
    "a", "code", "pre", "blockquote", "tg-emoji",
})
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY = re.compile(r"&(?:(?P<named>[A-Za-z][A-Za-z0-9]*)|#(?P<dec>[0-9]+)|#[xX](?P<hex>[0-9A-Fa-f]+));")
_SPACE = " \t\n\r\f\v"
_NAME_TOKEN = re.compile(r"[A-Za-z0-9.\-]*")


class _HtmlError(Exception):
    pass


def _offset(text: str, index: int) -> int:
    """TDLib reports positions as byte offsets in the UTF-8 text."""
    return len(text[:index].encode("utf-8"))


def _entity(text: str, i: int, where: str = "") -> tuple[str, int]:
    """Decode the entity starting at ``text[i] == '&'``; return (character, next index)."""
    m = _ENTITY.match(text, i)
    if m is None:
        raise _HtmlError(f'Unescaped "&"{where} at byte offset {_offset(text, i)}; write it as "&amp;"')
    if m.group("named") is not None:
        name = m.group("named")
        if name not in _NAMED:
            raise _HtmlError(
                f'Unsupported HTML entity "&{name};"{where} at byte offset {_offset(text, i)}; '
                'only &lt; &gt; &amp; &quot; and numeric entities are supported'
            )
        return _NAMED[name], m.end()
    code = int(m.group("dec")) if m.group("dec") is not None else int(m.group("hex"), 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise _HtmlError(f"Invalid numeric entity {m.group(0)!r}{where} at byte offset {_offset(text, i)}")
    return chr(code), m.end()


def _attribute_value(text: str, i: int, tag: str) -> tuple[str, int]:
    """A quoted string (entities decoded) or an HTML name token, as TDLib reads it."""
    n = len(text)
    if text[i] in "'\"":
        quote = text[i]
        end = text.find(quote, i + 1)
        if end < 0:
            raise _HtmlError(f"Unclosed end of attribute value at byte offset {_offset(text, i)}")
        raw, out, j = text[i + 1:end], [], 0
        while j < len(raw):
            if raw[j] == "&":
                ch, j2 = _entity(raw, j, f' in an attribute of the tag "{tag}"')
                out.append(ch)
                j = j2
            elif raw[j] == "<":
                raise _HtmlError(f'Unescaped "<" in an attribute of the tag "{tag}" at byte offset '
                                 f"{_offset(text, i + 1 + j)}")
            else:
                out.append(raw[j])
                j += 1
        return "".join(out), end + 1
    m = _NAME_TOKEN.match(text, i)
    assert m is not None
    j = m.end()
    if j >= n or (text[j] not in _SPACE and text[j] != ">"):
        raise _HtmlError(f"Unexpected end of name token at byte offset {_offset(text, i)}")
    return m.group(0).lower(), j


def _start_tag(text: str, begin: int) -> tuple[str, dict[str, str | None], int]:
    """Parse ``<name attr="v" …>`` at ``begin``; return (name, attributes, index after '>')."""
    n = len(text)
    i = begin + 1
    j = i
    while j < n and text[j] not in _SPACE and text[j] != ">":
        j += 1
    if j >= n:
        raise _HtmlError(f"Unclosed start tag at byte offset {_offset(text, begin)}")
    name = text[i:j].lower()
    if name not in _TAGS:
        hint = '; write a literal "<" as "&lt;"' if not name or not name[0].isalpha() else ""
        raise _HtmlError(f'Unsupported start tag "{name}" at byte offset {_offset(text, begin)}{hint}')
    attributes: dict[str, str | None] = {}
    i = j
    while True:
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            raise _HtmlError(f'Unclosed start tag "{name}" at byte offset {_offset(text, begin)}')
        if text[i] == ">":
            return name, attributes, i + 1
        a = i
        while i < n and text[i] not in _SPACE and text[i] not in "=>":
            i += 1
        attr = text[a:i].lower()
        if not attr:
            raise _HtmlError(f'Empty attribute name in the tag "{name}" at byte offset {_offset(text, begin)}')
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            raise _HtmlError(f'Unclosed start tag "{name}" at byte offset {_offset(text, begin)}')
        if text[i] != "=":
            if name == "blockquote" and attr == "expandable":
                attributes[attr] = None
                continue
            raise _HtmlError(
                f'Expected equal sign in declaration of an attribute of the tag "{name}" '
                f"at byte offset {_offset(text, begin)}"
            )
        i += 1
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            raise _HtmlError(f'Unclosed start tag "{name}" at byte offset {_offset(text, begin)}')
        value, i = _attribute_value(text, i, name)
        if i >= n or (text[i] not in _SPACE and text[i] != ">"):
            raise _HtmlError(f"Expected space or > after attribute value at byte offset {_offset(text, i)}")
        attributes.setdefault(attr, value)


def _check_arguments(name: str, attributes: dict[str, str | None], text: str, begin: int) -> None:
    at = f"at byte offset {_offset(text, begin)}"
    if name == "a" and not (attributes.get("href") or "").strip():
        raise _HtmlError(f'Tag "a" must have a non-empty "href" attribute {at}')
    if name == "span" and attributes.get("class") != "tg-spoiler":
        raise _HtmlError(f'Tag "span" must have class "tg-spoiler" {at}')
    if name == "tg-emoji":
        emoji_id = attributes.get("emoji-id") or ""
        if not emoji_id.isdigit() or int(emoji_id) == 0:
            raise _HtmlError(f"Invalid custom emoji identifier specified {at}")


def _parse(text: str) -> str:
    """The text Telegram shows (tags removed, entities decoded), or _HtmlError."""
    out: list[str] = []
    stack: list[str] = []
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if c == "&":
            ch, i = _entity(text, i)
            out.append(ch)
            continue
        if c == ">":
            raise _HtmlError(f'Unescaped ">" at byte offset {_offset(text, i)}; write it as "&gt;"')
        if c != "<":
            out.append(c)
            i += 1
            continue
        begin = i
        if i + 1 < n and text[i + 1] == "/":
            if not stack:
                raise _HtmlError(f"Unexpected end tag at byte offset {_offset(text, begin)}")
            i += 2
            j = i
            while j < n and text[j] not in _SPACE and text[j] != ">":
                j += 1
            end_name = text[i:j].lower()
            while j < n and text[j] in _SPACE:
                j += 1
            if j >= n or text[j] != ">":
                raise _HtmlError(f"Unclosed end tag at byte offset {_offset(text, begin)}")
            expected = stack[-1]
            if end_name != expected:
                raise _HtmlError(
                    f'Unmatched end tag at byte offset {_offset(text, begin)}, expected "</{expected}>", '
                    f'found "</{end_name}>"'
                )
            stack.pop()
            i = j + 1
            continue
        name, attributes, i = _start_tag(text, begin)
        _check_arguments(name, attributes, text, begin)
        stack.append(name)
    if stack:
        raise _HtmlError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def telegram_html_error(text: str) -> str | None:
    """None when ``text`` is valid for ``parse_mode=HTML``, else the error Telegram gives,
    e.g. ``Bad Request: can't parse entities: Unsupported start tag "div" at byte offset 12``."""
    try:
        _parse(text)
    except _HtmlError as exc:
        return PARSE_ERROR + str(exc)
    return None


def telegram_plain_text(text: str) -> str:
    """The text a reader sees: tags removed, entities decoded. ValueError if the HTML is invalid."""
    try:
        return _parse(text)
    except _HtmlError as exc:
        raise ValueError(PARSE_ERROR + str(exc)) from None


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def telegram_text_length(text: str) -> int:
    """The length Telegram checks against 4,096 (text) or 1,024 (caption): the parsed text
    in UTF-16 code units, so an emoji outside the BMP counts 2. ValueError if invalid HTML."""
    return utf16_length(telegram_plain_text(text))


# -- the fake server ---------------------------------------------------------------------------

FLOOD = 429


class _Flood(Exception):
    """A flood limit was passed: answer 429 with ``retry_after``."""

    def __init__(self, seconds: int):
        super().__init__(seconds)
        self.seconds = seconds


@dataclass(frozen=True)
class SentMessage:
    """One message the fake accepted, as the bot sent it (before entity parsing)."""

    method: str  # sendMessage or sendPhoto
    chat_id: str  # as sent: "@name" or a numeric id
    message_id: int
    text: str | None = None  # sendMessage
    caption: str | None = None  # sendPhoto
    photo: str | None = None  # the URL (or file id) given for a photo
    parse_mode: str | None = None
    link_preview_options: dict[str, Any] | None = None


@dataclass
class _Fault:
    status: int
    description: str
    retry_after: int | None = None


_FAULT_TEXT = {
    FLOOD: "Too Many Requests: retry after {retry_after}",
    400: "Bad Request: message to be replied not found",
    403: "Forbidden: bot was kicked from the channel chat",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class FakeBotApi:
    """A real HTTP server on 127.0.0.1 that answers like api.telegram.org.

    Use it as a context manager (or call :meth:`start` / :meth:`stop`); give
    :attr:`base_url` and :attr:`token` to ``telegram.Bot``. It speaks the Bot API wire
    format: python-telegram-bot POSTs form-encoded parameters (non-string values JSON
    encoded), other clients JSON or multipart; answers are ``{"ok": true, "result": …}``
    or ``{"ok": false, "error_code": …, "description": …}`` with the HTTP status equal to
    the error code, as Telegram does.

    Known chats are "@tamtam_test" (a channel) and "-1001234567890" (the same channel by
    id) unless ``chats`` says otherwise; any other chat gets "chat not found".
    ``now`` is the Unix time put in every message's ``date``.
    """

    def __init__(
        self,
        token: str = "123456789:AAtamtam-test-token_0123456789abcdef",
        chats: dict[str, dict[str, Any]] | None = None,
        now: int = 1733140800,  # 2 December 2024, 12:00 UTC
        *,
        per_chat_limit: int = 20,
        per_chat_period: float = 60.0,
        per_second_limit: int = 30,
    ):
        """Telegram's flood limits are enforced as Telegram documents them: at most
        ``per_chat_limit`` messages in any ``per_chat_period`` seconds to one group or
        channel, and ``per_second_limit`` a second per bot; past either, 429 with
        ``retry_after``. Tests that are not about flood limits may loosen them."""
        self.token = token
        self.per_chat_limit, self.per_chat_period, self.per_second_limit = (
            per_chat_limit, per_chat_period, per_second_limit)
        self._chat_log: dict[int, list[float]] = {}  # chat id → monotonic times of accepted messages
        self._bot_log: list[float] = []
        self._accepted_at: dict[int, list[float]] = {}  # every accepted message's time, per chat
        #: the 429s the flood limits caused (a well-behaved client causes none)
        self.flood_refusals = 0
        self.now = now
        self.chats: dict[str, dict[str, Any]] = chats if chats is not None else {
            "@tamtam_test": {"id": -1001234567890, "type": "channel", "title": "Tamtam test", "username": "tamtam_test"},
            "-1001234567890": {"id": -1001234567890, "type": "channel", "title": "Tamtam test",
                               "username": "tamtam_test"},
        }
        self.unfetchable_photos: set[str] = set()
        self._lock = threading.Lock()
        self._sent: list[SentMessage] = []
        self._calls: list[str] = []
        self._faults: list[_Fault] = []
        self._delays: list[tuple[float, str | None]] = []  # (seconds, only for this method)
        self._drops = 0
        self._next_id = 1
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "FakeBotApi":
        self._closing.clear()
        handler = type("_Handler", (_Handler,), {"api": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-bot-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()  # wakes delayed answers so they do not outlive the test
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FakeBotApi":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "FakeBotApi is not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """For ``telegram.Bot(base_url=…)``: the token and method are appended to it."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # -- what happened ------------------------------------------------------------------------
    @property
    def sent(self) -> list[SentMessage]:
        """Every accepted message, in order (a copy)."""
        with self._lock:
            return list(self._sent)

    @property
    def calls(self) -> list[str]:
        """Every method called, accepted or not, in order (a copy)."""
        with self._lock:
            return list(self._calls)

    # -- fault injection ----------------------------------------------------------------------
    def fail_next(self, n: int = 1, status: int = FLOOD, retry_after: int = 3,
                  description: str | None = None) -> None:
        """Answer the next ``n`` calls with an error: 429 is Telegram's flood answer
        (``parameters.retry_after``), 403 "bot was kicked", 500, 502, or any status with
        ``description``."""
        text = description or _FAULT_TEXT.get(status, f"Error {status}")
        fault = _Fault(status, text.format(retry_after=retry_after), retry_after if status == FLOOD else None)
        with self._lock:
            self._faults.extend([fault] * n)

    def delay_next(self, seconds: float, n: int = 1, method: str | None = None) -> None:
        """Hold the answer to the next ``n`` calls (of ``method`` only, when given) for
        ``seconds``. The call is still carried out (a message is recorded as sent) — exactly
        the uncertain case of a post that went out while the client stopped waiting."""
        with self._lock:
            self._delays.extend([(seconds, method)] * n)

    def _take_delay(self, method: str) -> float:
        with self._lock:
            for i, (seconds, only) in enumerate(self._delays):
                if only in (None, method):
                    del self._delays[i]
                    return seconds
        return 0.0

    def drop_next(self, n: int = 1) -> None:
        """Carry out the next ``n`` calls but close the connection instead of answering
        (a proxy or mobile link dying mid-request): the client cannot know the outcome."""
        with self._lock:
            self._drops += n

    def _take_drop(self) -> bool:
        with self._lock:
            if self._drops:
                self._drops -= 1
                return True
            return False

    def refuse_photo(self, url: str) -> None:
        """Make ``url`` a photo Telegram cannot fetch."""
        with self._lock:
            self.unfetchable_photos.add(url)

    # -- the API ------------------------------------------------------------------------------
    def _take(self, queue: list[Any]) -> Any:
        with self._lock:
            return queue.pop(0) if queue else None

    def handle(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        """(HTTP status, JSON answer, seconds to wait before answering) for one call."""
        with self._lock:
            self._calls.append(method)
        delay = self._take_delay(method)
        fault = self._take(self._faults)
        if fault is not None:
            body: dict[str, Any] = {"ok": False, "error_code": fault.status, "description": fault.description}
            if fault.retry_after is not None:
                body["parameters"] = {"retry_after": fault.retry_after}
            return fault.status, body, delay
        try:
            if method == "getMe":
                result: Any = self._get_me()
            elif method == "sendMessage":
                result = self._send(method, params)
            elif method == "sendPhoto":
                result = self._send(method, params)
            else:
                return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}, delay
        except _BadRequest as exc:
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"}, delay
        except _Flood as exc:
            return FLOOD, {"ok": False, "error_code": FLOOD, "description": f"Too Many Requests: retry after {exc.seconds}",
                           "parameters": {"retry_after": exc.seconds}}, delay
        return 200, {"ok": True, "result": result}, delay

    def _flood_check(self, chat_id: int) -> None:
        """Count this message against the chat's and the bot's windows, or refuse it with 429."""
        now = time.monotonic()
        with self._lock:
            chat_log = [t for t in self._chat_log.get(chat_id, []) if now - t < self.per_chat_period]
            bot_log = [t for t in self._bot_log if now - t < 1.0]
            waits = []
            if len(chat_log) >= self.per_chat_limit:
                waits.append(self.per_chat_period - (now - chat_log[0]))
            if len(bot_log) >= self.per_second_limit:
                waits.append(1.0 - (now - bot_log[0]))
            if waits:
                self.flood_refusals += 1
                self._chat_log[chat_id], self._bot_log = chat_log, bot_log
                raise _Flood(max(1, math.ceil(max(waits))))
            self._chat_log[chat_id] = chat_log + [now]
            self._bot_log = bot_log + [now]

    def sends_in_window(self, chat_key: str, period: float) -> int:
        """The most messages any ``period`` seconds held for one chat (by when they were accepted)."""
        chat_id = int(self.chats[chat_key]["id"])
        with self._lock:
            times = sorted(self._accepted_at.get(chat_id, []))
        return max((sum(1 for u in times if t <= u < t + period) for t in times), default=0)

    def _get_me(self) -> dict[str, Any]:
        return {
            "id": int(self.token.split(":", 1)[0]), "is_bot": True, "first_name": "Tamtam test",
            "username": "tamtam_test_bot", "can_join_groups": True, "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        chat_key = str(params.get("chat_id", "")).strip()
        if not chat_key:
            raise _BadRequest("chat_id is empty")
        chat = self.chats.get(chat_key)
        if chat is None:
            raise _BadRequest("chat not found")
        parse_mode = params.get("parse_mode") or None
        photo = None
        if method == "sendMessage":
            body = str(params.get("text", ""))
            field, limit = "text", 4096
        else:
            photo = str(params.get("photo", "")).strip()
            if not photo:
                raise _BadRequest("there is no photo in the request")
            body = str(params.get("caption", ""))
            field, limit = "caption", 1024
        if parse_mode is None:
            plain = body
        elif str(parse_mode).lower() == "html":
            error = telegram_html_error(body)
            if error is not None:
                raise _BadRequest(error.removeprefix("Bad Request: "))
            plain = telegram_plain_text(body)
        else:
            raise _BadRequest(f"unsupported parse_mode {parse_mode!r} (this fake knows only HTML)")
        plain = plain.strip()
        if field == "text" and not plain:
            raise _BadRequest("message text is empty")
        if utf16_length(plain) > limit:
            raise _BadRequest("message is too long" if field == "text" else "message caption is too long")
        if photo is not None and (photo in self.unfetchable_photos or not re.match(r"^https?://", photo)):
            raise _BadRequest("wrong file identifier/HTTP URL specified")
        self._flood_check(int(chat["id"]))
        preview = params.get("link_preview_options")
        if isinstance(preview, str):
            try:
                preview = json.loads(preview)
            except ValueError:
                raise _BadRequest("can't parse link preview options JSON object") from None
        with self._lock:
            message_id = self._next_id
            self._next_id += 1
            self._accepted_at.setdefault(int(chat["id"]), []).append(time.monotonic())
            self._sent.append(SentMessage(
                method=method, chat_id=chat_key, message_id=message_id,
                text=body if field == "text" else None, caption=body if field == "caption" else None,
                photo=photo, parse_mode=parse_mode, link_preview_options=preview,
            ))
        result: dict[str, Any] = {"message_id": message_id, "date": self.now, "chat": dict(chat)}
        if chat.get("type") == "channel":
            result["sender_chat"] = dict(chat)
        if field == "text":
            result["text"] = plain
        else:
            result["photo"] = [
                {"file_id": f"AgAD-fake-{message_id}-s", "file_unique_id": f"fake{message_id}s",
                 "width": 90, "height": 60, "file_size": 1200},
                {"file_id": f"AgAD-fake-{message_id}-m", "file_unique_id": f"fake{message_id}m",
                 "width": 800, "height": 533, "file_size": 48000},
            ]
            if plain:
                result["caption"] = plain
        return result


class _BadRequest(Exception):
    pass


def _parse_body(content_type: str, raw: bytes) -> dict[str, Any]:
    """Form-encoded (what PTB sends), JSON, or multipart/form-data, as the Bot API accepts."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if not raw:
        return {}
    if kind == "application/json":
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("the JSON body is not an object")
        return data
    if kind == "multipart/form-data":
        msg = BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
        )
        out: dict[str, Any] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name:
                payload = part.get_payload(decode=True) or b""
                out[str(name)] = payload.decode("utf-8", "replace") if part.get_filename() is None else payload
        return out
    return {k: v[-1] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}


class _Handler(BaseHTTPRequestHandler):
    api: FakeBotApi
    server_version = "nginx/1.18.0"  # what api.telegram.org says
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # keep test output clean

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped waiting (read timeout): that is the point of a delay

    def _route(self) -> None:
        url = urlsplit(self.path)
        prefix = "/bot"
        if not url.path.startswith(prefix) or url.path.count("/") != 2:
            self._answer(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        token, _, method = url.path[len(prefix):].partition("/")
        if token != self.api.token:
            self._answer(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            params.update(_parse_body(self.headers.get("Content-Type", ""), raw))
        except (ValueError, UnicodeDecodeError) as exc:
            self._answer(400, {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"})
            return
        status, body, delay = self.api.handle(method, params)
        if self.api._take_drop():
            self.close_connection = True
            return  # no status line, no body: the client sees the connection close
        if delay and self.api._closing.wait(delay):
            return  # the fake is shutting down: drop the answer
        self._answer(status, body)

    do_GET = _route
    do_POST = _route
