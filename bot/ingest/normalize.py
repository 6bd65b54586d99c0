"""Small, pure helpers that turn a feed's loose values into the clean ones an Article holds:
stable ids, absolute and canonical URLs, readable titles and summaries, UTC dates.

Everything here is deterministic and does no I/O, so it is tested directly.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import re
import time
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Iterable
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from ..text import excerpt, is_tracking, sentence_spacing, squeeze
from .sanitize import (
    DROPPED_WITH_CONTENT,
    IMG_TAG,
    PLAIN_WEB_URL,
    SIMPLE_TAG,
    drop_nul_refs,
    feed_resolve,
    html_to_text,
    simple_tags,
    simple_text,
    strip_unstorable,
    tag_attributes,
)

UNTITLED = "(sans titre)"
SUMMARY_LIMIT = 600
ELLIPSIS = "…"
# Longer ids are replaced by a digest: a few feeds put a whole URL with a session token, or
# worse, the article text, in their guid, and the store's guid column is bounded.
GUID_LIMIT = 512

_WEB = ("http", "https")
_ENTITY = re.compile(r"&(#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# A run of whitespace becomes one space, but French typography's no-break spaces (before
# « : ; ? ! » and inside guillemets) are kept when they stand alone: they stop a phone
# from wrapping a line between « and the word.
_WS = re.compile(r"[\s\u00a0\u202f]*[^\S\u00a0\u202f][\s\u00a0\u202f]*")

# WordPress appends these to excerpts; they are noise in a newsletter.
_WP_BOILERPLATE = [
    re.compile(r"\s*The post\s.+?\sappeared first on\s.+?\.?\s*$", re.S | re.I),
    re.compile(r"\s*L[’']article\s.+?\sest apparu en premier sur\s.+?\.?\s*$", re.S | re.I),
    re.compile(r"\s*Cet article\s.+?\sest apparu en premier sur\s.+?\.?\s*$", re.S | re.I),
    re.compile(r"\s*(Continue reading|Read more|Lire la suite|Lire plus)\b[^.]{0,120}$", re.I),
]
# The same patterns without their leading \s*, which makes the regex engine try every
# position of the text (a tenth of a millisecond a summary): each is searched for, then its
# match is widened over the spaces before it, which is where the pattern above starts.
_WP_FOOTERS = [re.compile(p.pattern.removeprefix(r"\s*"), p.flags) for p in _WP_BOILERPLATE]
# Words each footer must contain (lower-case): a text without them is spared the search.
_WP_WORDS = [("appeared first on",), ("est apparu en premier sur",), ("cet article",),
             ("continue reading", "read more", "lire la suite", "lire plus")]
_WP_MORE = re.compile(r"\s*\[\s*(?:…|\.\.\.|&hellip;)\s*\]")
_WP_MORE_MARK = re.compile(_WP_MORE.pattern.removeprefix(r"\s*"))  # from its '[' (see _without_more_marks)
_ELLIPSES = re.compile(r"\s*(?:…|\.\.\.)(?:\s*…)+")
_SPACED_ELLIPSIS = re.compile(r"\s+…$")
_TWO_ELLIPSES = re.compile(r"(?:…|\.\.\.)\s*…")  # where _ELLIPSES matches, without its leading spaces


# -- URLs -----------------------------------------------------------------------------

# An absolute web URL that urljoin and urlsplit give back unchanged (see sanitize).
_PLAIN_WEB_URL = PLAIN_WEB_URL


def absolute_url(url: str | None, base: str | None = None) -> str | None:
    """``url`` resolved against ``base``, or None unless the result is an http(s) URL."""
    if not url or not isinstance(url, str):
        return None
    url = strip_unstorable(url).strip()
    if not url:
        return None
    if _PLAIN_WEB_URL.match(url):
        return url
    try:
        if base and urlsplit(base).scheme in _WEB:
            url = urljoin(base, url)
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in _WEB or not parts.netloc:
        return None
    return url


def canonical_url(url: str, base: str | None = None) -> str:
    """The URL an article is known by: absolute, tracking parameters removed, no fragment,
    scheme and host lower-cased (paths and other parameters are case-sensitive and kept)."""
    resolved = absolute_url(url, base) or strip_unstorable(url).strip()
    try:
        parts = urlsplit(resolved)
    except ValueError:
        return resolved
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_tracking(k)]
    netloc = parts.netloc.lower()
    scheme = parts.scheme.lower()
    if (scheme == "http" and netloc.endswith(":80")) or (scheme == "https" and netloc.endswith(":443")):
        netloc = netloc.rsplit(":", 1)[0]
    return urlunsplit((scheme, netloc, parts.path or ("/" if netloc else ""), urlencode(query), ""))


def make_guid(entry_id: str | None, url: str | None, *, source_id: str, title: str = "",
              summary: str = "") -> str:
    """The feed's own id when it has one, else the canonical URL, else a digest of the text
    (for the rare item with neither, so re-reading the same feed still deduplicates), made
    unique across sources by :func:`scope_guid`."""
    entry_id = strip_unstorable(entry_id).strip() if entry_id else ""
    if entry_id:
        guid = entry_id
    elif url:
        guid = canonical_url(url)
    else:
        guid = "sha1:" + hashlib.sha1(f"{title}\n{summary}".encode("utf-8")).hexdigest()
    return scope_guid(guid, source_id)


def is_global_id(guid: str) -> bool:
    """True for ids that name one thing worldwide: an absolute http(s) URL, a ``tag:`` or a
    ``urn:`` URI. Anything else ("1", "g42", a digest) only means something within its feed."""
    low = guid[:6].lower()
    if low.startswith(("tag:", "urn:")):
        return True
    if _PLAIN_WEB_URL.match(guid):
        return True  # what urlsplit would say, without it
    try:
        parts = urlsplit(guid)
    except ValueError:
        return False
    return parts.scheme.lower() in _WEB and bool(parts.netloc)


def scope_guid(guid: str, source_id: str) -> str:
    """The store's deduplication key for ``guid`` read from source ``source_id``.

    The store deduplicates on guid across all sources, on purpose: a WordPress article in
    the main feed and in a category feed has the same ``https://site/?p=123`` guid and must
    be sent once. Local ids such as JSON Feed's ``"id": "1"`` would collide between two
    sites, so they are prefixed with the source id; global ids are kept as they are. An id
    over ``GUID_LIMIT`` characters becomes a SHA-256 of the (scoped) id.
    """
    guid = strip_unstorable(guid)
    if not is_global_id(guid):
        guid = f"{source_id}:{guid}"
    if len(guid) > GUID_LIMIT:
        guid = "sha256:" + hashlib.sha256(guid.encode("utf-8")).hexdigest()
    return guid


# -- text -----------------------------------------------------------------------------

def decode_leftover_entities(text: str, rounds: int = 2) -> str:
    """Decode entities that survived one decoding, as in a double-encoded ``&amp;eacute;``.

    A news title practically never means the literal characters ``&eacute;``; when they
    appear the publisher's CMS escaped twice, and the reader wants « é ».
    """
    for _ in range(rounds):
        if not _ENTITY.search(text):
            break
        decoded = html.unescape(drop_nul_refs(text))
        if decoded == text:
            break
        text = decoded
    return text


# What sentence_spacing looks for (bot.text.typography: a letter or a closing bracket, a full
# stop, two letters). It masks URLs and domains first, which only ever removes matches, so a
# text without one is returned as it is: the check spares the masking, the costliest step of
# reading an article's summary.
# (Written from the full stop, with the character before it looked behind at: a pattern that
# begins with a set of four characters is searched for by a C loop, where one that begins
# with any letter is tried at every position, eight times slower on a summary.)
_MAYBE_GLUED = re.compile(r"[.!?…](?<=[^\W\d_][.!?…]|[)»”][.!?…])[^\W\d_]{2}")


def collapse(text: str) -> str:
    """``_WS.sub(" ", text).strip()``, without trying the regex at every position of the text
    where it can be spared. ``_WS`` differs from bot.text's ``squeeze`` (which keeps every
    no-break space) only where a no-break space touches another space: there it is absorbed.
    So squeeze's text is the answer unless it has a no-break space beside a ' '."""
    squeezed = squeeze(text)
    if "\u00a0" not in squeezed and "\u202f" not in squeezed:  # (the usual text: spared four searches)
        return squeezed
    if ("\u00a0 " not in squeezed and " \u00a0" not in squeezed and "\u202f " not in squeezed
            and " \u202f" not in squeezed):
        return squeezed
    return _WS.sub(" ", text).strip()


