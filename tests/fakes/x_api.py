"""A local look-alike of X's API v2 ``POST /2/tweets``, on 127.0.0.1, for tests.

It is a real HTTP server (stdlib ``ThreadingHTTPServer`` in a thread), so the X transport
is tested through tweepy, requests and a socket exactly as in production. It behaves as X
does where Tamtam depends on it:

* OAuth 1.0a user context: the ``Authorization: OAuth …`` header must name the configured
  consumer key and access token *and* carry a valid HMAC-SHA1 signature over the URL the
  client actually called (checked with oauthlib), else 401;
* answers 201 ``{"data": {"id": "<digits>", "text": …}}`` and records the post;
* refuses a text over 280 weighted characters, or holding a character X declares invalid,
  and a text identical to one already posted, with 403 and X's problem JSON (``detail``,
  ``type``, ``title``, ``status``), which is what tweepy turns into its exception message.
  The length is judged by :func:`weighted_length` below, written here from X's published
  rules and proven on twitter-text's own conformance cases, *not* the product's counter:
  a fake that measured with the code under test could only ever agree with it;
* fault injection: :meth:`FakeXApi.fail_next` answers the next posts with 429 (with the
  ``x-rate-limit-*`` headers) or any status such as 503, and :attr:`FakeXApi.delay` holds
  the answer back (after recording the post, as X would) to provoke a read timeout.
"""

from __future__ import annotations

import json
import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from oauthlib.oauth1 import Client as OAuth1Client
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849 import utils as oauth_utils


# -- X's weighted length ----------------------------------------------------------------------
#
# Written from X's published counting rules (docs.x.com "Counting characters", twitter-text's
# config files), independently of the product. The text is NFC-normalised; each code point
# weighs 100 when it falls in one of the config's ranges (Latin, general punctuation …) and
# 200 otherwise (CJK, emoji …); a URL weighs 23 whole whatever its length, and since config
# v3 an emoji sequence (a skin tone, a ZWJ family, a flag, a keycap) weighs 200 whole. The
# sum divided by the scale (100) must stay within 280. tests/channels/x proves this counter
# on twitter-text's official conformance cases.

MAX_WEIGHTED = 280


@dataclass(frozen=True)
class WeightConfig:
    """One twitter-text counting config."""

    max_length: int
    scale: int
    default_weight: int
    ranges: tuple[tuple[int, int, int], ...]  # (first code point, last, weight)
    url_length: int
    emoji_sequences: bool  # v3: an emoji sequence weighs default_weight as a whole


_RANGES = ((0, 4351, 100), (8192, 8205, 100), (8208, 8223, 100), (8242, 8247, 100))
CONFIGS = {
    "version2": WeightConfig(280, 100, 200, _RANGES, 23, emoji_sequences=False),
    "version3": WeightConfig(280, 100, 200, _RANGES, 23, emoji_sequences=True),  # what X uses today
}

#: Characters that make X refuse a post whatever its length.
INVALID_CHARACTERS = frozenset("\ufffe\ufeff\uffff")

# URLs. A host is dot-separated labels of letters, digits, '-' and '_', each at most 63
# characters once IDNA-encoded, ending in a top-level domain X knows. X knows every IANA
# TLD; this fake knows the two-letter country codes, the generic ones below and any
# non-ASCII (IDN) TLD, and, like X, not the reserved "example", "test" or "invalid" —
# so "https://echo.example/…" counts character by character, as it does on X.
_GENERIC_TLDS = frozenset("""
    aero africa app art asia bar biz blog cat club com coop dev edu gov info int jobs live media
    mil mobi museum name net news online org paris post pro shop site store tech tel travel xxx xyz
""".split())
_NOT_BEFORE = "A-Za-z0-9@＠$#＃\ufffe\ufeff\uffff"  # a URL never starts right after these
_WITH_SCHEME = re.compile(rf"(?<![{_NOT_BEFORE}])https?://(?P<host>[\w-]+(?:\.[\w-]+)+)(?::\d{{1,5}})?",
                          re.IGNORECASE)
# Without a scheme only an ASCII host counts, and not after '-', '_', '.' or '/' (nor in an address).
_WITHOUT_SCHEME = re.compile(rf"(?<![{_NOT_BEFORE}\-_./])(?P<host>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"
                             r"(?![\w-])(?::\d{1,5})?")
_PATH = re.compile(r"[/?#][\w\-.~!*'();:@&=+$,/?#%\[\]|]*")
_PATH_END = re.compile(r"[\w\-=#/+&)]")

# Emoji: a pictographic code point (the Unicode emoji blocks, and the older symbols that are
# emoji too, © ® ‼ ™ ↔ ⌚ ☺ …), with its presentation selector, skin tone and ZWJ partners.
_PICTO = ("[\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u2199\u21a9\u21aa\u231a\u231b\u2328\u23cf"
          "\u23e9-\u23f3\u23f8-\u23fa\u24c2\u25aa\u25ab\u25b6\u25c0\u25fb-\u25fe\u2600-\u27bf\u2934\u2935"
          "\u2b05-\u2b07\u2b1b\u2b1c\u2b50\u2b55\u3030\u303d\u3297\u3299\U0001f000-\U0001faff]")
