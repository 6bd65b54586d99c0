"""Telegram rendering (bot.channels.telegram.render and .html): article HTML reduced to
Telegram's tags, digests split between articles, captions fitted, the fallback ladder for
content that cannot be shortened enough, the visible length Telegram counts, and the check
that refuses a template Telegram would refuse.

Every post is checked with the fake Bot API's own parser (tests/fakes/bot_api.py), written
independently of bot/ from Telegram's documentation.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.channels.registry import Channels
from bot.channels.telegram import TelegramKind
from bot.channels.telegram.html import (MAX_CAPTION, MAX_TEXT, escape, html_problems, to_telegram_html,
                                        visible_length)
from bot.channels.telegram.render import TelegramPost
from bot.check import check_templates
from bot.config import Config
from bot.errors import TemplateError
from bot.models import Article, Edition, Message
from tests.fakes.bot_api import telegram_html_error, telegram_plain_text, telegram_text_length
from tests.test_render import BASE, article, edition, make_config, sample, words

#: where the renderers say that an article went out in a reduced form
FALLBACK_LOGGER = "bot.text.fit"


def posts(config: Config, channel_id: str, ed: Edition) -> list[TelegramPost]:
    channel = config.channel(channel_id)
    return Channels(config).kind(channel).renderer.posts(channel, ed)  # type: ignore[attr-defined,no-any-return]


def _assert_telegram_ok(out: list[TelegramPost]) -> None:
    for post in out:
        assert telegram_html_error(post.text) is None, post.text[:300]
        limit = MAX_CAPTION if post.photo_url else MAX_TEXT
        assert 0 < telegram_text_length(post.text) <= limit, (telegram_text_length(post.text), limit)


# --------------------------------------------------------------------------- Telegram's HTML


def test_to_telegram_html_reduces_to_telegram_tags() -> None:
    html = ('<h2>Titre</h2><p>Un&nbsp;paragraphe avec <strong>gras</strong> &amp; <em title="x">italique</em>'
            '<br>ligne</p><ul><li>un</li><li>deux</li></ul><div class="wp-block"><img src="x.jpg">'
            '<a href="javascript:alert(1)">piège</a> <a href="https://ex.ml/?a=1&b=2" target="_blank">lien</a>'
            '</div><script>alert(1)</script><table><tr><td>cellule</td></tr></table><blockquote>cit</blockquote>')
    out = to_telegram_html(html)
    assert telegram_html_error(out) is None, out
    assert html_problems(out) == []
    assert "<br" not in out and "<p" not in out and "<div" not in out and "script" not in out
    assert "alert" not in out and "javascript" not in out
    assert '<a href="https://ex.ml/?a=1&amp;b=2">lien</a>' in out
    assert "<b>Titre</b>\n\nUn\u00a0paragraphe avec <strong>gras</strong> &amp; <em>italique</em>\nligne" in out
    assert "• un\n• deux" in out
    assert to_telegram_html("") == ""
    assert escape('a & b < c > "d"') == "a &amp; b &lt; c &gt; &quot;d&quot;"


def test_visible_length_counts_what_telegram_counts() -> None:
    samples = [
        '<b><a href="https://ex.ml/?a=1&amp;b=2">Tom &amp; Jerry</a></b> &lt;3 &quot;ok&quot; &#233;t&#xE9;',
        "Fête 🎉 à Ségou 👍🏾\n\n<i>Société</i>",
        '<a href="' + "https://ex.ml/" + "x" * 2000 + '">Lire la suite</a>',
        "",
    ]
    for html in samples:
        assert visible_length(html) == telegram_text_length(html), html[:80]
    assert visible_length(samples[2]) == len("Lire la suite")  # an href is not counted


VALID = [
    "",
    "Fête 🎉\n\n<i>Société</i>",
    "<b>gras</b> &amp; <i>italique</i>",
    "a &lt; b &gt; c &quot;d&quot;",
    "&#233;t&#xE9; &#128512;",
    '<a href="https://ex.ml/?a=1&amp;b=2">lien</a>',
    "<a href='https://ex.ml/'>lien</a>",
    "<b><i>imbriqué</i></b><u>u</u><s>s</s><ins>i</ins><del>d</del><strike>s</strike>",
    "<em>e</em><strong>s</strong><B>majuscules</B><b >espace</b >",
    '<span class="tg-spoiler">x</span><tg-spoiler>y</tg-spoiler>',
    "<blockquote expandable>cit</blockquote><blockquote>cit</blockquote>",
    '<pre><code class="language-python">x = 1</code></pre><code>y</code>',
    '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>',
]

INVALID = [
    "<p>paragraphe</p>",  # no paragraphs: a plain newline
    "ligne<br>ligne",
    "ligne<br/>ligne",
    "ligne<br />ligne",
    "<div>bloc</div>",
    "<h1>titre</h1>",
    "<img src='x.jpg'>",
    "<span>x</span>",  # span only as a spoiler
    '<span class="x">x</span>',
    "Un&nbsp;espace",  # a named entity Telegram does not know
    "&eacute;t&eacute;",
    "AT&T rachète",
    "Tom & Jerry",  # a bare ampersand
    '<a href="x">y</a>&',
    "<b>gras",  # never closed
    "<pre>code",
    "<b>gras</b",
    "<b><i>x</b></i>",  # closed out of order
    "x</b>",  # closes what is not open
    "</b>",
    "<a>lien</a>",  # a link needs an href
    '<a href="">lien</a>',
    "<!-- commentaire -->",
]


@pytest.mark.parametrize("text", VALID)
def test_html_problems_accepts_telegram_html(text: str) -> None:
    assert html_problems(text) == []


@pytest.mark.parametrize("text", INVALID)
def test_html_problems_refuses_what_telegram_refuses(text: str) -> None:
    assert html_problems(text)


def test_html_problems_says_what_is_wrong() -> None:
    [tag] = html_problems("<p>Bonjour</p>")
    assert "<p>" in tag and "plain newline" in tag
    assert html_problems("Un&nbsp;espace") == [
        "Telegram refuses the entity &nbsp; (only &lt; &gt; &amp; &quot; and numeric ones)"]
    assert html_problems("<b>gras") == ["<b> is never closed"]
    assert html_problems("Tom & Jerry & co") == ["a bare '&' in the text must be written &amp; (an entity ends with ';')"]  # said once
    assert html_problems("<b><i>x</b></i>") == ["<i> is not closed before </b>", "</i> closes a tag that is not open"]


# Inputs html_problems once let through although Telegram's documentation (and the fake's
# parser, which follows it) refuses them: a '<' that starts no tag, an unquoted attribute
# value that is not a plain word, a bare '>', an entity without ';', '&' inside an attribute.
ONCE_MISSED = ["Prix < 500 FCFA", "<3 Bamako", "a<b", "<!DOCTYPE html>", "<a href=https://ex.ml/>lien</a>",
               "3 > 2", "a &amp b", '<a href="https://ex.ml/?a=1&b=2">lien</a>']


@pytest.mark.parametrize("text", ONCE_MISSED)
def test_html_problems_refuses_what_it_once_missed(text: str) -> None:
    assert html_problems(text)


@pytest.mark.parametrize("text", VALID + INVALID + ONCE_MISSED)
def test_html_problems_agrees_with_the_fake_bot_api(text: str) -> None:
    # Two parsers written apart from each other: one check is only trusted where both agree.
    assert (html_problems(text) == []) is (telegram_html_error(text) is None), (
        html_problems(text), telegram_html_error(text))


# --------------------------------------------------------------------------- check and validate


def _templates(tmp_path: Path, **files: str) -> str:
    (tmp_path / "telegram").mkdir(exist_ok=True)
    for name, text in files.items():
        (tmp_path / "telegram" / f"{name}.html").write_text(text, encoding="utf-8")
    return str(tmp_path)


def test_check_refuses_a_paragraph_in_an_article_template(tmp_path: Path) -> None:
    # Before, check passed such a template and then Telegram refused every post.
    folder = _templates(tmp_path, article="<p><b>{{ article.title }}</b></p>\n"
                                          '<a href="{{ article.url }}">{{ t.read_more }}</a>\n')
    config = make_config({"id": "tga", "type": "telegram", "mode": "article"}, folder=folder)
    out = posts(config, "tga", sample(config, "tga"))
    assert telegram_html_error(out[0].text) is not None  # Telegram would refuse it indeed
    problems = check_templates(config, Channels(config))
    assert problems and all(p.startswith("channel tga: with the sample edition: post check:p1") for p in problems)
    assert any("<p>" in p for p in problems), problems


def test_check_refuses_a_line_break_in_a_digest_template(tmp_path: Path) -> None:
    folder = _templates(tmp_path, digest="<b>{{ title }}</b><br>\n"
                                         "{% for a in articles %}{{ a.title }}<br>\n{% endfor %}")
    config = make_config({"id": "tg", "type": "telegram", "send_empty": True}, folder=folder)
    problems = check_templates(config, Channels(config))
    assert any("channel tg: with the sample edition" in p and "<br>" in p for p in problems), problems
    assert any("channel tg: with an empty edition" in p and "<br>" in p for p in problems), problems


def test_validate_measures_text_and_caption() -> None:
    config = make_config({"id": "tg", "type": "telegram"})
    kind = Channels(config).kind(config.channel("tg"))
    assert isinstance(kind, TelegramKind)

    def message(text: str, photo: str | None = None) -> Message:
        return Message("k", "tg", "telegram", "@echo", TelegramPost(text, photo))

    assert kind.validate(message("é" * MAX_TEXT)) == []
    assert kind.validate(message("<b>" + "é" * MAX_CAPTION + "</b>", f"{BASE}/img.jpg")) == []
    assert kind.validate(message("é" * (MAX_TEXT + 1))) == [
        f"post k: the text is {MAX_TEXT + 1} characters, Telegram allows {MAX_TEXT}"]
    assert kind.validate(message("🎉" * 513, f"{BASE}/img.jpg")) == [  # an emoji counts 2
        f"post k: the caption is 1026 characters, Telegram allows {MAX_CAPTION}"]
    assert kind.validate(message(" \n")) == ["post k is empty"]
    assert kind.validate(message("<p>x</p>"))[0].startswith("post k: Telegram refuses the tag <p>")


# --------------------------------------------------------------------------- digests


def test_short_digest_is_one_post() -> None:
    config = make_config({"id": "tg", "type": "telegram"})
    out = posts(config, "tg", sample(config, "tg"))
    assert len(out) == 1 and out[0].photo_url is None
    assert telegram_html_error(out[0].text) is None
    assert "<br" not in out[0].text


def test_long_digest_is_split_between_articles() -> None:
    config = make_config({"id": "tg", "type": "telegram"})
    arts = [article(i, title=f"Article {i:02d} : {words(8, 'titre')}", summary=words(60)) for i in range(30)]
    out = posts(config, "tg", edition(*arts))
    assert len(out) > 1
    seen: list[int] = []
    for number, post in enumerate(out, 1):
        assert isinstance(post, TelegramPost) and post.photo_url is None
        assert telegram_html_error(post.text) is None, post.text[:300]
        assert telegram_text_length(post.text) <= MAX_TEXT  # what Telegram counts: hrefs do not
        for i in range(30):
            n = post.text.count(f"Article {i:02d} :")
            assert n in (0, 1)
            if n:
                seen.append(i)
                # never split: the article's summary is in the same post, right after its title
                after_title = post.text.split(f"{BASE}/2024/12/02/article-{i}/")[1]
                own_block = after_title.split("<b><a ")[0]
                assert "mot0 mot1 mot2" in own_block
        if number > 1:
            assert f"{number}/{len(out)})" in post.text
    assert seen == list(range(30))  # every article once, in order
    assert "30 articles" in out[0].text and f"(1/{len(out)})" in out[0].text


def test_article_too_long_for_a_post_gets_its_summary_shortened() -> None:
    config = make_config({"id": "tg", "type": "telegram"}, {"id": "tga", "type": "telegram", "mode": "article"})
    huge = article(1, summary=words(2000, "très&<long>"))
    for channel_id in ("tg", "tga"):
        out = posts(config, channel_id, edition(huge, article(2)))
        for post in out:
            assert telegram_html_error(post.text) is None
            assert telegram_text_length(post.text) <= MAX_TEXT
        assert "…" in out[0].text
        assert "très&amp;&lt;long&gt;" in out[0].text  # escaped, never cut inside an entity


def test_hostile_title_is_escaped() -> None:
    hostile = article(1, title="Tom & Jerry <script>alert('x')</script> « ok »", image=True)
    config = make_config({"id": "tg", "type": "telegram"}, {"id": "tga", "type": "telegram", "mode": "article"})
    for channel_id in ("tg", "tga"):
        for post in posts(config, channel_id, edition(hostile)):
            assert telegram_html_error(post.text) is None, post.text
            assert "Tom & Jerry <script>alert('x')</script> « ok »" in telegram_plain_text(post.text)


# --------------------------------------------------------------------------- captions


def test_caption_fits_with_a_long_article() -> None:
    config = make_config({"id": "tga", "type": "telegram", "mode": "article"})
    long = article(1, summary=words(400), image=True)
    [post] = posts(config, "tga", edition(long))
    assert post.photo_url == f"{BASE}/img/1.jpg"
    assert telegram_text_length(post.text) <= MAX_CAPTION
    assert telegram_html_error(post.text) is None
    assert "…" in post.text and post.text.endswith("Lire la suite</a>")
    assert telegram_text_length(post.text) > MAX_CAPTION - 60  # shortened to fit, not emptied

    [text_post] = posts(config, "tga", edition(replace(long, image_url=None)))
    assert text_post.photo_url is None and "…" not in text_post.text  # 4,096 is room enough


def test_caption_with_a_huge_title_still_fits() -> None:
    config = make_config({"id": "tga", "type": "telegram", "mode": "article"})
    absurd = article(1, title=words(400, "titre"), summary=words(100), image=True)
    [post] = posts(config, "tga", edition(absurd))
    assert telegram_text_length(post.text) <= MAX_CAPTION and telegram_html_error(post.text) is None
    assert f"{BASE}/2024/12/02/article-1/" in post.text


# --------------------------------------------------------------------------- content that cannot be made to fit
# One article the renderer cannot shorten enough used to raise TemplateError; editions take
# the oldest unsent article first, so that article stopped its channel for good. Now every
# article gets a post within the limits, however it is made, and the others are all there.

EMOJI_TITLE = ("Fête 🎉 à Ségou 👍🏾 " * 1200)[:20_000]


def _tracked(n: int, length: int = 1500, **kwargs: Any) -> Article:
    a = article(n, **kwargs)
    return replace(a, url=(a.url + "?utm_source=nl&fbclid=" + "A1b2C3d4" * length)[:len(a.url) + length])


def test_tracking_url_with_a_photo_fits_in_article_mode_and_digest() -> None:
    config = make_config({"id": "tg", "type": "telegram"}, {"id": "tga", "type": "telegram", "mode": "article"})
    tracked = _tracked(2, summary=words(60), image=True)
    assert len(tracked.url) > 1500
    arts = [article(1, image=True), tracked, article(3, image=True)]
    out = posts(config, "tga", edition(*arts))
    _assert_telegram_ok(out)
    assert len(out) == 3 and all(p.photo_url for p in out)  # the href does not count: photo kept
    assert f'href="{escape(tracked.url)}"' in out[1].text  # and the link is intact
    assert "mot59" in out[1].text  # nothing shortened: the visible text is short
    [digest] = posts(config, "tg", edition(*arts))
    _assert_telegram_ok([digest])
    for a in arts:
        assert a.title in telegram_plain_text(digest.text)


def test_five_thousand_character_url() -> None:
    config = make_config({"id": "tg", "type": "telegram"}, {"id": "tga", "type": "telegram", "mode": "article"})
    monster = _tracked(2, length=5000, image=True)
    assert len(monster.url) > 5000
    arts = [article(1), monster, article(3)]
    for channel_id in ("tg", "tga"):
        out = posts(config, channel_id, edition(*arts))
        _assert_telegram_ok(out)
        shown = "".join(telegram_plain_text(p.text) for p in out)
        for a in arts:
            assert a.title in shown


def test_twenty_thousand_character_title_with_emoji() -> None:
    config = make_config({"id": "tg", "type": "telegram"}, {"id": "tga", "type": "telegram", "mode": "article"})
    huge = article(2, title=EMOJI_TITLE, summary=words(50), image=True)
    arts = [article(1), huge, article(3)]
    for channel_id in ("tg", "tga"):
        out = posts(config, channel_id, edition(*arts))
        _assert_telegram_ok(out)
        shown = "".join(telegram_plain_text(p.text) for p in out)
        assert arts[0].title in shown and arts[2].title in shown and "Fête 🎉 à Ségou" in shown


def _visible_url_templates(tmp_path: Path) -> str:
    """An admin template that prints the URL as text, as some publishers want: now the URL
    does count, and only the later rungs of the ladder can make the post fit."""
    return _templates(
        tmp_path,
        article="<b>{{ article.title }}</b>\n{{ article.summary }}\n{{ article.url }}\n",
        digest="<b>{{ title }}</b>{% if parts > 1 %} ({{ part }}/{{ parts }}){% endif %}\n"
               "{% for a in articles %}\n{{ a.title }}\n{{ a.url }}\n{% endfor %}\n")


def test_photo_is_dropped_when_the_caption_cannot_fit(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = make_config({"id": "tga", "type": "telegram", "mode": "article"}, folder=_visible_url_templates(tmp_path))
    tracked = _tracked(2, length=1500, image=True)
    arts = [article(1, image=True), tracked, article(3, image=True)]
    with caplog.at_level("WARNING", logger=FALLBACK_LOGGER):
        out = posts(config, "tga", edition(*arts))
    _assert_telegram_ok(out)
    assert [p.photo_url is not None for p in out] == [True, False, True]
    assert tracked.url in telegram_plain_text(out[1].text)  # as a text message the URL fits
    assert any("photo" in r.getMessage() and tracked.url[:60] in r.getMessage() for r in caplog.records)


def test_link_is_replaced_by_the_site_url_when_it_cannot_fit(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = make_config({"id": "tg", "type": "telegram"}, {"id": "tga", "type": "telegram", "mode": "article"},
                         folder=_visible_url_templates(tmp_path))
    monster = _tracked(2, length=5000, image=True)
    arts = [article(1), monster, article(3)]
    with caplog.at_level("WARNING", logger=FALLBACK_LOGGER):
        out = posts(config, "tga", edition(*arts))
    _assert_telegram_ok(out)
    assert out[1].photo_url is None
    second = telegram_plain_text(out[1].text)
    assert monster.title in second and monster.url not in second and BASE in second
    assert any("site URL" in r.getMessage() for r in caplog.records)

    digest = posts(config, "tg", edition(*arts))
    _assert_telegram_ok(digest)
    shown = "".join(telegram_plain_text(p.text) for p in digest)
    assert all(a.title in shown for a in arts)
    assert arts[0].url in shown and arts[2].url in shown and monster.url not in shown


def test_last_resort_is_the_plain_title(caplog: pytest.LogCaptureFixture) -> None:
    # Categories are never shortened; thousands of them leave only the last rung.
    config = make_config({"id": "tga", "type": "telegram", "mode": "article"})
    crowded = replace(article(2, image=True), categories=tuple(f"Rubrique {i}" for i in range(2000)))
    arts = [article(1), crowded, article(3)]
    with caplog.at_level("WARNING", logger=FALLBACK_LOGGER):
        out = posts(config, "tga", edition(*arts))
    _assert_telegram_ok(out)
    assert telegram_plain_text(out[1].text) == crowded.title and out[1].photo_url is None
    assert arts[0].title in telegram_plain_text(out[0].text)
    assert any("title only" in r.getMessage() for r in caplog.records)

    huge = replace(crowded, title=EMOJI_TITLE)
    [post] = posts(config, "tga", edition(huge))
    _assert_telegram_ok([post])
    assert telegram_plain_text(post.text).startswith("Fête 🎉 à Ségou") and telegram_text_length(post.text) > 4000


def test_a_broken_template_is_still_a_template_error(tmp_path: Path) -> None:
    # The ladder is for content; a template that cannot fit even an empty article is the
    # template's fault and must be reported, not papered over.
    folder = _templates(tmp_path, digest="{{ 'x' * 5000 }}\n{% for a in articles %}{{ a.title }}{% endfor %}\n")
    config = make_config({"id": "tg", "type": "telegram"}, folder=folder)
    with pytest.raises(TemplateError, match="telegram/digest.html"):
        posts(config, "tg", edition(article(1)))


def test_an_empty_article_post_is_a_template_error(tmp_path: Path) -> None:
    folder = _templates(tmp_path, article="{% if false %}{{ article.title }}{% endif %}\n")
    config = make_config({"id": "tga", "type": "telegram", "mode": "article"}, folder=folder)
    with pytest.raises(TemplateError, match="telegram/article.html: the post is empty"):
        posts(config, "tga", edition(article(1)))
