"""Feed bytes → Articles. Well-formed UTF-8 RSS 2.0 and Atom 1.0 go through a fast lxml
reader (:mod:`.fastfeed`) that gives the entries feedparser would; anything else (other
encodings, ill-formed XML, RSS 0.9x/1.0, the odd construct the fast reader refuses, from
the entry where it refuses on) goes through feedparser, which copes with all of it. JSON
Feed goes through the json module.

Each format is first read into a :class:`RawEntry` (the entry's values as the feed gave
them), and one function turns a RawEntry into an Article, so every format gets the same
normalisation. One broken entry is skipped with a warning; it does not lose the others.
Articles come out one at a time (:class:`FeedStream`), so a 10,000-item feed is never held
as 10,000 Articles at once.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit

from ..errors import SourceError
from ..models import Article
from . import fastfeed
from .normalize import (
    Image,
    absolute_url,
    clean_text,
    images_in_html,
    labels,
    make_guid,
    pick_image,
    pixels,
    summary_text,
    title_text,
    to_utc,
)
from .sanitize import clean_html

log = logging.getLogger(__name__)

JSON_FEED_VERSION = re.compile(r"^https?://jsonfeed\.org/version/1(\.\d+)?/?$")
_IMAGE_EXT = re.compile(r"\.(jpe?g|png|gif|webp|avif)(\?|$)", re.I)
_BLOCK_START = re.compile(r"<(p|ul|ol|h[2-4]|blockquote|figure)\b", re.I)
# A numeric character reference in the feed's bytes. feedparser's fallback parser crashes on
# one that names no character (a lone surrogate such as &#xD800;, or past U+10FFFF), which
# would lose the whole feed for one stray reference, so those are removed before parsing.
_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")

_feedparser_module: list[Any] = []


def _feedparser() -> Any:
    """feedparser, imported the first time a feed needs it (it is a tenth of a second to
    import, and most feeds never need it), with Tamtam's two adjustments."""
    if _feedparser_module:
        return _feedparser_module[0]
    # Here, not at the top: a tenth of a second to import, for the feeds the fast reader refuses.
    import feedparser
    import feedparser.mixin
    import feedparser.sanitizer

    # feedparser resolves an entry's id against the feed URL as if it were a link, so a bare
    # <guid>1</guid> comes back as https://site/feed/1 and can no longer be told from a real
    # URL: two sites' "1" would then collide, or pass for a global id. Ids are names, not
    # links, and are read as written (links, images and content are still resolved).
    # feedparser has no option for this; its class-level table of elements to resolve is
    # private, so the change is guarded, and the tests on bare guids fail if a feedparser
    # upgrade moves the table. (The fast reader reads ids the same way.)
    mixin = getattr(feedparser.mixin, "_FeedParserMixin", None)
    if mixin is not None and "id" in getattr(mixin, "can_be_relative_uri", ()):
        mixin.can_be_relative_uri = set(mixin.can_be_relative_uri) - {"id"}
    # feedparser's own sanitiser drops an <img>'s srcset (and lazy-loading plugins' data-src),
    # which is where WordPress lists the sizes of a picture; the image picker reads them from
    # the entry's HTML. They run nothing, and nh3 removes them from the HTML Tamtam re-publishes.
    sanitizer = getattr(feedparser.sanitizer, "_HTMLSanitizer", None)
    if sanitizer is not None and isinstance(getattr(sanitizer, "acceptable_attributes", None), (set, frozenset)):
        sanitizer.acceptable_attributes = set(sanitizer.acceptable_attributes) | {
            "srcset", "data-src", "data-srcset", "data-lazy-src", "data-lazy-srcset"}
    _feedparser_module.append(feedparser)
    return feedparser


def _harmless_bozo() -> tuple[type[BaseException], ...]:
    """feedparser sets bozo for these even though it read the feed fine (a charset that
    disagrees with the XML prolog, a text/plain Content-Type…); they are not failures."""
    fp = _feedparser()
    return (fp.CharacterEncodingOverride, fp.NonXMLContentType, fp.CharacterEncodingUnknown)


