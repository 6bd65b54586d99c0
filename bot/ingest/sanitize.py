"""HTML from feeds: a strict nh3 allow-list for what we re-publish, and HTML → plain text.

Feed HTML is written by strangers (or by a compromised WordPress plugin) and ends up in
subscribers' mail clients and in Telegram, so we keep only the handful of tags an article
needs and nothing that runs code: no script/style/iframe, no ``on*`` handlers, no
``javascript:`` URLs. Relative links are made absolute against the article's URL because
an email has no base URL of its own.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import nh3

ALLOWED_TAGS: frozenset[str] = frozenset({
    "p", "br", "a", "strong", "em", "b", "i", "ul", "ol", "li", "blockquote",
    "h2", "h3", "h4", "img", "figure", "figcaption",
})
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
}
# Tags whose *content* is dropped too, not just the tag (text of a script is not article text).
DROPPED_WITH_CONTENT: frozenset[str] = frozenset({"script", "style", "iframe", "object", "embed", "noscript",
                                                  "template", "svg", "math", "form", "select", "textarea"})
URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto"})

# C0 control characters other than tab and newline, and lone UTF-16 surrogates (which JSON's
# "\ud800" or a broken decoder can produce): PostgreSQL refuses NUL in text and cannot encode
# a surrogate, so one such character would lose the whole insert; none means anything to a reader.
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b-\x1f\ud800-\udfff]")


def strip_unstorable(text: str) -> str:
    """``text`` without the characters a database cannot store (see ``_UNSTORABLE``).

    A carriage return becomes a newline rather than vanishing, so old Mac line endings
    still separate lines.
    """
    if not _UNSTORABLE.search(text):
        return text
    return _UNSTORABLE.sub(lambda m: "\n" if m.group() == "\r" else "", text.replace("\r\n", "\n"))


# A reference to NUL (&#0;, &#x00;) in HTML: HTML5 turns it into U+FFFD, a '�' in a title.
# It never stands for anything, so it is dropped before parsing.
_NUL_REF = re.compile(r"&#(?:0+|[xX]0+);")


def drop_nul_refs(fragment: str) -> str:
    return _NUL_REF.sub("", fragment) if "&#" in fragment else fragment


_EMPTY_LINK = re.compile(r"<a rel=\"noopener\">(.*?)</a>", re.S)
_IMG_WITHOUT_SRC = re.compile(r"<img(?![^>]*\bsrc=)[^>]*>")


def _absolute(base_url: str | None):
    """nh3 callback for relative URLs: resolve against the article, keep only web URLs."""

    def rewrite(url: str) -> str | None:
        if not base_url or not url.strip():
            return None
        try:
            absolute = urljoin(base_url, url.strip())
        except ValueError:
            return None
        return absolute if urlsplit(absolute).scheme in ("http", "https") else None

    return rewrite


def clean_html(fragment: str, base_url: str | None = None) -> str:
    """Sanitise an article's HTML for re-publication.

    Relative ``href``/``src`` are resolved against ``base_url`` (dropped when there is no
    usable web base), every link gets ``rel="noopener"``, and links whose URL was refused
    are unwrapped so no dead ``<a>`` remains.
    """
    if not fragment or not fragment.strip():
        return ""
    fragment = drop_nul_refs(strip_unstorable(fragment))
    cleaned = nh3.clean(
        fragment,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        url_relative=_absolute(base_url),
        link_rel="noopener",
        strip_comments=True,
    )
    cleaned = _EMPTY_LINK.sub(r"\1", cleaned)
    cleaned = _IMG_WITHOUT_SRC.sub("", cleaned)
    # nh3 re-serialises character references such as &#1; as the raw character.
    return strip_unstorable(cleaned).strip()


_BLOCK = frozenset({
    "p", "br", "div", "li", "ul", "ol", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th",
    "figure", "figcaption", "section", "article", "header", "footer", "pre", "hr", "table", "dd", "dt",
})


class _TextExtractor(HTMLParser):
    """Collects text, with a space at block boundaries so '<p>a</p><p>b</p>' reads 'a b'."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self._skip += 1
        elif tag in _BLOCK:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: tags removed, entities decoded (whitespace is left
    to the caller, see ``normalize.collapse``).

    Uses the stdlib HTML parser rather than regexes because feed HTML is often broken
    (unclosed tags, stray ``<``), and the parser degrades gracefully where regexes don't.
    Entities follow HTML5 rules, so Windows-1252 references such as ``&#146;`` become ’.
    """
    if not fragment:
        return ""
    fragment = drop_nul_refs(fragment)
    parser = _TextExtractor()
    try:
        parser.feed(fragment)
        parser.close()
        text = "".join(parser.parts)
    except Exception:  # noqa: BLE001 - HTMLParser is lenient; this is a last resort for odd input
        text = html.unescape(re.sub(r"<[^>]*>", " ", fragment))
    return text.replace("\u200b", "")
