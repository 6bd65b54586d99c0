"""A fast reader for well-formed RSS 2.0 and Atom 1.0 feeds, with lxml.

feedparser reads any feed, however broken, but it is pure Python: a 10,000-item feed takes
it tens of seconds, most of it sanitising and re-resolving HTML that Tamtam sanitises again
with nh3. This reader parses the XML with libxml2 and gives each entry as the same dict
feedparser would (the keys :mod:`.parse` reads: id, link, title, summary, content, author,
dates, tags, media…), with the HTML left as the feed wrote it: nh3 is the one sanitiser.

It is exact, not approximate: it follows feedparser's rules for each element it knows
(which element wins, which text counts as HTML, how links and the author are read, the
repairs of mis-encoded text), and it refuses (:class:`NotFast`) everything else: another
encoding, a DOCTYPE, RSS 0.9x/1.0, an xml:base below the root, markup inside a text
element, an element feedparser handles that it does not know. The caller then hands the
document, or the rest of it, to feedparser. A test compares both readers field by field.
(One difference is left, harmless: a link whose href nh3 refuses, such as javascript:,
keeps its other attributes in the feed's order rather than feedparser's.)
"""

from __future__ import annotations

import html.entities
import io
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterator

from lxml import etree

from .sanitize import FEED_URI_SCHEMES, feed_join

ATOM = "http://www.w3.org/2005/Atom"
_XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"


class NotFast(Exception):
    """The document, from this entry on, is not one this reader reads exactly as feedparser."""


# -- what feedparser knows ------------------------------------------------------------------

# Namespaces feedparser knows, and the prefix its handlers use for each (feedparser.mixin).
_PREFIXES = {
    "": "", "http://backend.userland.com/rss": "", "http://blogs.law.harvard.edu/tech/rss": "",
    "http://purl.org/rss/1.0/": "", "http://my.netscape.com/rdf/simple/0.9/": "",
    "http://example.com/newformat#": "", "http://example.com/necho": "", "http://purl.org/echo/": "",
    "uri/of/echo/namespace#": "", "http://purl.org/pie/": "", "http://purl.org/atom/ns#": "",
    "http://www.w3.org/2005/atom": "", "http://purl.org/rss/1.0/modules/rss091#": "",
    "http://webns.net/mvcb/": "admin", "http://purl.org/rss/1.0/modules/aggregation/": "ag",
    "http://purl.org/rss/1.0/modules/annotate/": "annotate", "http://media.tangent.org/rss/1.0/": "audio",
    "http://backend.userland.com/blogchannelmodule": "blogChannel", "http://creativecommons.org/ns#license": "cc",
    "http://web.resource.org/cc/": "cc",
    "http://cyber.law.harvard.edu/rss/creativecommonsrssmodule.html": "creativeCommons",
    "http://backend.userland.com/creativecommonsrssmodule": "creativeCommons",
    "http://purl.org/rss/1.0/modules/company": "co", "http://purl.org/rss/1.0/modules/content/": "content",
    "http://my.theinfo.org/changed/1.0/rss/": "cp", "http://purl.org/dc/elements/1.1/": "dc",
    "http://purl.org/dc/terms/": "dcterms", "http://purl.org/rss/1.0/modules/email/": "email",
    "http://purl.org/rss/1.0/modules/event/": "ev", "http://rssnamespace.org/feedburner/ext/1.0": "feedburner",
    "http://freshmeat.net/rss/fm/": "fm", "http://xmlns.com/foaf/0.1/": "foaf",
    "http://www.w3.org/2003/01/geo/wgs84_pos#": "geo", "http://www.georss.org/georss": "georss",
    "http://www.opengis.net/gml": "gml", "http://postneo.com/icbm/": "icbm",
    "http://purl.org/rss/1.0/modules/image/": "image", "http://www.itunes.com/dtds/podcast-1.0.dtd": "itunes",
    "http://example.com/dtds/podcast-1.0.dtd": "itunes", "http://purl.org/rss/1.0/modules/link/": "l",
    "http://search.yahoo.com/mrss": "media", "http://search.yahoo.com/mrss/": "media",
    "http://madskills.com/public/xml/rss/module/pingback/": "pingback",
    "http://prismstandard.org/namespaces/1.2/basic/": "prism", "http://www.w3.org/1999/02/22-rdf-syntax-ns#": "rdf",
    "http://www.w3.org/2000/01/rdf-schema#": "rdfs", "http://purl.org/rss/1.0/modules/reference/": "ref",
    "http://purl.org/rss/1.0/modules/richequiv/": "reqv", "http://purl.org/rss/1.0/modules/search/": "search",
    "http://purl.org/rss/1.0/modules/slash/": "slash", "http://schemas.xmlsoap.org/soap/envelope/": "soap",
    "http://purl.org/rss/1.0/modules/servicestatus/": "ss", "http://hacks.benhammersley.com/rss/streaming/": "str",
    "http://purl.org/rss/1.0/modules/subscription/": "sub", "http://purl.org/rss/1.0/modules/syndication/": "sy",
    "http://schemas.pocketsoap.com/rss/mydescmodule/": "szf", "http://purl.org/rss/1.0/modules/taxonomy/": "taxo",
    "http://purl.org/rss/1.0/modules/threading/": "thr", "http://purl.org/rss/1.0/modules/textinput/": "ti",
    "http://madskills.com/public/xml/rss/module/trackback/": "trackback", "http://wellformedweb.org/commentapi/": "wfw",
    "http://purl.org/rss/1.0/modules/wiki/": "wiki", "http://www.w3.org/1999/xhtml": "xhtml",
    "http://www.w3.org/1999/xlink": "xlink", "http://www.w3.org/xml/1998/namespace": "xml",
    "http://podlove.org/simple-chapters": "psc",
}

