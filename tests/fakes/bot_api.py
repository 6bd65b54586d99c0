"""A local stand-in for Telegram's Bot API, and Telegram's HTML rules as a checker.

Two things live here because they belong together: the fake server refuses what
Telegram would refuse, and render tests reuse the very same checker
(:func:`telegram_html_error`, :func:`telegram_text_length`) to prove their output
would be accepted.

The HTML checker follows the rules Telegram documents for ``parse_mode=HTML``
(https://core.telegram.org/bots/api#html-style) and the error wording of TDLib's
parser ("Unsupported start tag "div" at byte offset 12", …). Where the real server is
*more lenient* than its documentation — it shows an unknown entity such as ``&nbsp;``
or a stray ``&`` / ``>`` literally, and turns ``<a>url</a>`` into a link — the checker
follows the documentation, so output it accepts is safe on both counts.
"""

from __future__ import annotations

import re

PARSE_ERROR = "Bad Request: can't parse entities: "

_TAGS = frozenset({
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
    "a", "code", "pre", "blockquote", "tg-emoji",
})
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY = re.compile(r"&(?:(?P<named>[A-Za-z][A-Za-z0-9]*)|#(?P<dec>[0-9]+)|#[xX](?P<hex>[0-9A-Fa-f]+));")
_SPACE = " \t\n\r\f\v"
_NAME_TOKEN = re.compile(r"[A-Za-z0-9.\-]*")


class _HtmlError(Exception):
    pass


def _offset(text: str, index: int) -> int:
    """TDLib reports positions as byte offsets in the UTF-8 text."""
    return len(text[:index].encode("utf-8"))


