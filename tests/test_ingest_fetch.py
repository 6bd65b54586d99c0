"""fetch_source against a real local HTTP server (tests/fakes/feed_server.py) and local files."""

from __future__ import annotations

import zlib
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from bot.config import Source
from bot.errors import SourceError
from bot.ingest import DEFAULT_USER_AGENT, FetchResult, fetch_source
from tests.fakes.feed_server import FeedServer, feed_server  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "config" / "demo" / "feed.xml"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
ETAG = '"v1-48213"'
LAST_MODIFIED = "Mon, 30 Nov 2026 07:45:12 GMT"


def source(url: str, **kw: object) -> Source:
    return Source(id="echo", url=url, **kw)


async def fetch(src: Source, etag: str | None = None, last_modified: str | None = None,
                client: httpx.AsyncClient | None = None) -> FetchResult:
    return await fetch_source(src, etag=etag, last_modified=last_modified, now=NOW, base_dir=ROOT, client=client)


# -- conditional GET ------------------------------------------------------------------------------

async def test_second_poll_is_conditional_and_gets_304(feed_server: FeedServer) -> None:
    url = feed_server.add_feed("/feed/", DEMO.read_bytes(), etag=ETAG, last_modified=LAST_MODIFIED)
    first = await fetch(source(url))
    assert not first.not_modified and len(first.articles) >= 10
    assert (first.etag, first.last_modified, first.url) == (ETAG, LAST_MODIFIED, url)
    assert first.articles[0].title.startswith("Budget 2027 : l’Assemblée")

    second = await fetch(source(url), etag=first.etag, last_modified=first.last_modified)
    assert second.not_modified and second.articles == []
    assert (second.etag, second.last_modified) == (ETAG, LAST_MODIFIED)

    one, two = feed_server.requests_to("/feed/")
    assert one.header("If-None-Match") is None and one.header("If-Modified-Since") is None
    assert two.header("If-None-Match") == ETAG
    assert two.header("If-Modified-Since") == LAST_MODIFIED
    assert one.header("User-Agent") == DEFAULT_USER_AGENT
    assert "gzip" in (one.header("Accept-Encoding") or "")


async def test_changed_feed_is_fetched_again_with_new_validators(feed_server: FeedServer) -> None:
    url = feed_server.add_feed("/feed/", DEMO.read_bytes(), etag=ETAG, last_modified=LAST_MODIFIED)
    first = await fetch(source(url))
    feed_server.add_feed("/feed/", DEMO.read_bytes(), etag='"v2"', last_modified="Tue, 01 Dec 2026 07:00:00 GMT")
    again = await fetch(source(url), etag=first.etag, last_modified=first.last_modified)
    assert not again.not_modified and len(again.articles) == len(first.articles)
    assert (again.etag, again.last_modified) == ('"v2"', "Tue, 01 Dec 2026 07:00:00 GMT")


async def test_last_modified_alone_also_gives_304(feed_server: FeedServer) -> None:
    url = feed_server.add_feed("/lm.xml", DEMO.read_bytes(), last_modified=LAST_MODIFIED)
    first = await fetch(source(url))
    assert first.etag is None and first.last_modified == LAST_MODIFIED
    second = await fetch(source(url), etag=None, last_modified=first.last_modified)
    assert second.not_modified
    assert feed_server.requests_to("/lm.xml")[1].header("If-None-Match") is None


async def test_custom_user_agent(feed_server: FeedServer) -> None:
    url = feed_server.add_feed("/feed/", DEMO.read_bytes())
    await fetch(source(url, user_agent="EchoBot/2.0 (+https://echo-du-sahel.example/bot)"))
    assert feed_server.requests[-1].header("User-Agent") == "EchoBot/2.0 (+https://echo-du-sahel.example/bot)"


