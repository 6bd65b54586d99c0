"""X's weighted length, by the twitter-text rules (the library, not a re-implementation).

X counts most Latin text as 1 per character, CJK and emoji as 2, and every URL as 23
whatever its length; the limit is 280 weighted characters. Since twitter-text's config
v3 an emoji sequence (👍🏾, a family, a flag) counts 2 as a whole instead of 2 per code
point; X uses v3 today, so it is the default. v2 stays selectable because the official
conformance cases are written per config.

:func:`truncate_to_fit` is what a renderer calls when an article title or summary is too
long: it cuts on a word boundary and never inside a URL or an emoji, because a broken
link in a post is worse than a shorter sentence. :func:`clean` removes the characters that
make X refuse a post whatever its length (a byte-order mark, bidi embeddings around an
Arabic word), which feeds do carry.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import types
import unicodedata
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    from twitter_text import ParsedResult

MAX_WEIGHTED = 280
DEFAULT_CONFIG = "version3"

# Spaces that bind two words on purpose: French typography puts a (narrow) no-break space
# before « : ; ! ? » and inside « guillemets »; cutting there would orphan the punctuation.
_NO_BREAK = {"\u00a0", "\u202f", "\u2007", "\u2060", "\ufeff"}
# Dropped from the end of a cut text before the ellipsis, so "mot, …" reads "mot…".
_TRAILING = set(" \t\n\r,;:–—-·«(\u00a0\u202f")
# What :func:`clean` removes: the characters twitter-text declares invalid (its own list, so
# this follows the library: U+FEFF, U+FFFE, U+FFFF today), plus the bidi embedding and
# override controls U+202A–U+202E, which older twitter-text versions refused too and which
# feeds put around Arabic words. The embeddings are invisible and X lays out Arabic
# correctly without them; an unpaired one left behind would garble the rest of the post.
# Built with the library's list, in :func:`_load`.
# Beyond this many weighted characters over the limit a prefix certainly does not fit
# whatever follows it: the largest single unit (a URL) weighs 23.
_SLACK = 2 * 23


class _Library(types.SimpleNamespace):
    """What this module uses of twitter-text, loaded by :func:`_library`."""

    parse_tweet: Callable[..., ParsedResult]
    extract_urls_with_indices: Callable[[str], list[dict]]
    extract_emojis_with_indices: Callable[[str], list[dict]]
    has_invalid_characters: Callable[[str], bool]
    configs: Mapping[str, Mapping[str, Any]]
    invalid: re.Pattern[str]


_loaded: _Library | None = None
_loading = threading.Lock()


def _library() -> _Library:
    """twitter-text, loaded at the first text measured, fitted or cleaned: compiling its
    expressions (every emoji, every top-level domain) takes about 0.1 s, which the
    commands that render no X post (and ``--help``) never pay."""
    global _loaded
    if _loaded is None:
        with _loading:
            if _loaded is None:
                _loaded = _load()
    return _loaded


def _resource_string(module: str, name: str) -> bytes:
    """``pkg_resources.resource_string`` for a module loaded from a folder, as pkg_resources
    itself reads it there: the file ``name`` beside the module's own."""
    with open(os.path.join(os.path.dirname(sys.modules[module].__file__ or ""), name), "rb") as fh:
        return fh.read()


def _load() -> _Library:
    # twitter-text reads its emoji list with pkg_resources, whose import alone scans every
    # installed distribution (70 ms, a sixth of `check`). Unless something loaded the real
    # one already, a stand-in with the one function it calls serves the library's import and
    # is gone right after it; nothing else Tamtam runs imports pkg_resources.
    stand_in = None
    if "pkg_resources" not in sys.modules:
        stand_in = types.ModuleType("pkg_resources", "twitter-text's stand-in (see bot.channels.x.tweet)")
        stand_in.resource_string = _resource_string  # type: ignore[attr-defined]
        sys.modules["pkg_resources"] = stand_in
    try:
        # loaded on first use: see _library
        import twitter_text
        from twitter_text.config import config as configs
        from twitter_text.has_invalid_characters import has_invalid_characters
        from twitter_text.regexp.invalid_chars_group import invalid_chars_group
    finally:
        if stand_in is not None and sys.modules.get("pkg_resources") is stand_in:
            del sys.modules["pkg_resources"]
    return _Library(
        parse_tweet=twitter_text.parse_tweet,
        extract_urls_with_indices=twitter_text.extract_urls_with_indices,
        extract_emojis_with_indices=twitter_text.extract_emojis_with_indices,
        has_invalid_characters=has_invalid_characters,
        # The library's "version2" has no ``emoji_parsing_enabled`` key (parse_tweet would
        # raise KeyError), so it is spelled out.
        configs={"version2": {**configs["version2"], "emoji_parsing_enabled": False},
                 "version3": dict(configs["version3"])},
        invalid=re.compile(f"[{invalid_chars_group}\u202a-\u202e]"),
    )


def __getattr__(name: str) -> Any:
    """``CONFIGS``: the twitter-text configs by their library name (loading the library).
    v2 stays selectable because the official conformance cases are written per config."""
    if name == "CONFIGS":
        return _library().configs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _options(config: str) -> Mapping[str, Any]:
    configs = _library().configs
    try:
        return configs[config]
    except KeyError:
        raise ValueError(f"unknown twitter-text config {config!r}: expected one of {sorted(configs)}") from None


