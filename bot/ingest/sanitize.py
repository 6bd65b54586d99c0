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
from functools import lru_cache
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


_C0_BYTES = bytes(c for c in range(32) if c not in (9, 10))


def _may_be_unstorable(text: str) -> bool:
    """The check of ``_UNSTORABLE``, four times faster than the regex on a long article: a
    lone surrogate cannot be encoded, and the C0 controls are bytes of their own in UTF-8.
    A printable text (the usual title, name or URL) has neither: C0 controls and surrogates
    are not printable, and isprintable() is a plain C loop, with no copy."""
    if text.isprintable():
        return False
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return len(data.translate(None, _C0_BYTES)) != len(data)


def strip_unstorable(text: str) -> str:
    """``text`` without the characters a database cannot store (see ``_UNSTORABLE``).

    A carriage return becomes a newline rather than vanishing, so old Mac line endings
    still separate lines.
    """
    if not _may_be_unstorable(text):
        return text
    return _UNSTORABLE.sub(lambda m: "\n" if m.group() == "\r" else "", text.replace("\r\n", "\n"))


# A reference to NUL (&#0;, &#x00;) in HTML: HTML5 turns it into U+FFFD, a '�' in a title.
# It never stands for anything, so it is dropped before parsing.
_NUL_REF = re.compile(r"&#(?:0+|[xX]0+);")


def drop_nul_refs(fragment: str) -> str:
    return _NUL_REF.sub("", fragment) if "&#" in fragment else fragment


_EMPTY_LINK = re.compile(r"<a rel=\"noopener\">(.*?)</a>", re.S)
# A tag as nh3 writes it: every attribute name="value", with '"' escaped inside values.
_LINK_OR_IMAGE = re.compile(r'<(a|img)((?: [a-z-]+="[^"]*")*)>')

# One cleaner, built once: building nh3's allow-list for every article cost as much as the
# cleaning itself. It passes relative URLs through untouched; ``_resolve_links`` then makes
# them absolute (or drops them) on nh3's output, where every href/src is one double-quoted,
# escaped attribute, so a regex finds them exactly.
_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags=set(DROPPED_WITH_CONTENT),
    attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
    url_schemes=set(URL_SCHEMES),
    link_rel="noopener",
    strip_comments=True,
)
_ATTRIBUTE_PAIR = re.compile(r' ([a-z-]+)="([^"]*)"')
_HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_C0_OR_SPACE = "".join(map(chr, range(0x21)))  # what a URL parser strips from both ends

# feedparser's rule for the links of a feed's HTML (``make_safe_absolute_uri``): resolved
# against the feed's base (xml:base or the feed's address), and emptied when the result's
# scheme is not one of these. The fast reader applies it so its articles equal feedparser's.
FEED_URI_SCHEMES: frozenset[str] = frozenset({
    "file", "ftp", "gopher", "h323", "hdl", "http", "https", "imap", "magnet", "mailto", "mms", "news", "nntp",
    "prospero", "rsync", "rtsp", "rtspu", "sftp", "shttp", "sip", "sips", "snews", "svn", "svn+ssh", "telnet",
    "wais", "aim", "callto", "cvs", "facetime", "feed", "git", "gtalk", "irc", "ircs", "irc6", "itms", "msnim",
    "skype", "ssh", "smb", "ymsg",
})
_URI_FIXER = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")

# An absolute web URL that urljoin and urlsplit give back unchanged (ASCII host, no ';'
# parameters, no empty '?' or '#', no whitespace): the common case, answered without them.
PLAIN_WEB_URL = re.compile(r"https?://[A-Za-z0-9.\-_~%!$&'()*+,=:@]+(?:/[^?#;\s]*)?(?:\?[^#\s]+)?(?:#\S+)?\Z")


@lru_cache(maxsize=64)
def _usable_base(base: str) -> bool:
    """urljoin can read ``base`` (it raises ValueError on, say, an unclosed '[' in the host).
    A feed has one base for all its links, so this is asked once per feed."""
    try:
        urlsplit(base)
    except ValueError:
        return False
    return True