@dataclass(frozen=True)
class RawEntry:
    """One entry's values as its feed gave them, before normalisation."""

    entry_id: str | None = None
    link: str | None = None
    title: str | None = None
    summary_html: str | None = None
    content_html: str | None = None
    author: str | None = None
    published: Any = None  # struct_time, RFC 3339 string, datetime or None
    categories: tuple[str, ...] = ()
    images: tuple[Image, ...] = ()  # explicit images (media:content, thumbnail, image enclosure), best first
    # The feed's base for the links of the HTML, when the HTML comes as the feed wrote it
    # (the fast reader); None when feedparser already resolved them.
    html_base: str | None = None


@dataclass(frozen=True)
class ParsedFeed:
    """What a feed says about itself and its entries. ``parse_feed`` keeps only the articles;
    the rest helps tests and diagnostics (the feed's title, its format)."""

    format: str  # 'rss20', 'atom10', 'json11', … as feedparser names them, 'json1x' for JSON Feed
    title: str
    link: str | None
    articles: list[Article] = field(default_factory=list)
    skipped: int = 0


def parse_feed(data: bytes, *, source_id: str, base_url: str, now: datetime,
               content_type: str | None = None) -> list[Article]:
    """Parse one fetched document into Articles, in feed order (usually newest first).

    Raises SourceError when the document is not a feed at all, or is so broken that no
    entry can be read. A valid feed with no entries gives ``[]``.
    """
    return read_feed(data, source_id=source_id, base_url=base_url, now=now, content_type=content_type).articles


def read_feed(data: bytes, *, source_id: str, base_url: str, now: datetime,
              content_type: str | None = None, fast: bool = True) -> ParsedFeed:
    """Like :func:`parse_feed`, keeping the feed's own title and link as well. ``fast=False``
    reads RSS and Atom with feedparser alone (the tests compare both readers)."""
    stream = FeedStream(data, source_id=source_id, base_url=base_url, now=now, content_type=content_type,
                        fast=fast)
    articles = list(stream)
    return ParsedFeed(format=stream.format, title=stream.title, link=stream.link, articles=articles,
                      skipped=stream.skipped)