_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(\s[^<>]*)?/?>")


def clean_text(fragment: str | None) -> str:
    """HTML or text → one line of plain text: tags stripped, entities (even doubled) decoded,
    the space a sentence lost after its full stop put back (« Mali.Conduite »: a CMS that
    strips ``</p><p>`` without a space glues two paragraphs together).

    Markup that was entity-escaped once too often (``&lt;b&gt;``) is still markup to a
    reader's eye, so after decoding, anything that looks like a tag is stripped as well.
    """
    if not fragment:
        return ""
    text = collapse(_plain_text(fragment))
    return sentence_spacing(text) if _MAYBE_GLUED.search(text) else text


def _plain_text(fragment: str) -> str:
    """:func:`clean_text` before its spaces are tidied: the same characters but for spacing."""
    if "<" not in fragment and "&" not in fragment:
        # No tag and no reference (the usual name, label or alt text): what the steps below
        # come to, without them.
        return strip_unstorable(fragment).replace("\u200b", "")
    storable = strip_unstorable(fragment)
    text = decode_leftover_entities(html_to_text(storable))
    if _TAG.search(text):
        text = html_to_text(html.escape(text, quote=False).replace("&lt;", "<").replace("&gt;", ">"))
    # Without a '&', nothing above decoded a reference: the text's characters are the storable
    # fragment's (and spaces), so it has nothing to strip.
    return strip_unstorable(text) if "&" in storable else text