async def test_a_given_client_is_used_and_left_open(feed_server: FeedServer) -> None:
    url = feed_server.add_feed("/feed/", DEMO.read_bytes(), etag=ETAG)
    async with httpx.AsyncClient() as client:
        r1 = await fetch(source(url), client=client)
        r2 = await fetch(source(url), etag=r1.etag, client=client)
        assert not client.is_closed
    assert r2.not_modified


# -- formats and transport details ----------------------------------------------------------------

async def test_gzip_response_is_decoded(feed_server: FeedServer) -> None:
    url = feed_server.add_feed("/gz.xml", DEMO.read_bytes(), gzip=True)
    result = await fetch(source(url))
    assert len(result.articles) >= 10
    assert any(a.title.startswith("Sécurité & développement") for a in result.articles)


async def test_json_feed_over_http_by_content_type(feed_server: FeedServer) -> None:
    body = (ROOT / "tests" / "data" / "feeds" / "jsonfeed.json").read_bytes()
    url = feed_server.add_feed("/feed.json", body, content_type="application/feed+json")
    result = await fetch(source(url))
    assert [a.guid for a in result.articles][:2] == ["https://sahel-eco.example/?p=901", "echo:902"]


async def test_redirect_is_followed_and_final_url_reported(feed_server: FeedServer) -> None:
    feed_server.add_feed("/nouveau-flux/", DEMO.read_bytes())
    result = await fetch(source(feed_server.url("/redirect/nouveau-flux/")))
    assert result.url == feed_server.url("/nouveau-flux/")
    assert len(result.articles) >= 10


async def test_redirect_loop_is_a_source_error(feed_server: FeedServer) -> None:
    with pytest.raises(SourceError, match="redirects too many times"):
        await fetch(source(feed_server.url("/loop")))


async def test_latin1_feed_decoded_from_the_http_charset(feed_server: FeedServer) -> None:
    body = ("<?xml version='1.0'?><rss version='2.0'><channel><item><title>Ségou : fête à Niono</title>"
            "<guid isPermaLink='false'>1</guid></item></channel></rss>").encode("iso-8859-1")
    url = feed_server.add_feed("/latin1.xml", body, content_type="text/xml; charset=iso-8859-1")
    (article,) = (await fetch(source(url))).articles
    assert article.title == "Ségou : fête à Niono"


# -- failures: always SourceError, always readable -------------------------------------------------

@pytest.mark.parametrize("path, reason", [
    ("/status/404", "HTTP 404 Not Found: the feed address does not exist"),
    ("/status/500", "HTTP 500 Internal Server Error: the publisher's server has a problem"),
    ("/status/403", "HTTP 403 Forbidden"),
    ("/html", "web page \\(HTML\\), not an RSS, Atom or JSON feed"),
])
async def test_http_errors_and_html_pages(feed_server: FeedServer, path: str, reason: str) -> None:
    with pytest.raises(SourceError, match=reason) as info:
        await fetch(source(feed_server.url(path)))
    assert info.value.source_id == "echo"
    assert str(info.value).startswith("source 'echo': ")


async def test_slow_server_times_out(feed_server: FeedServer) -> None:
    with pytest.raises(SourceError, match=r"within 1s \(timeout\)"):
        await fetch(source(feed_server.url("/slow"), timeout="1s"))


async def test_endless_trickle_hits_the_overall_deadline(feed_server: FeedServer) -> None:
    """Each read is quick, so only a deadline on the whole fetch stops this."""
    with pytest.raises(SourceError, match="timeout"):
        await fetch(source(feed_server.url("/drip"), timeout="1s"))


async def test_oversize_chunked_body_is_cut_while_streaming(feed_server: FeedServer) -> None:
    with pytest.raises(SourceError, match="larger than 100 kB \\(max_bytes\\)"):
        await fetch(source(feed_server.url("/big"), max_bytes=100_000))
    request = feed_server.requests_to("/big")[0]
    assert request.header("Range") is None  # we did not ask for less; we stopped reading


async def test_declared_oversize_body_is_refused_before_reading(feed_server: FeedServer) -> None:
    with pytest.raises(SourceError, match="larger than 100 kB"):
        await fetch(source(feed_server.url("/big-declared"), max_bytes=100_000))


