"""Unit tests for the pure normalisation and sanitising helpers."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta, timezone

import pytest

from bot.ingest.normalize import (
    GUID_LIMIT,
    UNTITLED,
    Image,
    absolute_url,
    canonical_url,
    clean_text,
    complete_words,
    images_in_html,
    labels,
    make_guid,
    pick_image,
    scope_guid,
    strip_wordpress_boilerplate,
    summary_text,
    title_text,
    to_utc,
    truncate,
)
from bot.ingest.sanitize import clean_html, html_to_text, strip_unstorable


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
    assert make_guid(" https://site.example/?p=12 ", "https://site.example/a", source_id="s") == \
        "https://site.example/?p=12"
    assert make_guid("", "https://site.example/a?utm_source=x#top", source_id="s") == "https://site.example/a"
    assert make_guid(None, "https://site.example/a?fbclid=1", source_id="s") == \
        make_guid(None, "https://site.example/a", source_id="s")
    one = make_guid(None, None, source_id="s", title="Brève", summary="texte")
    assert one.startswith("s:sha1:") and one == make_guid(None, None, source_id="s", title="Brève", summary="texte")
    assert one != make_guid(None, None, source_id="s", title="Brève", summary="autre texte")
    # the same text in another source is another article
    assert one != make_guid(None, None, source_id="t", title="Brève", summary="texte")


@pytest.mark.parametrize("guid", [
    "https://echo-du-sahel.example/?p=123",
    "HTTP://Echo-Du-Sahel.example/2026/11/a/",
    "tag:radio-kayes.example,2026:infos/1204",
    "TAG:radio-kayes.example,2026:x",
    "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a",
])
def test_global_ids_are_the_same_whatever_the_source(guid: str) -> None:
    assert scope_guid(guid, "principal") == guid == scope_guid(guid, "categorie-politique")
    assert make_guid(f" {guid} ", None, source_id="principal") == guid


@pytest.mark.parametrize("guid", [
    "1", "g1", "902", "sha1:abc", "/?p=123", "?p=123", "//echo-du-sahel.example/?p=1", "https:/pas-d-hote",
    "https://", "mailto:redaction@echo.example", "ftp://echo.example/a", "http://[::1", "urnx:1", "tagada",
])
def test_local_ids_are_scoped_by_their_source(guid: str) -> None:
    assert scope_guid(guid, "echo") == f"echo:{guid}"
    assert scope_guid(guid, "echo") != scope_guid(guid, "sahel-eco")
    assert make_guid(guid, "https://echo.example/a", source_id="echo") == f"echo:{guid}"


def test_huge_ids_become_a_digest_of_the_scoped_id() -> None:
    local = "x" * 600
    digest = scope_guid(local, "echo")
    assert digest == "sha256:" + hashlib.sha256(f"echo:{local}".encode()).hexdigest()
    assert digest != scope_guid(local, "sahel-eco")
    assert len(digest) <= GUID_LIMIT
    url = "https://echo.example/?session=" + "y" * 600
    assert scope_guid(url, "echo") == scope_guid(url, "sahel-eco") == \
        "sha256:" + hashlib.sha256(url.encode()).hexdigest()
    at_limit = "z" * (GUID_LIMIT - len("echo:"))
    assert scope_guid(at_limit, "echo") == f"echo:{at_limit}"  # exactly at the limit: kept
    assert scope_guid(at_limit + "z", "echo").startswith("sha256:")
    assert make_guid(local, None, source_id="echo") == digest


# -- characters a database cannot store --------------------------------------------------------

UNSTORABLE = [chr(c) for c in range(32) if chr(c) not in "\t\n"] + ["\ud800", "\udfff", "\udc80"]


def assert_storable(text: str | None) -> None:
    assert text is None or not any(ch in text for ch in UNSTORABLE), repr(text)
    if text is not None:
        text.encode("utf-8")  # what the database driver does; fails on a lone surrogate


def test_strip_unstorable_keeps_tab_newline_and_every_real_character() -> None:
    assert strip_unstorable("a\x00b\x01c\x1fd\x0be\x0cf\ud800g\udfffh") == "abcdefgh"
    assert strip_unstorable("un\r\ndeux\rtrois\tquatre\ncinq") == "un\ndeux\ntrois\tquatre\ncinq"
    french = "L’Écho « Kéniéba »\u00a0: 😀 ₣ \u202f—"
    assert strip_unstorable(french) is french


def test_control_characters_are_stripped_from_text_urls_and_ids() -> None:
    dirty = "".join(UNSTORABLE).replace("\r", "")
    assert clean_text(f"Bam{dirty}ako &#0;:&#x00;&#1; <b>nuit</b>") == "Bamako : nuit"
    assert clean_text("Caf&amp;#0;&amp;#x1;é") == "Café"
    assert clean_text("un\rdeux") == "un deux"  # a carriage return still separates words
    assert summary_text(f"<p>R\x00é{dirty}sumé</p>") == "Résumé"
    assert title_text("\x00\x01", "") == UNTITLED
    assert labels([f"Pol\x00itique{dirty}", "\x00"]) == ("Politique",)
    assert absolute_url("https://echo.example/a\x00b\x1f?x=1\ud800") == "https://echo.example/ab?x=1"
    assert absolute_url("\x00/a\x00", "https://echo.example/feed/") == "https://echo.example/a"
    assert canonical_url("https://echo.example/a\x00?utm_source=x\x00") == "https://echo.example/a"
    assert make_guid("g\x001\ud800", None, source_id="s") == "s:g1"
    assert make_guid("https://echo.example/?p=1\x00", None, source_id="s") == "https://echo.example/?p=1"
    assert make_guid("\x00\x01", "https://echo.example/a", source_id="s") == "https://echo.example/a"
    assert scope_guid("\x00tag:x\ud800", "s") == "tag:x"


def test_clean_html_strips_control_characters_even_from_references() -> None:
    out = clean_html("<p>a\x00b&#1;c&#0;d\x1fe\ud800f &amp;#2;</p>", "https://echo.example/")
    assert_storable(out)
    assert out == "<p>abcdef &amp;#2;</p>"


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


@pytest.mark.parametrize("value", [
    "9999-12-31T23:59:59-23:59",  # after the last instant a datetime can hold in UTC
    "0001-01-01T00:00:00+23:59",  # before the first
    datetime(9999, 12, 31, 23, 0, tzinfo=timezone(-timedelta(hours=5))),
    time.struct_time((99999, 1, 1, 0, 0, 0, 0, 1, 0)),
])
def test_dates_that_cannot_be_expressed_in_utc_are_no_date(value: object) -> None:
    assert to_utc(value) is None


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


# -- text a CMS mangled --------------------------------------------------------------------------

def test_clean_text_puts_back_the_space_between_glued_paragraphs() -> None:
    # WordPress's excerpt strips </p><p> without a space between the paragraphs.
    assert clean_text("Le convoi est arrivé au Mali.Conduite par M. Mohamed Keïta, la délégation") == \
        "Le convoi est arrivé au Mali. Conduite par M. Mohamed Keïta, la délégation"
    assert clean_text("Voir echo-du-sahel.example ou 3.5 % et les U.S.A") == "Voir echo-du-sahel.example ou 3.5 % et les U.S.A"


def test_truncate_prefers_a_whole_sentence() -> None:
    text = "Le budget est adopté. " + "Les députés de l’opposition ont longuement débattu du texte " * 3
    assert truncate(text.strip(), 30) == "Le budget est adopté…"
    # 21 characters would waste most of the room: a word cut
    assert truncate(text.strip(), 100) == ("Le budget est adopté. Les députés de l’opposition ont longuement "
                                           "débattu du texte Les députés de…")


FULL = ("<p>Le convoi humanitaire est arrivé au Mali.</p><p>Conduite par M. Mohamed Keïta, la délégation "
        "rencontre les élus de Gao.</p>")


@pytest.mark.parametrize("summary, expected", [
    # the feed cut its excerpt at a character count, inside « Mohamed »: the half word and the initial go
    ("Le convoi humanitaire est arrivé au Mali.Conduite par M. Moham…",
     "Le convoi humanitaire est arrivé au Mali. Conduite par…"),
    ("Le convoi humanitaire est arrivé au Mali. Conduite par M. Mohamed Ke [&hellip;]",
     "Le convoi humanitaire est arrivé au Mali. Conduite par M. Mohamed…"),
    # cut at a word boundary: nothing to do
    ("Le convoi humanitaire est arrivé au Mali. Conduite par M. Mohamed […]",
     "Le convoi humanitaire est arrivé au Mali. Conduite par M. Mohamed…"),
    # a summary that is not the start of the article is not judged
    ("Un résumé écrit à la main par la rédac", "Un résumé écrit à la main par la rédac"),
])
def test_a_word_the_feed_cut_in_half_is_dropped(summary: str, expected: str) -> None:
    assert summary_text(summary, full=FULL) == expected


def test_complete_words_needs_the_article_to_judge() -> None:
    assert complete_words("au Mali. Conduite par M. Moham…", "") == "au Mali. Conduite par M. Moham…"
    assert complete_words("Conduite par Moham…", "Conduite par Mohamed") == "Conduite par…"
    assert complete_words("Conduite par Mohamed", "Conduite par Mohamed, hier") == "Conduite par Mohamed"


# -- images --------------------------------------------------------------------------------------

WP = "https://echo.example/wp-content/uploads/2026/11/"
SRCSET_IMG = (f'<p><img src="{WP}budget-1024x576.jpg" alt="Les députés lors du vote" width="1024" height="576" '
              f'srcset="{WP}budget-300x169.jpg 300w, {WP}budget-1024x576.jpg 1024w, {WP}budget-1536x864.jpg 1536w, '
              f'{WP}budget-2048x1152.jpg 2048w, {WP}budget.jpg 2560w" sizes="(max-width: 1024px) 100vw"></p>')


def test_images_in_html_reads_every_size_of_a_srcset() -> None:
    found = images_in_html(SRCSET_IMG, "https://echo.example/a/")
    assert found[0] == Image(f"{WP}budget-1024x576.jpg", 1024, 576, "Les députés lors du vote")
    assert Image(f"{WP}budget-1536x864.jpg", 1536, 864, "Les députés lors du vote") in found
    assert {i.width for i in found} == {300, 1024, 1536, 2048, 2560}


def test_images_in_html_reads_lazy_loaded_images_and_skips_hidden_ones() -> None:
    lazy = ('<svg><image href="/x.png"/><img src="/in-svg.png"></svg>'
            '<img src="data:image/gif;base64,R0lGOD" data-src="/real.jpg" data-srcset="/real-800x600.jpg 800w" alt="">'
            '<noscript><img src="/real.jpg"></noscript>')
    found = images_in_html(lazy, "https://s.example/a/")
    assert [i.url for i in found] == ["https://s.example/real.jpg", "https://s.example/real-800x600.jpg",
                                      "https://s.example/real.jpg"]
    assert found[0].alt is None  # alt="" says the picture is decorative: no alt text to carry


def test_pick_image_takes_the_widest_size_a_newsletter_needs() -> None:
    best = pick_image(images_in_html(SRCSET_IMG, None))
    assert best == Image(f"{WP}budget-1536x864.jpg", 1536, 864, "Les députés lors du vote")


def test_pick_image_prefers_a_full_size_to_a_150_thumbnail() -> None:
    thumb = Image(f"{WP}mobile-money-150x150.jpg")
    # media:thumbnail first, the same picture in the content with its sizes
    assert pick_image([thumb, *images_in_html(SRCSET_IMG.replace("budget", "mobile-money"), None)]).width == 1536
    # a thumbnail and an enclosure of unknown size (the original upload, usually)
    assert pick_image([thumb, Image(f"{WP}mobile-money.jpg")]) == Image(f"{WP}mobile-money.jpg")
    # the thumbnail alone is still better than nothing, with its true size
    assert pick_image([thumb]) == Image(f"{WP}mobile-money-150x150.jpg", 150, 150)


def test_pick_image_keeps_the_feeds_own_picture_and_borrows_alt_and_proportions() -> None:
    featured = Image(f"{WP}budget.jpg", 1200)  # media:content with a width only
    inline = images_in_html(f'<img src="{WP}budget-768x432.jpg" alt="Le vote" width="768" height="432">'
                            f'<img src="{WP}autre-1200x800.jpg" width="1200" height="800">', None)
    assert pick_image([featured, *inline]) == Image(f"{WP}budget.jpg", 1200, 675, "Le vote")
    assert pick_image([Image(f"{WP}geant.jpg", 6000, 4000), Image(f"{WP}geant-3000x2000.jpg")]) == \
        Image(f"{WP}geant-3000x2000.jpg", 3000, 2000)  # only huge sizes: the least huge
    assert pick_image([]) is None


def test_wordpress_boilerplate_shortcuts_remove_exactly_what_the_patterns_remove() -> None:
    """The footers are searched for only where their words are, and without the leading
    \\s* that made the patterns slow; the result is the patterns' own, on every mix of
    pieces below."""
    import random
    import re

    from bot.ingest import normalize as N

    def patterns_only(text: str) -> str:
        text = N._WP_MORE.sub(lambda m: "" if text[:m.start()].rstrip().endswith((".", "!", "?")) else N.ELLIPSIS,
                              text)
        for pattern in N._WP_BOILERPLATE:
            text = pattern.sub("", text)
        text = re.sub(r"\s*(?:…|\.\.\.)(?:\s*…)+", N.ELLIPSIS, text)
        return re.sub(r"\s+" + N.ELLIPSIS + r"$", N.ELLIPSIS, text).strip()

    pieces = ["Texte. ", " ", "\n", "The post X appeared first on Y.", "L’article A est apparu en premier sur B.",
              "L'ARTICLE a est apparu en premier sur b", "Cet article c est apparu en premier sur d.\n",
              "Lire la suite", " Read more →", "Continue reading «x»", "[…]", "[...]", "[&hellip;]", "…", "...",
              " … ", "Mali.", "fin.", "lire plusieurs", "the post", "appeared first on", "\u00a0"]
    rnd = random.Random(3)
    for _ in range(5000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 8)))
        assert strip_wordpress_boilerplate(text) == patterns_only(text), text
