"""parse_feed on RSS 2.0, Atom and JSON Feed, hostile HTML, odd documents, and the demo feed."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.errors import SourceError
from bot.ingest import parse_feed
from bot.ingest.parse import read_feed

DATA = Path(__file__).parent / "data" / "feeds"
DEMO = Path(__file__).resolve().parent.parent / "config" / "demo" / "feed.xml"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def parse(name: str, base_url: str | None = None, content_type: str | None = None):
    path = DATA / name
    return parse_feed(path.read_bytes(), source_id="test", base_url=base_url or str(path), now=NOW,
                      content_type=content_type)


# -- RSS -----------------------------------------------------------------------------------------

def test_rss_wordpress_entry_with_double_encoded_title_relative_link_and_enclosure() -> None:
    first, second = parse("wordpress-relative.xml")
    assert first.title == "Café-débat au centre culturel : « Quelle ville pour demain ? »"
    # no guid: the canonical link, resolved against the channel link, tracking and fragment gone
    assert first.guid == "https://petit-bamakois.example/2026/11/cafe-debat/?id=7"
    assert first.url.startswith("https://petit-bamakois.example/2026/11/cafe-debat/?")
    assert first.author == "Sira Diabaté"
    assert first.categories == ("Culture", "Ville")
    assert first.summary == "Un débat public samedi…"
    assert first.image_url == "https://petit-bamakois.example/wp-content/uploads/affiche.png"
    assert first.content_html.startswith("<p>Un débat public <b>samedi</b>")
    # no title, no date: title from the summary, date = now
    assert second.title.startswith("Brève sans titre ni date : le marché de Médine")
    assert second.published_at == NOW
    assert second.guid == "https://petit-bamakois.example/breve/medine"
    assert second.author is None and second.categories == () and second.image_url is None


def test_hostile_html_is_neutralised_everywhere() -> None:
    (article,) = parse("hostile.xml", base_url="https://hostile.example/feed/")
    assert article.title == "Piège dans le titre"
    assert article.summary == "Résumé gras"
    html = article.content_html.lower()
    for banned in ("<script", "alert", "<style", "<iframe", "onerror", "onmouseover", "javascript:", "data:",
                   "<form", "<svg", "style=", "class="):
        assert banned not in html, banned
    assert '<a href="https://hostile.example/relatif" rel="noopener">relatif</a>' in article.content_html
    assert "<h2>Intertitre</h2>" in article.content_html
    assert article.image_url == "https://hostile.example/feed/x.png"


def test_missing_dates_use_now_and_dates_are_utc() -> None:
    rss = b"""<rss version="2.0"><channel><link>https://s.example/</link>
      <item><title>Avec date</title><link>https://s.example/1</link><pubDate>Sat, 28 Nov 2026 10:00:00 +0100</pubDate></item>
      <item><title>Sans date</title><link>https://s.example/2</link></item>
      <item><title>Date illisible</title><link>https://s.example/3</link><pubDate>le 28 novembre</pubDate></item>
    </channel></rss>"""
    dated, undated, unreadable = parse_feed(rss, source_id="s", base_url="https://s.example/feed", now=NOW)
    assert dated.published_at == datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
    assert undated.published_at == NOW and unreadable.published_at == NOW
    assert all(a.published_at.tzinfo is not None for a in (dated, undated, unreadable))


def test_image_sources_in_order_of_preference() -> None:
    rss = b"""<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><link>https://s.example/</link>
      <item><title>media</title><link>https://s.example/1</link>
        <media:content url="https://s.example/video.mp4" type="video/mp4"/>
        <media:content url="/img/main.jpg" medium="image"/>
        <enclosure url="https://s.example/enc.jpg" type="image/jpeg" length="1"/></item>
      <item><title>thumbnail</title><link>https://s.example/2</link>
        <media:thumbnail url="https://s.example/thumb.jpg"/></item>
      <item><title>audio enclosure, image in text</title><link>https://s.example/3</link>
        <enclosure url="https://s.example/a.mp3" type="audio/mpeg" length="1"/>
        <description>&lt;p&gt;x &lt;img src="/in/text.png"&gt;&lt;/p&gt;</description></item>
      <item><title>no web image</title><link>https://s.example/4</link>
        <media:content url="ftp://s.example/x.jpg" medium="image"/></item>
    </channel></rss>"""
    a, b, c, d = parse_feed(rss, source_id="s", base_url="https://s.example/feed", now=NOW)
    assert a.image_url == "https://s.example/img/main.jpg"
    assert b.image_url == "https://s.example/thumb.jpg"
    assert c.image_url == "https://s.example/in/text.png"
    assert d.image_url is None


WP = "https://s.example/wp-content/uploads/2026/11/"
WORDPRESS_ITEM = f"""<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"
  xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><link>https://s.example/</link>
  <item><title>Convoi</title><link>https://s.example/convoi/?utm_source=rss&amp;utm_medium=rss</link>
    <description>Le convoi humanitaire est arrivé au Mali.Conduite par M. Moham [&#8230;]</description>
    <content:encoded><![CDATA[<p>Le convoi humanitaire est arrivé au Mali.</p><p>Conduite par M. Mohamed Keïta,
      la délégation rencontre les élus.</p>
      <figure><img src="{WP}convoi-1024x683.jpg" alt="Les camions à l’entrée de Gao" width="1024" height="683"
        srcset="{WP}convoi-300x200.jpg 300w, {WP}convoi-1024x683.jpg 1024w, {WP}convoi-1536x1024.jpg 1536w,
        {WP}convoi-2048x1365.jpg 2048w" sizes="(max-width: 1024px) 100vw, 1024px"></figure>]]></content:encoded>
    <media:thumbnail url="{WP}convoi-150x150.jpg"/>
  </item></channel></rss>""".encode()


def test_wordpress_picture_is_the_srcset_size_with_its_alt_not_the_thumbnail() -> None:
    (a,) = parse_feed(WORDPRESS_ITEM, source_id="s", base_url="https://s.example/feed", now=NOW)
    assert a.image_url == f"{WP}convoi-1536x1024.jpg"
    assert (a.image_alt, a.image_width, a.image_height) == ("Les camions à l’entrée de Gao", 1536, 1024)
    assert "srcset" not in a.content_html  # read for the picture, never re-published


def test_feed_excerpt_cut_mid_word_and_glued_paragraphs_are_repaired() -> None:
    (a,) = parse_feed(WORDPRESS_ITEM, source_id="s", base_url="https://s.example/feed", now=NOW)
    assert a.summary == "Le convoi humanitaire est arrivé au Mali. Conduite par…"


def test_media_content_size_is_kept() -> None:
    rss = b"""<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><link>https://s.example/</link>
      <item><title>m</title><link>https://s.example/1</link>
        <media:content url="https://s.example/p.jpg" medium="image" width="800" height="1000"/></item>
      <item><title>n</title><link>https://s.example/2</link>
        <media:content url="https://s.example/q.jpg" medium="image" width="large" height="-3"/></item>
    </channel></rss>"""
    sized, unsized = parse_feed(rss, source_id="s", base_url="https://s.example/feed", now=NOW)
    assert (sized.image_url, sized.image_width, sized.image_height, sized.image_alt) == (
        "https://s.example/p.jpg", 800, 1000, None)
    assert (unsized.image_url, unsized.image_width, unsized.image_height) == ("https://s.example/q.jpg", None, None)


def test_entry_order_is_kept() -> None:
    items = "".join(f"<item><title>n{i}</title><guid isPermaLink='false'>g{i}</guid></item>" for i in range(5))
    out = parse_feed(f"<rss version='2.0'><channel>{items}</channel></rss>".encode(), source_id="s",
                     base_url="https://s.example/", now=NOW)
    assert [a.guid for a in out] == ["s:g0", "s:g1", "s:g2", "s:g3", "s:g4"]


def test_encoding_comes_from_the_http_content_type() -> None:
    body = "<rss version='2.0'><channel><item><title>Ségou, l’été</title><guid>1</guid></item></channel></rss>"
    latin = body.replace("’", "'").encode("iso-8859-1")
    (a,) = parse_feed(latin, source_id="s", base_url="https://s.example/", now=NOW,
                      content_type="application/rss+xml; charset=iso-8859-1")
    assert a.title == "Ségou, l'été"
    (b,) = parse_feed(body.encode("utf-8"), source_id="s", base_url="https://s.example/", now=NOW,
                      content_type="text/xml; charset=utf-8")
    assert b.title == "Ségou, l’été"


# -- Atom ----------------------------------------------------------------------------------------

def test_atom() -> None:
    crue, mil = parse("atom.xml")
    assert crue.guid == "tag:radio-kayes.example,2026:infos/1204"
    assert crue.title == "Crue du Sénégal : l’alerte levée à Kayes"
    assert crue.url == "https://radio-kayes.example/infos/2026/11/crue-alerte-levee?utm_source=atom#haut"
    assert crue.author == "Djénéba Samaké"
    assert crue.categories == ("Régions", "Environnement")
    assert crue.published_at == datetime(2026, 11, 28, 8, 30, tzinfo=timezone.utc)
    assert crue.summary == "Le niveau du fleuve est redescendu sous la cote d’alerte."
    assert crue.image_url == "https://radio-kayes.example/images/crue.jpg"  # xml:base applies
    assert mil.title == "Marché de Kayes : le prix du mil en baisse & les commerçants soulagés"
    assert mil.published_at == datetime(2026, 11, 27, 18, 0, tzinfo=timezone.utc)  # from <updated>
    assert mil.content_html == "<p>Le sac de 100 kg de mil passe de <strong>32 000</strong> à 27 500 francs CFA.</p>"
    assert mil.summary == "Le sac de 100 kg de mil passe de 32 000 à 27 500 francs CFA."


# -- JSON Feed -----------------------------------------------------------------------------------

def test_json_feed_detected_by_content() -> None:
    bourse, riz, sans_id = parse("jsonfeed.json")
    assert bourse.guid == "https://sahel-eco.example/?p=901"
    assert bourse.title == "Bourse régionale : l’indice BRVM progresse de 1,2 % & touche un record"
    assert bourse.author == "Ibrahim Ouédraogo"
    assert bourse.categories == ("Économie", "Finance")
    assert bourse.image_url == "https://sahel-eco.example/img/brvm-large.jpg"
    assert "<script" not in bourse.content_html and "track()" not in bourse.content_html
    assert "onerror" not in bourse.content_html
    assert '<img src="https://sahel-eco.example/img/brvm.png">' in bourse.content_html
    assert bourse.published_at == datetime(2026, 11, 29, 17, 0, tzinfo=timezone.utc)

    assert riz.guid == "test:902"  # a local id, scoped by its source
    assert riz.url == "https://sahel-eco.example/2026/11/28/riz-importe/"  # relative, against feed_url
    assert riz.content_html == ("<p>Le gouvernement suspend les droits de douane sur le riz importé.</p>"
                                "<p>La mesure court jusqu’en mars.</p>")
    assert riz.title.startswith("Le gouvernement suspend les droits de douane")
    assert riz.author == "La rédaction de Sahel Éco"  # the feed's author
    assert riz.published_at == datetime(2026, 11, 28, 8, 0, tzinfo=timezone.utc)

    assert sans_id.guid == "https://sahel-eco.example/2026/11/27/sans-id/?page=2"
    assert sans_id.published_at == NOW


def test_json_feed_detected_by_content_type_and_version_1_0() -> None:
    doc = {"version": "https://jsonfeed.org/version/1", "title": "v1", "home_page_url": "https://v1.example/",
           "author": {"name": "Ancien Format"},
           "items": [{"id": "a", "url": "https://v1.example/a", "title": "Un", "content_text": "Texte"}]}
    (a,) = parse_feed(b"  \n" + json.dumps(doc).encode(), source_id="s", base_url="https://v1.example/feed.json",
                      now=NOW, content_type="application/feed+json")
    assert (a.title, a.author, a.summary, a.content_html) == ("Un", "Ancien Format", "Texte", "<p>Texte</p>")


@pytest.mark.parametrize("body, reason", [
    (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', "cannot be read"),
    (b'{"hello": "world"}', "not a JSON Feed"),
    (b'[1, 2, 3]', "not a JSON Feed"),
    (b'{"version": "https://jsonfeed.org/version/1.1", "items": "none"}', "no 'items'"),
])
def test_bad_json_is_a_source_error(body: bytes, reason: str) -> None:
    with pytest.raises(SourceError, match=reason):
        parse_feed(body, source_id="s", base_url="https://s.example/", now=NOW, content_type="application/json")


# -- ids across sources -------------------------------------------------------------------------

def json_feed(*items: dict, **top: object) -> bytes:
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "t", **top,
                       "items": list(items)}).encode()


def test_local_ids_from_two_sources_do_not_collide() -> None:
    body = json_feed({"id": "1", "url": "https://a.example/1", "title": "Un"})
    (a,) = parse_feed(body, source_id="echo", base_url="https://echo.example/feed.json", now=NOW)
    (b,) = parse_feed(body, source_id="sahel-eco", base_url="https://sahel-eco.example/feed.json", now=NOW)
    assert a.guid == "echo:1" and b.guid == "sahel-eco:1"
    (n,) = parse_feed(json_feed({"id": 1, "title": "Un"}), source_id="echo", base_url="https://e.example/", now=NOW)
    assert n.guid == "echo:1"  # a number id is the same id as the string

    rss = b"""<rss version="2.0"><channel><link>https://s.example/</link>
      <item><title>Un</title><guid isPermaLink="false">g1</guid></item></channel></rss>"""
    (c,) = parse_feed(rss, source_id="echo", base_url="https://s.example/feed/", now=NOW)
    (d,) = parse_feed(rss, source_id="kayes", base_url="https://s.example/feed/", now=NOW)
    assert (c.guid, d.guid) == ("echo:g1", "kayes:g1")


def test_the_same_wordpress_article_in_two_feeds_has_one_guid() -> None:
    """The main feed and a category feed list the same post: it must be stored and sent once."""
    rss = b"""<rss version="2.0"><channel><link>https://echo.example</link><item><title>Budget</title>
      <link>https://echo.example/2026/11/budget/</link>
      <guid isPermaLink="false">https://echo.example/?p=123</guid></item></channel></rss>"""
    (main,) = parse_feed(rss, source_id="echo", base_url="https://echo.example/feed/", now=NOW)
    (cat,) = parse_feed(rss, source_id="echo-politique", base_url="https://echo.example/category/politique/feed/",
                        now=NOW)
    (js,) = parse_feed(json_feed({"id": "https://echo.example/?p=123", "title": "Budget"}), source_id="echo-json",
                       base_url="https://echo.example/feed.json", now=NOW)
    assert main.guid == cat.guid == js.guid == "https://echo.example/?p=123"
    tag = b"""<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>tag:echo.example,2026:123</id>
      <title>T</title></entry><entry><id>urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a</id><title>U</title></entry></feed>"""
    assert [a.guid for a in parse_feed(tag, source_id="x", base_url="https://echo.example/atom", now=NOW)] == \
        [a.guid for a in parse_feed(tag, source_id="y", base_url="https://echo.example/atom", now=NOW)] == \
        ["tag:echo.example,2026:123", "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a"]


def test_a_bare_guid_is_scoped_not_resolved_against_the_feed_url() -> None:
    """feedparser treats a guid without isPermaLink="false" (and an Atom id) as a link and
    resolves it against the feed URL; a bare "1" must stay a local id, and no article URL."""
    rss = b"""<rss version="2.0"><channel><link>https://s.example/</link>
      <item><title>Un</title><guid>1</guid></item>
      <item><title>Deux</title><guid>2</guid><link>https://s.example/deux</link></item>
      <item><title>Trois</title><guid>/?p=3</guid></item>
      <item><title>Quatre</title><guid>https://s.example/?p=4</guid></item></channel></rss>"""
    un, deux, trois, quatre = parse_feed(rss, source_id="echo", base_url="https://s.example/feed/", now=NOW)
    assert un.guid == "echo:1" and un.url == "https://s.example/"  # the site, not https://s.example/feed/1
    assert deux.guid == "echo:2" and deux.url == "https://s.example/deux"
    assert trois.guid == "echo:/?p=3" and trois.url == "https://s.example/?p=3"  # a root path is a link
    assert quatre.guid == "https://s.example/?p=4" and quatre.url == "https://s.example/?p=4"
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://s.example/base/"><entry><id>7</id>
      <title>Sept</title><link href="sept.html"/></entry></feed>"""
    (sept,) = parse_feed(atom, source_id="kayes", base_url="https://s.example/atom.xml", now=NOW)
    assert sept.guid == "kayes:7" and sept.url == "https://s.example/base/sept.html"


def test_huge_ids_become_a_digest() -> None:
    huge = "x" * 2000
    (a,) = parse_feed(json_feed({"id": huge, "title": "Un"}), source_id="echo", base_url="https://e.example/", now=NOW)
    (b,) = parse_feed(json_feed({"id": huge, "title": "Un"}), source_id="kayes", base_url="https://e.example/", now=NOW)
    assert a.guid.startswith("sha256:") and len(a.guid) == 71 and a.guid != b.guid
    rss = f"<rss version='2.0'><channel><item><title>Un</title><guid isPermaLink='false'>{huge}</guid></item>" \
          "</channel></rss>"
    (c,) = parse_feed(rss.encode(), source_id="echo", base_url="https://e.example/", now=NOW)
    assert c.guid == a.guid


# -- characters a database cannot store ------------------------------------------------------------

BAD = [chr(c) for c in range(32) if chr(c) not in "\t\n"] + [chr(c) for c in range(0xD800, 0xE000)]


def assert_storable(article) -> None:
    for f in dataclasses.fields(article):
        value = getattr(article, f.name)
        for text in value if isinstance(value, tuple) else (value,):
            if isinstance(text, str):
                assert not any(ch in text for ch in BAD), (f.name, text)
                text.encode("utf-8")


def test_nul_and_control_characters_in_json_are_stripped_everywhere() -> None:
    dirty = "\u0000\u0001\u001f\u000b\udfff\ud800"  # low before high: two lone surrogates, not a pair
    item = {"id": f"g{dirty}1", "url": f"https://e.example/a{dirty}b", "title": f"Ti{dirty}tre",
            "summary": f"Ré{dirty}sumé", "content_html": f"<p>Te{dirty}xte &#0; &#1;</p>",
            "image": f"https://e.example/i{dirty}.jpg", "tags": [f"Poli{dirty}tique", dirty],
            "authors": [{"name": f"Awa{dirty} Sangaré"}], "date_published": f"2026-11-28T09:30:00Z{dirty}"}
    body = json_feed(item)  # json.dumps writes the controls and surrogates as \\u escapes
    assert b"\\u0000" in body and b"\\udfff\\ud800" in body
    (a,) = parse_feed(body, source_id="s", base_url="https://e.example/", now=NOW)
    assert_storable(a)
    assert (a.guid, a.url, a.title, a.summary) == ("s:g1", "https://e.example/ab", "Titre", "Résumé")
    assert a.content_html == "<p>Texte  </p>" and a.image_url == "https://e.example/i.jpg"
    assert a.categories == ("Politique",) and a.author == "Awa Sangaré"


def test_nul_and_control_characters_in_rss_are_stripped_everywhere() -> None:
    for nul in ("&#0;", "&#x0;", "\x00", "&#1;", "\x1f", "&#xD800;", "&#55296;", "&#x110000;", "&#99999999999;"):
        rss = f"""<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel>
          <link>https://s.example/</link><item><title>Ti{nul}tre</title><author>Awa{nul} S</author>
          <link>https://s.example/a{nul}b</link><guid isPermaLink="false">g{nul}1</guid>
          <category>Poli{nul}tique</category><description>R&#233;{nul}sum&#233; &amp;#0;</description>
          <media:content url="https://s.example/i{nul}.jpg" medium="image"/></item></channel></rss>"""
        (a,) = parse_feed(rss.encode("utf-8", "surrogatepass"), source_id="s", base_url="https://s.example/f",
                          now=NOW)
        assert_storable(a)
        assert (a.guid, a.url, a.title, a.author, a.categories) == \
            ("s:g1", "https://s.example/ab", "Titre", "Awa S", ("Politique",)), nul
        assert a.summary == "Résumé", nul
        # feedparser leaves references in attributes as written: harmless text, but a raw one goes
        assert a.image_url in ("https://s.example/i.jpg", f"https://s.example/i{nul}.jpg"), nul


def test_out_of_range_date_falls_back_to_now_instead_of_dropping_the_entry() -> None:
    body = json_feed({"id": "1", "title": "Fin des temps", "date_published": "9999-12-31T23:59:59-23:59"},
                     {"id": "2", "title": "Avant tout", "date_published": "0001-01-01T00:00:00+23:59"},
                     {"id": "3", "title": "Normal", "date_published": "2026-11-28T09:30:00+01:00"})
    parsed = read_feed(body, source_id="s", base_url="https://e.example/", now=NOW)
    assert parsed.skipped == 0
    end, start, normal = parsed.articles
    assert end.published_at == NOW and start.published_at == NOW
    assert normal.published_at == datetime(2026, 11, 28, 8, 30, tzinfo=timezone.utc)


# -- not feeds -----------------------------------------------------------------------------------

@pytest.mark.parametrize("body, content_type, reason", [
    (b"", None, "empty"),
    (b"   \n", "application/rss+xml", "empty"),
    (b"<!DOCTYPE html><html><head><title>Accueil</title></head><body><p>Bienvenue</p></body></html>",
     "text/html; charset=utf-8", "web page"),
    (b"<html><body><a href='/feed'>flux</a></body></html>", None, "web page"),
    (b"Ceci n'est pas un flux.", "text/plain", "not an RSS, Atom or JSON feed"),
    (b"<rss version='2.0'><channel><title>coup", "application/rss+xml", "broken"),
])
def test_documents_that_are_not_feeds(body: bytes, content_type: str | None, reason: str) -> None:
    with pytest.raises(SourceError, match=reason) as info:
        parse_feed(body, source_id="echo", base_url="https://s.example/feed", now=NOW, content_type=content_type)
    assert info.value.source_id == "echo"


def test_valid_feed_without_entries_is_empty_not_an_error() -> None:
    assert parse_feed(b"<rss version='2.0'><channel><title>Rien</title></channel></rss>", source_id="s",
                      base_url="https://s.example/", now=NOW) == []
    assert parse_feed(b'{"version": "https://jsonfeed.org/version/1.1", "title": "x", "items": []}',
                      source_id="s", base_url="https://s.example/", now=NOW) == []


# -- the demo feed -------------------------------------------------------------------------------

def test_demo_feed_french_text_survives_intact() -> None:
    parsed = read_feed(DEMO.read_bytes(), source_id="echo", base_url=str(DEMO), now=NOW)
    articles = parsed.articles
    assert parsed.format == "rss20" and parsed.skipped == 0
    assert parsed.title == "L’Écho du Sahel" and parsed.link == "https://echo-du-sahel.example"
    assert len(articles) >= 10
    assert len({a.guid for a in articles}) == len(articles)
    by_title = {a.title: a for a in articles}

    amp = by_title["Sécurité & développement : le plan « Centre 2030 » présenté à Mopti"]
    assert amp.guid == "https://echo-du-sahel.example/?p=48190"
    assert amp.author == "Awa Sangaré"
    assert amp.categories == ("Politique", "Sécurité", "Régions")
    assert amp.image_url == "https://echo-du-sahel.example/wp-content/uploads/2026/11/mopti-plan-centre.jpg"
    assert "« Il n’y a pas de sécurité durable sans écoles ouvertes ni sans eau pour les troupeaux »" \
        in amp.content_html
    assert amp.summary.startswith("Routes, forages, écoles rouvertes et présence renforcée de l’État")
    assert amp.summary.endswith("sur quatre ans pour le centre du pays.")  # '[…]' after a full stop: dropped

    budget = articles[0]
    assert budget.title == "Budget 2027 : l’Assemblée adopte la loi de finances après une nuit de débats"
    assert "est apparu en premier" not in budget.summary and "[" not in budget.summary
    assert budget.summary.endswith("« un budget de fonctionnement »…")
    assert budget.published_at == datetime(2026, 11, 30, 7, 30, tzinfo=timezone.utc)

    for a in articles:
        assert a.url.startswith("https://echo-du-sahel.example/2026/11/")
        assert datetime(2026, 11, 20, tzinfo=timezone.utc) < a.published_at < datetime(2026, 12, 1, tzinfo=timezone.utc)
        assert a.image_url is None or a.image_url.startswith("https://echo-du-sahel.example/wp-content/uploads/")
        for mojibake in ("Ã", "â€", "&amp;", "&#", "&nbsp;", "\ufffd"):
            assert mojibake not in a.title + a.summary + a.content_html, (a.title, mojibake)
    texts = " ".join(a.title + a.summary + a.content_html for a in articles)
    for french in ("é", "è", "à", "ç", "ï", "«", "»", "’", "É"):
        assert french in texts, french

    long = max(articles, key=lambda a: len(a.content_html))
    assert long.title == "Grand format – L’or de Kéniéba, entre promesses et poussière"
    assert len(long.content_html) > 12_000
    assert long.content_html.count("<h2>") == 6
    assert len(long.summary) <= 600 and long.summary.endswith("…")
    assert "Annonces" in {c for a in articles for c in a.categories}
    ségou = by_title["Festival « Rives du Niger » : Ségou attend 40 000 visiteurs"]
    assert ségou.image_url == "https://echo-du-sahel.example/wp-content/uploads/2026/11/segou-scene-flottante.jpg"
    assert (ségou.image_alt, ségou.image_width, ségou.image_height) == ("Maquette de la scène flottante", 1024, 683)
    # media:content gives the size; the same picture in the content gives its alt text
    assert (budget.image_alt, budget.image_width, budget.image_height) == (
        "Les députés lors du vote du budget, dimanche à l’aube", 1200, 675)
    money = by_title["Mobile money : les frais entre opérateurs baissent au 1er décembre"]
    assert (money.image_width, money.image_height) == (150, 150)  # only a thumbnail: shown at its true size


def test_demo_feed_description_of_the_long_article_is_long() -> None:
    """The source description is over 1,500 characters, so truncation is exercised."""
    import feedparser

    entries = feedparser.parse(DEMO.read_bytes()).entries
    longest = max(entries, key=lambda e: len(e.summary))
    assert len(longest.summary) > 1500