def feed_join(base: str, uri: str) -> str:
    """``uri`` resolved against ``base`` as feedparser does (extra slashes after the scheme
    dropped; '' when urljoin refuses)."""
    if PLAIN_WEB_URL.match(uri) and (not base or _usable_base(base)):
        return uri  # what urljoin gives for a plain absolute URL, whatever the base
    slashes = uri.find("://")
    if slashes >= 0 and uri[slashes + 3:slashes + 4] == "/":
        uri = _URI_FIXER.sub(r"\1\3", uri)
    if not base:
        return uri
    try:
        return urljoin(base, uri)
    except ValueError:
        return ""


def feed_resolve(base: str | None, uri: str) -> str:
    """A link of a feed's HTML as feedparser leaves it: stripped, resolved against the
    feed's ``base``, '' when the result has a scheme feedparser does not accept."""
    uri = uri.strip()
    if not base:
        return uri
    if not uri:
        try:
            scheme = urlsplit(base).scheme
        except ValueError:
            return ""
        return base if not scheme or scheme in FEED_URI_SCHEMES else ""
    joined = feed_join(base, uri)
    return joined if joined.strip().split(":", 1)[0] in FEED_URI_SCHEMES else ""


# A path from the site's root ('/2026/11/30/article-1/') that urljoin puts after a plain web
# base's scheme and host unchanged: no '//' host, no '.' or '..' segment to remove, no ';'
# parameters, no empty '?' or '#' (urljoin drops those), no whitespace or control character.
_ROOT_PATH = re.compile(r"/(?!/)[^?#;\s\x00-\x1f\x7f]*(?:\?[^#\s\x00-\x1f\x7f]+)?(?:#[^\s\x00-\x1f\x7f]+)?\Z")
# The scheme and host of a plain web URL (see PLAIN_WEB_URL), up to its path.
_SCHEME_AND_HOST = re.compile(r"https?://[A-Za-z0-9.\-_~%!$&'()*+,=:@]+")


def _absolute(base_url: str | None):
    """Resolve a relative URL against the article; keep only web URLs (None drops it)."""
    site = None  # the base's "scheme://host" when a root path can simply follow it
    if base_url and PLAIN_WEB_URL.match(base_url):
        site = _SCHEME_AND_HOST.match(base_url).group()  # type: ignore[union-attr]

    def rewrite(url: str) -> str | None:
        if site is not None and url[:1] == "/" and "/." not in url and _ROOT_PATH.match(url):
            return site + url  # what urljoin gives, and its scheme is http(s)
        if not base_url or not url.strip():
            return None
        try:
            absolute = urljoin(base_url, url.strip())
        except ValueError:
            return None
        return absolute if urlsplit(absolute).scheme in ("http", "https") else None

    return rewrite


def _escape_attribute(value: str) -> str:
    """An attribute value as nh3 (html5ever) serialises it."""
    return value.replace("&", "&amp;").replace("\u00a0", "&nbsp;").replace('"', "&quot;")


def _resolve_links(cleaned: str, base_url: str | None, feed_base: str | None) -> str:
    """The href/src of nh3's output made absolute: first against ``feed_base`` the way
    feedparser does (when the HTML did not come through feedparser), then against the
    article's ``base_url``; a link that cannot be made a web (or mailto) URL is dropped."""
    rewrite = _absolute(base_url)

    def fix(name: str, raw: str) -> str | None:
        if "&" not in raw and PLAIN_WEB_URL.match(raw) and (not feed_base or _usable_base(feed_base)):
            # A plain absolute http(s) URL (the usual src and href): no reference to decode,
            # feed_resolve gives it back unchanged (no space to strip, feed_join keeps it
            # whatever a usable base), its scheme is http(s), so the steps below return raw.
            return raw
        url = html.unescape(raw) if "&" in raw else raw
        if feed_base is not None:
            url = feed_resolve(feed_base, url)
        if _HAS_SCHEME.match(url.replace("\t", "").replace("\n", "").replace("\r", "").lstrip(_C0_OR_SPACE)):
            if feed_base is not None and url.split(":", 1)[0].strip().lower() not in URL_SCHEMES:
                return None  # a base with another scheme (xml:base="ftp://…") made it unsafe
            fixed: str | None = url if feed_base is None else url.strip()
        else:
            fixed = rewrite(url)
        if fixed is None:
            return None
        return raw if fixed == url == raw else _escape_attribute(fixed)

    def tag(m: re.Match[str]) -> str:
        attributes = _ATTRIBUTE_PAIR.findall(m.group(2))
        if feed_base is not None and len(attributes) > 1:
            # As feedparser's sanitiser writes them, in name order (nh3 then adds rel last):
            # the same HTML whichever reader read the feed.
            rel = attributes.pop() if m.group(1) == "a" and attributes[-1][0] == "rel" else None
            attributes.sort()
            if rel is not None:
                attributes.append(rel)
        for i, (name, value) in enumerate(attributes):
            if name in ("href", "src"):
                fixed = fix(name, value)
                if fixed is None:
                    # Removed the way nh3 removes a refused URL: the last attribute takes its place.
                    last = attributes.pop()
                    if i < len(attributes):
                        attributes[i] = last
                else:
                    attributes[i] = (name, fixed)
                break  # one URL attribute per tag: href of <a>, src of <img>
        if m.group(1) == "img" and not any(name == "src" for name, _ in attributes):
            return ""  # an image whose address was refused shows nothing
        return "<" + m.group(1) + "".join(f' {k}="{v}"' for k, v in attributes) + ">"

    return _LINK_OR_IMAGE.sub(tag, cleaned)