class FeedStream:
    """The Articles of one document, made one at a time as they are iterated (once).

    Creating it reads as far as the first entry, so a document that is no feed raises
    SourceError here, not halfway through. ``format``, ``title`` and ``link`` are known
    from then on (``link`` may still change when a feed names its link after its entries);
    ``skipped`` is final once the iteration is over, and ``reader`` says which reader read
    it: 'fast', 'feedparser', 'fast+feedparser' (the fast reader stopped partway), 'json'.
    """

    def __init__(self, data: bytes, *, source_id: str, base_url: str, now: datetime,
                 content_type: str | None = None, fast: bool = True):
        self.source_id, self.base_url, self.now, self.content_type = source_id, base_url, now, content_type
        self.skipped = 0
        self.format, self.title, self.link = "", "", None
        self._data: bytes | None = data
        self._articles: Iterator[Article]
        if not data or data.isspace():  # (not data.strip(): that copies a long feed whole)
            raise SourceError(source_id, "the feed is empty (no bytes received)")
        if _looks_like_json(data, content_type):
            parsed = _read_json_feed(data, source_id=source_id, base_url=base_url, now=now,
                                     content_type=content_type)
            self.reader, self.format, self.title, self.link = "json", parsed.format, parsed.title, parsed.link
            self.skipped = parsed.skipped
            self._data = None
            self._articles = iter(parsed.articles)
            return
        fmt = fastfeed.sniff(data, content_type, web=_web_base(base_url) is not None) if fast else None
        if fmt is not None:
            started = self._start_fast(data, fmt)
            if started is not None:
                self.reader = "fast"
                self._articles = started
                return
        self.reader = "feedparser"
        self._articles = self._feedparser_articles(skip=0)

    def __iter__(self) -> Iterator[Article]:
        return self._articles

    # -- the fast reader, and feedparser from where it stops
    def _start_fast(self, data: bytes, fmt: str) -> Iterator[Article] | None:
        reader = fastfeed.FastReader(data, fmt, _web_base(self.base_url))
        entries = reader.entries()
        try:
            first = next(entries, None)
        except Exception as exc:  # noqa: BLE001 - whatever the fast reader refuses, feedparser reads
            self._fast_gave_up(exc, 0)
            return None
        self.format = fmt
        self._set_head(reader)
        return self._fast_articles(reader, entries, first)

    def _set_head(self, reader: fastfeed.FastReader) -> None:
        head = reader.head
        self.title = title_text(head.title, "") if head.title else ""
        self.link = _str(head.link)

    def _fast_articles(self, reader: fastfeed.FastReader, entries: Iterator[dict[str, Any]],
                       first: dict[str, Any] | None) -> Iterator[Article]:
        given = 0  # entries whose articles were given (or skipped) already
        pending: list[dict[str, Any]] = []
        try:
            entry = first
            while entry is not None:
                if reader.link_pending:  # the feed's link may come after its entries: wait for it
                    pending.append(entry)
                else:
                    yield from self._build([self._raw(entry, reader.head.base)], self.link)
                    given += 1
                entry = next(entries, None)
        except Exception as exc:  # noqa: BLE001 - the rest of the document goes to feedparser
            self._fast_gave_up(exc, given)
            try:
                rest = self._feedparser_articles(skip=given)
            except SourceError as error:
                log.warning("%s (after %d articles)", error, given)
                return
            yield from rest
            return
        if pending:
            self._set_head(reader)
            base = reader.head.base
            pending.reverse()
            while pending:  # built in order, and let go of as they are
                yield from self._build([self._raw(pending.pop(), base)], self.link)
        self._data = None

    def _raw(self, entry: dict[str, Any], html_base: str) -> RawEntry | None:
        try:
            return _raw_from_feedparser(entry, html_base)
        except Exception as exc:  # noqa: BLE001 - one odd entry must not lose the others
            log.warning("source %s: skipped an entry the feed gave oddly: %r", self.source_id, exc)
            return None

    def _fast_gave_up(self, exc: BaseException, done: int) -> None:
        level = logging.DEBUG if isinstance(exc, fastfeed.NotFast) or type(exc).__name__ == "XMLSyntaxError" \
            else logging.WARNING
        log.log(level, "source %s: feedparser reads this feed from entry %d on (%s: %s)", self.source_id, done + 1,
                type(exc).__name__, exc)
        if done:
            self.reader = "fast+feedparser"

    def _build(self, raws: list[RawEntry | None], feed_link: str | None) -> Iterator[Article]:
        base = _web_base(self.base_url, feed_link)
        for raw in raws:
            if raw is None:
                self.skipped += 1
                continue
            articles, skipped = _build_all([raw], source_id=self.source_id, base=base, feed_link=feed_link,
                                           now=self.now)
            self.skipped += skipped
            yield from articles

    # -- feedparser
    def _feedparser_articles(self, skip: int) -> Iterator[Article]:
        data = self._data
        self._data = None
        assert data is not None
        parsed = _feedparser_parse(data, source_id=self.source_id, base_url=self.base_url,
                                   content_type=self.content_type)
        del data
        feed = parsed.get("feed") or {}
        if not skip:
            self.format = parsed.get("version") or ""
            self.title = title_text(feed.get("title"), "") if feed.get("title") else ""
            self.link = _str(feed.get("link"))
        entries = parsed.get("entries") or []
        return self._feedparser_entries(entries[skip:], self.link)

    def _feedparser_entries(self, entries: list[Any], feed_link: str | None) -> Iterator[Article]:
        for entry in entries:
            try:
                raw: RawEntry | None = _raw_from_feedparser(entry)
            except Exception as exc:  # noqa: BLE001 - one odd entry must not lose the others
                log.warning("source %s: skipped an entry feedparser returned oddly: %r", self.source_id, exc)
                raw = None
            yield from self._build([raw], feed_link)


# -- format detection -------------------------------------------------------------------

