"""bot.text: word-boundary cuts and the shortening ladder every length-limited channel uses.

The channels' own measures (Telegram's UTF-16 visible length, X's weighted length) are
tested in tests/channels/; here the measures are plain ones, so each rule shows alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.text import ELLIPSIS, cut_to, excerpt, last_resort_title, shrink


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_excerpt_cuts_on_a_word_boundary() -> None:
    text = "Les pluies ont dépassé les attentes des maraîchers du fleuve Niger cette année"
    out = excerpt(text, 30)
    assert out.endswith("…") and len(out) <= 30
    assert text.startswith(out[:-1])
    assert out[:-1].split()[-1] in text.split()  # the last kept word is a whole word
    assert excerpt("court", 30) == "court"
    assert excerpt("  plusieurs\n  espaces  ", 30) == "plusieurs espaces"
    assert excerpt("anticonstitutionnellement", 10) == "anticonst…"
    assert excerpt("", 10) == "" and excerpt(None, 10) == ""
    assert excerpt("Bamako : « la saison »", 10) == "Bamako…"  # no dangling « : » before the ellipsis


def test_excerpt_keeps_french_no_break_spaces() -> None:
    # They bind « : » to its word on purpose; squeezing them would let a phone wrap it alone.
    assert excerpt("Bamako\u00a0: la\n\nsaison", 50) == "Bamako\u00a0: la saison"
    assert excerpt("mot", 1) == ""  # no room for a letter and the ellipsis


def test_cut_to_is_the_longest_excerpt_under_the_measure() -> None:
    text = "Fête 🎉 à Ségou 👍🏾 " * 40  # emoji count 2 in UTF-16: len() would overshoot
    for limit in (10, 37, 100, 333):
        out = cut_to(text, limit, utf16)
        assert utf16(out) <= limit, (limit, out)
        assert out.endswith(ELLIPSIS)
        for n in range(len(out) + 1, limit + 1):  # no longer excerpt fits
            assert excerpt(text, n) == out or utf16(excerpt(text, n)) > limit, (limit, n)
    assert cut_to("court", 10, utf16) == "court"


def test_cut_to_with_a_plain_measure_is_excerpt() -> None:
    text = "Les pluies ont dépassé les attentes des maraîchers"
    assert cut_to(text, 25, len) == excerpt(text, 25)


@dataclass(frozen=True)
class Item:
    title: str
    summary: str


def render(items: list[Item]) -> str:
    return "\n".join(f"{i.title}: {i.summary}" for i in items)


def test_shrink_leaves_what_fits_alone() -> None:
    items = [Item("Titre", "Résumé court")]
    assert shrink(render, items, lambda s: len(s) <= 100, len, excerpt, 100) == (items, "Titre: Résumé court")


def test_shrink_shortens_summaries_before_titles_and_as_little_as_it_can() -> None:
    items = [Item("Un titre assez long pour compter", " ".join(f"mot{i}" for i in range(50)))]
    limit = 80
    arts, out = shrink(render, items, lambda s: len(s) <= limit, len, excerpt, limit)  # type: ignore[misc]
    assert len(out) <= limit and out == render(arts)
    assert arts[0].title == items[0].title  # the title is whole
    assert arts[0].summary.endswith(ELLIPSIS) and items[0].summary.startswith(arts[0].summary[:-1])
    longer = excerpt(items[0].summary, len(arts[0].summary) + 5)
    assert len(render([Item(items[0].title, longer)])) > limit  # a few more characters no longer fit


def test_shrink_cuts_titles_once_summaries_are_gone() -> None:
    # A title within the limit, but with no room left for « : » and any summary at all.
    title = "Les pluies ont dépassé les attentes des maraîchers de Ségou"
    assert len(title) == 59
    items = [Item(title, "résumé " * 30)]
    arts, out = shrink(render, items, lambda s: len(s) <= 60, len, excerpt, 60)  # type: ignore[misc]
    assert arts[0].summary == "" and arts[0].title.endswith(ELLIPSIS) and len(out) <= 60
    assert title.startswith(arts[0].title[:-1]) and len(out) >= 50  # shortened, not emptied


def test_shrink_returns_none_when_even_the_shortest_form_is_refused() -> None:
    items = [Item("Titre", "Résumé")]
    assert shrink(lambda arts: "x" * 500 + render(arts), items, lambda s: len(s) <= 100, len, excerpt, 100) is None


def test_shrink_clips_huge_fields_to_the_limit_first() -> None:
    # A 20,000-character title would cost seconds of measuring; it can never fit anyway.
    measured: list[int] = []

    def size(text: str) -> int:
        measured.append(len(text))
        return len(text)

    items = [Item("titre " * 4000, "résumé " * 4000)]
    arts, out = shrink(render, items, lambda s: len(s) <= 200, size, excerpt, 200)  # type: ignore[misc]
    assert len(out) <= 200 and max(measured) <= 200


def test_last_resort_title_is_the_first_non_blank_candidate() -> None:
    assert last_resort_title([None, "  \n ", " Le  titre\n du jour ", "Site"]) == "Le titre du jour"
    assert last_resort_title(["", None]) == ELLIPSIS


# --------------------------------------------------------------------------- sentence cuts


LEDE = ("Par 98 voix contre 21, les députés ont adopté dimanche un budget de 2 840 milliards. "
        "L’opposition dénonce un budget de fonctionnement, pas de développement, et promet un recours.")


def test_excerpt_prefers_the_last_whole_sentence_when_it_keeps_most_of_the_room() -> None:
    first = LEDE.index(". ") + 1  # 83 characters
    out = excerpt(LEDE, 120)
    # French drops the full stop before points de suspension: « … milliards… »
    assert out == LEDE[:first - 1] + ELLIPSIS and len(out) <= 120
    # 83 characters are under 60 % of 150: a word cut keeps more, so it wins.
    longer = excerpt(LEDE, 150)
    assert len(longer) > 130 and longer.endswith(ELLIPSIS)
    assert LEDE.startswith(longer[:-1]) and LEDE[len(longer) - 1] == " "  # a whole word, then the cut


def test_excerpt_never_cuts_inside_a_word_or_after_an_initial() -> None:
    text = "La délégation est arrivée au Mali. Conduite par M. Mohamed Keïta, elle rencontre les élus"
    for n in range(12, len(text)):
        out = excerpt(text, n)
        assert len(out) <= n and out.endswith(ELLIPSIS), (n, out)
        kept = out[:-1]
        assert text.startswith(kept) or text.startswith(kept + "."), (n, out)
        assert not text[len(kept):len(kept) + 1].isalnum(), f"cut inside a word at {n}: {out!r}"
        assert not kept.endswith(" M"), f"a sentence cut after the initial « M. »: {out!r}"
    assert "Moham…" not in excerpt(text, 60)


def test_excerpt_sentence_ends_with_question_marks_and_abbreviations() -> None:
    text = "Faut-il rouvrir la route de Kidal\u202f? Les transporteurs le demandent depuis des mois, sans réponse"
    assert excerpt(text, 60) == "Faut-il rouvrir la route de Kidal\u202f?" + ELLIPSIS
    abbrev = "Le budget atteint env. 300 milliards, selon Mme. Keïta qui présente le texte demain matin"
    assert "env…" not in excerpt(abbrev, 70) and "Mme…" not in excerpt(abbrev, 70)


def test_excerpt_closes_a_guillemet_it_leaves_open() -> None:
    title = "Bamako\u00a0: «\u00a0la saison des pluies a dépassé nos attentes\u00a0», selon l’Agence"
    out = excerpt(title, 55)
    assert out == "Bamako\u00a0: «\u00a0la saison des pluies a dépassé nos…\u00a0»"
    assert len(out) <= 55 and out.count("«") == out.count("»")
    plain = excerpt("Il a dit « la saison des pluies a dépassé nos attentes » hier", 40)
    assert plain.endswith("… »") and len(plain) <= 40


# --------------------------------------------------------------------------- typography

from bot.text import NBSP, NNBSP, french, french_html, link, sentence_spacing, typography  # noqa: E402


@pytest.mark.parametrize("raw, expected", [
    ("Bamako : la saison", f"Bamako{NBSP}: la saison"),
    ("Bamako: la saison", f"Bamako{NBSP}: la saison"),
    ("Bamako\u202f: la saison", f"Bamako{NBSP}: la saison"),
    ("le plan «Centre 2030» présenté", f"le plan «{NBSP}Centre 2030{NBSP}» présenté"),
    ("le plan « Centre 2030 » présenté", f"le plan «{NBSP}Centre 2030{NBSP}» présenté"),
    ("Vraiment? Oui! Et alors ; rien", f"Vraiment{NNBSP}? Oui{NNBSP}! Et alors{NNBSP}; rien"),
    ("Quoi ?! C'est fini", f"Quoi{NNBSP}?! C’est fini"),
    ("40 000 visiteurs", f"40{NNBSP}000 visiteurs"),
    ("1 250 000 francs et 2 840 milliards", f"1{NNBSP}250{NNBSP}000 francs et 2{NNBSP}840 milliards"),
    ("40\u00a0000 visiteurs", f"40{NNBSP}000 visiteurs"),
    ("en hausse de 6 %", f"en hausse de 6{NNBSP}%"),
    ("l'Assemblée et aujourd'hui", "l’Assemblée et aujourd’hui"),
    ("Et puis... plus rien", "Et puis… plus rien"),
])
def test_french_typography(raw: str, expected: str) -> None:
    assert french(raw) == expected


@pytest.mark.parametrize("text", [
    "Budget 2026 : 2840 francs, 75001 Paris, 3,5 millions à 07:00",  # only the colon moves
    "Voir https://echo.example/a?b=1&c=l'x... et www.echo.example/p?q=2",
    "Écrire à awa@example.org ou echo.example.ml, et `a: b ; c?` en code",
    "Le ratio 3:1 et std::vector",
])
def test_french_typography_leaves_numbers_urls_addresses_and_code_alone(text: str) -> None:
    out = french(text)
    for untouchable in ("2026", "2840", "75001", "3,5", "07:00", "https://echo.example/a?b=1&c=l'x",
                        "www.echo.example/p?q=2", "awa@example.org", "echo.example.ml", "`a: b ; c?`",
                        "3:1", "std::vector"):
        if untouchable in text:
            assert untouchable in out, (untouchable, out)
    assert french(out) == out


def test_french_typography_is_idempotent_on_messy_text() -> None:
    messy = ("«Budget»: l'Assemblée vote 2 840 milliards ( +6 % )!Vraiment ?? Oui...; "
             "voir https://e.example/?a=1 : ici « ok » ! 40 000 , 1 250 000.")
    once = french(messy)
    assert french(once) == once
    assert "’" in once and "…" in once and NNBSP in once and NBSP in once


def test_french_typography_only_for_french() -> None:
    assert typography("Bamako : l'été?", "fr") == f"Bamako{NBSP}: l’été{NNBSP}?"
    assert typography("Bamako : l'été?", "en") == "Bamako : l'été?"
    assert typography("Bamako : l'été?", None) == "Bamako : l'été?"


def test_french_html_changes_text_never_markup() -> None:
    fragment = ('<p class="a:b" title="x ; y"><a href="https://e.example/?a=1&amp;b=l\'x">Bamako :</a> '
                '«la <em>saison</em>» l&#39;Agence &amp; 40&nbsp;000 &lt;b&gt; <code>a ; b?</code>...</p>')
    out = french_html(fragment)
    assert out == ('<p class="a:b" title="x ; y"><a href="https://e.example/?a=1&amp;b=l\'x">Bamako\u00a0:</a> '
                   '«\u00a0la <em>saison</em>\u00a0» l’Agence &amp; 40\u202f000 &lt;b&gt; <code>a ; b?</code>…</p>')
    assert french_html(out) == out


def test_sentence_spacing_restores_a_lost_space_only_between_sentences() -> None:
    assert sentence_spacing("au Mali.Conduite par M. Moham") == "au Mali. Conduite par M. Moham"
    assert sentence_spacing("(AFP).Le texte…Puis la suite?Non") == "(AFP). Le texte… Puis la suite? Non"
    for kept in ("voir example.com et echo.example.ml", "3.5 millions", "les U.S.A et M.Keïta",
                 "Node.JS", "https://e.example/Page.Html", "awa.diarra@Echo.example", "etc.) le reste"):
        assert sentence_spacing(kept) == kept, kept


# --------------------------------------------------------------------------- links


@pytest.mark.parametrize("url, expected", [
    ("https://e.example/a/?utm_source=rss&utm_medium=rss&utm_campaign=budget", "https://e.example/a/"),
    ("https://e.example/a?p=1&fbclid=XyZ&utm_term=x#haut", "https://e.example/a?p=1#haut"),
    ("https://e.example/a?q=caf%C3%A9+cr%C3%A8me&UTM_Source=x", "https://e.example/a?q=caf%C3%A9+cr%C3%A8me"),
    ("https://e.example/a", "https://e.example/a"),
    ("mailto:a@e.example?utm_source=x", "mailto:a@e.example?utm_source=x"),  # not a web link: as it is
])
def test_link_drops_tracking_and_keeps_the_rest_as_written(url: str, expected: str) -> None:
    assert link(url) == expected


def test_link_adds_the_channel_campaign_replacing_the_feeds() -> None:
    campaign = {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "lettre du matin"}
    assert link("https://e.example/a/?utm_source=rss&p=2", campaign) == (
        "https://e.example/a/?p=2&utm_source=newsletter&utm_medium=email&utm_campaign=lettre%20du%20matin")
    assert link("https://e.example/a/?p=2", {"p": "3"}) == "https://e.example/a/?p=3"


def _tags(fragment: str) -> list[tuple[str, ...]]:
    """Every tag, attribute and markup entity of an HTML fragment, as a parser reads them."""
    from html.parser import HTMLParser  # only this helper parses HTML

    found: list[tuple[str, ...]] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, *(f"{k}={v}" for k, v in attrs)))

        def handle_endtag(self, tag: str) -> None:
            found.append(("/" + tag,))

        def handle_entityref(self, name: str) -> None:
            if name in ("amp", "lt", "gt", "quot"):
                found.append(("&" + name,))

    parser = Collect(convert_charrefs=False)
    parser.feed(fragment)
    parser.close()
    return found


def test_typography_is_idempotent_and_keeps_markup_on_random_text() -> None:
    import random  # a seeded generator: the same cases on every run

    pieces = list("aAéÉ1 0.:;!?«»'\"…%,-()&") + [
        "\u00a0", "\u202f", " 000", "l'", "...", "::", "<b>", "</b>", "&amp;", "&lt;", "&nbsp;", "&#39;",
        '<a href="https://x.fr/?a=1&amp;b=l\'x ; y">', "</a>", "`c:d`", "awa@e.example", "echo.example.ml",
        "https://x.fr/p?q=1", "Mali.Conduite"]
    rng = random.Random(2027)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        once = french(text)
        assert french(once) == once, text
        spaced = sentence_spacing(text)
        assert sentence_spacing(spaced) == spaced, text
        html_once = french_html(text)
        assert _tags(html_once) == _tags(text), text
        assert french_html(html_once) == html_once, text


def test_typeset_sets_what_a_reader_sees_and_leaves_links_and_html() -> None:
    from datetime import datetime, timezone  # only this test builds an Article

    from bot.models import Article
    from bot.text import typeset

    a = Article(source_id="s", guid="g", url="https://e.example/a?x=l'y:z", title="Budget: l'Assemblée vote",
                published_at=datetime(2026, 11, 30, tzinfo=timezone.utc), author="Awa N'Diaye",
                categories=("Société", "L'économie"), summary="Au Mali.Conduite par M. Keïta... 40 000 voix!",
                content_html="<p>l'original : intact</p>", image_url="https://e.example/i.jpg",
                image_alt="Les députés: le vote")
    fr = typeset(a, "fr")
    assert (fr.title, fr.author, fr.categories, fr.image_alt) == (
        "Budget\u00a0: l’Assemblée vote", "Awa N’Diaye", ("Société", "L’économie"), "Les députés\u00a0: le vote")
    assert fr.summary == "Au Mali. Conduite par M. Keïta… 40\u202f000 voix\u202f!"
    assert (fr.url, fr.content_html, fr.image_url) == (a.url, a.content_html, a.image_url)
    en = typeset(a, "en")
    assert en.summary == "Au Mali. Conduite par M. Keïta... 40 000 voix!" and en.title == a.title
