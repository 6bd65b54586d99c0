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
from typing import Iterable
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from .sanitize import html_to_text

UNTITLED = "(sans titre)"
SUMMARY_LIMIT = 600
ELLIPSIS = "…"

# Query parameters that only tell analytics where a click came from. Two URLs that differ
# only by these are the same article, so they must give the same guid.
TRACKING_PARAMS: frozenset[str] = frozenset({
    "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid", "li_fat_id",
    "mc_cid", "mc_eid", "igshid", "igsh", "ref", "ref_src", "ref_url", "cmpid", "xtor",
    "_ga", "_gl", "_hsenc", "_hsmi", "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "vero_conv",
    "wt.mc_id", "s_cid", "ncid", "ocid", "soc_src", "soc_trk", "at_medium", "at_campaign",
})
TRACKING_PREFIXES: tuple[str, ...] = ("utm_", "pk_", "mtm_", "hmb_", "itm_", "__hs", "_branch")

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
_WP_MORE = re.compile(r"\s*\[\s*(?:…|\.\.\.|&hellip;)\s*\]")


# -- URLs -----------------------------------------------------------------------------

def absolute_url(url: str | None, base: str | None = None) -> str | None:
    """``url`` resolved against ``base``, or None unless the result is an http(s) URL."""
    if not url or not isinstance(url, str):
        return None
    url = url.strip()
    if not url:
        return None
    try:
        if base and urlsplit(base).scheme in _WEB:
            url = urljoin(base, url)
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in _WEB or not parts.netloc:
        return None
    return url


def _is_tracking(name: str) -> bool:
    low = name.lower()
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES)


def canonical_url(url: str, base: str | None = None) -> str:
    """The URL an article is known by: absolute, tracking parameters removed, no fragment,
    scheme and host lower-cased (paths and other parameters are case-sensitive and kept)."""
    resolved = absolute_url(url, base) or url.strip()
    try:
        parts = urlsplit(resolved)
    except ValueError:
        return resolved
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)]
    netloc = parts.netloc.lower()
    scheme = parts.scheme.lower()
    if (scheme == "http" and netloc.endswith(":80")) or (scheme == "https" and netloc.endswith(":443")):
        netloc = netloc.rsplit(":", 1)[0]
    return urlunsplit((scheme, netloc, parts.path or ("/" if netloc else ""), urlencode(query), ""))


def make_guid(entry_id: str | None, url: str | None, *, title: str = "", summary: str = "") -> str:
    """The feed's own id when it has one, else the canonical URL, else a digest of the text
    (for the rare item with neither, so re-reading the same feed still deduplicates)."""
    if entry_id and entry_id.strip():
        return entry_id.strip()
    if url:
        return canonical_url(url)
    digest = hashlib.sha1(f"{title}\n{summary}".encode("utf-8")).hexdigest()
    return f"sha1:{digest}"


# -- text -----------------------------------------------------------------------------

def decode_leftover_entities(text: str, rounds: int = 2) -> str:
    """Decode entities that survived one decoding, as in a double-encoded ``&amp;eacute;``.

    A news title practically never means the literal characters ``&eacute;``; when they
    appear the publisher's CMS escaped twice, and the reader wants « é ».
    """
    for _ in range(rounds):
        if not _ENTITY.search(text):
            break
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = decoded
    return text


def collapse(text: str) -> str:
    return _WS.sub(" ", text).strip()


_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(\s[^<>]*)?/?>")


def clean_text(fragment: str | None) -> str:
    """HTML or text → one line of plain text: tags stripped, entities (even doubled) decoded.

    Markup that was entity-escaped once too often (``&lt;b&gt;``) is still markup to a
    reader's eye, so after decoding, anything that looks like a tag is stripped as well.
    """
    if not fragment:
        return ""
    text = decode_leftover_entities(html_to_text(fragment))
    if _TAG.search(text):
        text = html_to_text(html.escape(text, quote=False).replace("&lt;", "<").replace("&gt;", ">"))
    return collapse(text)


def strip_wordpress_boilerplate(text: str) -> str:
    """Remove WordPress's '[…]' marker and 'The post X appeared first on Y.' footers."""
    # After a full sentence the marker adds nothing; mid-sentence it becomes an ellipsis.
    text = _WP_MORE.sub(lambda m: "" if text[:m.start()].rstrip().endswith((".", "!", "?")) else ELLIPSIS, text)
    for pattern in _WP_BOILERPLATE:
        text = pattern.sub("", text)
    text = re.sub(r"\s*(?:…|\.\.\.)(?:\s*…)+", ELLIPSIS, text)  # '… […]' → one ellipsis
    text = re.sub(r"\s+" + ELLIPSIS + r"$", ELLIPSIS, text)
    return text.strip()


def truncate(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """Cut ``text`` to at most ``limit`` characters on a word boundary, ending with '…'."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—(«\"'’") + ELLIPSIS


def summary_text(fragment: str | None, limit: int = SUMMARY_LIMIT) -> str:
    return truncate(strip_wordpress_boilerplate(clean_text(fragment)), limit)


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
    """A feed date (feedparser's UTC struct_time, an RFC 3339 string, a datetime) → aware UTC."""
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
    except (ValueError, OverflowError, OSError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)
