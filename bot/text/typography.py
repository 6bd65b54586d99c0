"""French typography on text Tamtam did not write: the feed's titles, summaries and excerpts.

Tamtam's own strings carry their no-break spaces (``bot/render/strings.py``); a feed's text
usually does not, so a phone wraps « 40 000 visiteurs » as « 40 / 000 » and leaves a lone
« : » or « » » at the start of a line. :func:`french` fixes plain text:

* a no-break space (U+00A0) before « : » and inside « guillemets »;
* a narrow no-break space (U+202F) before « ; ! ? » and « % », and between the groups of a
  number already written in groups (« 40 000 », « 1 250 000 », « 2 840 »). A number written
  without groups is left alone: a year (2026), a postcode (75001), a phone number or an
  identifier must not become « 75 001 »;
* « ... » → « … », and a straight apostrophe between two letters → ’.

URLs, e-mail addresses, domain names and `code` are never touched: they are masked with
private-use characters before the rules run and put back after. :func:`french_html` does the
same on HTML, where tags, entities and ``<code>``/``<pre>`` are masked too, so markup and
attributes come out byte for byte. Every rule is idempotent: typography applied twice is
typography applied once.

:func:`sentence_spacing` is language-neutral: it puts back the space a CMS lost between two
paragraphs (« au Mali.Conduite par » → « au Mali. Conduite par ») without splitting
« example.com », « 3.5 », « U.S.A » or « M. Keïta ».
"""

from __future__ import annotations

import html as _html
import re
from dataclasses import replace
from typing import Callable

from ..models import Article

NBSP = "\u00a0"  # before ':' and inside « »
NNBSP = "\u202f"  # before ; ! ? %, and between the groups of a number

# -- masking ----------------------------------------------------------------------------

# Supplementary private-use plane 15: never in real text, and not a letter, digit or space
# for the rules below, so a masked span behaves like an opaque word.
_MASK_BASE = 0xF0000
_MASK_LIMIT = 0xFFFFD - _MASK_BASE
_MASKED = re.compile("[\U000F0000-\U000FFFFD]")

_URL = r"(?:\b[A-Za-z][A-Za-z0-9+.-]{1,15}://|\bwww\.)[^\s<>\"«»]*[^\s<>\"«».,;:!?)’'…]"
_MAILTO = r"\bmailto:[^\s<>\"«»]*[^\s<>\"«».,;:!?)’'…]"
# Each starts only where a run of its characters starts: tried at every dot of « a.a.a… »,
# they would take quadratic time.
_EMAIL = r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
# A host name: labels joined by dots, ending in a lower-case top-level domain ("echo.example.ml").
_DOMAIN = r"(?<![\w.-])[\w-]+(?:\.[\w-]+)*\.[a-z]{2,24}\b(?:/[^\s<>\"«»]*[^\s<>\"«».,;:!?)’'…])?"
_CODE = r"`[^`\n]+`"
_TEXT_PROTECTED = re.compile("|".join((_URL, _MAILTO, _EMAIL, _DOMAIN, _CODE, _MASKED.pattern)))

# Elements whose content is not prose, kept whole.
_HTML_RAW = r"<(?P<tag>code|pre|kbd|samp|tt|var|script|style|textarea)\b[^>]*>.*?</(?P=tag)\s*>"
_HTML_MARKUP = r"(?i:" + _HTML_RAW + r"|<!--.*?-->|<![^>]*>|<\?[^>]*>|</?[A-Za-z][^>]*>)"
_ENTITY = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_HTML_PROTECTED = re.compile("|".join((_HTML_MARKUP, _ENTITY.pattern, _TEXT_PROTECTED.pattern)), re.S)
_MARKUP_ONLY = re.compile(_HTML_MARKUP, re.S)
_ENTITY_APOSTROPHE = re.compile(r"(?<=[^\W\d_])(?:&#0*39;|&#[xX]0*27;|&apos;)(?=[^\W\d_])")
#: Characters that stay entities in HTML text: decoded, they could make or end markup.
_KEEP_ENCODED = frozenset("<>&\"'")


def _masked(text: str, protected: re.Pattern[str], apply: Callable[[str], str]) -> str:
    """``apply`` to ``text`` with every ``protected`` span replaced by one private-use
    character, then the spans put back."""
    spans: list[str] = []

    def mask(m: re.Match[str]) -> str:
        if len(spans) >= _MASK_LIMIT:  # never in practice; stay correct rather than fast
            raise OverflowError
        spans.append(m.group(0))
        return chr(_MASK_BASE + len(spans) - 1)

    try:
        masked = protected.sub(mask, text)
    except OverflowError:
        return text
    out = apply(masked)
    return _MASKED.sub(lambda m: spans[ord(m.group(0)) - _MASK_BASE], out) if spans else out


# -- French rules -------------------------------------------------------------------------

