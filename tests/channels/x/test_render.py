"""X rendering (bot.channels.x.render): every post X accepts by twitter-text's weighted count,
titles shortened but never URLs, the site's URL when an article's cannot fit, and the
characters X refuses removed. ``XKind.validate`` is the check-time rule behind it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.channels.registry import Channels
from bot.channels.x import XKind
from bot.channels.x.render import XPost
from bot.channels.x.tweet import fits, weighted_length
from bot.config import Config
from bot.models import Article, Edition, Message
from tests.test_render import BASE, article, edition, make_config, words

EMOJI_TITLE = ("Fête 🎉 à Ségou 👍🏾 " * 1200)[:20_000]


def posts(config: Config, channel_id: str, ed: Edition) -> list[str]:
    channel = config.channel(channel_id)
    out = Channels(config).kind(channel).renderer.posts(channel, ed)  # type: ignore[attr-defined]
    assert all(isinstance(p, XPost) for p in out)
    return [p.text for p in out]


def _tracked(n: int, length: int, **kwargs: Any) -> Article:
    a = article(n, **kwargs)
    return replace(a, url=(a.url + "?utm_source=nl&fbclid=" + "A1b2C3d4" * length)[:len(a.url) + length])


def test_x_article_with_a_very_long_title_fits_and_keeps_the_url() -> None:
    config = make_config({"id": "xa", "type": "x", "mode": "article"})
    url = f"{BASE}/2024/12/02/{'tres-long-' * 30}slug/"
    long = replace(article(1, title=words(120, "Ségou")), url=url)
    [post] = posts(config, "xa", edition(long))
    assert fits(post) and weighted_length(post) <= 280
    assert post.endswith(url)
    assert "…" in post and post.startswith("Ségou0 Ségou1")
    assert weighted_length(post) > 200  # shortened, not emptied


def test_x_digest_links_to_the_site_and_fits() -> None:
    config = make_config({"id": "x", "type": "x"})
    arts = [article(i, title=words(80, "Bamako")) for i in range(5)]
    [post] = posts(config, "x", edition(*arts))
    assert fits(post)
    assert post.endswith(BASE) and "5 articles" in post and "À la une" in post


def test_x_article_mode_gives_one_post_per_article() -> None:
    config = make_config({"id": "xa", "type": "x", "mode": "article"})
    out = posts(config, "xa", edition(article(1), article(2)))
    assert len(out) == 2 and all(fits(p) for p in out)
    assert out[1].endswith(f"{BASE}/2024/12/02/article-2/")


# --------------------------------------------------------------------------- content that cannot be made to fit


def test_five_thousand_character_url() -> None:
    config = make_config({"id": "x", "type": "x"}, {"id": "xa", "type": "x", "mode": "article"})
    monster = _tracked(2, length=5000, image=True)
    assert len(monster.url) > 5000
    arts = [article(1), monster, article(3)]
    xposts = posts(config, "xa", edition(*arts))
    assert len(xposts) == 3 and all(fits(p) for p in xposts)
    assert xposts[0].endswith(arts[0].url) and xposts[2].endswith(arts[2].url)
    assert monster.title in xposts[1]
    [digest] = posts(config, "x", edition(*arts))
    assert fits(digest)


def test_url_on_an_unrecognised_domain_falls_back_to_the_site_url() -> None:
    config = make_config({"id": "xa", "type": "x", "mode": "article"})
    # twitter-text knows no ".intranet" TLD: the URL is counted character by character.
    odd = replace(article(2), url="https://journal.intranet/2024/12/02/" + "un-titre-tres-long-" * 20)
    assert weighted_length(odd.url) > 280
    arts = [article(1), odd, article(3)]
    out = posts(config, "xa", edition(*arts))
    assert len(out) == 3 and all(fits(p) for p in out)
    assert odd.url not in out[1] and out[1].endswith(BASE)
    assert out[1].startswith(odd.title)
    assert out[0].endswith(arts[0].url) and out[2].endswith(arts[2].url)


def test_twenty_thousand_character_title_with_emoji() -> None:
    config = make_config({"id": "x", "type": "x"}, {"id": "xa", "type": "x", "mode": "article"})
    huge = article(2, title=EMOJI_TITLE, summary=words(50), image=True)
    arts = [article(1), huge, article(3)]
    for channel_id in ("x", "xa"):
        assert all(fits(p) for p in posts(config, channel_id, edition(*arts)))
    xposts = posts(config, "xa", edition(*arts))
    assert xposts[1].startswith("Fête 🎉 à Ségou") and xposts[1].endswith(huge.url)


# --------------------------------------------------------------------------- invisible characters


def test_x_strips_characters_twitter_text_refuses() -> None:
    config = make_config({"id": "x", "type": "x"}, {"id": "xa", "type": "x", "mode": "article"})
    title = "Réunion \u202bبماكو\u202c au sommet \ufeff"
    arts = [article(1, title=title), article(2, title="A\ufffeB\uffff C \u202a\u202d\u202e")]
    for channel_id in ("x", "xa"):
        for post in posts(config, channel_id, edition(*arts)):
            assert fits(post), repr(post)
            assert not any(ch in post for ch in "\u202a\u202b\u202c\u202d\u202e\ufeff\ufffe\uffff")
    out = posts(config, "xa", edition(*arts))
    assert out[0].startswith("Réunion بماكو au sommet")
    assert out[1].startswith("AB C")


def test_x_fitting_of_a_long_title_with_invisible_characters() -> None:
    config = make_config({"id": "xa", "type": "x", "mode": "article"})
    long = article(1, title=("Réunion \u202bبماكو\u202c au sommet \ufeff" * 30))
    [post] = posts(config, "xa", edition(long))
    assert fits(post) and post.endswith(long.url) and "…" in post
    assert weighted_length(post) > 200  # shortened, not emptied


# --------------------------------------------------------------------------- validate


def test_validate_refuses_an_oversize_or_invalid_post() -> None:
    # The renderer always fits, so the check-time rule is exercised on hand-made messages.
    config = make_config({"id": "x", "type": "x"})
    kind = Channels(config).kind(config.channel("x"))
    assert isinstance(kind, XKind)

    def message(text: str) -> Message:
        return Message("k", "x", "x", "file:x", XPost(text))

    assert kind.validate(message("é" * 280)) == []
    assert kind.validate(message("Lire : https://journal.example.ml/" + "a" * 400)) == []  # a URL weighs 23
    oversize = kind.validate(message("é" * 281))
    assert oversize == ["post k is 281 weighted characters or holds a character X refuses; X takes 1 to 280"]
    assert kind.validate(message("🎉" * 141))[0].startswith("post k is 282 weighted characters")  # an emoji weighs 2
    assert kind.validate(message("Bamako \ufffe"))  # a character twitter-text refuses
    assert kind.validate(message("   "))  # X takes no empty post