# Every element feedparser 6 has a handler for (its _start_/_end_ methods), lower-cased.
_FEEDPARSER_HANDLES = frozenset("""
abstract author body category cc_license channel cloud content content_encoded contributor copyright created
creativecommons_license dc_author dc_contributor dc_creator dc_date dc_description dc_language dc_publisher
dc_rights dc_subject dc_title dcterms_created dcterms_issued dcterms_modified dcterms_valid description email
enclosure entry expirationdate feed feedburner_browserfriendly fullitem generator geom georss_box georss_line
georss_point georss_polygon georss_where georssgeom gml_exterior gml_linearring gml_linestring gml_point
gml_polygon gml_pos gml_poslist guid height homepage id image info issued item itunes_author itunes_block
itunes_category itunes_email itunes_explicit itunes_image itunes_keywords itunes_link itunes_name itunes_owner
itunes_subtitle itunes_summary keywords language lastbuilddate link managingeditor media_category media_content
media_credit media_description media_group media_keywords media_license media_player media_rating
media_restriction media_thumbnail media_title modified name newlocation psc_chapter psc_chapters pubdate
published rights rss source subtitle summary tagline tags textinput title updated uri url webmaster where width
xhtml_body""".split())

# Handled elements whose feedparser handler touches nothing an Article is made of.
_HARMLESS = frozenset({
    "language", "dc_language", "rights", "copyright", "dc_rights", "generator", "media_credit", "media_rating",
    "media_restriction", "media_license", "itunes_explicit", "itunes_block", "itunes_image", "itunes_subtitle",
    "webmaster", "dc_publisher", "expirationdate", "newlocation", "subtitle", "tagline",
})

# feedparser's _HTMLSanitizer.acceptable_elements: the tags an RSS title may hold and still
# be taken for HTML (``looks_like_html``).
_HTML_ELEMENTS = frozenset("""
a abbr acronym address area article aside audio b big blockquote br button canvas caption center cite code col
colgroup command datagrid datalist dd del details dfn dialog dir div dl dt em event-source fieldset figcaption
figure font footer form h1 h2 h3 h4 h5 h6 header hr i img input ins kbd keygen label legend li m map menu meter
multicol nav nextid noscript ol optgroup option output p pre progress q s samp section select small sound source
spacer span strike strong sub sup table tbody td textarea tfoot th thead time tr tt u ul var video""".split())

# Windows-1252's printable characters where a mis-decoded feed leaves C1 controls.
_CP1252 = {128: "\u20ac", 130: "\u201a", 131: "\u0192", 132: "\u201e", 133: "\u2026", 134: "\u2020",
           135: "\u2021", 136: "\u02c6", 137: "\u2030", 138: "\u0160", 139: "\u2039", 140: "\u0152",
           142: "\u017d", 145: "\u2018", 146: "\u2019", 147: "\u201c", 148: "\u201d", 149: "\u2022",
           150: "\u2013", 151: "\u2014", 152: "\u02dc", 153: "\u2122", 154: "\u0161", 155: "\u203a",
           156: "\u0153", 158: "\u017e", 159: "\u0178"}
