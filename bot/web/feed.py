"""A list's sent editions as an Atom feed (RFC 4287), built with ElementTree so every title
and body is escaped by the XML writer, never by hand."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence
from xml.etree import ElementTree as ET

from ..links import Links
from ..settings import ChannelSettings, Site

ATOM = "http://www.w3.org/2005/Atom"


def _when(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def atom_feed(links: Links, channel: ChannelSettings, title: str, site: Site,
              entries: Sequence[tuple[Any, Any]]) -> bytes:
    """``entries`` are (edition row, web view) pairs, newest first."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    lang = channel.language or site.language
    feed.set("{http://www.w3.org/XML/1998/namespace}lang", lang)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    sub(feed, "id", links.feed(channel.id))
    sub(feed, "title", title)
    newest = entries[0][0].created_at if entries else datetime(2000, 1, 1, tzinfo=timezone.utc)
    sub(feed, "updated", _when(newest))
    sub(feed, "link", rel="self", href=links.feed(channel.id), type="application/atom+xml")
    sub(feed, "link", rel="alternate", href=links.archive(channel.id), type="text/html")
    author = sub(feed, "author")
    sub(author, "name", site.name)
    sub(author, "uri", site.base_url)
    for row, view in entries:
        entry = sub(feed, "entry")
        url = links.archive(channel.id, row.id)
        sub(entry, "id", url)
        sub(entry, "title", view.title)
        sub(entry, "updated", _when(row.created_at))
        sub(entry, "published", _when(row.created_at))
        sub(entry, "link", rel="alternate", href=url, type="text/html")
        sub(entry, "content", view.html, type="html")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8", xml_declaration=False)
