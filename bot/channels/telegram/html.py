"""Telegram's HTML dialect and limits.

Telegram's ``parse_mode=HTML`` accepts a small tag set (b, i, u, s, a href, code, pre,
blockquote, spoilers), plain newlines instead of ``<br>``/``<p>``, and only the named
entities ``&lt; &gt; &amp; &quot;`` (numeric ones are fine). A message may hold 4,096
characters and a photo caption 1,024, counted in UTF-16 code units *after* the tags and
entities are parsed away: an ``href`` does not count, ``&amp;`` counts 1. :func:`visible_length`
measures exactly that, with no safety margin, because it is the rule Telegram documents and
the very measure the Telegram transport applies before sending; a margin would only shorten
posts. (Measuring the raw HTML instead, as this module once did, made a long tracking URL in
an ``href`` count against a 1,024-character caption that Telegram would have accepted.)
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import nh3
from markupsafe import Markup

MAX_TEXT = 4096
MAX_CAPTION = 1024

# Telegram's own list (core.telegram.org/bots/api#html-style).
TELEGRAM_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
    "blockquote", "tg-spoiler",
}
_TELEGRAM_ATTRIBUTES = {"a": {"href"}, "code": {"class"}, "blockquote": {"expandable"}}
_URL_SCHEMES = {"http", "https", "mailto", "tg"}

# Block-level tags we turn into newlines before reducing to Telegram's set.
_BLOCKS = {"p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "figure", "figcaption"}


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    """ammonia keeps ``lang``/``title`` everywhere by default; Telegram wants none of them."""
    allowed = _TELEGRAM_ATTRIBUTES.get(tag, set())
    if attribute not in allowed:
        return None
    if tag == "code" and not value.startswith("language-"):
        return None
    return value


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram counts in (an emoji may count 2)."""
    return len(text.encode("utf-16-le")) // 2


class _VisibleText(HTMLParser):
    """Collects the text between tags; ``convert_charrefs`` decodes the entities."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_text(html: str) -> str:
    """What a reader sees of a Telegram HTML post: tags removed, entities decoded."""
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


def visible_length(html: str) -> int:
    """The length Telegram checks against :data:`MAX_TEXT` and :data:`MAX_CAPTION`: the
    visible text in UTF-16 code units (an emoji outside the BMP counts 2)."""
    return utf16_len(visible_text(html))


def escape(text: str) -> str:
    """Escape plain text for Telegram HTML, using only entities Telegram knows."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def tidy(html: str) -> str:
    """Make Jinja/markupsafe output Telegram-friendly: markupsafe writes ``&#39;`` and
    ``&#34;``, which Telegram accepts but which waste 4 characters of the budget each."""
    return html.replace("&#39;", "'").replace("&#34;", "&quot;")


def to_telegram_html(html: str) -> str:
    """Reduce arbitrary (already sanitised) article HTML to Telegram's tag set.

    Paragraphs, line breaks and list items become newlines (Telegram has no ``<br>``),
    headings become bold lines, every other tag is dropped keeping its text, and links
    keep only ``href`` with a safe scheme. nh3 does the parsing, so the result is well
    formed whatever came in.
    """
    if not html:
        return ""
    # Pass 1: normalise with html5ever, keeping the block tags bare so we can find them.
    first = nh3.clean(
        html,
        tags=TELEGRAM_TAGS | _BLOCKS,
        attributes=_TELEGRAM_ATTRIBUTES,
        attribute_filter=_keep_attribute,
        url_schemes=_URL_SCHEMES,
        link_rel=None,
        strip_comments=True,
        clean_content_tags={"script", "style"},
    )
    first = re.sub(r"<h[1-6]>", "<b>", first)
    first = re.sub(r"</h[1-6]>", "</b>\n\n", first)
    first = re.sub(r"<li>", "• ", first)
    first = re.sub(r"</(p|div|figure|figcaption|ul|ol)>", "\n\n", first)
    first = re.sub(r"<br>|</li>|</tr>", "\n", first)
    # Pass 2: only Telegram's tags remain.
    out = nh3.clean(
        first,
        tags=TELEGRAM_TAGS,
        attributes=_TELEGRAM_ATTRIBUTES,
        attribute_filter=_keep_attribute,
        url_schemes=_URL_SCHEMES,
        link_rel=None,
        strip_comments=True,
    )
    # A link whose href was unsafe (javascript:) has none left; Telegram wants one: unwrap.
    # html5ever never nests <a>, so the non-greedy match is exact.
    out = re.sub(r"<a>(.*?)</a>", r"\1", out, flags=re.S)
    # html5ever writes U+00A0 as &nbsp;, a named entity Telegram refuses.
    out = out.replace("&nbsp;", "\u00a0")
    out = re.sub(r"[ \t]+\n", "\n", out)
    out = re.sub(r"\n{3,}", "\n\n", out)
    return out.strip()


def tg_filter(value: Any) -> Markup:
    """``{{ x|tg }}``: plain text escaped for Telegram (also where autoescape is off)."""
    if isinstance(value, Markup):
        return value
    return Markup(escape("" if value is None else str(value)))


def telegram_html_filter(value: Any) -> Markup:
    """``{{ article.content_html|telegram_html }}``: article HTML reduced to Telegram's tags."""
    return Markup(to_telegram_html("" if value is None else str(value)))


FILTERS = {"tg": tg_filter, "telegram_html": telegram_html_filter}


# Entities Telegram names; any numeric reference is fine too.
_NAMED_ENTITIES = {"lt", "gt", "amp", "quot"}
_ENTITY = re.compile(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);?")


class _Checker(HTMLParser):
    """Walks a post the way Telegram's parser does and notes what it would refuse."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []
        self.problems: list[str] = []

    def _tag_ok(self, tag: str, attrs: list[tuple[str, str | None]]) -> bool:
        if tag in TELEGRAM_TAGS or tag == "tg-emoji":
            return True
        return tag == "span" and ("class", "tg-spoiler") in attrs

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self._tag_ok(tag, attrs):
            self.problems.append(f"Telegram refuses the tag <{tag}> (allowed: {', '.join(sorted(TELEGRAM_TAGS))}; "
                                 "use a plain newline instead of <br> or <p>)")
            return
        if tag == "a" and not dict(attrs).get("href"):
            self.problems.append("Telegram refuses a link <a> without href")
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.problems.append(f"Telegram refuses the self-closing tag <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.open:
            if self._tag_ok(tag, [("class", "tg-spoiler")]):
                self.problems.append(f"</{tag}> closes a tag that is not open")
            return
        while self.open:
            top = self.open.pop()
            if top == tag:
                return
            self.problems.append(f"<{top}> is not closed before </{tag}>")

    def handle_entityref(self, name: str) -> None:
        if name not in _NAMED_ENTITIES:
            self.problems.append(f"Telegram refuses the entity &{name}; (only &lt; &gt; &amp; &quot; and numeric ones)")

    def handle_comment(self, data: str) -> None:
        self.problems.append("Telegram refuses HTML comments")


def html_problems(text: str) -> list[str]:
    """What Telegram's ``parse_mode=HTML`` would refuse in ``text``: tags outside its
    subset, entities it does not name, tags left open or closed out of order. A bare
    ``&`` that starts no entity is refused too."""
    checker = _Checker()
    checker.feed(text)
    checker.close()
    problems = checker.problems
    problems += [f"<{tag}> is never closed" for tag in checker.open]
    for m in re.finditer(r"&", text):
        if not _ENTITY.match(text, m.start()):
            problems.append("a bare '&' must be written &amp;")
            break
    return list(dict.fromkeys(problems))
