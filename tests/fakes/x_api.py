"""A local look-alike of X's API v2 ``POST /2/tweets``, on 127.0.0.1, for tests.

It is a real HTTP server (stdlib ``ThreadingHTTPServer`` in a thread), so the X transport
is tested through tweepy, requests and a socket exactly as in production. It behaves as X
does where Tamtam depends on it:

* OAuth 1.0a user context: the ``Authorization: OAuth …`` header must name the configured
  consumer key and access token *and* carry a valid HMAC-SHA1 signature over the URL the
  client actually called (checked with oauthlib), else 401;
* answers 201 ``{"data": {"id": "<digits>", "text": …}}`` and records the post;
* refuses a text over 280 weighted characters (twitter-text rules) and a text identical to
  one already posted, with 403 and X's problem JSON (``detail``, ``type``, ``title``,
  ``status``), which is what tweepy turns into its exception message;
* fault injection: :meth:`FakeXApi.fail_next` answers the next posts with 429 (with the
  ``x-rate-limit-*`` headers) or any status such as 503, and :attr:`FakeXApi.delay` holds
  the answer back (after recording the post, as X would) to provoke a read timeout.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from oauthlib.oauth1 import Client as OAuth1Client
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849 import utils as oauth_utils

from bot.render.tweet import MAX_WEIGHTED, weighted_length

DUPLICATE_DETAIL = "You are not allowed to create a Tweet with duplicate content."
TOO_LONG_DETAIL = (
    "Your Tweet text is too long. For more information on how Twitter determines text length "
    "see https://github.com/twitter/twitter-text."
)

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
            if weighted_length(text) > MAX_WEIGHTED:
                return 403, {}, problem(403, TOO_LONG_DETAIL)
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
