"""A real HTTP server for ingestion tests: stdlib ThreadingHTTPServer on 127.0.0.1, port 0.

It serves registered feeds with ETag and Last-Modified and answers 304 to a matching
conditional request, and records the headers of every request so a test can check that
the *second* poll is conditional. Fixed misbehaving endpoints cover what real publishers'
servers do: slowness, endless or oversize bodies, gzip, gzip bombs, errors, redirects and
HTML pages where a feed should be.

Use it as a context manager (``with FeedServer() as srv: srv.url("/feed.xml")``) or through
the ``feed_server`` fixture (import it into the test module).
"""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

HTML_PAGE = (b"<!DOCTYPE html><html lang=\"fr\"><head><title>Accueil</title></head>"
             b"<body><h1>L'\xc3\x89cho du Sahel</h1><p>Bienvenue.</p></body></html>")


@dataclass
class Route:
    body: bytes
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    gzip: bool = False  # send the body gzip-compressed with Content-Encoding: gzip
    headers: dict[str, str] = field(default_factory=dict)  # extra headers, sent as they are


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # header names lower-cased

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class FeedServer:
    """The server and what it has seen. Routes can be changed while it runs."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    slow_seconds: float = 5.0  # how long /slow waits before answering (released at shutdown)
    big_bytes: int = 20_000_000  # how much /big would send if the client kept reading
    bomb_bytes: int = 20_000_000  # decoded size of /bomb
    host: str = "127.0.0.1"  # any loopback address: 127.0.0.2 plays "another host on this machine"

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._bomb: bytes | None = None

    # -- setup --------------------------------------------------------------------------
    def add_feed(self, path: str, body: bytes, *, content_type: str = "application/rss+xml; charset=utf-8",
                 etag: str | None = None, last_modified: str | None = None, gzip: bool = False,
                 headers: dict[str, str] | None = None) -> str:
        """Serve ``body`` at ``path``; returns its full URL."""
        self.routes[path] = Route(body, content_type, etag, last_modified, gzip, dict(headers or {}))
        return self.url(path)

    def url(self, path: str) -> str:
        assert self._server is not None, "the server is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0] == path]

    def bomb(self) -> bytes:
        if self._bomb is None:
            self._bomb = gzip.compress(b"\0" * self.bomb_bytes, compresslevel=9)
        return self._bomb

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "FeedServer":
        server = ThreadingHTTPServer((self.host, 0), _make_handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="feed-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FeedServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(req)


def _make_handler(srv: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            srv._record(RecordedRequest("GET", self.path, {k.lower(): v for k, v in self.headers.items()}))
            path = self.path.split("?")[0]
            try:
                self._route(path)
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                self.close_connection = True  # the client gave up, as it should past its cap

        # -- endpoints ---------------------------------------------------------------------
        def _route(self, path: str) -> None:
            if path in srv.routes:
                return self._feed(srv.routes[path])
            if path == "/slow":
                srv._stop.wait(srv.slow_seconds)
                return self._send(200, b"<rss version='2.0'><channel></channel></rss>", "application/rss+xml")
            if path == "/drip":
                return self._drip()
            if path == "/big":
                return self._big()
            if path == "/big-declared":
                # Honest Content-Length over the cap: the client can refuse before reading.
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(srv.big_bytes))
                self.end_headers()
                self.close_connection = True
                return
            if path == "/bomb":
                body = srv.bomb()
                return self._send(200, body, "application/rss+xml", extra={"Content-Encoding": "gzip"})
            if path == "/html":
                return self._send(200, HTML_PAGE, "text/html; charset=utf-8")
            if path.startswith("/status/"):
                code = int(path.rsplit("/", 1)[1])
                return self._send(code, f"status {code}".encode(), "text/plain")
            if path.startswith("/redirect/"):
                # /redirect/<target path> → 302 to that path on this server
                target = path[len("/redirect"):]
                return self._send(302, b"", "text/plain", extra={"Location": target})
            if path == "/redirect-to":
                # /redirect-to?url=<absolute URL> → 302 there (another host, say)
                target = parse_qs(urlsplit(self.path).query)["url"][0]
                return self._send(302, b"", "text/plain", extra={"Location": target})
            if path == "/loop":
                return self._send(302, b"", "text/plain", extra={"Location": "/loop"})
            return self._send(404, b"not found", "text/plain")

        def _feed(self, route: Route) -> None:
            inm = self.headers.get("If-None-Match")
            ims = self.headers.get("If-Modified-Since")
            validators = {}
            if route.etag:
                validators["ETag"] = route.etag
            if route.last_modified:
                validators["Last-Modified"] = route.last_modified
            # RFC 9110: If-None-Match wins when both are sent.
            if inm is not None and route.etag:
                if route.etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*":
                    return self._send(304, b"", None, extra=validators)
            elif ims is not None and route.last_modified and ims == route.last_modified:
                return self._send(304, b"", None, extra=validators)
            body, extra = route.body, {**validators, **route.headers}
            if route.gzip:
                body = gzip.compress(body)
                extra["Content-Encoding"] = "gzip"
            return self._send(200, body, route.content_type, extra=extra)

        def _drip(self) -> None:
            """Headers at once, then a byte every 0.1 s: each read is quick, the whole never ends."""
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._chunk(b"<rss version='2.0'><channel>")
            while not srv._stop.wait(0.1):
                self._chunk(b" ")

        def _big(self) -> None:
            """Chunked, no Content-Length: only counting while reading can catch this."""
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self._chunk(b"<rss version='2.0'><channel><title>big</title>")
            block = b"<item><title>x</title></item>" * 2000
            sent = 0
            while sent < srv.big_bytes and not srv._stop.is_set():
                self._chunk(block)
                sent += len(block)
            self._chunk(b"</channel></rss>")
            self.wfile.write(b"0\r\n\r\n")

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _send(self, code: int, body: bytes, content_type: str | None,
                  extra: dict[str, str] | None = None) -> None:
            self.send_response(code)
            if content_type:
                self.send_header("Content-Type", content_type)
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            if code != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if code != 304 and body:
                self.wfile.write(body)

    return Handler


def http_date(ts: float | None = None) -> str:
    """An HTTP date (for Last-Modified) — a fixed timestamp keeps tests deterministic."""
    return formatdate(time.time() if ts is None else ts, usegmt=True)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as srv:
        yield srv
