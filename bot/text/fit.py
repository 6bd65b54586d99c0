"""Word-boundary cuts and the shortening ladder.

A channel with a length limit renders a post from a template, measures it, and, when it
is too long, shortens the article fields the template shows — summaries first, then
titles — on the plain text, *before* the template escapes it, so a cut never lands inside
a tag or an entity. :func:`shrink` finds the longest texts that fit with a binary search.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Callable, Sequence, TypeVar

ELLIPSIS = "…"
#: Any whitespace run except the no-break spaces French typography puts on purpose.
SQUEEZE = re.compile(r"[^\S\u00a0\u202f]+")


def squeeze(text: str) -> str:
    """``SQUEEZE.sub(" ", text).strip()``, twice as fast: the regex is tried at every position
    of the text, where str.split() finds the same runs in one C loop. The two no-break spaces
    are hidden from split() as \x00 and \x01 (neither is whitespace), so the runs it splits on
    are exactly SQUEEZE's; a run at either end is dropped by both (strip() then removes any
    no-break space left there, as it does after the regex)."""
    if "\u00a0" not in text and "\u202f" not in text:
        return " ".join(text.split())
    if "\x00" in text or "\x01" in text:
        return SQUEEZE.sub(" ", text).strip()
    joined = " ".join(text.replace("\u00a0", "\x00").replace("\u202f", "\x01").split())
    return joined.replace("\x00", "\u00a0").replace("\x01", "\u202f").strip()

log = logging.getLogger(__name__)

A = TypeVar("A")  # an Article (anything with title and summary fields, a dataclass)


#: A sentence cut is preferred to a word cut when it keeps at least this share of the room.
SENTENCE_SHARE = 0.6
# A sentence's final mark, glued to a word of two characters or more (a lone capital before a
# full stop is an initial: « M. Keïta »); « ? » and « ! » may follow a (no-break) space.
_SENTENCE_END = re.compile(r"(?<=[^\W_][^\W_])[.…]|(?<=[»”\")\]])[.…]|(?<=[^\W_»”\")\]])[ \u00a0\u202f]?[!?]+(?=\s)")
_OPENERS = " \u00a0\u202f«\"“‘(—–-"
# Abbreviations that end with a full stop inside a sentence (« Mme. », « env. 300 »).
_ABBREVIATIONS = frozenset({
    "mm", "mme", "mmes", "mlle", "mlles", "dr", "pr", "me", "mgr", "st", "ste", "gal", "gén", "col", "cdt",
    "lt", "sgt", "av", "apr", "art", "cf", "env", "ex", "hab", "min", "max", "no", "nos", "vol", "chap",
    "fig", "réf", "tél", "vs", "mr", "mrs", "ms", "jr", "sr", "prof", "pp", "ann", "éd", "coll", "etc",
})
_WORD_BEFORE = re.compile(r"([^\W\d_]+)$")


def _sentence_cut(flat: str, room: int, ellipsis: str) -> str | None:
    """The longest run of whole sentences of ``flat`` within ``room + len(ellipsis)``
    characters, marked as cut: « … au Mali. » becomes « … au Mali… » (French drops the full
    stop before points de suspension), « Vraiment ? » becomes « Vraiment ?… ». None if no
    sentence ends early enough to keep :data:`SENTENCE_SHARE` of the room."""
    length = room + len(ellipsis)
    best: tuple[int, str] | None = None  # (where the kept text ends, what follows it)
    for m in _SENTENCE_END.finditer(flat):
        if m.start() >= length:
            break
        if not flat[m.end():m.end() + 1].isspace():
            continue
        mark = m.group(0)
        if mark == ".":
            word = _WORD_BEFORE.search(flat, max(0, m.start() - 12), m.start())
            if word and word.group(1).lower() in _ABBREVIATIONS:
                continue
            following = flat[m.end():m.end() + 12].lstrip(_OPENERS)[:1]
            if not (following.isupper() or following.isdigit()):
                continue  # « 3 p. ex. », a domain-less « etc. » mid-sentence
            end, tail = m.start(), ellipsis
        elif mark == ellipsis:
            end, tail = m.end(), ""
        else:
            end, tail = m.end(), ellipsis
        if end + len(tail) <= length:
            best = (end, tail)
    if best is None or best[0] + len(best[1]) < SENTENCE_SHARE * length:
        return None
    return flat[:best[0]] + best[1]


def _closing_quote(head: str) -> str:
    """What closes a « guillemet » left open by a cut, spaced as it was opened; "" if none is."""
    if head.count("«") <= head.count("»"):
        return ""
    after = head[head.rfind("«") + 1:head.rfind("«") + 2]
    return (after + "»") if after in ("\u00a0", "\u202f", " ") else "»"


def _cut(flat: str, room: int, ellipsis: str) -> str:
    sentence = _sentence_cut(flat, room, ellipsis)
    if sentence is not None:
        return sentence
    cut = flat[: room + 1]
    space = cut.rfind(" ")
    head = cut[:space] if space > 0 else flat[:room]
    while True:  # « par M. » or « selon Mme » cut off from the name they introduce say nothing
        last = _LAST_WORD.search(head)
        if not last or not _introduces_a_name(last.group(1)) or last.start() == 0:
            break
        head = head[:last.start()]
    head = head.rstrip(" ,;:.!?-–—«(\u00a0\u202f")
    return (head + ellipsis) if head else ""


_LAST_WORD = re.compile(r"\s(\S+)$")


def _introduces_a_name(word: str) -> bool:
    """An initial (« M. », « J.-P. ») or a title (« Mme », « Dr. ») that a name must follow."""
    bare = word.rstrip(".")
    if len(bare) == 1 and bare.isupper():
        return True
    if re.fullmatch(r"(?:[^\W\d_]\.-?)+[^\W\d_]?\.?", word) and word[0].isupper():
        return True
    return bare.lower() in _TITLES


#: Words that stand before a name.
_TITLES = frozenset({"m", "mm", "mme", "mmes", "mlle", "dr", "pr", "me", "mgr", "gal", "gén", "col", "cdt",
                     "lt", "sgt", "mr", "mrs", "ms", "prof", "st", "ste"})


def excerpt(text: str | None, length: int = 200, ellipsis: str = ELLIPSIS) -> str:
    """At most ``length`` characters of ``text``, ending with « … » where it was cut.

    The cut falls after the last whole sentence when that keeps at least 60 % of
    ``length``, else after the last whole word; never inside a word, except for a single
    word longer than ``length`` (better than showing nothing). A « guillemet » the cut
    leaves open is closed after the ellipsis (« « la saison des… » »). Whitespace is
    collapsed first (feeds are full of stray newlines); French no-break spaces are kept.
    """
    if not text:
        return ""
    flat = squeeze(str(text))
    if len(flat) <= length:
        return flat
    if length <= len(ellipsis):
        return ""
    room = length - len(ellipsis)
    out = _cut(flat, room, ellipsis)
    close = _closing_quote(out)
    if close:
        shorter = _cut(flat, room - len(close), ellipsis) if room > len(close) else ""
        close = _closing_quote(shorter)
        out = shorter + close if shorter else out
    return out


def cut_to(text: str, limit: int, measure: Callable[[str], int]) -> str:
    """The longest :func:`excerpt` of ``text`` whose ``measure`` is at most ``limit``.

    ``measure`` must count every character at least 1 and at most 2 (UTF-16 units, say),
    so ``excerpt(text, limit // 2)`` always fits and a binary search finds the rest."""
    whole = excerpt(text, limit)
    if measure(whole) <= limit:
        return whole
    lo, hi = limit // 2, limit + 1  # excerpt(text, lo) fits; the largest that fits is in [lo, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if measure(excerpt(text, mid)) <= limit:
            lo = mid
        else:
            hi = mid
    return excerpt(text, lo)


def shrink(render: Callable[[list[A]], str], articles: Sequence[A], ok: Callable[[str], bool],
           size: Callable[[str], int], shorten: Callable[[str, int], str],
           limit: int) -> tuple[list[A], str] | None:
    """Render ``articles``; if ``ok`` refuses the output, shorten summaries, then titles,
    until it accepts. Returns the shortened articles and the output, or None when even
    the shortest titles without summaries are refused (the caller then takes the next
    rung of its ladder; nothing here raises for content that is too long).

    ``shorten(text, n)`` keeps at most ``n`` units of ``text`` (characters for Telegram,
    X's weighted characters for X); ``size`` measures a field in those units (or more),
    which bounds the search.

    A shown field longer than the post's ``limit`` can never fit, so longer fields are
    first cut to ``limit`` (a field the template does not show may be cut too: no one
    sees it). That keeps a 20,000-character title from costing seconds of measuring.
    """
    def clip(text: str) -> str:
        return text if len(text) <= limit else shorten(text, limit)

    arts = [a if len(a.title) <= limit and len(a.summary) <= limit  # type: ignore[attr-defined]
            else replace(a, title=clip(a.title), summary=clip(a.summary))  # type: ignore[attr-defined,type-var]
            for a in articles]
    out = render(arts)
    if ok(out):
        return arts, out

    def shortened(summary: int | None, title: int | None) -> list[A]:
        return [replace(a,  # type: ignore[type-var]
                        summary=a.summary if summary is None else shorten(a.summary, summary),  # type: ignore[attr-defined]
                        title=a.title if title is None else shorten(a.title, title))  # type: ignore[attr-defined]
                for a in arts]

    for field, longest in (("summary", max((size(a.summary) for a in arts), default=0)),  # type: ignore[attr-defined]
                           ("title", max((size(a.title) for a in arts), default=0))):  # type: ignore[attr-defined]
        def attempt(n: int) -> tuple[list[A], str]:
            candidate = shortened(n, None) if field == "summary" else shortened(0, n)
            return candidate, render(candidate)

        start = 0 if field == "summary" else len(ELLIPSIS) + 1
        found, out = attempt(start)
        if not ok(out):
            continue
        lo, hi = start, min(longest, limit + 1)  # the largest n that fits lies in [lo, hi)
        best = (found, out)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            arts_mid, out_mid = attempt(mid)
            if ok(out_mid):
                lo, best = mid, (arts_mid, out_mid)
            else:
                hi = mid
        return best
    return None


def last_resort_title(candidates: Sequence[str | None]) -> str:
    """The first non-blank text among ``candidates`` (an article's title, the channel's, the
    site's name and address), whitespace squeezed: what a post shows when nothing else fits."""
    for text in candidates:
        flat = squeeze(text or "")
        if flat:
            return flat
    return ELLIPSIS


def said_fallback(channel: object, url: str, how: str) -> None:
    """Say so when an article went out in a reduced form: an admin may want to know."""
    shown = url if len(url) <= 120 else url[:120] + ELLIPSIS
    log.warning("channel %s: article %s is too long for a %s post even shortened; sent %s",
                getattr(channel, "id", "?"), shown, getattr(channel, "type", "?"), how)