async def test_gzip_bomb_counts_decoded_bytes(feed_server: FeedServer) -> None:
    feed_server.bomb_bytes = 20_000_000
    assert len(feed_server.bomb()) < 1_000_000  # small on the wire…
    with pytest.raises(SourceError, match="larger than 1 MB"):  # …too big once decoded
        await fetch(source(feed_server.url("/bomb"), max_bytes=1_000_000))


async def test_connection_refused() -> None:
    with FeedServer() as srv:
        url = srv.url("/feed/")
    with pytest.raises(SourceError, match="cannot connect to 127.0.0.1"):
        await fetch(source(url))


@pytest.mark.parametrize("encoding, body, reason", [
    ("gzip", b"\x1f\x8b\x08\x00 certainly not gzip", "cannot be decompressed"),
    ("deflate", b"ni deflate ni zlib", "cannot be decompressed"),
    ("br", b"whatever", "content encoding 'br'"),
])
async def test_bad_or_unknown_compression(feed_server: FeedServer, encoding: str, body: bytes, reason: str) -> None:
    url = feed_server.add_feed("/enc.xml", body, headers={"Content-Encoding": encoding})
    with pytest.raises(SourceError, match=reason):
        await fetch(source(url))


@pytest.mark.parametrize("compress", [zlib.compress, lambda b: zlib.compress(b)[2:-4]], ids=["zlib", "raw"])
async def test_deflate_both_flavours(feed_server: FeedServer, compress) -> None:  # type: ignore[no-untyped-def]
    url = feed_server.add_feed("/deflate.xml", compress(DEMO.read_bytes()), headers={"Content-Encoding": "deflate"})
    assert len((await fetch(source(url))).articles) >= 10


# -- local files ---------------------------------------------------------------------------------

async def test_relative_file_path_resolves_against_base_dir() -> None:
    result = await fetch(source("config/demo/feed.xml"))
    assert not result.not_modified and len(result.articles) >= 10
    assert result.url == str(DEMO)
    assert (result.etag, result.last_modified) == (None, None)


async def test_file_url(tmp_path: Path) -> None:
    target = tmp_path / "dossier avec espace" / "flux.xml"
    target.parent.mkdir()
    target.write_bytes(DEMO.read_bytes())
    result = await fetch(source(target.as_uri()))
    assert len(result.articles) >= 10 and result.url == str(target)


async def test_missing_file_and_oversize_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not found"):
        await fetch(source(str(tmp_path / "absent.xml")))
    big = tmp_path / "big.xml"
    big.write_bytes(b" " * 5000)
    with pytest.raises(SourceError, match="larger than 2 kB"):
        await fetch(source(str(big), max_bytes=2000))
    with pytest.raises(SourceError, match="folder"):
        await fetch(source(str(tmp_path)))


async def test_json_file_and_not_a_feed_file(tmp_path: Path) -> None:
    result = await fetch(source(str(ROOT / "tests" / "data" / "feeds" / "jsonfeed.json")))
    assert len(result.articles) == 3
    page = tmp_path / "page.html"
    page.write_text("<!DOCTYPE html><html><body>Accueil</body></html>")
    with pytest.raises(SourceError, match="web page"):
        await fetch(source(str(page)))


async def test_a_long_feed_is_parsed_in_a_thread_while_it_is_read(tmp_path: Path) -> None:
    from bench.ingest import make_feed
    from bot.ingest.fetch import CHUNK, ArticleStream

    count = 2 * CHUNK + 7
    path = tmp_path / "long.xml"
    path.write_bytes(make_feed(count))
    result = await fetch(source(str(path), max_bytes=50_000_000))
    assert isinstance(result.articles, ArticleStream)  # a short feed is a plain list (tests above)
    articles = list(result.articles)
    assert [a.guid for a in articles] == [f"https://echo-du-sahel.example/?p={100000 + i}" for i in range(count)]
    assert all(a.image_url and a.summary and "«" in a.content_html for a in articles)
    with pytest.raises(RuntimeError, match="read once"):
        list(result.articles)