_C1_UTF8 = re.compile(b"\xc2[\x80-\x9f]")
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_LINK_REF = re.compile("&([A-Za-z0-9_]+);")
_CLOSE_TAG = re.compile(r"</(\w+)>")
_ANY_REF = re.compile(r"&#?\w+;")
_OPEN_TAGS = re.compile(r"</?(\w+)")
_NAMED_REFS = re.compile(r"&(\w+);")
_EMAIL = re.compile(r"(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))"
                    r"([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?")


def _repair(text: str) -> str:
    """feedparser's last touches on every text: UTF-8 that was decoded as Latin-1 once too
    often is decoded again, and C1 controls become the Windows-1252 characters they stand for."""
    if text.isascii():
        return text
    try:
        text = text.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    # (a C1 control is \xc2\x80-\xc2\x9f in UTF-8: found faster in bytes than by a str regex;
    # a printable text has none, and isprintable() is a plain C loop, with no copy)
    if text.isprintable():
        return text
    return text.translate(_CP1252) if _C1_UTF8.search(text.encode("utf-8", "surrogatepass")) else text


def looks_like_html(s: str) -> bool:
    """feedparser's guess for an RSS element that says nothing of its type."""
    if not (_CLOSE_TAG.search(s) or _ANY_REF.search(s)):
        return False
    if any(t.lower() not in _HTML_ELEMENTS for t in _OPEN_TAGS.findall(s)):
        return False
    return all(e in html.entities.entitydefs for e in _NAMED_REFS.findall(s))


_CONTENT_TYPES = {"text": "text/plain", "plain": "text/plain", "html": "text/html", "xhtml": "application/xhtml+xml"}


def _content_type(value: str) -> str:
    value = value.lower()
    return _CONTENT_TYPES.get(value, value)


# -- dates ----------------------------------------------------------------------------------

_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                         "nov", "dec"), 1)}
_RFC822 = re.compile(r"^(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{2}):(\d{2})(?::(\d{2}))?"
                     r"\s+(?:([+-])(\d{2})(\d{2})|(GMT|UTC|UT|Z))$")
_W3CDTF = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?"
                     r"(?:([+-])(\d{2}):(\d{2})|(Z))$")
_date_fallback: list[Callable[[str], Any]] = []


def parse_date(value: str) -> Any:
    """A feed date as feedparser's ``_parse_date`` gives it (UTC, whole seconds; None when
    unreadable). The two forms nearly every feed uses are read here; any other goes to
    feedparser's own parser, so the odd ones are read exactly as before."""
    m = _RFC822.match(value) or _W3CDTF.match(value)
    if m is not None:
        try:
            # (tzinfo given to the constructor rather than by a replace() at the end: aware
            # and naive datetimes add a timedelta alike, and overflow alike)
            if m.re is _RFC822:
                day, mon, year, hh, mm, ss, sign, oh, om, _zone = m.groups()
                month = _MONTHS.get(mon.lower())
                if month is None:
                    raise ValueError(mon)
                dt = datetime(int(year), month, int(day), int(hh), int(mm), int(ss or 0), tzinfo=timezone.utc)
            else:
                year, month_s, day, hh, mm, ss, sign, oh, om, _zone = m.groups()
                dt = datetime(int(year), int(month_s), int(day), int(hh), int(mm), int(ss or 0), tzinfo=timezone.utc)
            if sign and (oh != "00" or om != "00"):  # (+0000, -0000: adding timedelta(0) changes nothing)
                offset = timedelta(hours=int(oh), minutes=int(om))
                dt = dt - offset if sign == "+" else dt + offset
            return dt
        except (ValueError, OverflowError, OSError):
            pass
    if not _date_fallback:
        from feedparser.datetimes import _parse_date  # only for unusual dates: feedparser is slow to import

        _date_fallback.append(_parse_date)
    return _date_fallback[0](value)


# -- the reader -----------------------------------------------------------------------------

_BOM = b"\xef\xbb\xbf"
_DECLARED = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']", re.S)
_ROOT = re.compile(rb"<([A-Za-z_][\w.:-]*)([^>]*)>")
_PROLOG = re.compile(rb"\s*(?:<\?[^>]*\?>\s*|<!--.*?-->\s*)*", re.S)
_VERSION = re.compile(rb"""\sversion\s*=\s*["']([^"']*)["']""")
_XMLNS = re.compile(rb"""\sxmlns\s*=\s*["']([^"']*)["']""")


