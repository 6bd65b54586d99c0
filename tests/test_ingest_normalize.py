"""Unit tests for the pure normalisation and sanitising helpers."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from bot.ingest.normalize import (
    UNTITLED,
    absolute_url,
    canonical_url,
    clean_text,
    labels,
    make_guid,
    strip_wordpress_boilerplate,
    summary_text,
    title_text,
    to_utc,
    truncate,
)
from bot.ingest.sanitize import clean_html, html_to_text


# -- URLs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("url, expected", [
    ("https://echo-du-sahel.example/a/?utm_source=rss&utm_medium=rss&utm_campaign=x",
     "https://echo-du-sahel.example/a/"),
    ("https://echo-du-sahel.example/a/?id=3&fbclid=IwAR0&gclid=abc&page=2",
     "https://echo-du-sahel.example/a/?id=3&page=2"),
    ("https://echo-du-sahel.example/a?mc_cid=1&mc_eid=2&igshid=3&ref=twitter&q=bamako",
     "https://echo-du-sahel.example/a?q=bamako"),
    ("HTTPS://Echo-Du-Sahel.EXAMPLE:443/Article/Majuscules?Id=1#commentaires",
     "https://echo-du-sahel.example/Article/Majuscules?Id=1"),
    ("http://echo-du-sahel.example:8080/x", "http://echo-du-sahel.example:8080/x"),
    ("https://echo-du-sahel.example", "https://echo-du-sahel.example/"),
])
def test_canonical_url_drops_tracking_and_fragment_keeps_the_rest(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_relative_urls_resolve_against_the_base() -> None:
    base = "https://echo-du-sahel.example/feed/"
    assert absolute_url("/2026/11/a/", base) == "https://echo-du-sahel.example/2026/11/a/"
    assert absolute_url("b.jpg", base) == "https://echo-du-sahel.example/feed/b.jpg"
    assert canonical_url("/a?utm_source=x&p=1", base) == "https://echo-du-sahel.example/a?p=1"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:image/png;base64,xx", "ftp://x.example/a",
                                 "", "   ", "/relative-without-base", "mailto:a@b.example"])
def test_absolute_url_keeps_only_web_urls(url: str) -> None:
    assert absolute_url(url, None) is None


def test_guid_prefers_the_feed_id_then_the_canonical_url_then_a_digest() -> None:
    assert make_guid(" https://site.example/?p=12 ", "https://site.example/a") == "https://site.example/?p=12"
    assert make_guid("", "https://site.example/a?utm_source=x#top") == "https://site.example/a"
    assert make_guid(None, "https://site.example/a?fbclid=1") == make_guid(None, "https://site.example/a")
    one = make_guid(None, None, title="Brève", summary="texte")
    assert one.startswith("sha1:") and one == make_guid(None, None, title="Brève", summary="texte")
    assert one != make_guid(None, None, title="Brève", summary="autre texte")


# -- text ------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("Sécurité &amp; développement : le plan", "Sécurité & développement : le plan"),
    ("L&#8217;&Eacute;cho du Sahel &laquo;&nbsp;enqu&ecirc;te&nbsp;&raquo;", "L’Écho du Sahel «\u00a0enquête\u00a0»"),
    # double-encoded, as feedparser leaves a title a CMS escaped twice
    ("Caf&amp;eacute;-d&amp;eacute;bat &amp;amp; concert", "Café-débat & concert"),
    ("<b>Bamako</b> :   la   <em>nuit</em>\n des  musées", "Bamako : la nuit des musées"),
    ("Kéniéba : « l’or » – la ruée", "Kéniéba : « l’or » – la ruée"),
    ("don&#146;t", "don’t"),  # Windows-1252 reference, decoded the HTML5 way
    ("Piège &lt;script&gt;alert(1)&lt;/script&gt; ici", "Piège ici"),
    ("AT&amp;T et 3 &lt; 5", "AT&T et 3 < 5"),
])
def test_clean_text(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


def test_no_break_spaces_of_french_typography_survive_but_runs_collapse() -> None:
    assert clean_text("Il a dit\u00a0: «\u00a0non\u00a0»") == "Il a dit\u00a0: «\u00a0non\u00a0»"
    assert clean_text("<p>a</p>\n<p>&nbsp;</p>\n<p>b</p>") == "a b"


def test_title_falls_back_to_the_summary_then_to_sans_titre() -> None:
    assert title_text(None, "Le marché de Médine ferme plus tôt vendredi") == "Le marché de Médine ferme plus tôt vendredi"
    long = " ".join(f"mot{i}" for i in range(30))
    assert title_text("", long) == " ".join(f"mot{i}" for i in range(12)) + "…"
    assert title_text("  ", "") == UNTITLED
    assert title_text(None, "…") == UNTITLED


@pytest.mark.parametrize("text, expected", [
    ("Les députés ont voté le budget [&hellip;]", "Les députés ont voté le budget…"),
    ("Les députés ont voté le budget […]", "Les députés ont voté le budget…"),
    ("Les députés ont voté [...] The post Budget appeared first on L’Écho du Sahel.", "Les députés ont voté…"),
    ("Texte. L’article Budget 2027 est apparu en premier sur L’Écho du Sahel.", "Texte."),
    ("Texte « cité » … […]", "Texte « cité »…"),
    ("Une phrase complète. [&hellip;]", "Une phrase complète."),
    ("Vraiment ? […]", "Vraiment ?"),
    ("Trois points... puis la suite", "Trois points... puis la suite"),
])
def test_wordpress_boilerplate_is_removed(text: str, expected: str) -> None:
    assert strip_wordpress_boilerplate(clean_text(text)) == expected


def test_truncate_cuts_on_a_word_boundary() -> None:
    text = "Le coton de Sikasso " * 60
    out = truncate(text.strip(), 100)
    assert len(out) <= 100 and out.endswith("…")
    assert out[:-1] == out[:-1].rstrip() and text.startswith(out[:-1])
    assert text.strip().split()[len(out[:-1].split()) - 1] == out[:-1].split()[-1]  # no half word
    assert truncate("court", 100) == "court"


def test_summary_is_plain_text_without_boilerplate_and_capped() -> None:
    html = ("<p>Par 98 voix contre 21, les <strong>députés</strong> ont adopté le budget. "
            + "Un long développement. " * 40 + "[&hellip;]</p><p>The post <a href='x'>Budget</a> appeared first "
            "on <a href='y'>L’Écho</a>.</p>")
    out = summary_text(html)
    assert out.startswith("Par 98 voix contre 21, les députés ont adopté")
    assert "<" not in out and "appeared first" not in out and "[" not in out
    assert len(out) <= 600 and out.endswith("…")


def test_labels_strip_and_dedupe_in_feed_order() -> None:
    assert labels(["Politique", " politique ", "", None, "Économie", "Sécurité &amp; défense", "Économie"]) == (
        "Politique", "Économie", "Sécurité & défense")


def test_dates_become_aware_utc() -> None:
    assert to_utc(time.gmtime(1_795_000_000)) == datetime.fromtimestamp(1_795_000_000, timezone.utc)
    assert to_utc("2026-11-28T09:30:00+01:00") == datetime(2026, 11, 28, 8, 30, tzinfo=timezone.utc)
    assert to_utc("2026-11-28T09:30:00Z") == datetime(2026, 11, 28, 9, 30, tzinfo=timezone.utc)
    assert to_utc("2026-11-28T09:30:00").utcoffset() == timedelta(0)
    assert to_utc("le 28 novembre") is None and to_utc(None) is None and to_utc(42) is None


# -- HTML sanitising ---------------------------------------------------------------------------

HOSTILE = """<p onclick="steal()" style="color:red">Texte <b>gras</b></p>
<script>alert('xss')</script><style>body{display:none}</style>
<iframe src="https://evil.example/"></iframe>
<img src="photo.jpg" onerror="alert(1)" alt="Photo" width="640" height="480" class="wp-image">
<a href="javascript:alert(1)">piege-un</a> <a href=" JaVaScRiPt:alert(2)">piege-deux</a>
<a href="/relatif" target="_blank" onclick="x()">relatif</a>
<a href="data:text/html;base64,PHNjcmlwdD4=">data</a>
<img src="data:image/svg+xml;base64,AAAA" alt="data">
<form action="https://evil.example/"><input name="pw"></form>
<svg onload="alert(1)"><circle r="1"/></svg><object data="x.swf"></object>
<h1>Grand titre</h1><h2>Intertitre</h2><blockquote>Citation</blockquote>
<figure><img src="https://cdn.example/a.jpg" alt="A"><figcaption>Légende</figcaption></figure>
<ul><li>un</li></ul><ol><li>deux</li></ol><br><em>fin</em> <i>i</i> <strong>s</strong>"""


def test_clean_html_removes_everything_that_runs_code() -> None:
    out = clean_html(HOSTILE, "https://echo-du-sahel.example/2026/11/a/")
    low = out.lower()
    for banned in ("<script", "alert", "<style", "display:none", "<iframe", "onerror", "onclick", "javascript:",
                   "data:", "<form", "<input", "<svg", "onload", "<object", "style=", "class=", "target="):
        assert banned not in low, banned
    assert '<img src="https://echo-du-sahel.example/2026/11/a/photo.jpg" alt="Photo" width="640" height="480">' in out
    assert '<a href="https://echo-du-sahel.example/relatif" rel="noopener">relatif</a>' in out
    # the javascript: links are unwrapped, their text kept
    assert "\npiege-un piege-deux\n" in out and "<a>" not in out
    for kept in ("<h2>Intertitre</h2>", "<blockquote>Citation</blockquote>", "<figcaption>Légende</figcaption>",
                 "<li>un</li>", "<br>", "<em>fin</em>", "<i>i</i>", "<strong>s</strong>", "<b>gras</b>"):
        assert kept in out, kept
    assert "<h1>" not in out and "Grand titre" in out


def test_clean_html_without_a_web_base_drops_relative_urls() -> None:
    out = clean_html('<a href="/x">lien</a><img src="y.png"><a href="https://ok.example/">ok</a>', None)
    assert out == 'lien<a href="https://ok.example/" rel="noopener">ok</a>'


def test_html_to_text_puts_spaces_between_blocks_and_drops_script_text() -> None:
    assert " ".join(html_to_text("<p>un</p><p>deux<br>trois</p><script>var x</script>quatre").split()) == \
        "un deux trois quatre"
    assert html_to_text("l&rsquo;&eacute;t&eacute; &amp; co") == "l’été & co"
    assert html_to_text("<p>non fermé <b>gras") .strip() == "non fermé gras"