async def test_a_stream_left_early_stops_its_thread(tmp_path: Path) -> None:
    from bench.ingest import make_feed
    from bot.ingest.fetch import CHUNK

    path = tmp_path / "long.xml"
    path.write_bytes(make_feed(8 * CHUNK))
    result = await fetch(source(str(path), max_bytes=50_000_000))
    reading = iter(result.articles)
    assert next(reading).guid.endswith("?p=100000")
    reading.close()  # the caller gave up: the parsing thread must not wait forever
    result.articles._thread.join(timeout=60)  # type: ignore[attr-defined]
    assert not result.articles._thread.is_alive()  # type: ignore[attr-defined]


# -- the contract: nothing but SourceError ----------------------------------------------------------

async def test_an_unexpected_failure_still_comes_out_as_source_error() -> None:
    def explode(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("bug in a transport")

    async with httpx.AsyncClient(transport=httpx.MockTransport(explode)) as client:
        with pytest.raises(SourceError, match="unexpected failure.*bug in a transport") as info:
            await fetch(source("http://127.0.0.1:9/feed/"), client=client)
    assert isinstance(info.value.__cause__, RuntimeError)


@pytest.mark.parametrize("url", ["http://", "http://[::1/feed"])
async def test_malformed_url(url: str) -> None:
    with pytest.raises(SourceError):
        await fetch(source(url))


# -- redirects to internal addresses -------------------------------------------------------------

async def test_a_redirect_may_stay_on_the_configured_host(feed_server: FeedServer) -> None:
    """The feed lives on 127.0.0.1 (a real deployment can): moving to another path there is fine."""
    feed_server.add_feed("/flux/", DEMO.read_bytes())
    target = feed_server.url("/flux/")
    result = await fetch_source(source(feed_server.url(f"/redirect-to?url={target}")), etag=None,
                                last_modified=None, now=NOW, base_dir=ROOT)
    assert result.url == target and result.articles


@pytest.mark.parametrize("host", ["127.0.0.2", "localhost"])
async def test_a_redirect_to_another_internal_host_is_refused(feed_server: FeedServer, host: str) -> None:
    """The defect: a 302 to another service on the machine was followed and its answer
    published by email, Telegram and X. 127.0.0.2 and "localhost" are other hosts than the
    configured 127.0.0.1, and both are loopback."""
    with FeedServer(host="127.0.0.2") as internal:
        internal.add_feed("/secret", b"<rss version='2.0'><channel><item><title>INTERNAL SECRET db_password=hunter2"
                                     b"</title><link>http://x.example/1</link></item></channel></rss>")
        secret = internal.url("/secret").replace("127.0.0.2", host)
        with pytest.raises(SourceError) as exc:
            await fetch_source(source(feed_server.url(f"/redirect-to?url={secret}")), etag=None,
                               last_modified=None, now=NOW, base_dir=ROOT)
        assert "refused to fetch" in str(exc.value) and "loopback" in str(exc.value)
        assert ("127.0.0.1" if host == "localhost" else "127.0.0.2") in str(exc.value)
        assert internal.requests_to("/secret") == []  # nothing ever reached the internal service


@pytest.mark.parametrize("address, what", [
    ("169.254.169.254", "link-local"), ("10.0.0.5", "private"), ("192.168.1.1", "private"),
    ("100.100.100.200", "non-public"), ("::1", "loopback"), ("fd00:ec2::254", "private"),
    ("::ffff:127.0.0.1", "loopback"), ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"),
])
def test_internal_addresses_are_named(address: str, what: str) -> None:
    from bot.net import why_not_public

    assert what in (why_not_public(address) or "")


def test_public_addresses_pass() -> None:
    from bot.net import why_not_public

    assert why_not_public("93.184.216.34") is None and why_not_public("2606:4700::1111") is None