_SPACE = r"[^\S\n]"  # any horizontal space, the no-break ones included (str.isspace knows them)
_ELLIPSIS = re.compile(r"(?<!\.)\.\.\.(?!\.)")
_APOSTROPHE = re.compile(r"(?<=[^\W\d_])'(?=[^\W\d_])")
_OPEN_QUOTE = re.compile("«" + _SPACE + r"*(?=\S)")
_CLOSE_QUOTE = re.compile(r"(?<=\S)" + _SPACE + "*»")
# A colon that ends a phrase (followed by a space, the end, or a masked tag), not one inside
# 07:00 or std::x.
_COLON = re.compile(r"(?<=[^\s:])" + _SPACE + r"*(?<!:):(?=\s|$|" + _MASKED.pattern + ")")
_BEFORE_HIGH = re.compile(r"(?<=\S)" + _SPACE + r"+(?=[;!?])")
# ; ! ? glued to a word: only when they end a phrase, so "a;b" or "?!" stay as they are.
_GLUED_HIGH = re.compile(r"(?<=[^\s;!?:.…«(\[{'\"’])(?=[;!?]+(?:\s|$|[»)\]\"”’.,…]|" + _MASKED.pattern + "))")
_PERCENT = re.compile(r"(?<=\d)" + _SPACE + r"*%")
# Digits grouped by threes with any space: « 40 000 », « 1 250 000 », « 2 840 ».
_GROUPED = re.compile(r"(?<![\w.,])\d{1,3}(?:[ \u00a0\u2009\u202f]\d{3})+(?![\w])")
_GROUP_SPACE = re.compile(r"[ \u00a0\u2009]")


def _french_rules(text: str) -> str:
    text = _ELLIPSIS.sub("…", text)
    text = _APOSTROPHE.sub("’", text)
    text = _GROUPED.sub(lambda m: _GROUP_SPACE.sub(NNBSP, m.group(0)), text)
    text = _PERCENT.sub(NNBSP + "%", text)
    text = _OPEN_QUOTE.sub("«" + NBSP, text)
    text = _CLOSE_QUOTE.sub(NBSP + "»", text)
    text = _COLON.sub(NBSP + ":", text)
    text = _BEFORE_HIGH.sub(NNBSP, text)
    text = _GLUED_HIGH.sub(NNBSP, text)
    return text


def french(text: str) -> str:
    """``text`` (plain text) with French typography; URLs, addresses and code untouched."""
    if not text:
        return text
    return _masked(text, _TEXT_PROTECTED, _french_rules)


def _decode_harmless(entity: str) -> str:
    """An entity in HTML text as its character, unless the character could be markup."""
    char = _html.unescape(entity)
    return entity if char in _KEEP_ENCODED or char == entity else char


def _decode_text(text: str) -> str:
    # ``&nbsp;``, ``&laquo;``, ``&hellip;`` … are text: decode them so the rules see them.
    text = _ENTITY_APOSTROPHE.sub("’", text)
    return _ENTITY.sub(lambda m: _decode_harmless(m.group(0)), text)


def french_html(fragment: str) -> str:
    """French typography on the text of an HTML fragment; tags, attributes, entities that
    stand for markup, and ``<code>``/``<pre>`` content come out unchanged."""
    if not fragment:
        return fragment
    decoded = _masked(fragment, _MARKUP_ONLY, _decode_text)  # entities between tags only
    return _masked(decoded, _HTML_PROTECTED, _french_rules)


def typography(text: str, language: str | None) -> str:
    """``text`` with the typography of ``language`` (French only, for now; others as they are)."""
    return french(text) if language == "fr" else text


# -- missing spaces after a sentence --------------------------------------------------------

_GLUED_SENTENCE = re.compile(r"(?<=[^\W\d_])([.!?]|…)(?=[^\W\d_]{2})")
_GLUED_AFTER_CLOSER = re.compile(r"(?<=[)»”])([.!?]|…)(?=[^\W\d_]{2})")


def _spaced(masked: str) -> str:
    def fix(m: re.Match[str]) -> str:
        start, end = m.start(), m.end()
        before = masked[start - 2:start] if start >= 2 else ""
        after = masked[end:end + 2]
        closer = masked[start - 1] in ")»”"
        word_end = closer or (len(before) == 2 and before[1].islower() and before[0].isalpha())
        # "Conduite" opens a sentence; "JS" (in Node.JS) or "com" (in example.com) does not.
        if word_end and after[0].isupper() and after[1].islower():
            return m.group(0) + " "
        return m.group(0)

    masked = _GLUED_SENTENCE.sub(fix, masked)
    return _GLUED_AFTER_CLOSER.sub(fix, masked)


def sentence_spacing(text: str) -> str:
    """Put back the space a sentence lost after its full stop (« Mali.Conduite » → « Mali.
    Conduite »). Only a lower-case word of two letters or more (or a closing bracket or
    quote) followed by a capitalised word counts, so initials (« U.S.A », « M.Keïta »),
    decimals (« 3.5 »), domain names and URLs are left as they are."""
    if not text or not any(c in text for c in ".!?…"):
        return text
    return _masked(text, _TEXT_PROTECTED, _spaced)


def typeset(article: Article, language: str | None) -> Article:
    """``article`` with the text a reader sees (title, summary, author, categories, image alt)
    spaced after its sentences and set in ``language``'s typography. Links, ids and the HTML
    content are left alone. Every channel can call this once per edition: the no-break
    spaces it adds count one UTF-16 unit each for Telegram and weigh one for X."""
    def text(value: str) -> str:
        return typography(sentence_spacing(value), language)

    return replace(
        article, title=text(article.title), summary=text(article.summary),
        author=None if article.author is None else text(article.author),
        categories=tuple(text(c) for c in article.categories),
        image_alt=None if article.image_alt is None else text(article.image_alt))