def clean_html(fragment: str, base_url: str | None = None, *, feed_base: str | None = None) -> str:
    """Sanitise an article's HTML for re-publication.

    Relative ``href``/``src`` are resolved against ``base_url`` (dropped when there is no
    usable web base), every link gets ``rel="noopener"``, and links whose URL was refused
    are unwrapped so no dead ``<a>`` remains. ``feed_base`` is for HTML read straight from
    the feed (not through feedparser): its links are first resolved against the feed's own
    base as feedparser would have, so both readers give the same HTML.
    """
    if not fragment or not fragment.strip():
        return ""
    fragment = drop_nul_refs(strip_unstorable(fragment))
    cleaned = _CLEANER.clean(fragment)
    references = "&#" in fragment
    if "<a" in cleaned or "<img" in cleaned:
        cleaned = _resolve_links(cleaned, base_url, feed_base)
        if '<a rel="noopener">' in cleaned:  # (where _EMPTY_LINK can match: a find is a third of a search)
            cleaned = _EMPTY_LINK.sub(r"\1", cleaned)
    # nh3 re-serialises character references such as &#1; as the raw character (and a
    # fragment without any has nothing unstorable left: it was stripped above).
    return (strip_unstorable(cleaned) if references else cleaned).strip()


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


# -- a fast path for simple HTML ---------------------------------------------------------
#
# The stdlib parser costs about as much as everything else an article needs, so HTML made
# only of well-formed tags (the usual case) is read with two regexes instead. The fast path
# gives exactly what the parser gives; anything it is not sure of goes to the parser:
# comments, CDATA, declarations, an element whose content is dropped (script, svg…, whose
# content the parser reads differently), a '<' that opens no well-formed tag.

_WS_CLASS = "\t\n\r\f "
_ATTRIBUTE = (rf"""([^{_WS_CLASS}"'>/=]+)(?:[{_WS_CLASS}]*=[{_WS_CLASS}]*("[^"]*"|'[^']*'|[^{_WS_CLASS}"'=<>`]+))?""")
# (Its attributes are _ATTRIBUTE without capturing groups, which the regex engine would save
# and restore at every attribute: the same matches, the same groups 1 to 3, a seventh faster;
# tag_attributes reads the attributes with _ATTRIBUTES.)
_ATTRIBUTE_NC = (rf"""[^{_WS_CLASS}"'>/=]+(?:[{_WS_CLASS}]*=[{_WS_CLASS}]*(?:"[^"]*"|'[^']*'|[^{_WS_CLASS}"'=<>`]+))?""")
_SIMPLE_TAG = re.compile(rf"<(/?)([A-Za-z][^\t\n\r\f />\x00]*)((?:[{_WS_CLASS}]+{_ATTRIBUTE_NC})*)[{_WS_CLASS}]*(/?)>")
_ATTRIBUTES = re.compile(_ATTRIBUTE)
# The start of a tag of an element whose content is dropped. ASCII-only case folding, as
# str.lower() would (re.I alone would take 'ſ' for an 's').
# (The look-ahead at the first letter spares trying a dozen names at every other tag: half
# the cost.)
_DROPPED_TAG = re.compile(r"</?(?=[%s])(?:%s)[\t\n\r\f />]" % ("".join(sorted({n[0] for n in DROPPED_WITH_CONTENT})),
                                                             "|".join(sorted(DROPPED_WITH_CONTENT))), re.I | re.A)