def _entity(text: str, i: int, where: str = "") -> tuple[str, int]:
    """Decode the entity starting at ``text[i] == '&'``; return (character, next index)."""
    m = _ENTITY.match(text, i)
    if m is None:
        raise _HtmlError(f'Unescaped "&"{where} at byte offset {_offset(text, i)}; write it as "&amp;"')
    if m.group("named") is not None:
        name = m.group("named")
        if name not in _NAMED:
            raise _HtmlError(
                f'Unsupported HTML entity "&{name};"{where} at byte offset {_offset(text, i)}; '
                'only &lt; &gt; &amp; &quot; and numeric entities are supported'
            )
        return _NAMED[name], m.end()
    code = int(m.group("dec")) if m.group("dec") is not None else int(m.group("hex"), 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise _HtmlError(f"Invalid numeric entity {m.group(0)!r}{where} at byte offset {_offset(text, i)}")
    return chr(code), m.end()


def _attribute_value(text: str, i: int, tag: str) -> tuple[str, int]:
    """A quoted string (entities decoded) or an HTML name token, as TDLib reads it."""
    n = len(text)
    if text[i] in "'\"":
        quote = text[i]
        end = text.find(quote, i + 1)
        if end < 0:
            raise _HtmlError(f"Unclosed end of attribute value at byte offset {_offset(text, i)}")
        raw, out, j = text[i + 1:end], [], 0
        while j < len(raw):
            if raw[j] == "&":
                ch, j2 = _entity(raw, j, f' in an attribute of the tag "{tag}"')
                out.append(ch)
                j = j2
            elif raw[j] == "<":
                raise _HtmlError(f'Unescaped "<" in an attribute of the tag "{tag}" at byte offset '
                                 f"{_offset(text, i + 1 + j)}")
            else:
                out.append(raw[j])
                j += 1
        return "".join(out), end + 1
    m = _NAME_TOKEN.match(text, i)
    assert m is not None
    j = m.end()
    if j >= n or (text[j] not in _SPACE and text[j] != ">"):
        raise _HtmlError(f"Unexpected end of name token at byte offset {_offset(text, i)}")
    return m.group(0).lower(), j


def _start_tag(text: str, begin: int) -> tuple[str, dict[str, str | None], int]:
    """Parse ``<name attr="v" …>`` at ``begin``; return (name, attributes, index after '>')."""
    n = len(text)
    i = begin + 1
    j = i
    while j < n and text[j] not in _SPACE and text[j] != ">":
        j += 1
    if j >= n:
        raise _HtmlError(f"Unclosed start tag at byte offset {_offset(text, begin)}")
    name = text[i:j].lower()
    if name not in _TAGS:
        hint = '; write a literal "<" as "&lt;"' if not name or not name[0].isalpha() else ""
        raise _HtmlError(f'Unsupported start tag "{name}" at byte offset {_offset(text, begin)}{hint}')
    attributes: dict[str, str | None] = {}
    i = j
    while True:
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            raise _HtmlError(f'Unclosed start tag "{name}" at byte offset {_offset(text, begin)}')
        if text[i] == ">":
            return name, attributes, i + 1
        a = i
        while i < n and text[i] not in _SPACE and text[i] not in "=>":
            i += 1
        attr = text[a:i].lower()
        if not attr:
            raise _HtmlError(f'Empty attribute name in the tag "{name}" at byte offset {_offset(text, begin)}')
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            raise _HtmlError(f'Unclosed start tag "{name}" at byte offset {_offset(text, begin)}')
        if text[i] != "=":
            if name == "blockquote" and attr == "expandable":
                attributes[attr] = None
                continue
            raise _HtmlError(
                f'Expected equal sign in declaration of an attribute of the tag "{name}" '
                f"at byte offset {_offset(text, begin)}"
            )
        i += 1
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            raise _HtmlError(f'Unclosed start tag "{name}" at byte offset {_offset(text, begin)}')
        value, i = _attribute_value(text, i, name)
        if i >= n or (text[i] not in _SPACE and text[i] != ">"):
            raise _HtmlError(f"Expected space or > after attribute value at byte offset {_offset(text, i)}")
        attributes.setdefault(attr, value)


def _check_arguments(name: str, attributes: dict[str, str | None], text: str, begin: int) -> None:
    at = f"at byte offset {_offset(text, begin)}"
    if name == "a" and not (attributes.get("href") or "").strip():
        raise _HtmlError(f'Tag "a" must have a non-empty "href" attribute {at}')
    if name == "span" and attributes.get("class") != "tg-spoiler":
        raise _HtmlError(f'Tag "span" must have class "tg-spoiler" {at}')
    if name == "tg-emoji":
        emoji_id = attributes.get("emoji-id") or ""
        if not emoji_id.isdigit() or int(emoji_id) == 0:
            raise _HtmlError(f"Invalid custom emoji identifier specified {at}")


def _parse(text: str) -> str:
    """The text Telegram shows (tags removed, entities decoded), or _HtmlError."""
    out: list[str] = []
    stack: list[str] = []
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if c == "&":
            ch, i = _entity(text, i)
            out.append(ch)
            continue
        if c == ">":
            raise _HtmlError(f'Unescaped ">" at byte offset {_offset(text, i)}; write it as "&gt;"')
        if c != "<":
            out.append(c)
            i += 1
            continue
        begin = i
        if i + 1 < n and text[i + 1] == "/":
            if not stack:
                raise _HtmlError(f"Unexpected end tag at byte offset {_offset(text, begin)}")
            i += 2
            j = i
            while j < n and text[j] not in _SPACE and text[j] != ">":
                j += 1
            end_name = text[i:j].lower()
            while j < n and text[j] in _SPACE:
                j += 1
            if j >= n or text[j] != ">":
                raise _HtmlError(f"Unclosed end tag at byte offset {_offset(text, begin)}")
            expected = stack[-1]
            if end_name != expected:
                raise _HtmlError(
                    f'Unmatched end tag at byte offset {_offset(text, begin)}, expected "</{expected}>", '
                    f'found "</{end_name}>"'
                )
            stack.pop()
            i = j + 1
            continue
        name, attributes, i = _start_tag(text, begin)
        _check_arguments(name, attributes, text, begin)
        stack.append(name)
    if stack:
        raise _HtmlError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def telegram_html_error(text: str) -> str | None:
    """None when ``text`` is valid for ``parse_mode=HTML``, else the error Telegram gives,
    e.g. ``Bad Request: can't parse entities: Unsupported start tag "div" at byte offset 12``."""
    try:
        _parse(text)
    except _HtmlError as exc:
        return PARSE_ERROR + str(exc)
    return None


def telegram_plain_text(text: str) -> str:
    """The text a reader sees: tags removed, entities decoded. ValueError if the HTML is invalid."""
    try:
        return _parse(text)
    except _HtmlError as exc:
        raise ValueError(PARSE_ERROR + str(exc)) from None


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def telegram_text_length(text: str) -> int:
    """The length Telegram checks against 4,096 (text) or 1,024 (caption): the parsed text
    in UTF-16 code units, so an emoji outside the BMP counts 2. ValueError if invalid HTML."""
    return utf16_length(telegram_plain_text(text))
