"""X's weighted length against twitter-text's official conformance cases, and truncation.

The cases are read in place from the shared corpora (``twitter-text/validate.yml``). Each
section is written for one twitter-text config: ``WeightedTweetsCounterTest`` for v2 (every
emoji code point weighs 2), ``WeightedTweetsWithDiscountedEmojiCounterTest`` for v3 (an
emoji sequence weighs 2 as a whole); the directional-marker cases use the current config.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from twitter_text import extract_urls

from bot.channels.x import tweet
from bot.channels.x.tweet import CONFIGS, fits, parse, truncate_to_fit, weighted_length
from tests.conftest import ROOT

# tests/channels/x/ → the project → the shared corpora beside it
VALIDATE = Path(__file__).resolve().parents[4] / "shared" / "corpora" / "twitter-text" / "validate.yml"

SECTIONS = {
    "WeightedTweetsCounterTest": "version2",
    "WeightedTweetsWithDiscountedEmojiCounterTest": "version3",
    "UnicodeDirectionalMarkerCounterTest": "version3",
}


@functools.lru_cache(maxsize=None)
def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]


def _ids() -> list:
    """(section, index) of every case, with the corpus's description as the test id.

    Parametrisation happens at collection, before fixtures exist, so the ids are read from
    the path the ``corpora`` fixture serves; the test itself reads its case through the fixture."""
    if not VALIDATE.is_file():
        return [pytest.param(None, None, id="corpus-missing",
                             marks=pytest.mark.skip(reason=f"{VALIDATE} not found"))]
    tests = _load(VALIDATE)
    return [pytest.param(section, n, id=f"{section}[{n}] {case['description']}")
            for section in SECTIONS for n, case in enumerate(tests.get(section, []))]


def test_the_corpus_has_every_section(corpora: Path) -> None:
    assert (corpora / "twitter-text" / "validate.yml").resolve() == VALIDATE.resolve()
    tests = _load(corpora / "twitter-text" / "validate.yml")
    assert len(tests["WeightedTweetsCounterTest"]) >= 20
    assert len(tests["WeightedTweetsWithDiscountedEmojiCounterTest"]) >= 20
    assert len(tests["UnicodeDirectionalMarkerCounterTest"]) >= 2


@pytest.mark.parametrize("section, index", _ids())
def test_conformance(corpora: Path, section: str, index: int) -> None:
    case = _load(corpora / "twitter-text" / "validate.yml")[section][index]
    config, text, expected = SECTIONS[section], case["text"], case["expected"]
    result = parse(text, config=config).asdict()
    # every field the corpus states, not just the two we rely on
    assert {k: result[k] for k in expected} == expected
    assert weighted_length(text, config=config) == expected["weightedLength"]
    assert fits(text, config=config) is expected["valid"]


def test_configs_differ_on_emoji_sequences() -> None:
    family = "👨‍👩‍👧‍👦"  # four people joined by zero-width joiners
    assert weighted_length(family, config="version3") == 2
    assert weighted_length(family, config="version2") > 2
    assert weighted_length(family) == 2  # X counts with v3 today
    with pytest.raises(ValueError, match="version9"):
        weighted_length("x", config="version9")
    assert set(CONFIGS) == {"version2", "version3"}


def test_fits_rules() -> None:
    assert fits("é" * 280)
    assert not fits("é" * 281)
    assert not fits("   ")
    assert not fits("ABC\ufffe")  # twitter-text's invalid characters
    assert fits("x" * 100, limit=100) and not fits("x" * 101, limit=100)
    assert fits("Lire : https://journal.example.ml/" + "a" * 400)  # a URL counts 23


# -- truncate_to_fit ----------------------------------------------------------------------

URL = "https://journal.example.ml/politique/2024/12/02/reforme-ambitieuse-du-president-annoncee-a-bamako"
FRENCH = (
    "Le président a annoncé « une réforme ambitieuse » lors d’un discours à Bamako, "
    f"ce lundi 2 décembre 2024 : lisez {URL} 🇲🇱👍🏾 et partagez l’article avec vos proches !"
)


def _words(text: str) -> list[str]:
    return text.replace("\u202f", " ").replace("\u00a0", " ").split()


def test_truncate_leaves_a_fitting_text_alone() -> None:
    assert truncate_to_fit(FRENCH) == FRENCH
    assert truncate_to_fit("Bonjour") == "Bonjour"


def test_truncate_french_text_at_every_limit() -> None:
    source = _words(FRENCH)
    assert weighted_length(FRENCH) == 181  # « » ’ and accents weigh 1, the URL 23, each emoji 2
    for limit in range(5, 181, 2):
        out = truncate_to_fit(FRENCH, limit)
        assert fits(out, limit), (limit, out)
        assert out.endswith("…"), (limit, out)
        # cut on a word boundary: whole words of the original, in order; only trailing
        # punctuation of the last kept word may be dropped (« Bamako, » → « Bamako… »)
        kept = _words(out[:-1])
        assert kept[:-1] == source[: len(kept) - 1], (limit, out)
        assert source[len(kept) - 1].rstrip(",;:«") == kept[-1], (limit, out)
        # the URL is either whole or absent, never a stub
        assert extract_urls(out) in ([], [URL]), (limit, out)
        assert f"{URL}…" not in out, (limit, out)  # ellipsis never glued onto the link


def test_truncate_is_as_long_as_it_can_be() -> None:
    out = truncate_to_fit(FRENCH, 120)
    full = _words(FRENCH)
    kept = _words(out[:-1])
    longer = " ".join(full[: len(kept) + 1]) + "…"
    assert not fits(longer, 120)


def test_truncate_keeps_a_url_whole_or_drops_it() -> None:
    text = f"Dossier spécial {URL} " + "suite " * 60
    out = truncate_to_fit(text, 60)
    assert URL in out and fits(out, 60)
    tiny = truncate_to_fit(text, 30)
    assert "https" not in tiny and tiny == "Dossier spécial…"


def test_truncate_never_splits_an_emoji_or_a_french_no_break_space() -> None:
    text = "Victoire\u202f! 👨‍👩‍👧‍👦👨‍👩‍👧‍👦👨‍👩‍👧‍👦 " + "bravo " * 60
    for limit in range(5, 30):
        out = truncate_to_fit(text, limit)
        assert fits(out, limit)
        assert "\u200d…" not in out and not out.startswith("Victoire\u202f…")
        for fragment in out[:-1].split():
            if "\u200d" in fragment:
                assert fragment.count("👨‍👩‍👧‍👦") * len("👨‍👩‍👧‍👦") == len(fragment), out
    assert truncate_to_fit(text, 10) == "Victoire…"  # « ! » stays bound to its word


def test_truncate_cuts_a_single_long_word_between_letters() -> None:
    word = "anticonstitutionnellement" * 20
    out = truncate_to_fit(word, 50)
    assert weighted_length("…") == 2  # U+2026 is outside twitter-text's weight-1 ranges
    assert out == word[:48] + "…" and fits(out, 50)
    accents = "é" * 300
    assert truncate_to_fit(accents, 10) == "é" * 8 + "…"
    decomposed = "e\u0301" * 300  # NFD: cut after NFC, never between letter and accent
    assert truncate_to_fit(decomposed, 10) == "é" * 8 + "…"


def test_truncate_with_another_ellipsis_and_impossible_limits() -> None:
    out = truncate_to_fit(FRENCH, 40, ellipsis=" [...]")
    assert out.endswith(" [...]") and fits(out, 40)
    assert truncate_to_fit(FRENCH, 30, ellipsis="") == "Le président a annoncé « une"
    with pytest.raises(ValueError, match="cannot shorten"):
        truncate_to_fit(FRENCH, 1)


def test_twitter_text_loads_at_the_first_text_and_reads_the_same_emoji_list_without_pkg_resources():
    """Importing the X channel loads no twitter-text; the first length loads it, its emoji
    list read by the stand-in for pkg_resources, which is gone afterwards. The list and the
    expression built from it are the ones the library builds with the real pkg_resources
    (this process loaded it that way)."""
    import twitter_text.regexp.emoji as emoji

    code = ("import sys, hashlib\n"
            "from bot.channels.x import XKind, tweet\n"
            "print('twitter_text' in sys.modules)\n"
            "print(tweet.weighted_length('👍🏾 ok https://example.com/a'))\n"
            "print('twitter_text' in sys.modules, 'pkg_resources' in sys.modules)\n"
            "import twitter_text.regexp.emoji as e\n"
            "print(hashlib.sha256(e.emoji_raw.encode()).hexdigest())\n"
            "print(hashlib.sha256(e.emoji.pattern.encode()).hexdigest())\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    import hashlib

    assert r.stdout.splitlines() == [
        "False", str(weighted_length("👍🏾 ok https://example.com/a")), "True False",
        hashlib.sha256(emoji.emoji_raw.encode()).hexdigest(), hashlib.sha256(emoji.emoji.pattern.encode()).hexdigest()]


def test_the_module_names_nothing_else():
    with pytest.raises(AttributeError):
        tweet.NOT_THERE  # noqa: B018