_ELEMENT = _PICTO + "[\ufe0e\ufe0f]?[\U0001f3fb-\U0001f3ff]?\ufe0f?"
_EMOJI = re.compile(
    "[0-9#*]\ufe0f?\u20e3"  # keycap
    "|[\U0001f1e6-\U0001f1ff]{2}"  # flag: two regional indicators
    f"|{_PICTO}[\U000e0020-\U000e007e]+\U000e007f"  # tag sequence (the flag of England)
    f"|{_ELEMENT}(?:\u200d{_ELEMENT})*"  # one emoji, or a ZWJ sequence of them
)


def _label_ok(label: str) -> bool:
    if not label or label[0] == "-" or label[-1] == "-":
        return False
    encoded = label if label.isascii() else "xn--" + label.lower().encode("punycode").decode("ascii")
    return len(encoded) <= 63


def _tld_ok(tld: str, scheme: bool) -> bool:
    if tld.isascii():
        return tld.isalpha() and (len(tld) == 2 or tld.lower() in _GENERIC_TLDS)
    return scheme and tld.isalpha()


def _url_end(text: str, end: int) -> int:
    """Where a URL whose host ends at ``end`` ends: a path, query or fragment may follow,
    minus trailing punctuation (the full stop after a link is the sentence's)."""
    m = _PATH.match(text, end)
    if not m:
        return end
    tail = m.group(0)
    while tail and (not _PATH_END.fullmatch(tail[-1]) or (tail[-1] == ")" and tail.count("(") < tail.count(")"))):
        tail = tail[:-1]
    return end + len(tail)


def url_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every URL in ``text``, as X finds them."""
    spans: list[tuple[int, int]] = []
    for pattern, scheme in ((_WITH_SCHEME, True), (_WITHOUT_SCHEME, False)):
        for m in pattern.finditer(text):
            labels = m.group("host").split(".")
            if not all(_label_ok(label) for label in labels) or not _tld_ok(labels[-1], scheme):
                continue
            start, end = m.start(), _url_end(text, m.end())
            if not any(s < end and start < e for s, e in spans):
                spans.append((start, end))
    return sorted(spans)


@dataclass(frozen=True)
class Weighed:
    """What X makes of a text: its weighted length, whether it may be posted, and how full it is (‰)."""

    weighted_length: int
    valid: bool
    permillage: int


def weigh(text: str, config: str = "version3") -> Weighed:
    cfg = CONFIGS[config]
    text = unicodedata.normalize("NFC", text)
    whole: dict[int, tuple[int, int]] = {s: (e, cfg.url_length * cfg.scale) for s, e in url_spans(text)}
    if cfg.emoji_sequences:
        urls = list(whole.items())
        for m in _EMOJI.finditer(text):
            if not any(s < m.end() and m.start() < e for s, (e, _) in urls):
                whole[m.start()] = (m.end(), cfg.default_weight)
    total, i = 0, 0
    while i < len(text):
        if i in whole:
            i, weight = whole[i]
            total += weight
            continue
        cp = ord(text[i])
        total += next((w for lo, hi, w in cfg.ranges if lo <= cp <= hi), cfg.default_weight)
        i += 1
    length = total // cfg.scale
    valid = bool(text) and length <= cfg.max_length and not INVALID_CHARACTERS.intersection(text)
    return Weighed(length, valid, length * 1000 // cfg.max_length)


def weighted_length(text: str) -> int:
    """The length X counts for ``text`` (config v3)."""
    return weigh(text).weighted_length


DUPLICATE_DETAIL = "You are not allowed to create a Tweet with duplicate content."
TOO_LONG_DETAIL = (
    "Your Tweet text is too long. For more information on how Twitter determines text length "
    "see https://github.com/twitter/twitter-text."
)
# X's wording for this refusal is not documented; the fake's own words say what it refused.
INVALID_DETAIL = "Your Tweet text holds a character X does not accept (U+FFFE, U+FEFF or U+FFFF)."

_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass
class Post:
    """One post the fake accepted."""

    id: str
    text: str
    consumer_key: str
    access_token: str


@dataclass
class _Fault:
    status: int
    reset_in: float | None
    retry_after: float | None
    headers: dict[str, str] = field(default_factory=dict)


def problem(status: int, detail: str | None = None) -> dict[str, Any]:
    """X's RFC 7807-style error body."""
    title = _REASONS.get(status, "Error")
    return {"title": title, "detail": detail or title, "type": "about:blank", "status": status}


