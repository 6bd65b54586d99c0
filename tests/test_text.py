"""bot.text: word-boundary cuts and the shortening ladder every length-limited channel uses.

The channels' own measures (Telegram's UTF-16 visible length, X's weighted length) are
tested in tests/channels/; here the measures are plain ones, so each rule shows alone.
"""

from __future__ import annotations

from dataclasses import dataclass

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