def sniff(data: bytes, content_type: str | None, *, web: bool = False) -> str | None:
    """'rss20' or 'atom10' when ``data`` may be read by this reader, else None: UTF-8 (so
    feedparser would not decode it otherwise), no DOCTYPE, an RSS 2.x or Atom 1.0 root.
    ``web``: the document came from a web address (feedparser is then given HTTP headers,
    and with no Content-Type nor encoding declaration it decodes the bytes as Latin-1)."""
    if content_type:
        params = content_type.split(";")[1:]
        charset = next((p.split("=", 1)[1].strip().strip("\"'").lower() for p in params
                        if p.strip().lower().startswith("charset=")), None)
        if charset not in (None, "utf-8", "utf8"):
            return None
    head = data[:4096]
    if head.startswith(_BOM):
        head = head[3:]
    if b"\x00" in head or head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return None
    m = _DECLARED.match(head)
    if m is not None and m.group(1).lower() not in (b"utf-8", b"utf8"):
        return None
    if web and not content_type and m is None:
        return None
    start = _PROLOG.match(head).end()
    root = _ROOT.match(head, start)
    if root is None:
        return None
    name, attributes = root.group(1), root.group(2)
    xmlns = _XMLNS.search(attributes)
    if name == b"rss":
        version = _VERSION.search(attributes)
        if xmlns is None and version is not None and version.group(1).startswith(b"2."):
            return "rss20"
        return None
    if name == b"feed" and xmlns is not None and xmlns.group(1) == ATOM.encode():
        return "atom10"
    return None


@dataclass
class FeedHead:
    """What the feed says of itself, read before its first entry."""

    title: str | None = None  # as feedparser's feed.title (raw HTML or text)
    link: str | None = None  # as feedparser's feed.link
    base: str = ""  # feedparser's base URI for the entries (xml:base of the root, or the feed's address)