class FakeXApi:
    """Use as a context manager; :attr:`base_url` is what the transport's ``api_base_url`` gets."""

    def __init__(
        self,
        consumer_key: str = "test-consumer-key",
        consumer_secret: str = "test-consumer-secret",
        access_token: str = "test-access-token",
        access_token_secret: str = "test-access-token-secret",
        *,
        first_id: int = 1_863_000_000_000_000_000,
        check_signature: bool = True,
    ):
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.access_token = access_token
        self.access_token_secret = access_token_secret
        self.check_signature = check_signature
        #: seconds to hold every answer back (the post is recorded first)
        self.delay: float = 0.0
        self.posts: list[Post] = []
        #: every request seen: (method, path, status answered)
        self.requests: list[tuple[str, str, int]] = []
        self._next_id = first_id
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeXApi is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def texts(self) -> list[str]:
        return [p.text for p in self.posts]

    def fail_next(
        self,
        n: int = 1,
        status: int = 429,
        reset_in: float | None = 60,
        *,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``n`` posts with ``status`` instead of creating them. A 429 carries
        ``x-rate-limit-limit/remaining/reset`` (reset ``reset_in`` seconds from now, unless
        None) and ``retry-after`` when given; ``headers`` adds more (e.g. X's
        ``x-user-limit-24hour-*``)."""
        with self._lock:
            self._faults.extend(_Fault(status, reset_in, retry_after, dict(headers or {})) for _ in range(n))

    def start(self) -> "FakeXApi":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-x-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers held back by ``delay``
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeXApi":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the API ---------------------------------------------------------------------------
    def _check_auth(self, method: str, url: str, headers: dict[str, str]) -> str | None:
        """None when the OAuth 1.0a header is right, else why not."""
        header = headers.get("authorization", "")
        if not header.startswith("OAuth "):
            return "no OAuth 1.0a Authorization header"
        try:
            params = {k: oauth_utils.unescape(v) for k, v in oauth_utils.parse_authorization_header(header)}
        except ValueError as exc:
            return f"malformed OAuth header: {exc}"
        if params.get("oauth_consumer_key") != self.consumer_key:
            return "unknown consumer key"
        if params.get("oauth_token") != self.access_token:
            return "unknown access token"
        if params.get("oauth_signature_method") != "HMAC-SHA1":
            return "unsupported signature method"
        if self.check_signature:
            # A JSON body is not part of the OAuth 1.0a signature base string, only the
            # query and the oauth_* parameters are.
            query = urlsplit(url).query
            collected = oauth_signature.collect_parameters(
                uri_query=query, headers={"Authorization": header}, exclude_oauth_signature=True
            )
            base = oauth_signature.signature_base_string(
                method, oauth_signature.base_string_uri(url), oauth_signature.normalize_parameters(collected)
            )
            client = OAuth1Client(self.consumer_key, client_secret=self.consumer_secret,
                                  resource_owner_key=self.access_token,
                                  resource_owner_secret=self.access_token_secret)
            expected = oauth_signature.sign_hmac_sha1_with_client(base, client)
            if expected != params.get("oauth_signature"):
                return "bad OAuth signature"
        return None

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def handle(self, method: str, url: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], Any]:
        """(status, extra headers, JSON body) for one request."""
        path = urlsplit(url).path
        if (method, path) != ("POST", "/2/tweets"):
            return 404, {}, problem(404, f"no route {method} {path} in the fake X API")
        why = self._check_auth(method, url, headers)
        if why:
            return 401, {}, problem(401, "Unauthorized") | {"reason": why}
        try:
            payload = json.loads(body.decode("utf-8"))
            text = payload["text"]
            if not isinstance(text, str):
                raise TypeError("text must be a string")
            if not text.strip():
                raise ValueError("text must not be empty")
        except (ValueError, KeyError, TypeError) as exc:
            return 400, {}, {
                "errors": [{"message": f"invalid request body: {exc}"}],
                "title": "Invalid Request",
                "detail": "One or more parameters to your request was invalid.",
                "type": "https://api.twitter.com/2/problems/invalid-request",
            }
        fault = self._take_fault()
        if fault is not None:
            extra = dict(fault.headers)
            if fault.status == 429:
                extra.setdefault("x-rate-limit-limit", "200")
                extra.setdefault("x-rate-limit-remaining", "0")
                if fault.reset_in is not None:
                    extra.setdefault("x-rate-limit-reset", str(int(time.time() + fault.reset_in)))
            if fault.retry_after is not None:
                extra["retry-after"] = str(int(fault.retry_after))
            return fault.status, extra, problem(fault.status)
        with self._lock:
            weighed = weigh(text)
            if not weighed.valid:
                too_long = weighed.weighted_length > MAX_WEIGHTED
                return 403, {}, problem(403, TOO_LONG_DETAIL if too_long else INVALID_DETAIL)
            if any(p.text == text for p in self.posts):
                return 403, {}, problem(403, DUPLICATE_DETAIL)
            post = Post(str(self._next_id), text, self.consumer_key, self.access_token)
            self._next_id += 1
            self.posts.append(post)
        if self.delay:
            self._stopping.wait(self.delay)
        return 201, {}, {"data": {"id": post.id, "text": post.text, "edit_history_tweet_ids": [post.id]}}


def _make_handler(api: FakeXApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            host = self.headers.get("Host") or "%s:%s" % self.server.server_address[:2]
            url = f"http://{host}{self.path}"
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, payload = api.handle(self.command, url, headers, body)
            api.requests.append((self.command, urlsplit(url).path, status))
            data = json.dumps(payload).encode("utf-8")
            try:
                self.send_response(status, _REASONS.get(status))
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (read timeout): nothing to answer to

        do_POST = do_GET = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass

    return Handler