def strip_wordpress_boilerplate(text: str) -> str:
    """Remove WordPress's '[…]' marker and 'The post X appeared first on Y.' footers."""
    # After a full sentence the marker adds nothing; mid-sentence it becomes an ellipsis.
    if "[" in text:
        text = _without_more_marks(text)
    low = text.lower()
    stale = False  # low is the lower-case of a longer text than text: see below
    for pattern, words in zip(_WP_FOOTERS, _WP_WORDS):
        hit = words[0] in low or (len(words) > 1 and any(w in low for w in words[1:]))
        if hit and stale:
            # After a footer is cut off (text is then a beginning of the text low was made
            # from), low is lowered again only when the old one has a word of the next
            # pattern: text.lower() is then the beginning of low but for a 'Σ' that may lower
            # to 'ς' at its new end, so an ASCII word the old low lacks, the new one lacks too.
            low, stale = text.lower(), False
            hit = words[0] in low or (len(words) > 1 and any(w in low for w in words[1:]))
        if hit:
            m = pattern.search(text)
            if m is not None:
                start = m.start()
                while start and text[start - 1].isspace():
                    start -= 1
                text = text[:start] + text[m.end():]
                stale = True
    if ELLIPSIS in text:
        # (each pattern tried only where it can match: from its leading spaces, the regex
        # engine would try every position of the text)
        if _TWO_ELLIPSES.search(text):
            text = _ELLIPSES.sub(ELLIPSIS, text)  # '… […]' → one ellipsis
        if text.endswith((ELLIPSIS, ELLIPSIS + "\n")):
            text = _unspaced_last_ellipsis(text)
    return text.strip()


def _without_more_marks(text: str) -> str:
    """``_WP_MORE.sub(…)`` as strip_wordpress_boilerplate had it (the marker dropped after a
    full sentence, an ellipsis mid-sentence), with the pattern tried only where a '[' is: each
    match found from its '[' is widened over the spaces before it, where ``_WP_MORE`` starts."""
    parts: list[str] = []
    pos = 0
    for m in _WP_MORE_MARK.finditer(text):
        start = m.start()
        while start > pos and text[start - 1].isspace():
            start -= 1
        parts.append(text[pos:start])
        parts.append("" if text[:start].rstrip().endswith((".", "!", "?")) else ELLIPSIS)
        pos = m.end()
    if not parts:
        return text
    parts.append(text[pos:])
    return "".join(parts)