class FastReader:
    """Reads one document. ``head`` is known once the first entry is reached (or at the
    end); ``entries()`` gives feedparser-like dicts, one per entry, in document order."""

    def __init__(self, data: bytes, fmt: str, web_base: str | None):
        self.data = data
        self.format = fmt
        self.web_base = web_base or ""
        self.head = FeedHead()
        self.head_complete = False  # True once the feed's own elements before the first entry are read
        # The feed named no link before its first entry: it may name one after (feedparser
        # would use it), so the caller keeps the entries until the end and reads the head
        # again; the channel's other elements are kept for that.
        self.link_pending = False
        self._keys: dict[str, str] = {}

    # -- element names as feedparser's handlers see them
    def _key(self, el: Any) -> str:
        tag = el.tag
        key = self._keys.get(tag)
        if key is not None:
            return key
        if not isinstance(tag, str):
            return ""
        if tag[0] == "{":
            ns, local = tag[1:].split("}", 1)
            low = ns.lower()
            if "backend.userland.com/rss" in low:
                low = "http://backend.userland.com/rss"
            prefix = _PREFIXES.get(low)
            if prefix is None:  # feedparser then uses the prefix the document gave
                prefix = (el.prefix or "").lower()
                local = local.lower()
                return f"{prefix}_{local}" if prefix else local
        else:
            prefix, local = "", tag
        key = f"{prefix.lower()}_{local.lower()}" if prefix else local.lower()
        self._keys[tag] = key
        return key

    def entries(self) -> Iterator[dict[str, Any]]:
        """Each entry as feedparser's FeedParserDict would hold it. Raises NotFast (before
        the entry concerned) or lxml's XMLSyntaxError (where the document breaks)."""
        tag = "item" if self.format == "rss20" else f"{{{ATOM}}}entry"
        parser = etree.iterparse(io.BytesIO(self.data), events=("end",), tag=tag, remove_comments=True,
                                 remove_pis=True, resolve_entities=False, no_network=True, huge_tree=True)
        root = None
        for _event, item in parser:
            parent = item.getparent()
            if root is None:
                root = item.getroottree().getroot()
                self._read_root(root)
            if not self._is_entry_parent(parent, root):
                raise NotFast("an entry outside its channel")
            if not self.head_complete:
                self._read_head(parent, until=item)
                self.head_complete = True
                self.link_pending = self.head.link is None
            yield self._entry(item)
            # Keep memory flat: the entry and the ones before it are done with.
            item.clear(keep_tail=True)
            if not self.link_pending:
                while item.getprevious() is not None:
                    del parent[0]
        if root is None:
            root = parser.root
            self._read_root(root)
        if not self.head_complete or self.link_pending:
            channel = root.find("channel") if self.format == "rss20" else root
            if channel is not None:
                self.head = FeedHead(base=self.head.base)
                self._read_head(channel, until=None)
            self.head_complete = True

    def _is_entry_parent(self, parent: Any, root: Any) -> bool:
        if self.format == "atom10":
            return parent is root
        return parent is not None and (parent is root or (parent.tag == "channel" and parent.getparent() is root))

    def _read_root(self, root: Any) -> None:
        if root.tag != ("rss" if self.format == "rss20" else f"{{{ATOM}}}feed"):
            raise NotFast("the root element is not what the document's start promised")
        base = root.get(_XML_BASE) or root.get("base")
        b0 = self.web_base
        if base and b0:  # feedparser's make_safe_absolute_uri(b0, base) or b0
            joined = feed_join(b0, base)
            self.head.base = joined if joined and joined.strip().split(":", 1)[0] in FEED_URI_SCHEMES else b0
        elif base:
            self.head.base = feed_join("", base)
        else:
            self.head.base = b0

    def _read_head(self, channel: Any, until: Any) -> None:
        """The feed's title and link, from the elements of the channel before ``until``."""
        if self.format == "rss20" and channel.tag == "channel":
            if channel.get(_XML_BASE) is not None or channel.get("base") is not None:
                raise NotFast("xml:base on the channel")
        title_done = False
        for el in channel:
            if el is until:
                break
            if not isinstance(el.tag, str):
                continue
            key = self._key(el)
            if key in ("item", "entry"):
                continue
            if el.get(_XML_BASE) is not None or el.get("base") is not None:
                raise NotFast("xml:base below the root")
            if key == "title":
                if title_done:
                    continue
                if len(el):
                    raise NotFast("markup inside the feed's title")
                value = _repair((el.text or "").strip())
                self.head.title = value
                title_done = bool(value)
            elif key == "link":
                attrs = _attributes(el)
                href = attrs.get("url") or attrs.get("uri") or attrs.get("href")
                if href:
                    rel = attrs.get("rel", "alternate")
                    kind = attrs.get("type", "application/atom+xml" if rel == "self" else "text/html")
                    if rel == "alternate" and _content_type(kind) in _HTML_TYPES:
                        self.head.link = feed_join(self.head.base, href)
                else:
                    if len(el):
                        raise NotFast("markup inside the feed's link")
                    value = (el.text or "").strip()
                    if value:
                        value = feed_join(self.head.base, value)
                    value = _LINK_REF.sub(r"&\g<1>", _repair(value))
                    self.head.link = value

    # -- one entry
    def _entry(self, item: Any) -> dict[str, Any]:
        if item.get(_XML_BASE) is not None or item.get("base") is not None:
            raise NotFast("xml:base on an entry")
        e = _Entry(self.head.base, self.format)
        keys, key_of = self._keys, self._key
        for el in item:
            # (e.element(el, self._key(el), self._key) for each element, less two calls and
            # one el.tag: the key is read from _key's own cache, and a known element, not
            # nested, goes straight to its handler as element() would send it)
            tag = el.tag
            key = keys.get(tag)
            if key is None:
                if not isinstance(tag, str):
                    continue
                key = key_of(el)
            handler = _HANDLERS.get(key)
            if handler is not None:
                handler(e, el, key_of)
            else:
                e.element(el, key, key_of)
        return e.finish()


def _attributes(el: Any) -> dict[str, str]:
    """An element's plain attributes as feedparser normalises them (names lower-cased, and
    the values of rel and type)."""
    out: dict[str, str] = {}
    for name, value in el.items():  # (el.attrib.items(), without making the attrib proxy)
        if name[0] == "{":
            if name == _XML_BASE:
                raise NotFast("xml:base below the root")
            continue
        name = name.lower()
        if name == "base":
            raise NotFast("a base attribute below the root")
        out[name] = value.lower() if name in ("rel", "type") else value
    return out


def _text(el: Any, what: str) -> str:
    if len(el):
        raise NotFast(f"markup inside {what}")
    return (el.text or "").strip()


