"""Getting a source's bytes: HTTP(S) with httpx, or a local file.

Polite and defensive at once: a conditional GET (ETag / Last-Modified) so an unchanged
feed costs the publisher one 304, a User-Agent that says who we are, bounded redirects,
one overall deadline, and a hard cap on the bytes we accept, counted *after*
decompression while streaming, so neither a lying Content-Length nor a gzip bomb can
make the bot swallow gigabytes. Every failure becomes a ``SourceError`` whose text a
newsroom admin can act on.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import zlib
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import httpx

from ..config import Source
from ..errors import SourceError
from ..models import Article
from ..net import RefusedAddress, guarded_client
from ..settings import format_duration
from .parse import FeedStream

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "Tamtam/0.1 (+newsletter bot)"
MAX_REDIRECTS = 5
ACCEPT = ("application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
          "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5")


@dataclass(frozen=True)
class FetchResult:
    not_modified: bool  # True on HTTP 304 (articles is then empty)
    # Newest first, as in the feed: a list, or for a feed of more than CHUNK entries an
    # ArticleStream, read once, that the parsing thread fills while the caller stores.
    articles: Iterable[Article]
    etag: str | None  # to send next time
    last_modified: str | None  # to send next time
    url: str  # final URL after redirects (or the file path)


#: Articles handed over at a time by the parsing thread; a feed of up to this many entries
#: is parsed whole before fetch_source returns, as a list.
CHUNK = 250
_END = object()


class _Pipe:
    """What the parsing thread and the reader share: a short queue of chunks, so a long
    feed is never held as Articles all at once, and a flag to stop the thread when the
    reader leaves early."""

    def __init__(self) -> None:
        self.chunks: queue.Queue[object] = queue.Queue(maxsize=1)
        self.closed = threading.Event()

    def put(self, item: object) -> bool:
        while not self.closed.is_set():
            try:
                self.chunks.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False


class ArticleStream:
    """The articles of a long feed, parsed in a thread while they are read (once).

    Parsing goes on while the caller stores the chunk before, and at most a few chunks
    wait in between. Every document-level error was raised by fetch_source already; an
    unexpected failure later ends the stream early, logged, with what came before kept."""

    def __init__(self, source_id: str, first: list[Article], rest: Iterator[Article]):
        self.source_id = source_id
        self._first: list[Article] | None = first
        self._pipe = _Pipe()
        self._thread = threading.Thread(target=_produce, args=(self._pipe, rest, source_id), daemon=True,
                                         name=f"tamtam-parse-{source_id}")
        self._thread.start()

    def __iter__(self) -> Iterator[Article]:
        first, self._first = self._first, None
        if first is None:
            raise RuntimeError("an ArticleStream is read once")
        try:
            yield from first
            del first
            while True:
                chunk = self._pipe.chunks.get()
                if chunk is _END:
                    return
                yield from chunk  # type: ignore[misc]
        finally:
            self.close()

    def close(self) -> None:
        """Stop the parsing thread (the rest of the feed is not read)."""
        self._pipe.closed.set()
        try:
            while True:
                self._pipe.chunks.get_nowait()
        except queue.Empty:
            pass

    def __del__(self) -> None:
        self._pipe.closed.set()


def _produce(pipe: _Pipe, articles: Iterator[Article], source_id: str) -> None:
    try:
        while not pipe.closed.is_set():
            chunk = list(islice(articles, CHUNK))
            if not chunk or not pipe.put(chunk):
                break
    except Exception:  # noqa: BLE001 - nothing may escape a thread; the reader gets what came before
        log.exception("source %s: reading the feed failed partway; the articles before are kept", source_id)
    finally:
        pipe.put(_END)


def _read_articles(data: bytes, *, source_id: str, base_url: str, now: datetime,
                   content_type: str | None) -> Iterable[Article]:
    """The feed's articles: a list for a short feed, else a stream parsed in a thread.
    Raises SourceError for a document that is not a readable feed."""
    stream = iter(FeedStream(data, source_id=source_id, base_url=base_url, now=now, content_type=content_type))
    del data
    first = list(islice(stream, CHUNK))
    if len(first) < CHUNK:
        return first
    return ArticleStream(source_id, first, stream)


async def fetch_source(source: Source, *, etag: str | None, last_modified: str | None, now: datetime,
                       base_dir: Path, client: httpx.AsyncClient | None = None) -> FetchResult:
    """Fetch and parse one source. Raises only ``SourceError``.

    ``client`` is for tests and callers with their own client; without one, a client that
    refuses redirects to internal addresses (:func:`bot.net.guarded_client`) is used."""
    try:
        if _is_web(source.url):
            return await _fetch_http(source, etag=etag, last_modified=last_modified, now=now, client=client)
        # Disk reads and parsing are blocking work; a thread keeps other sources' polls moving.
        return await asyncio.to_thread(_fetch_file, source, now=now, base_dir=Path(base_dir))
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - the contract: nothing but SourceError leaves this function
        raise SourceError(source.id, f"unexpected failure while reading {source.url}: {exc!r}") from exc


def _is_web(url: str) -> bool:
    return urlsplit(url).scheme.lower() in ("http", "https")


# -- local files ---------------------------------------------------------------------------

def _file_path(url: str, base_dir: Path) -> Path:
    parts = urlsplit(url)
    if parts.scheme.lower() == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file URL on another host ({parts.netloc}) is not supported")
        return Path(url2pathname(unquote(parts.path)))
    path = Path(url).expanduser()
    return path if path.is_absolute() else base_dir / path


def _fetch_file(source: Source, *, now: datetime, base_dir: Path) -> FetchResult:
    """A feed on disk (the demo, tests, or a feed another tool writes). No conditional
    logic: reading a local file is cheap and the store deduplicates."""
    try:
        path = _file_path(source.url, base_dir)
    except ValueError as exc:
        raise SourceError(source.id, str(exc)) from exc
    try:
        with path.open("rb") as fh:
            data = fh.read(source.max_bytes + 1)
    except FileNotFoundError as exc:
        raise SourceError(source.id, f"feed file {str(path)!r} not found") from exc
    except IsADirectoryError as exc:
        raise SourceError(source.id, f"{str(path)!r} is a folder, not a feed file") from exc
    except OSError as exc:
        raise SourceError(source.id, f"feed file {str(path)!r} cannot be read: {exc.strerror or exc}") from exc
    if len(data) > source.max_bytes:
        raise SourceError(source.id, f"feed file {str(path)!r} is larger than {_size(source.max_bytes)} "
                                     f"(max_bytes); raise the limit if the feed is really that big")
    content_type = "application/feed+json" if path.suffix.lower() == ".json" else None
    articles = _read_articles(data, source_id=source.id, base_url=str(path), now=now, content_type=content_type)
    return FetchResult(not_modified=False, articles=articles, etag=None, last_modified=None, url=str(path))


# -- HTTP -----------------------------------------------------------------------------------

def _size(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:g} MB"
    if n >= 1000:
        return f"{n / 1000:g} kB"
    return f"{n} bytes"


class _TooLarge(Exception):
    pass


class _Decoder:
    """Content-Encoding decoder that never produces more than ``cap`` bytes in total.

    httpx would decompress each network chunk in one go, so a small gzip bomb could
    expand to gigabytes in memory before any check; zlib's ``max_length`` lets us stop
    at the cap instead.
    """

    def __init__(self, encoding: str, cap: int):
        self.cap = cap
        self.total = 0
        self.parts: list[bytes] = []
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip() and c.strip().lower() != "identity"]
        if len(codings) > 1:
            raise ValueError(f"stacked content encodings {encoding!r} are not supported")
        self.coding = codings[0] if codings else None
        if self.coding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.coding == "deflate":
            self._z = zlib.decompressobj(zlib.MAX_WBITS)  # switched to raw deflate if needed
            self._first = True
        elif self.coding is None:
            self._z = None
        else:
            raise ValueError(f"the server used content encoding {self.coding!r}, which Tamtam does not decode")

    def _keep(self, out: bytes) -> None:
        self.total += len(out)
        if self.total > self.cap:
            raise _TooLarge()
        if out:
            self.parts.append(out)

    def feed(self, chunk: bytes) -> None:
        if self._z is None:
            self._keep(chunk)
            return
        if self.coding == "deflate" and self._first and chunk:
            self._first = False
            try:
                probe = zlib.decompressobj(zlib.MAX_WBITS)
                probe.decompress(chunk[:2])
            except zlib.error:
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)  # servers that send raw deflate
        data = chunk
        while data:
            out = self._z.decompress(data, self.cap - self.total + 1)
            self._keep(out)
            data = self._z.unconsumed_tail

    def finish(self) -> bytes:
        if self._z is not None:
            self._keep(self._z.flush())
        return b"".join(self.parts)


def _reason(response: httpx.Response) -> str:
    status = response.status_code
    phrase = response.reason_phrase or ""
    hint = {
        401: "the feed needs a login",
        403: "the server refuses the bot (check the User-Agent or a firewall)",
        404: "the feed address does not exist (check the URL)",
        410: "the feed was removed",
        429: "the server asks us to poll less often",
    }.get(status, "the publisher's server has a problem" if status >= 500 else "")
    return f"HTTP {status} {phrase}".rstrip() + (f": {hint}" if hint else "")


async def _fetch_http(source: Source, *, etag: str | None, last_modified: str | None, now: datetime,
                      client: httpx.AsyncClient | None) -> FetchResult:
    seconds = source.timeout.total_seconds()
    headers = {
        "User-Agent": source.user_agent or DEFAULT_USER_AGENT,
        "Accept": ACCEPT,
        "Accept-Encoding": "gzip, deflate",
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    own = client is None
    if client is None:
        # Redirects are followed, but only to public addresses unless they stay on the feed's host.
        client = guarded_client(source.url, follow_redirects=True, max_redirects=MAX_REDIRECTS, timeout=seconds)
    try:
        async with asyncio.timeout(seconds):
            result = await _get(client, source, headers, etag=etag, last_modified=last_modified, timeout=seconds)
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise SourceError(source.id, f"no complete answer from {source.url} within {format_duration(source.timeout)} "
                                     f"(timeout); the server is slow or unreachable") from exc
    except RefusedAddress as exc:
        raise SourceError(source.id, str(exc)) from exc
    except httpx.TooManyRedirects as exc:
        raise SourceError(source.id, f"{source.url} redirects too many times (more than {MAX_REDIRECTS})") from exc
    except httpx.ConnectError as exc:
        raise SourceError(source.id, f"cannot connect to {urlsplit(source.url).netloc}: "
                                     f"{_cause(exc)} (is the address right and the site up?)") from exc
    except httpx.UnsupportedProtocol as exc:
        raise SourceError(source.id, f"{source.url}: a redirect led to an address that is not http(s)") from exc
    except httpx.InvalidURL as exc:
        raise SourceError(source.id, f"{source.url} is not a valid address: {exc}") from exc
    except httpx.DecodingError as exc:
        raise SourceError(source.id, f"the answer from {source.url} is corrupt: {exc}") from exc
    except httpx.HTTPError as exc:
        raise SourceError(source.id, f"network error while reading {source.url}: {_cause(exc)}") from exc
    finally:
        if own:
            await client.aclose()
    if isinstance(result, FetchResult):
        return result
    # Parsing is CPU work: run it in a thread, outside the network deadline, so a large feed
    # neither blocks the other polls nor counts as slow.
    articles = await asyncio.to_thread(_read_articles, result.data, source_id=source.id, base_url=result.url,
                                       now=now, content_type=result.content_type)
    return FetchResult(False, articles, result.etag, result.last_modified, result.url)


@dataclass(frozen=True)
class _Body:
    data: bytes
    url: str
    content_type: str | None
    etag: str | None
    last_modified: str | None


def _cause(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


async def _get(client: httpx.AsyncClient, source: Source, headers: dict[str, str], *, etag: str | None,
               last_modified: str | None, timeout: float) -> FetchResult | _Body:
    """One GET, streamed under the byte cap. A 304 gives the FetchResult, a 200 the body."""
    async with client.stream("GET", source.url, headers=headers, follow_redirects=True,
                             timeout=timeout) as response:
        final_url = str(response.url)
        new_etag = response.headers.get("ETag") or etag
        new_modified = response.headers.get("Last-Modified") or last_modified
        if response.status_code == 304:
            return FetchResult(True, [], new_etag, new_modified, final_url)
        if response.status_code >= 400:
            raise SourceError(source.id, f"{_reason(response)} ({final_url})")
        if response.status_code >= 300:
            raise SourceError(source.id, f"HTTP {response.status_code} redirect without a usable Location "
                                         f"({final_url})")
        cap = source.max_bytes
        declared = response.headers.get("Content-Length")
        too_big = SourceError(source.id, f"the feed at {final_url} is larger than {_size(cap)} (max_bytes); "
                                         f"raise the limit if the feed is really that big")
        if declared and declared.isdigit() and not response.headers.get("Content-Encoding") and int(declared) > cap:
            raise too_big
        try:
            decoder = _Decoder(response.headers.get("Content-Encoding", ""), cap)
        except ValueError as exc:
            raise SourceError(source.id, str(exc)) from exc
        received = 0
        try:
            async for chunk in response.aiter_raw():
                received += len(chunk)
                if received > cap:  # compressed bytes count too: never read more than the cap off the wire
                    raise _TooLarge()
                decoder.feed(chunk)
            data = decoder.finish()
        except _TooLarge:
            raise too_big from None
        except zlib.error as exc:
            raise SourceError(source.id, f"the answer from {final_url} claims to be compressed "
                                         f"but cannot be decompressed ({exc})") from exc
        content_type = response.headers.get("Content-Type")
    return _Body(data, final_url, content_type, response.headers.get("ETag"), response.headers.get("Last-Modified"))