def _unspaced_last_ellipsis(text: str) -> str:
    """``_SPACED_ELLIPSIS.sub(ELLIPSIS, text)`` for a text ending in '…' (or '…\n', where '$'
    matches too): the spaces before that last '…' removed, without trying every position."""
    mark = len(text) - (2 if text.endswith("\n") else 1)  # where the last '…' is
    start = mark
    while start and text[start - 1].isspace():
        start -= 1
    return text if start == mark else text[:start] + text[mark:]


def truncate(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """At most ``limit`` characters of ``text``, cut after a sentence or a word, with '…'."""
    return excerpt(text, limit)


_CUT_MARK = re.compile(r"\s*(?:…|\.\.\.)$")


def complete_words(summary: str, full: str) -> str:
    """``summary`` without a last word the feed cut in half, judged against ``full``, the
    article's whole text: a feed that cuts its excerpt at a character count sends « … par
    M. Moham… »; when ``full`` goes on « Mohamed », the half word is dropped (« … par M.… »
    would be worse, so trailing punctuation goes with it). Spaces are ignored in the
    comparison, since the two texts are often spaced differently."""
    return _complete_words(summary, full, whole=True) or summary


def _without_cut_mark(summary: str) -> str:
    """``_CUT_MARK.sub("", summary)``, without trying the pattern at every position."""
    if summary.endswith("…"):
        return summary[:-1].rstrip()
    if summary.endswith("..."):
        return summary[:-3].rstrip()
    return _CUT_MARK.sub("", summary) if summary.endswith("\n") else summary


def _complete_words(summary: str, full: str, *, whole: bool) -> str | None:
    """:func:`complete_words`; with ``whole=False``, ``full`` may be only the beginning of
    the article's text, and None means it was too short to judge."""
    body = _without_cut_mark(summary)
    if not body or not full:
        return summary if whole or body else None
    pos = 0
    for char in body:
        if char.isspace():
            continue
        while pos < len(full) and full[pos].isspace():
            pos += 1
        if pos >= len(full):
            return summary if whole else None  # not a prefix of the article: nothing to judge by
        if full[pos] != char:
            return summary  # not a prefix of the article: nothing to judge by
        pos += 1
    if pos >= len(full):
        return summary if whole else None
    if not full[pos].isalnum() or not body[-1].isalnum():
        return summary  # the summary ends on a whole word
    space = body.rfind(" ")
    if space <= 0:
        return summary
    head = body[:space].rstrip(" ,;:.!?-–—«(\u00a0\u202f")
    head = re.sub(r"(?:\s+\S\.?)$", "", head) if re.search(r"\s[A-Z]\.?$", head) else head  # a lone initial
    return head.rstrip(" ,;:-–—«(\u00a0\u202f") + ELLIPSIS if head else summary


def summary_text(fragment: str | None, limit: int = SUMMARY_LIMIT, full: str | None = None) -> str:
    """The plain-text summary of ``fragment``, capped at ``limit``; with ``full`` (the
    article's HTML content) a last word the feed cut in half is dropped."""
    text = strip_wordpress_boilerplate(clean_text(fragment))
    if full and text and _may_end_mid_word(text):
        # complete_words ignores spaces, so the article's text is not tidied for it (the
        # spacing work on a long article costs more than the rest of its summary), and
        # the beginning of the article is read first: it is nearly always enough.
        start = _text_start(full, 2 * len(text) + 64)
        judged = _complete_words(text, start, whole=False) if start is not None else None
        text = judged if judged is not None else complete_words(text, _plain_text(full))
    return truncate(text, limit)


def _may_end_mid_word(summary: str) -> bool:
    """False when :func:`complete_words` would keep ``summary`` whatever the article says."""
    body = _without_cut_mark(summary)
    return bool(body) and body[-1].isalnum()


def _text_start(fragment: str, chars: int) -> str | None:
    """The first ``chars`` characters (or a few more) of ``_plain_text(fragment)``, read from
    the beginning of the HTML only; None when that is not sure to give the same characters.

    It is sure when the HTML up to there is simple (see sanitize.simple_tags) and its text
    holds no '<' or '&': decoding entities or stripping tags later in the article then
    cannot reach back into it."""
    whole = simple_tags(fragment)  # read again for the images right after: see simple_tags
    if whole is not None:
        end = next((i for i, m in enumerate(whole) if m.end() > 2 * chars), None)
        if end is None:
            return None
        head, tags = fragment[:whole[end].end()], whole[:end + 1]
    else:
        cut = fragment.find(">", 2 * chars)
        if cut < 0:
            return None
        head = fragment[:cut + 1]
        tags = simple_tags(head)
    if tags is None or "&" in head or strip_unstorable(head) is not head:
        return None
    text = simple_text(head, tags).replace("\u200b", "")
    if len(text) < chars or "<" in text:
        return None
    return text  # (storable: the storable head's characters and spaces, no reference decoded)


def title_text(raw_title: str | None, summary: str = "", words: int = 12) -> str:
    """A clean title; when the feed has none, the first words of the summary, else '(sans titre)'."""
    title = clean_text(raw_title)
    if title:
        return title
    if summary:
        head = summary.rstrip(ELLIPSIS).split()
        if head:
            return " ".join(head[:words]) + (ELLIPSIS if len(head) > words else "")
    return UNTITLED


def labels(values: Iterable[str | None]) -> tuple[str, ...]:
    """Category labels: cleaned, empty ones dropped, duplicates (case-insensitive) removed, order kept."""
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        label = clean_text(value) if value else ""
        key = label.casefold()
        if label and key not in seen:
            seen.add(key)
            out.append(label)
    return tuple(out)


# -- dates ----------------------------------------------------------------------------

def to_utc(value: object) -> datetime | None:
    """A feed date (feedparser's UTC struct_time, an RFC 3339 string, a datetime) → aware UTC.

    None when the value is not a date, or is one that cannot be expressed in UTC (such as
    ``9999-12-31T23:59:59-23:59``, past the last representable instant): the caller then
    falls back to the time the entry was first seen rather than losing the entry.
    """
    if value is None or value == "":
        return None
    try:
        if isinstance(value, time.struct_time):
            return datetime.fromtimestamp(calendar.timegm(value), tz=timezone.utc)
        if isinstance(value, datetime):
            dt = value
        elif isinstance(value, str):
            text = value.strip()
            if text.endswith(("Z", "z")):
                text = text[:-1] + "+00:00"
            dt = datetime.fromisoformat(text)
        else:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.astimezone(timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


# -- images ---------------------------------------------------------------------------

#: Widths a newsletter wants: 560 px shown, so up to about three times that for sharp
#: screens; anything wider only costs the reader's data.
IMAGE_MAX_WIDTH = 1600
IMAGE_MIN_WIDTH = 560
# WordPress names each size of an upload "<name>-<width>x<height>.<ext>"; big uploads are
# scaled down to "<name>-scaled.<ext>".
_WP_SIZE = re.compile(r"-(\d{2,5})x(\d{2,5})(?=\.(?:jpe?g|png|gif|webp|avif)$)", re.I)
_WP_SCALED = re.compile(r"-scaled(?=\.(?:jpe?g|png|gif|webp|avif)$)", re.I)
_SRCSET_ITEM = re.compile(r"\s*(\S+?)(?:\s+(\d+)w|\s+[\d.]+x)?\s*(?:,|$)")
# A srcset of addresses without spaces or commas, each with a width, one ", " between them.
_PLAIN_SRCSET = re.compile(r"(?:[^\s,]+ \d+w, )*[^\s,]+ \d+w")


class Image:
    """An image the feed offers for an article, with what the feed says about it.

    Treated as immutable, and compared and hashed by value as the frozen dataclass it once
    was; a plain class because an article makes a dozen of them, and a frozen dataclass's
    constructor (object.__setattr__ for every field) cost three times as much."""

    __slots__ = ("url", "width", "height", "alt")

    def __init__(self, url: str, width: int | None = None, height: int | None = None,
                 alt: str | None = None) -> None:
        self.url = url
        self.width = width
        self.height = height
        self.alt = alt

    def _key(self) -> tuple[str, int | None, int | None, str | None]:
        return (self.url, self.width, self.height, self.alt)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._key() == other._key()  # type: ignore[attr-defined]
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Image(url={self.url!r}, width={self.width!r}, height={self.height!r}, alt={self.alt!r})"


def pixels(value: object) -> int | None:
    """A width or height as a feed writes it ("1200", "1200px"), or None if it is not one."""
    try:
        number = int(str(value).strip().removesuffix("px"))
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= 20000 else None


def _path(url: str) -> str:
    plain = _PLAIN_HOST_AND_PATH.match(url)
    if plain:  # what urlsplit would say, without it
        return plain.group(2)
    try:
        return urlsplit(url).path
    except ValueError:
        return url


# PLAIN_WEB_URL with its host and path as groups (one match where a check with PLAIN_WEB_URL
# and a second match for the groups were made): the host cannot end earlier, nor the path
# stop sooner, so the groups are urlsplit's netloc and path.
_PLAIN_HOST_AND_PATH = re.compile(r"https?://([A-Za-z0-9.\-_~%!$&'()*+,=:@]+)((?:/[^?#;\s]*)?)"
                                  r"(?:\?[^#\s]+)?(?:#\S+)?\Z")


def image_identity(url: str) -> str:
    """The same picture whatever its size: host and path without WordPress's size suffix."""
    plain = _PLAIN_HOST_AND_PATH.match(url)
    if plain:  # what urlsplit would say, without it
        netloc, path = plain.group(1), plain.group(2)
    else:
        try:
            parts = urlsplit(url)
        except ValueError:
            return url
        netloc, path = parts.netloc, parts.path
    path = _WP_SCALED.sub("", _WP_SIZE.sub("", path))
    return f"{netloc.lower()}{path}"


def wordpress_size(url: str) -> tuple[int, int] | None:
    """(width, height) from a WordPress size suffix (« photo-150x150.jpg »), if any."""
    m = _WP_SIZE.search(_path(url))
    return (int(m.group(1)), int(m.group(2))) if m else None


class _ImageFinder(HTMLParser):
    """The attributes of every <img> a reader would see (none inside an <svg>, a <template>…)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[dict[str, str]] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED_WITH_CONTENT and tag != "noscript":  # lazy-loading plugins put the real <img> there
            self._skip += 1
        elif tag == "img" and not self._skip:
            self.found.append({k: v for k, v in attrs if v is not None})

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img" and not self._skip:
            self.found.append({k: v for k, v in attrs if v is not None})

    def handle_endtag(self, tag: str) -> None:
        if tag in DROPPED_WITH_CONTENT and tag != "noscript":
            self._skip = max(0, self._skip - 1)


_IMG = re.compile("<img", re.I)


def _img_attributes(fragment: str) -> list[dict[str, str]] | None:
    """The attributes of every <img> of a simple fragment (see ``sanitize.simple_tags``)."""
    if simple_tags(fragment) is None:
        return None
    # In a simple fragment every '<' opens one of its tags, so the <img> tags are where the
    # fragment says '<img', read again there (rather than a look at each of its tags).
    return [{k: v for k, v in tag_attributes(SIMPLE_TAG.match(fragment, m.start()).group(3)) if v is not None}
            for m in IMG_TAG.finditer(fragment)]


def images_in_html(fragment: str | None, base: str | None, *, feed_base: str | None = None) -> list[Image]:
    """Every ``<img>`` of an article's HTML as candidates, with each size its ``srcset``
    lists (lazy-loading plugins' ``data-src``/``data-srcset`` too), in document order.
    With ``feed_base`` (HTML read straight from the feed), each ``src`` is first resolved
    against the feed's base as feedparser would have done."""
    if not fragment or ("<img" not in fragment and not _IMG.search(fragment)):
        return []
    found = _img_attributes(fragment)
    if found is None:
        finder = _ImageFinder()
        try:
            finder.feed(fragment)
            finder.close()
        except Exception:  # noqa: BLE001 - HTMLParser is lenient; an odd fragment just has no image
            return []
        found = finder.found
    out: list[Image] = []
    for attrs in found:
        alt = clean_text(attrs.get("alt")) or None
        width, height = pixels(attrs.get("width")), pixels(attrs.get("height"))
        src = attrs.get("src") or ""
        if feed_base is not None and src:
            src = feed_resolve(feed_base, src)
        if not src or src.startswith("data:"):
            src = attrs.get("data-src") or attrs.get("data-lazy-src") or src
        url = absolute_url(src, base)
        if url:
            out.append(Image(url, width, height, alt))
        srcset = attrs.get("srcset") or attrs.get("data-srcset") or attrs.get("data-lazy-srcset") or ""
        for address, descriptor in _srcset_items(srcset):
            candidate = absolute_url(address, base) if address else None
            if candidate and descriptor:
                w = int(descriptor)
                h = round(w * height / width) if width and height else None
                out.append(Image(candidate, w, h, alt))
    return out


def _srcset_items(srcset: str) -> list[tuple[str, str | None]]:
    """(address, width or None) for each item ``_SRCSET_ITEM`` finds in ``srcset``. The usual
    srcset (« a.jpg 300w, b.jpg 1024w ») is split instead: the lazy pattern is tried a
    character at a time, and gives the same items for it."""
    if _PLAIN_SRCSET.fullmatch(srcset):
        items: list[tuple[str, str | None]] = []
        for item in srcset.split(", "):
            address, width = item.rsplit(" ", 1)
            items.append((address, width[:-1]))  # « 300w » → « 300 »
        return items
    return [(m.group(1), m.group(2)) for m in _SRCSET_ITEM.finditer(srcset)]


def _sized(image: Image) -> Image:
    """``image`` with the size its WordPress file name gives, when the feed gave none."""
    if image.width is not None:
        return image
    size = wordpress_size(image.url)
    return Image(image.url, size[0], size[1], image.alt) if size else image


def pick_image(candidates: Iterable[Image]) -> Image | None:
    """The article's picture, at the best size on offer.

    The picture is the first candidate's (the feed's own media first, then the content's
    ``<img>``), unless that one is only a small thumbnail and a larger picture is offered.
    Its size is the widest up to :data:`IMAGE_MAX_WIDTH` among the sizes listed for it (a
    ``srcset``, ``media:content`` with a width, a WordPress « -1024x683 » file name); when
    only small sizes are known, a variant of unknown size (usually the original upload) is
    preferred to a 150×150 thumbnail. Alt text and proportions come from any variant that
    has them."""
    images = [_sized(c) for c in candidates if c.url]
    if not images:
        return None
    groups: dict[str, list[Image]] = {}
    identities: dict[str, str] = {}  # the same address is often offered two or three times
    for image in images:
        identity = identities.get(image.url)
        if identity is None:
            identity = identities[image.url] = image_identity(image.url)
        groups.setdefault(identity, []).append(image)

    def big_enough(group: list[Image]) -> bool:
        return any(i.width is None or i.width >= IMAGE_MIN_WIDTH for i in group)

    ordered = list(groups.values())
    group = next((g for g in ordered if big_enough(g)), ordered[0])
    known = [i for i in group if i.width is not None]
    fitting = [i for i in known if IMAGE_MIN_WIDTH <= i.width <= IMAGE_MAX_WIDTH]  # type: ignore[operator]
    unknown = [i for i in group if i.width is None]
    if fitting:
        best = max(fitting, key=lambda i: i.width or 0)
    elif any(i.width > IMAGE_MAX_WIDTH for i in known):  # type: ignore[operator]
        best = min((i for i in known if i.width > IMAGE_MAX_WIDTH), key=lambda i: i.width or 0)  # type: ignore[operator]
    elif unknown:
        best = unknown[0]
    else:
        best = max(known, key=lambda i: i.width or 0)
    alt = best.alt or next((i.alt for i in group if i.alt), None)
    width, height = best.width, best.height
    if width and not height:
        ratio = next((i for i in group if i.width and i.height), None)
        if ratio is not None:
            height = round(width * ratio.height / ratio.width)  # type: ignore[operator]
    if height and not width:
        height = None  # a height alone cannot size anything
    return Image(best.url, width, height, alt)