class _Entry:
    """feedparser's state while it reads one entry, reduced to what an Article needs."""

    def __init__(self, base: str, fmt: str):
        self.base = base
        self.rss = fmt == "rss20"
        self.e: dict[str, Any] = {}
        self.title_done = False
        self.has_content = False
        self.guidislink = False

    def finish(self) -> dict[str, Any]:
        e = self.e
        e["enclosures"] = [link for link in e.get("links", ()) if link.get("rel") == "enclosure"]
        return e

    def element(self, el: Any, key: str, key_of: Callable[[Any], str], nested: bool = False) -> None:
        handler = _HANDLERS.get(key)
        if handler is not None:
            if nested and key not in _NESTABLE:
                raise NotFast(f"{key} inside another element")
            handler(self, el, key_of)
            return
        if key in _FEEDPARSER_HANDLES and key not in _HARMLESS:
            raise NotFast(f"feedparser reads <{key}> in ways this reader does not")
        _attributes(el)  # refuses an xml:base
        for child in el:  # an unknown element: feedparser still reads what is inside
            if isinstance(child.tag, str):
                self.element(child, key_of(child), key_of, nested=True)

    # -- text constructs
    def _construct(self, el: Any, default: str) -> tuple[str, str]:
        """(value, type) of a text construct, as feedparser's pop() leaves it (HTML raw)."""
        attrs = _attributes(el)
        kind = _content_type(attrs.get("type", default))
        if attrs.get("mode") == "base64" or not (kind.startswith("text/") or kind.endswith(("+xml", "/xml"))):
            raise NotFast("base64 content")
        if kind == "application/xhtml+xml":
            value = _xhtml(el)
        elif len(el):  # (_text(el, el.tag), with el.tag made only for the message)
            raise NotFast(f"markup inside {el.tag}")
        else:
            value = (el.text or "").strip()
        if self.rss and kind == "text/plain" and looks_like_html(value):
            kind = "text/html"
        return _repair(value), kind

    def title(self, el: Any, key_of: Callable[[Any], str]) -> None:
        value, kind = self._construct(el, "text/plain")
        if self.title_done:
            return
        self.e["title"] = value
        self.e["title_detail"] = {"type": kind}
        self.title_done = bool(value)

    def description(self, el: Any, key_of: Callable[[Any], str]) -> None:
        if "summary" in self.e and not self.has_content:
            self._content(el, "text/plain")  # a second description is the content
            return
        value, kind = self._construct(el, "text/html")
        self.e["summary"] = value
        self.e["summary_detail"] = {"type": kind}

    def summary(self, el: Any, key_of: Callable[[Any], str]) -> None:
        if "summary" in self.e and not self.has_content:
            self._content(el, "text/plain")
            return
        value, kind = self._construct(el, "text/plain")
        self.e["summary"] = value
        self.e["summary_detail"] = {"type": kind}

    def content(self, el: Any, key_of: Callable[[Any], str]) -> None:
        self._content(el, "text/plain")

    def content_encoded(self, el: Any, key_of: Callable[[Any], str]) -> None:
        self._content(el, "text/html")

    def _content(self, el: Any, default: str) -> None:
        self.has_content = True
        value, kind = self._construct(el, default)
        self.e.setdefault("content", []).append({"type": kind, "value": value})
        if kind == "text/plain" or kind in _HTML_TYPES:
            self.e.setdefault("summary", value)

    # -- links and ids
    def link(self, el: Any, key_of: Callable[[Any], str]) -> None:
        attrs = _attributes(el)
        attrs.setdefault("rel", "alternate")
        attrs.setdefault("type", "application/atom+xml" if attrs["rel"] == "self" else "text/html")
        href = attrs.get("url") or attrs.get("uri") or attrs.get("href")
        if href:
            attrs.pop("url", None)
            attrs.pop("uri", None)
            attrs["href"] = feed_join(self.base, href)
        links = self.e.setdefault("links", [])
        links.append(attrs)
        if href:
            if attrs["rel"] == "alternate" and _content_type(attrs["type"]) in _HTML_TYPES:
                self.e["link"] = attrs["href"]
            return
        value = _text(el, "a link")
        if value:
            value = feed_join(self.base, value)
        value = _repair(value).replace("&amp;", "&")
        if "&" in value:  # (the substitution finds nothing in a link with no "&")
            value = _LINK_REF.sub(r"&\g<1>", value)
        self.e["link"] = value
        if value:
            links[-1]["href"] = value

    def guid(self, el: Any, key_of: Callable[[Any], str]) -> None:
        guidislink = _attributes(el).get("ispermalink", "true") == "true"
        value = _repair(_text(el, "an id"))  # ids are names: not resolved (see parse.py)
        self.e["id"] = value
        self.e.setdefault("guidislink", guidislink and "link" not in self.e)
        if guidislink:
            self.e.setdefault("link", value)

    # -- people
    def author(self, el: Any, key_of: Callable[[Any], str]) -> None:
        e = self.e
        e.setdefault("authors", []).append({})
        pieces = [el.text or ""]
        for child in el:
            if not isinstance(child.tag, str):
                continue
            pieces.append(child.tail or "")
            key = key_of(child)
            if key in ("name", "email", "uri", "url", "homepage"):
                value = _text(child, key)
                if key in ("uri", "url", "homepage"):
                    self._save_author("href", _repair(feed_join(self.base, value) if value else value))
                else:
                    self._save_author(key, _repair(value))
            elif key in _FEEDPARSER_HANDLES:
                raise NotFast(f"<{key}> inside an author")
        e["author"] = _repair("".join(pieces).strip())
        self._sync_author()

    def _save_author(self, key: str, value: str) -> None:
        e = self.e
        e.setdefault("author_detail", {})[key] = value
        self._sync_author()
        e.setdefault("authors", [{}])[-1][key] = value

    def _sync_author(self) -> None:
        """feedparser's _sync_author_detail, as it is."""
        e = self.e
        detail = e.get("authors", [{}])[-1]
        if detail:
            name, email = detail.get("name"), detail.get("email")
            if name and email:
                e["author"] = f"{name} ({email})"
            elif name:
                e["author"] = name
            elif email:
                e["author"] = email
            return
        author, email = e.get("author"), None
        if not author:
            return
        match = _EMAIL.search(author) if "@" in author else None  # (an address has an "@")
        if match:
            email = match.group(0)
            author = author.replace(email, "").replace("()", "").replace("<>", "").replace("&lt;&gt;", "").strip()
            if author and author[0] == "(":
                author = author[1:]
            if author and author[-1] == ")":
                author = author[:-1]
            author = author.strip()
        if author or email:
            e.setdefault("author_detail", detail)
        if author:
            detail["name"] = author
        if email:
            detail["email"] = email

    # -- dates
    def published(self, el: Any, key_of: Callable[[Any], str]) -> None:
        self.e["published_parsed"] = self._date(el)

    def updated(self, el: Any, key_of: Callable[[Any], str]) -> None:
        self.e["updated_parsed"] = self._date(el)

    def created(self, el: Any, key_of: Callable[[Any], str]) -> None:
        self.e["created_parsed"] = self._date(el)

    @staticmethod
    def _date(el: Any) -> Any:
        value = _repair(_text(el, "a date"))
        return parse_date(value) if value else None

    # -- categories
    def category(self, el: Any, key_of: Callable[[Any], str]) -> None:
        attrs = _attributes(el)
        self._add_tag(attrs.get("term"), attrs.get("scheme", attrs.get("domain")), attrs.get("label"))
        value = _repair(_text(el, "a category"))
        if not value:
            return
        tags = self.e["tags"]
        if tags and not tags[-1]["term"]:
            tags[-1]["term"] = value
        else:
            self._add_tag(value, None, None)

    def _add_tag(self, term: str | None, scheme: str | None, label: str | None) -> None:
        tags = self.e.setdefault("tags", [])
        if not term and not scheme and not label:
            return
        value = {"term": term, "scheme": scheme, "label": label}
        if value not in tags:
            tags.append(value)

    # -- media
    def media_content(self, el: Any, key_of: Callable[[Any], str]) -> None:
        self.e.setdefault("media_content", []).append(_attributes(el))
        self._inside(el, key_of)

    def media_thumbnail(self, el: Any, key_of: Callable[[Any], str]) -> None:
        attrs = _attributes(el)
        self.e.setdefault("media_thumbnail", []).append(attrs)
        url = _text(el, "a thumbnail")
        if url:
            url = _repair(feed_join(self.base, url))
            if url.strip() and "url" not in attrs:
                attrs["url"] = url

    def media_group(self, el: Any, key_of: Callable[[Any], str]) -> None:
        _attributes(el)
        self._inside(el, key_of)

    def enclosure(self, el: Any, key_of: Callable[[Any], str]) -> None:
        attrs = _attributes(el)
        href = attrs.get("url") or attrs.get("uri") or attrs.get("href")
        if href:
            attrs.pop("url", None)
            attrs.pop("uri", None)
            attrs["href"] = href
        attrs["rel"] = "enclosure"
        self.e.setdefault("links", []).append(attrs)
        self._inside(el, key_of)

    def _inside(self, el: Any, key_of: Callable[[Any], str]) -> None:
        for child in el:
            if isinstance(child.tag, str):
                self.element(child, key_of(child), key_of, nested=True)

    def source(self, el: Any, key_of: Callable[[Any], str]) -> None:
        # What a <source> holds describes another feed; feedparser keeps it apart, and
        # forgets which title it had read (so a later <title> counts again).
        _attributes(el)
        self.title_done = False

    def harmless(self, el: Any, key_of: Callable[[Any], str]) -> None:
        _attributes(el)
        for child in el.iter():
            if child is not el and isinstance(child.tag, str):
                key = key_of(child)
                if key in _FEEDPARSER_HANDLES and key not in _HARMLESS:
                    raise NotFast(f"<{key}> inside another element")


