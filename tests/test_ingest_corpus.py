"""feedparser's own encoding and ill-formed test feeds, read in place from the shared corpora.

Every file must go through parse_feed without any exception but SourceError. Where a
file's ``Expect:`` names an entry's description, title or link, or the feed's title, the
Article (or the feed) must carry the value a correct reader extracts.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.errors import SourceError
from bot.ingest.parse import read_feed
from tests.conftest import CORPORA

FOLDERS = ("feedparser/encoding", "feedparser/illformed")
NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def _files() -> list[Path]:
    out: list[Path] = []
    for folder in FOLDERS:
        root = CORPORA / folder
        if root.is_dir():
            out += sorted(p for p in root.rglob("*") if p.is_file())
    return out


FILES = _files()


def _header(data: bytes) -> dict[str, str]:
    """The leading comment block: Description, Expect, Header (an HTTP header to simulate)."""
    text = data[:3000].decode("latin-1")
    if "\x00" in text:  # UTF-16/32 files: read the comment in their own encoding
        for enc in ("utf-16", "utf-32", "utf-16-be", "utf-16-le", "utf-32-be", "utf-32-le"):
            try:
                decoded = data[:6000].decode(enc)
            except UnicodeDecodeError:
                continue
            if "Expect:" in decoded or "Description:" in decoded:
                text = decoded
                break
    fields: dict[str, str] = {}
    for key in ("Description", "Expect", "Header"):
        m = re.search(rf"{key}:\s*(.*)", text)
        if m:
            fields[key] = m.group(1).strip()
    return fields


def _content_type(fields: dict[str, str]) -> str | None:
    header = fields.get("Header", "")
    m = re.match(r"(?i)content-type:\s*(.*)", header)
    return m.group(1).strip() if m else None


def _id(path: Path) -> str:
    return str(path.relative_to(CORPORA / "feedparser"))


@pytest.mark.skipif(not FILES, reason=f"shared corpora not found at {CORPORA}")
def test_the_corpora_are_all_there() -> None:
    assert len(FILES) >= 100  # 82 encoding + 19 ill-formed feeds


@pytest.mark.parametrize("path", FILES, ids=[_id(p) for p in FILES])
def test_corpus_file_parses_without_crashing(path: Path, corpora: Path) -> None:
    data = path.read_bytes()
    fields = _header(data)
    try:
        feed = read_feed(data, source_id="corpus", base_url=str(path), now=NOW, content_type=_content_type(fields))
    except SourceError as exc:
        assert exc.source_id == "corpus" and str(exc)
        return
    for article in feed.articles:
        assert article.source_id == "corpus" and article.guid and article.title
        assert article.published_at.tzinfo is not None
        assert "<script" not in article.content_html.lower()


# Expectations that name a description, a link or a title, translated to what our Article
# holds: feedparser's entries[0]['description'] is HTML, our summary its plain text.
def _expected_values(expect: str) -> dict[str, str]:
    out: dict[str, str] = {}
    patterns = {
        "entry_description": r"entries\[0\]\['description'\] == ('(?:[^'\\]|\\.)*')",
        "entry_summary": r"entries\[0\]\.summary == ('(?:[^'\\]|\\.)*')",
        "entry_link": r"entries\[0\]\.link == ('(?:[^'\\]|\\.)*')",
        "entry_title": r"entries\[0\]\[?'?\.?title'?\]? == ('(?:[^'\\]|\\.)*')",
        "feed_title": r"feed\['title'\] == ('(?:[^'\\]|\\.)*')",
    }
    for key, pattern in patterns.items():
        m = re.search(pattern, expect)
        if m:
            out[key] = eval(m.group(1))  # a Python string literal from the corpus, nothing else  # noqa: S307
    m = re.search(r"ord\(entries\[0\]\['description'\]\) == (\d+)", expect)
    if m:
        out["entry_description"] = chr(int(m.group(1)))
    return out


def _plain(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]*>", " ", fragment)).split())


WITH_VALUES = [p for p in FILES if _expected_values(_header(p.read_bytes()).get("Expect", ""))]


@pytest.mark.skipif(not FILES, reason=f"shared corpora not found at {CORPORA}")
def test_some_corpus_files_name_values() -> None:
    assert len(WITH_VALUES) >= 10


# "Unguessable characters": line noise whose expected value is whatever feedparser's
# fallback happened to produce without chardet. With chardet installed (as we ship it, so
# that undeclared encodings are read right) the guess differs; no reader is more correct.
UNGUESSABLE = {"encoding/bozo_linenoise.xml"}


@pytest.mark.parametrize("path", WITH_VALUES, ids=[_id(p) for p in WITH_VALUES])
def test_corpus_values_a_correct_reader_extracts(path: Path, corpora: Path) -> None:
    if _id(path) in UNGUESSABLE:
        pytest.skip("line noise with no right answer; see UNGUESSABLE")
    data = path.read_bytes()
    fields = _header(data)
    expected = _expected_values(fields["Expect"])
    feed = read_feed(data, source_id="corpus", base_url=str(path), now=NOW, content_type=_content_type(fields))
    if "feed_title" in expected:
        assert feed.title == expected["feed_title"]
    for key in ("entry_description", "entry_summary"):
        if key in expected:
            want = _plain(expected[key])
            if want:
                assert feed.articles, "the entry was lost"
                assert feed.articles[0].summary == want
            else:  # markup only (an <img> without src): nothing to show, so no article or an empty summary
                assert not feed.articles or feed.articles[0].summary == ""
    if "entry_link" in expected:
        assert feed.articles[0].url == expected["entry_link"]
    if "entry_title" in expected:
        assert feed.articles[0].title == _plain(expected["entry_title"])


# Feeds that declare no encoding at all (feedparser's "chardet" set): the title must come
# out as the text it is in the encoding the file's Expect names, not as mojibake.
# (Compared on the first 20 characters of the first title or description.)
UNDECLARED = [p for p in FILES if "SkipUnless:" in _header(p.read_bytes()).get("Description", "") or
              b"SkipUnless:   __import__('chardet')" in p.read_bytes()[:200]]


@pytest.mark.parametrize("path", UNDECLARED, ids=[_id(p) for p in UNDECLARED])
def test_undeclared_encodings_are_sniffed(path: Path, corpora: Path) -> None:
    data = path.read_bytes()
    encoding = re.search(r"encoding == '([^']+)'", _header(data)["Expect"]).group(1)
    text = data.decode(encoding)
    feed = read_feed(data, source_id="corpus", base_url=str(path), now=NOW, content_type=None)
    first = re.search(r"<(title|description)[^>]*>(.*?)</\1>", text, re.S)
    words = _plain(first.group(2))[:20]
    got = " ".join([feed.title or ""] + [a.title + " " + a.summary for a in feed.articles])
    assert words and words in got, (words, got)