_FIRST_BYTE = re.compile(rb"[\xef\xbb\xbf \t\r\n]*(.)", re.S)


def _looks_like_json(data: bytes, content_type: str | None) -> bool:
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in ("application/feed+json", "application/json") or mime.endswith("+json"):
        return True
    m = _FIRST_BYTE.match(data)  # (not data.lstrip(): that copies a long feed whole)
    return m is not None and m.group(1) in (b"{", b"[")


def _web_base(*candidates: str | None) -> str | None:
    for c in candidates:
        if c and urlsplit(c).scheme in ("http", "https"):
            return c
    return None


# -- JSON Feed --------------------------------------------------------------------------

def _read_json_feed(data: bytes, *, source_id: str, base_url: str, now: datetime,
                    content_type: str | None) -> ParsedFeed:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(source_id, f"the feed looks like JSON but cannot be read: {exc}") from exc
    if not isinstance(doc, dict) or not JSON_FEED_VERSION.match(str(doc.get("version", ""))):
        raise SourceError(source_id, "the document is JSON but not a JSON Feed (no 'version' "
                                     "of https://jsonfeed.org/version/1 or 1.1)")
    items = doc.get("items")
    if not isinstance(items, list):
        raise SourceError(source_id, "the JSON Feed has no 'items' list")
    feed_link = doc.get("home_page_url") if isinstance(doc.get("home_page_url"), str) else None
    base = _web_base(base_url, doc.get("feed_url") if isinstance(doc.get("feed_url"), str) else None, feed_link)
    feed_authors = _json_authors(doc)
    raws: list[RawEntry] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        content_html = _str(item.get("content_html"))
        if not content_html and _str(item.get("content_text")):
            content_html = _text_to_html(_str(item.get("content_text")))
        summary = _str(item.get("summary"))
        summary_html = escape(summary) if summary else None
        tags = item.get("tags") if isinstance(item.get("tags"), list) else []
        images = tuple(Image(u) for u in (_str(item.get("image")), _str(item.get("banner_image"))) if u)
        raws.append(RawEntry(
            entry_id=_str(item.get("id")) or (str(item["id"]) if isinstance(item.get("id"), int) else None),
            link=_str(item.get("url")) or _str(item.get("external_url")),
            title=escape(_str(item.get("title")) or "", quote=False) or None,
            summary_html=summary_html,
            content_html=content_html,
            author=(_json_authors(item) or feed_authors or [None])[0],
            published=item.get("date_published") or item.get("date_modified"),
            categories=tuple(t for t in tags if isinstance(t, str)),
            images=images,
        ))
    articles, skipped = _build_all(raws, source_id=source_id, base=base, feed_link=feed_link, now=now)
    version = str(doc.get("version", "")).rstrip("/").rsplit("/", 1)[-1].replace(".", "")
    return ParsedFeed(format=f"json{version}", title=_str(doc.get("title")) or "", link=feed_link,
                      articles=articles, skipped=skipped)


def _json_authors(obj: dict[str, Any]) -> list[str]:
    """JSON Feed 1.1 'authors' list, or 1.0's single 'author'."""
    found: list[str] = []
    authors = obj.get("authors")
    if isinstance(authors, list):
        found += [a["name"] for a in authors if isinstance(a, dict) and isinstance(a.get("name"), str)]
    author = obj.get("author")
    if isinstance(author, dict) and isinstance(author.get("name"), str):
        found.append(author["name"])
    return [a.strip() for a in found if a.strip()]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _text_to_html(text: str) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join(f"<p>{escape(p, quote=False)}</p>" for p in paragraphs)


# -- RSS and Atom -------------------------------------------------------------------------