def _xhtml(el: Any) -> str:
    """An xhtml text construct's markup as feedparser rebuilds it, its wrapping <div> removed."""
    pieces: list[str] = []

    def walk(node: Any) -> None:
        for child in node:
            if not isinstance(child.tag, str):
                continue
            tag = child.tag.rsplit("}", 1)[-1].lower()
            attrs = []
            for name, value in child.attrib.items():
                if name[0] == "{":
                    if name == _XML_BASE:
                        raise NotFast("xml:base inside content")
                    ns, local = name[1:].split("}", 1)
                    prefix = _PREFIXES.get(ns.lower(), "")
                    name = f"{prefix}:{local}" if prefix else local
                name = name.lower()
                if name == "base":
                    raise NotFast("a base attribute inside content")
                attrs.append((name, value.lower() if name in ("rel", "type") else value))
            if tag in ("svg", "math"):
                raise NotFast("svg or math inside content")
            pieces.append("<%s%s>" % (tag, "".join(f' {k}="{_xml_escape(v, True)}"' for k, v in attrs)))
            if child.text:
                pieces.append(_xml_escape(child.text))
            walk(child)
            if tag not in _VOID or len(child) or child.text:
                # (feedparser's sanitiser drops the end tag of an empty <br/>; nh3 would read
                # a </br> left in as a second <br>)
                pieces.append(f"</{tag}>")
            if child.tail:
                pieces.append(_xml_escape(child.tail))

    if el.text:
        pieces.append(_xml_escape(el.text))
    walk(el)
    while len(pieces) > 1 and not pieces[-1].strip():
        del pieces[-1]
    while len(pieces) > 1 and not pieces[0].strip():
        del pieces[0]
    if pieces and (pieces[0] == "<div>" or pieces[0].startswith("<div ")) and pieces[-1] == "</div>":
        depth = 0
        for piece in pieces[:-1]:
            if piece.startswith("</"):
                depth -= 1
                if depth == 0:
                    break
            elif piece.startswith("<") and not piece.endswith("/>"):
                depth += 1
        else:
            pieces = pieces[1:-1]
    return "".join(pieces).strip()


