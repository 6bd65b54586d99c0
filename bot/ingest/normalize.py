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

from .sanitize import drop_nul_refs, html_to_text, strip_unstorable

UNTITLED = "(sans titre)"
SUMMARY_LIMIT = 600
ELLIPSIS = "…"
# Longer ids are replaced by a digest: a few feeds put a whole URL with a session token, or
# worse, the article text, in their guid, and the store's guid column is bounded.
GUID_LIMIT = 512

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
    url = strip_unstorable(url).strip()
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
    resolved = absolute_url(url, base) or strip_unstorable(url).strip()
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
    text = decode_leftover_entities(html_to_text(strip_unstorable(fragment)))
    if _TAG.search(text):
        text = html_to_text(html.escape(text, quote=False).replace("&lt;", "<").replace("&gt;", ">"))
    return collapse(strip_unstorable(text))


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