def _feedparser_parse(data: bytes, *, source_id: str, base_url: str, content_type: str | None) -> Any:
    """feedparser's reading of a document; SourceError when it is no feed, or one so broken
    that no entry can be read."""
    fp = _feedparser()
    headers: dict[str, str] = {}
    # feedparser needs the HTTP Content-Type to pick the right encoding (it overrides the
    # XML prolog), and the URL to resolve relative links; a local file has neither.
    if content_type:
        headers["content-type"] = content_type
    web_base = _web_base(base_url)
    if web_base:
        headers["content-location"] = web_base
    data = _drop_impossible_char_refs(data)
    try:
        parsed = fp.parse(data, response_headers=headers)
    except Exception as exc:  # noqa: BLE001 - feedparser should never raise, but a bug must not escape
        raise SourceError(source_id, f"the feed cannot be parsed: {exc}") from exc
    if not (parsed.get("entries") or []):
        if not parsed.get("version"):
            raise SourceError(source_id, _not_a_feed(data, content_type, parsed))
        exc = parsed.get("bozo_exception")
        if parsed.get("bozo") and exc is not None and not isinstance(exc, _harmless_bozo()):
            raise SourceError(source_id, f"the feed is broken and no article could be read ({_describe(exc)})")
    return parsed


def _drop_impossible_char_refs(data: bytes) -> bytes:
    """``data`` without character references to code points that are not characters."""

    def keep_or_drop(m: re.Match[bytes]) -> bytes:
        digits = m.group(1) or m.group(2)
        if len(digits) > 8:
            return b""
        code = int(digits, 16) if m.group(1) else int(digits)
        return b"" if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF else m.group(0)

    return _CHAR_REF.sub(keep_or_drop, data)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]


def _not_a_feed(data: bytes, content_type: str | None, parsed: Any) -> str:
    head = data[:512].lstrip().lower()
    mime = (content_type or "").split(";")[0].strip().lower()
    if b"<html" in head or b"<!doctype html" in head or mime in ("text/html", "application/xhtml+xml"):
        return "the address returned a web page (HTML), not an RSS, Atom or JSON feed; check the feed URL"
    exc = parsed.get("bozo_exception")
    detail = f" ({_describe(exc)})" if exc is not None else ""
    return f"the document is not an RSS, Atom or JSON feed{detail}"


def _raw_from_feedparser(entry: Any, html_base: str | None = None) -> RawEntry:
    content_html = _feedparser_content(entry)
    summary_html = entry.get("summary") or None
    summary_detail = entry.get("summary_detail") or {}
    if summary_html and summary_detail.get("type") == "text/plain":
        summary_html = escape(summary_html, quote=False)
    title = entry.get("title")
    if title and (entry.get("title_detail") or {}).get("type") == "text/plain":
        # feedparser already decoded a plain-text title; re-escape so '<' or '&' survive
        # the same HTML-to-text path the HTML titles take.
        title = escape(title, quote=False)
    categories = [t.get("label") or t.get("term") for t in entry.get("tags") or [] if isinstance(t, dict)]
    entry_id = entry.get("id") or None
    link = entry.get("link") or None
    if link and link == entry_id and entry.get("guidislink") and not _looks_like_link(link):
        # An RSS guid without isPermaLink="false" stands in for a missing <link>; when it is
        # a bare name such as "1" it is no address at all, so the article has no own URL.
        link = None
    return RawEntry(
        entry_id=entry_id,
        link=link,
        title=title or None,
        summary_html=summary_html,
        content_html=content_html,
        author=_feedparser_author(entry),
        published=entry.get("published_parsed") or entry.get("updated_parsed")
        or entry.get("created_parsed"),
        categories=tuple(c for c in categories if isinstance(c, str)),
        images=tuple(_feedparser_images(entry)),
        html_base=html_base,
    )


def _looks_like_link(value: str) -> bool:
    """An absolute web URL, or a path from the site's root."""
    value = value.strip()
    return value.startswith("/") or absolute_url(value) is not None


def _feedparser_content(entry: Any) -> str | None:
    """The richest full-content block (content:encoded, atom:content), as HTML."""
    best: str | None = None
    for block in entry.get("content") or []:
        value = block.get("value") or ""
        if not value.strip():
            continue
        if block.get("type") == "text/plain":
            value = _text_to_html(value)
        if best is None or len(value) > len(best):
            best = value
    return best