_VOID = frozenset({"area", "base", "basefont", "br", "col", "command", "embed", "frame", "hr", "img", "input",
                   "keygen", "link", "meta", "param", "source", "track", "wbr"})


def _xml_escape(text: str, quote: bool = False) -> str:
    text = text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")
    return text.replace('"', "&quot;") if quote else text


_HANDLERS: dict[str, Callable[[_Entry, Any, Callable[[Any], str]], None]] = {
    "title": _Entry.title, "dc_title": _Entry.title,
    "description": _Entry.description, "dc_description": _Entry.description,
    "summary": _Entry.summary,
    "content": _Entry.content, "content_encoded": _Entry.content_encoded, "fullitem": _Entry.content_encoded,
    "link": _Entry.link,
    "guid": _Entry.guid, "id": _Entry.guid,
    "author": _Entry.author, "dc_creator": _Entry.author, "dc_author": _Entry.author,
    "itunes_author": _Entry.author, "managingeditor": _Entry.author,
    "pubdate": _Entry.published, "published": _Entry.published, "issued": _Entry.published,
    "dcterms_issued": _Entry.published,
    "updated": _Entry.updated, "modified": _Entry.updated, "lastbuilddate": _Entry.updated,
    "dc_date": _Entry.updated, "dcterms_modified": _Entry.updated,
    "created": _Entry.created, "dcterms_created": _Entry.created,
    "category": _Entry.category, "dc_subject": _Entry.category, "keywords": _Entry.category,
    "media_content": _Entry.media_content, "media_thumbnail": _Entry.media_thumbnail,
    "media_group": _Entry.media_group, "enclosure": _Entry.enclosure,
    "source": _Entry.source,
    **{key: _Entry.harmless for key in _HARMLESS},
}
# What may sit inside another element (media:group holds media:content…).
_NESTABLE = frozenset({"media_content", "media_thumbnail", "media_group", *_HARMLESS})
