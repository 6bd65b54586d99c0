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


# Entities Telegram names; any numeric reference is fine too. Each must end with ';'.
_NAMED_ENTITIES = {"lt", "gt", "amp", "quot"}
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|([A-Za-z][A-Za-z0-9]*));")
# A start or end tag as Telegram reads it: a name, then attributes whose values are quoted
# (or a bare word), then '>'.
_TAG = re.compile(r"""<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[A-Za-z-]+(?:\s*=\s*(?:"[^"<]*"|'[^'<]*'|[A-Za-z0-9_-]+))?)*)\s*(/?)>""")
_ATTRIBUTE = re.compile(r"""([A-Za-z-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+)))?""")
_ALLOWED = TELEGRAM_TAGS | {"span", "tg-emoji"}


def _entities(text: str, where: str) -> list[str]:
    """Problems with the '&' in ``text`` (text between tags, or an attribute value)."""
    problems = []
    for m in re.finditer("&", text):
        entity = _ENTITY.match(text, m.start())
        if entity is None:
            problems.append(f"a bare '&' {where} must be written &amp; (an entity ends with ';')")
        elif entity.group(1) and entity.group(1) not in _NAMED_ENTITIES:
            problems.append(f"Telegram refuses the entity &{entity.group(1)}; "
                            "(only &lt; &gt; &amp; &quot; and numeric ones)")
    return problems


def html_problems(text: str) -> list[str]:
    """What Telegram's ``parse_mode=HTML`` would refuse in ``text``: tags outside its subset
    or malformed, a '<', '>' or '&' that is not part of a tag or an entity, entities it does
    not name, tags left open or closed out of order. Telegram's documentation asks for all
    of these, so a post that passes here is one Telegram takes."""
    problems: list[str] = []
    stack: list[str] = []
    refused: set[str] = set()  # tags already reported: their end tags need no second word
    pos = 0
    for m in re.finditer("<", text):
        if m.start() < pos:
            continue
        between = text[pos:m.start()]
        problems += _entities(between, "in the text")
        if ">" in between:
            problems.append("a bare '>' must be written &gt;")
        tag = _TAG.match(text, m.start())
        if tag is None:
            problems.append("a bare '<' must be written &lt; (or it starts a tag Telegram cannot read)")
            pos = m.start() + 1
            continue
        pos = tag.end()
        closing, name, attributes, self_closing = tag.group(1), tag.group(2).lower(), tag.group(3), tag.group(4)
        attrs = {a.group(1).lower(): next((g for g in a.groups()[1:] if g is not None), "")
                 for a in _ATTRIBUTE.finditer(attributes)}
        if self_closing:
            problems.append(f"Telegram refuses the self-closing tag <{name}/>")
            continue
        if closing:
            if name not in stack:
                if name not in refused:
                    problems.append(f"</{name}> closes a tag that is not open")
                continue
            while stack:
                top = stack.pop()
                if top == name:
                    break
                problems.append(f"<{top}> is not closed before </{name}>")
            continue
        if name not in _ALLOWED or (name == "span" and attrs.get("class") != "tg-spoiler"):
            problems.append(f"Telegram refuses the tag <{name}> (allowed: {', '.join(sorted(TELEGRAM_TAGS))}; "
                            "use a plain newline instead of <br> or <p>)")
            refused.add(name)
            continue
        if name == "a" and not attrs.get("href"):
            problems.append("Telegram refuses a link <a> without href")
        for value in attrs.values():
            problems += _entities(value, "in an attribute")
        stack.append(name)
    tail = text[pos:]
    problems += _entities(tail, "in the text")
    if ">" in tail:
        problems.append("a bare '>' must be written &gt;")
    problems += [f"<{name}> is never closed" for name in stack]
    return list(dict.fromkeys(problems))