# The start of an <img> tag, and a tag read at one given position.
IMG_TAG = re.compile(r"<img[\t\n\r\f />]", re.I | re.A)
SIMPLE_TAG = _SIMPLE_TAG


# The last fragment read and its tags: an article's content is read for its text and for
# its images, one after the other. (One tuple, replaced whole: safe across threads.)
_last_read: tuple[str, list[re.Match[str]] | None] = ("", None)


def simple_tags(fragment: str) -> list[re.Match[str]] | None:
    """Every tag of ``fragment`` (groups: '/' of an end tag, name, attributes, '/' of a
    self-closing tag), or None when the fragment is not simple enough to read this way."""
    global _last_read
    last = _last_read
    if last[0] is fragment:
        return last[1]
    tags: list[re.Match[str]] | None = None
    if "<!" not in fragment and "<?" not in fragment:
        tags = list(_SIMPLE_TAG.finditer(fragment))
        if fragment.count("<") != len(tags):
            tags = None  # a '<' that opens no well-formed tag
        elif _DROPPED_TAG.search(fragment):
            # (Every '<' opens one of the tags now, so a search of the fragment finds the
            # same names as a look at each tag, at a tenth of the cost.)
            tags = None
    if len(fragment) > 256:
        _last_read = (fragment, tags)
    return tags


def tag_attributes(text: str) -> list[tuple[str, str | None]]:
    """A simple tag's attributes as the stdlib parser gives them: names lower-cased, quotes
    removed, character references decoded, None for an attribute without a value."""
    out: list[tuple[str, str | None]] = []
    for m in _ATTRIBUTES.finditer(text):
        value = m.group(2)
        if value is not None:
            if value[:1] in ("'", '"'):
                value = value[1:-1]
            if value and "&" in value:
                value = html.unescape(value)
        out.append((m.group(1).lower(), value))
    return out


def simple_text(fragment: str, tags: list[re.Match[str]]) -> str:
    """The text of a simple fragment, given its tags (before zero-width spaces are removed)."""
    parts: list[str] = []
    pos = 0
    if "&" not in fragment:  # no reference to decode: the runs between tags as they are
        append = parts.append
        for m in tags:
            start, end = m.span()
            append(fragment[pos:start])
            if m[2].lower() in _BLOCK:
                append(" ")
            pos = end
        append(fragment[pos:])
        return "".join(parts)
    for m in tags:
        if m.start() > pos:
            run = fragment[pos:m.start()]
            parts.append(html.unescape(run) if "&" in run else run)
        if m.group(2).lower() in _BLOCK:
            parts.append(" ")
        pos = m.end()
    run = fragment[pos:]
    parts.append(html.unescape(run) if "&" in run else run)
    return "".join(parts)


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: tags removed, entities decoded (whitespace is left
    to the caller, see ``normalize.collapse``).

    Uses the stdlib HTML parser rather than regexes because feed HTML is often broken
    (unclosed tags, stray ``<``), and the parser degrades gracefully where regexes don't;
    simple HTML takes the fast path above, with the same result.
    Entities follow HTML5 rules, so Windows-1252 references such as ``&#146;`` become ’.
    """
    if not fragment:
        return ""
    fragment = drop_nul_refs(fragment)
    if "<" not in fragment:
        text = html.unescape(fragment) if "&" in fragment else fragment
        return text.replace("\u200b", "")
    tags = simple_tags(fragment)
    if tags is not None:
        return simple_text(fragment, tags).replace("\u200b", "")
    return parser_text(fragment)


def parser_text(fragment: str) -> str:
    """:func:`html_to_text` with the stdlib parser, whatever the fragment (the reference the
    fast path is tested against)."""
    fragment = drop_nul_refs(fragment)
    parser = _TextExtractor()
    try:
        parser.feed(fragment)
        parser.close()
        text = "".join(parser.parts)
    except Exception:  # noqa: BLE001 - HTMLParser is lenient; this is a last resort for odd input
        text = html.unescape(re.sub(r"<[^>]*>", " ", fragment))
    return text.replace("\u200b", "")