def parse(text: str, *, config: str = DEFAULT_CONFIG) -> ParsedResult:
    """twitter-text's full answer for ``text``: weightedLength, valid, permillage and ranges."""
    return _library().parse_tweet(text, dict(_options(config)))


def weighted_length(text: str, *, config: str = DEFAULT_CONFIG) -> int:
    """The length X will count for ``text``."""
    return parse(text, config=config).weightedLength


def fits(text: str, limit: int = MAX_WEIGHTED, *, config: str = DEFAULT_CONFIG) -> bool:
    """True when X would accept ``text`` on length: non-empty, at most ``limit`` weighted,
    and free of the characters twitter-text declares invalid (U+FEFF, U+FFFE, U+FFFF;
    :func:`clean` removes them)."""
    if not text.strip() or _library().has_invalid_characters(text):
        return False
    return weighted_length(text, config=config) <= limit


def clean(text: str) -> str:
    """``text`` without the characters that make X refuse a post whatever its length
    (see ``_Library.invalid``). A renderer cleans titles and summaries before fitting them, because
    :func:`fits` is False for any text that still holds one."""
    return _library().invalid.sub("", text)


def _bounded(text: str, limit: int, config: str) -> str:
    """A prefix of ``text`` that holds every cut :func:`truncate_to_fit` could choose, cut on
    whitespace (so never inside a URL or an emoji sequence). twitter-text's parse is linear
    in the text, and truncation parses many candidates, so a 20,000-character title would
    otherwise take seconds: this doubles a prefix until it weighs clearly over ``limit``."""
    size = max(2 * limit, 64)
    while size < len(text):
        end = next((i for i in range(size, min(len(text), 2 * size)) if text[i].isspace()), None)
        if end is None:
            return text
        if weighted_length(text[:end], config=config) > limit + _SLACK:
            return text[:end]
        size = 2 * size
    return text


def _protected(text: str) -> list[bool]:
    """For each code point of ``text``: True when a cut just before it would split a URL,
    an emoji sequence or a base letter from its combining accent."""
    inside = [False] * (len(text) + 1)
    lib = _library()
    for entity in [*lib.extract_urls_with_indices(text), *lib.extract_emojis_with_indices(text)]:
        start, end = entity["indices"]
        for i in range(start + 1, end):
            inside[i] = True
    for i, ch in enumerate(text):
        if i and unicodedata.combining(ch):
            inside[i] = True
    return inside


def _url_spans(text: str) -> list[tuple[int, int]]:
    return [tuple(u["indices"]) for u in _library().extract_urls_with_indices(text)]  # type: ignore[misc]


def _cut(text: str, end: int, ellipsis: str, urls: list[tuple[int, int]]) -> str:
    """``text[:end]`` without dangling spaces or punctuation, then the ellipsis. A URL that
    ends the kept part gets a space before the ellipsis so X does not read it as part of the link."""
    while end > 0 and text[end - 1] in _TRAILING and not any(s < end <= e for s, e in urls):
        end -= 1
    head = text[:end]
    if not ellipsis:
        return head
    if any(e == end for _, e in urls):
        return f"{head} {ellipsis}"
    return head + ellipsis


def truncate_to_fit(
    text: str, limit: int = MAX_WEIGHTED, ellipsis: str = "…", *, config: str = DEFAULT_CONFIG
) -> str:
    """``text`` itself when it fits in ``limit``; otherwise its longest start that fits once
    ``ellipsis`` is added, cut on a word boundary (never on a no-break space, never inside a
    URL). A first word too long on its own is cut between characters instead, still never
    inside a URL, an emoji or an accented letter. Raises ValueError when not even the
    ellipsis fits."""
    bounded = _bounded(text, limit, config)
    if bounded is text:  # else ``text`` certainly does not fit, and only its start matters
        if fits(text, limit, config=config):
            return text
        text = unicodedata.normalize("NFC", text).strip()  # X counts NFC; indices below are NFC code points
        if fits(text, limit, config=config):
            return text
    else:
        text = unicodedata.normalize("NFC", bounded).strip()
    urls = _url_spans(text)
    protected = _protected(text)

    def ok(end: int) -> str | None:
        candidate = _cut(text, end, ellipsis, urls)
        return candidate if candidate.strip() and candidate != ellipsis and fits(candidate, limit, config=config) else None

    words = [i for i, ch in enumerate(text) if ch.isspace() and ch not in _NO_BREAK and not protected[i]]
    chars = [i for i in range(1, len(text)) if not protected[i]]
    for cuts in (words, chars):
        best = _longest(cuts, ok)
        if best is not None:
            return best
    raise ValueError(f"cannot shorten text to {limit} weighted characters with ellipsis {ellipsis!r}")


def _longest(cuts: list[int], ok: Callable[[int], str | None]) -> str | None:
    """The result for the largest cut position that fits. Weighted length grows with the
    kept prefix, so a binary search finds the frontier; the few cuts just above it are
    tried too, for the rare non-monotone step (a trailing URL gains a space before the
    ellipsis, a dropped trailing comma)."""
    lo, hi, found = 0, len(cuts) - 1, -1
    while lo <= hi:
        mid = (lo + hi) // 2
        if ok(cuts[mid]) is not None:
            found, lo = mid, mid + 1
        else:
            hi = mid - 1
    if found < 0:
        return None
    for idx in range(min(len(cuts) - 1, found + 3), found - 1, -1):
        result = ok(cuts[idx])
        if result is not None:
            return result
    return None  # pragma: no cover - cuts[found] fitted above