def _feedparser_author(entry: Any) -> str | None:
    detail = entry.get("author_detail") or {}
    name = detail.get("name") or entry.get("author")
    if not name:
        for a in entry.get("authors") or []:
            if isinstance(a, dict) and a.get("name"):
                name = a["name"]
                break
    return name if isinstance(name, str) and name.strip() else None


def _is_image(media: dict[str, Any]) -> bool:
    mime = (media.get("type") or "").lower()
    medium = (media.get("medium") or "").lower()
    if mime:
        return mime.startswith("image/")
    if medium:
        return medium == "image"
    return bool(_IMAGE_EXT.search(media.get("url") or media.get("href") or ""))


def _feedparser_images(entry: Any) -> Iterable[Image]:
    def image(url: str, media: dict[str, Any]) -> Image:
        return Image(url, pixels(media.get("width")), pixels(media.get("height")))

    for media in entry.get("media_content") or []:
        if isinstance(media, dict) and media.get("url") and _is_image(media):
            yield image(media["url"], media)
    for thumb in entry.get("media_thumbnail") or []:
        if isinstance(thumb, dict) and thumb.get("url"):
            yield image(thumb["url"], thumb)
    for link in entry.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == "enclosure" and link.get("href") and _is_image(link):
            yield Image(link["href"])
    for enc in entry.get("enclosures") or []:
        if isinstance(enc, dict) and enc.get("href") and _is_image(enc):
            yield Image(enc["href"])


# -- RawEntry → Article -----------------------------------------------------------------

def _build_all(raws: list[RawEntry], *, source_id: str, base: str | None, feed_link: str | None,
               now: datetime) -> tuple[list[Article], int]:
    articles: list[Article] = []
    skipped = 0
    for raw in raws:
        try:
            article = build_article(raw, source_id=source_id, base=base, feed_link=feed_link, now=now)
        except Exception as exc:  # noqa: BLE001 - one bad entry is skipped, the others go on
            log.warning("source %s: skipped entry %r: %s", source_id, raw.entry_id or raw.link, exc)
            skipped += 1
            continue
        if article is None:
            skipped += 1
        else:
            articles.append(article)
    return articles, skipped


def build_article(raw: RawEntry, *, source_id: str, base: str | None, feed_link: str | None,
                  now: datetime) -> Article | None:
    """Normalise one entry. None when the entry has nothing to show (no title, text or link)."""
    url = absolute_url(raw.link, base)
    entry_id = raw.entry_id.strip() if raw.entry_id else None
    if url is None and entry_id:
        url = absolute_url(entry_id) if entry_id.startswith(("http://", "https://")) else None

    content_html = clean_html(raw.content_html or raw.summary_html or "", url or base, feed_base=raw.html_base)
    if content_html and not _BLOCK_START.match(content_html):
        content_html = f"<p>{content_html}</p>"  # bare text from a description: give it a paragraph
    summary = summary_text(raw.summary_html, full=raw.content_html) or summary_text(raw.content_html)
    title = title_text(raw.title, summary)
    if not raw.title and not summary and not content_html and url is None:
        return None

    # The feed's own media first, then every <img> of the content with its srcset sizes
    # (read from the raw HTML: the sanitiser keeps no srcset).
    where = url or base
    explicit = [Image(u, c.width, c.height, c.alt) for c in raw.images if (u := absolute_url(c.url, where))]
    image = pick_image(explicit + images_in_html(raw.content_html or raw.summary_html, where,
                                                 feed_base=raw.html_base))

    published = to_utc(raw.published) or to_utc(now)
    author = clean_text(raw.author) if raw.author else None
    return Article(
        source_id=source_id,
        guid=make_guid(entry_id, url, source_id=source_id, title=title, summary=summary),
        url=url or absolute_url(feed_link, base) or (base or ""),
        title=title,
        published_at=published,
        author=author or None,
        categories=labels(raw.categories),
        summary=summary,
        content_html=content_html,
        image_url=image.url if image else None,
        image_alt=image.alt if image else None,
        image_width=image.width if image else None,
        image_height=image.height if image else None,
    )
