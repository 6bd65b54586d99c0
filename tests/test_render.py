"""Rendering: the Jinja environment, filters, email digest/envelope, template errors,
Telegram splitting and caption fitting, X fitting.

Golden files live in tests/golden/ and are checked by tests/test_render_golden.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.config import Config, parse_config
from bot.errors import ConfigError, TemplateError
from bot.models import Article, Edition, Recipient
from bot.render import EmailDigest, Renderer, TelegramPost, assemble_email, sample_edition, to_telegram_html
from bot.render.filters import excerpt, format_date, format_datetime, format_time
from bot.render.strings import Strings
from bot.render.telegram import MAX_CAPTION, MAX_TEXT, escape
from bot.render.tweet import fits, weighted_length
from tests.fakes.bot_api import telegram_html_error, telegram_plain_text, telegram_text_length

NOW = datetime(2024, 12, 2, 7, 0, tzinfo=timezone.utc)
BASE = "https://echo.example.ml"


def make_config(*channels: dict[str, Any], site: dict[str, Any] | None = None, folder: str | None = None,
                base_dir: str = ".") -> Config:
    data: dict[str, Any] = {
        "site": {"name": "L’Écho du Sahel", "base_url": BASE, **(site or {})},
        "channels": [
            {"schedule": {"cron": "0 7 * * *"}, "transport": {"type": "file"}, **c} for c in channels
        ],
    }
    if folder is not None:
        data["templates"] = {"folder": folder}
    return parse_config(data, base_dir=base_dir)


def article(n: int, *, title: str | None = None, summary: str | None = None, image: bool = False,
            published_at: datetime = NOW) -> Article:
    return Article(
        source_id="echo", guid=f"g{n}", url=f"{BASE}/2024/12/02/article-{n}/",
        title=title if title is not None else f"Titre numéro {n} : l’actualité du jour",
        published_at=published_at, author="Awa Diarra", categories=("Société",),
        summary=summary if summary is not None else f"Résumé {n}.",
        image_url=f"{BASE}/img/{n}.jpg" if image else None,
    )


def edition(*articles: Article, channel_id: str = "c") -> Edition:
    return Edition(channel_id=channel_id, articles=tuple(articles), created_at=NOW)


def words(n: int, word: str = "mot") -> str:
    return " ".join(f"{word}{i}" for i in range(n))


# --------------------------------------------------------------------------- filters


def test_french_long_date_in_bamako() -> None:
    bamako = ZoneInfo("Africa/Bamako")
    assert format_date(NOW, locale="fr", tz=bamako) == "2 décembre 2024"
    assert format_time(NOW, locale="fr", tz=bamako) == "07:00"
    assert format_datetime(NOW, locale="fr", tz=bamako) == "2 décembre 2024 à 07:00"
    assert format_date(NOW, locale="en", tz=bamako) == "December 2, 2024"


def test_date_near_midnight_follows_the_site_timezone() -> None:
    late = datetime(2024, 12, 1, 23, 30, tzinfo=timezone.utc)
    assert format_date(late, locale="fr", tz=ZoneInfo("Africa/Bamako")) == "1 décembre 2024"  # UTC+0
    assert format_date(late, locale="fr", tz=ZoneInfo("Europe/Paris")) == "2 décembre 2024"  # UTC+1
    assert format_time(late, locale="fr", tz=ZoneInfo("Europe/Paris")) == "00:30"


def test_templates_date_articles_in_the_site_timezone() -> None:
    late = datetime(2024, 12, 1, 23, 30, tzinfo=timezone.utc)
    for tz, expected in (("Africa/Bamako", "1 décembre 2024"), ("Europe/Paris", "2 décembre 2024")):
        config = make_config({"id": "mail", "type": "email"}, site={"timezone": tz})
        digest = Renderer(config).email_digest(config.channel("mail"), edition(article(1, published_at=late)))
        assert expected in digest.text
        assert expected in digest.html


def test_naive_datetime_is_a_template_error_not_a_crash() -> None:
    config = make_config({"id": "mail", "type": "email"})
    naive = article(1, published_at=datetime(2024, 12, 2, 7, 0))
    with pytest.raises(TemplateError, match="no timezone") as info:
        Renderer(config).email_digest(config.channel("mail"), edition(naive))
    assert info.value.line is not None


def test_excerpt_cuts_on_a_word_boundary() -> None:
    text = "Les pluies ont dépassé les attentes des maraîchers du fleuve Niger cette année"
    out = excerpt(text, 30)
    assert out.endswith("…") and len(out) <= 30
    assert text.startswith(out[:-1])
    assert out[:-1].split()[-1] in text.split()  # the last kept word is a whole word
    assert excerpt("court", 30) == "court"
    assert excerpt("  plusieurs\n  espaces  ", 30) == "plusieurs espaces"
    assert excerpt("anticonstitutionnellement", 10) == "anticonst…"
    assert excerpt("", 10) == "" and excerpt(None, 10) == ""
    assert excerpt("Bamako : « la saison »", 10) == "Bamako…"  # no dangling « : » before the ellipsis


def test_plural_strings_follow_the_language_rule() -> None:
    assert Strings("fr").n("articles", 0) == "0 article"
    assert Strings("fr").n("articles", 1) == "1 article"
    assert Strings("fr").n("articles", 8) == "8 articles"
    assert Strings("en").n("articles", 0) == "0 articles"
    assert Strings("en").n("articles", 1) == "1 article"


# --------------------------------------------------------------------------- email


def test_email_digest_french_defaults() -> None:
    config = make_config({"id": "mail", "type": "email"})
    channel = config.channel("mail")
    digest = Renderer(config).email_digest(channel, sample_edition(channel, config, NOW))
    assert digest.subject == "L’Écho du Sahel — 2 décembre 2024\u00a0: 4 articles"
    assert "Lire la suite" in digest.html and "Au sommaire" in digest.html
    assert 'style="' in digest.html  # CSS inlined once, in the shared part
    assert "<style" not in digest.html and "<script" not in digest.html
    assert 'width="560"' in digest.html and 'height="315"' in digest.html and "alt=" in digest.html
    assert f"{BASE}/2024/12/01/culture-festival/" in digest.text


def test_english_channel_uses_english_strings_and_dates() -> None:
    config = make_config({"id": "news", "type": "email", "language": "en", "title": "Sahel Echo"})
    renderer = Renderer(config)
    channel = config.channel("news")
    digest = renderer.email_digest(channel, sample_edition(channel, config, NOW))
    assert digest.subject == "Sahel Echo — December 2, 2024: 4 articles"
    assert "Read more" in digest.html and "In this issue" in digest.html
    assert "Lire la suite" not in digest.html + digest.text
    envelope = renderer.email_envelope(channel, digest, Recipient("a@example.org", "Awa"))
    assert "Hello Awa," in envelope.html_head and 'lang="en"' in envelope.html_head
    assert "Hello Awa," in envelope.text_head


def test_envelope_differs_per_recipient_and_escapes() -> None:
    config = make_config({"id": "mail", "type": "email"})
    renderer = Renderer(config)
    channel = config.channel("mail")
    digest = renderer.email_digest(channel, sample_edition(channel, config, NOW))
    unsub = "https://echo.example.ml/desabonnement?token=a\"b&email=awa@example.org"
    named = renderer.email_envelope(channel, digest, Recipient("awa@example.org", "Awa <b>", unsub))
    anonymous = renderer.email_envelope(channel, digest, Recipient("x@example.org"))

    assert "Bonjour Awa &lt;b&gt;," in named.html_head
    assert "Bonjour Awa <b>," in named.text_head
    assert "Bonjour," in anonymous.html_head and "Bonjour," in anonymous.text_head
    assert 'href="https://echo.example.ml/desabonnement?token=a&#34;b&amp;email=awa@example.org"' in named.html_tail \
        or 'href="https://echo.example.ml/desabonnement?token=a&quot;b&amp;email=awa@example.org"' in named.html_tail
    assert unsub in named.text_tail
    assert "Se désabonner" in named.html_tail and "Se désabonner" not in anonymous.html_tail

    subject, html, text = assemble_email(digest, named)
    assert subject == digest.subject
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert html.count(digest.html) == 1 and text.count(digest.text) == 1
    assert html.index("Bonjour Awa") < html.index(digest.html) < html.index("Se désabonner")
    assert 'class="greeting" style="' in html  # the envelope's own CSS is inlined too
    assert "@media" in named.html_head  # kept for phones that read <style>


def test_shared_digest_is_rendered_once_for_many_recipients(monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config({"id": "mail", "type": "email"})
    renderer = Renderer(config)
    channel = config.channel("mail")
    loaded: list[str] = []
    real = renderer.env.get_template

    def spy(name: Any, *args: Any, **kwargs: Any) -> Any:
        loaded.append(str(name))
        return real(name, *args, **kwargs)

    monkeypatch.setattr(renderer.env, "get_template", spy)
    digest = renderer.email_digest(channel, sample_edition(channel, config, NOW))
    envelopes = [renderer.email_envelope(channel, digest, Recipient(f"r{i}@example.org", f"R{i}")) for i in range(25)]
    assert loaded.count("email/digest.html") == 1
    assert loaded.count("email/digest.txt") == 1
    assert loaded.count("email/subject.txt") == 1
    assert loaded.count("email/layout.html") == 25 and loaded.count("email/layout.txt") == 25
    assert len({e.html_head for e in envelopes}) == 25


def test_digest_survives_a_json_round_trip() -> None:
    import json
    from dataclasses import asdict

    config = make_config({"id": "mail", "type": "email"})
    channel = config.channel("mail")
    digest = Renderer(config).email_digest(channel, sample_edition(channel, config, NOW))
    assert EmailDigest(**json.loads(json.dumps(asdict(digest)))) == digest


def test_hostile_title_is_escaped_everywhere() -> None:
    hostile = article(1, title="Tom & Jerry <script>alert('x')</script> « ok »", image=True)
    config = make_config({"id": "mail", "type": "email"}, {"id": "tg", "type": "telegram"},
                         {"id": "tga", "type": "telegram", "mode": "article"})
    renderer = Renderer(config)
    digest = renderer.email_digest(config.channel("mail"), edition(hostile))
    assert "<script" not in digest.html
    assert "Tom &amp; Jerry &lt;script&gt;" in digest.html
    for channel_id in ("tg", "tga"):
        for post in renderer.telegram_posts(config.channel(channel_id), edition(hostile)):
            assert telegram_html_error(post.text) is None, post.text
            assert "Tom & Jerry <script>alert('x')</script> « ok »" in telegram_plain_text(post.text)


# --------------------------------------------------------------------------- template errors


def test_admin_folder_overrides_and_extends_the_default(tmp_path: Path) -> None:
    folder = tmp_path / "mes-modeles"
    (folder / "email").mkdir(parents=True)
    (folder / "email" / "digest.html").write_text(
        '{% extends "default:email/digest.html" %}\n'
        "{% block header %}<h1 class=\"title\">Édition spéciale {{ title }}</h1>{% endblock %}\n",
        encoding="utf-8")
    (folder / "x").mkdir()
    (folder / "x" / "article.txt").write_text("🔴 {{ article.title }}\n{{ article.url }}\n", encoding="utf-8")
    config = make_config({"id": "mail", "type": "email"}, {"id": "x", "type": "x", "mode": "article"},
                         folder="mes-modeles", base_dir=str(tmp_path))
    renderer = Renderer(config)
    assert renderer.check() == []
    channel = config.channel("mail")
    digest = renderer.email_digest(channel, sample_edition(channel, config, NOW))
    assert "Édition spéciale L’Écho du Sahel" in digest.html
    assert "Lire la suite" in digest.html  # the rest still comes from the shipped template
    assert "2 décembre 2024 · 4 articles" not in digest.html  # the overridden block is gone
    posts = renderer.x_posts(config.channel("x"), sample_edition(config.channel("x"), config, NOW))
    assert posts[0].startswith("🔴 Bamako\u00a0:")


def test_missing_admin_folder_is_a_config_error(tmp_path: Path) -> None:
    config = make_config({"id": "mail", "type": "email"}, folder="absent", base_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="absent"):
        Renderer(config)


def test_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "digest.html").write_text(
        "<h1>{{ title }}</h1>\n{% for a in articles %}\n<p>{{ a.title }</p>\n{% endfor %}\n", encoding="utf-8")
    config = make_config({"id": "mail", "type": "email"}, folder=str(tmp_path))
    renderer = Renderer(config)
    channel = config.channel("mail")
    with pytest.raises(TemplateError) as info:
        renderer.email_digest(channel, sample_edition(channel, config, NOW))
    assert info.value.template == "email/digest.html" and info.value.line == 3
    problems = renderer.check()
    assert len(problems) == 1
    assert "channel mail" in problems[0] and "email/digest.html, line 3" in problems[0]


def test_typo_in_a_variable_is_caught(tmp_path: Path) -> None:
    (tmp_path / "telegram").mkdir()
    (tmp_path / "telegram" / "article.html").write_text(
        "<b>{{ article.title }}</b>\n\n{{ artcle.summary }}\n", encoding="utf-8")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "digest.txt").write_text("{{ t.titre }} {{ site.base_url }}\n", encoding="utf-8")
    config = make_config({"id": "tga", "type": "telegram", "mode": "article"}, {"id": "x", "type": "x"},
                         folder=str(tmp_path))
    renderer = Renderer(config)
    with pytest.raises(TemplateError, match="artcle") as info:
        renderer.telegram_posts(config.channel("tga"), edition(article(1)))
    assert info.value.template == "telegram/article.html" and info.value.line == 3
    problems = renderer.check()
    assert any("channel tga" in p and "artcle" in p and "line 3" in p for p in problems)
    assert any("channel x" in p and "titre" in p and "x/digest.txt, line 1" in p for p in problems)


def test_missing_template_and_unknown_role_are_reported() -> None:
    config = make_config({"id": "mail", "type": "email", "templates": {"html": "email/nope.html", "htlm": "x.html"}})
    renderer = Renderer(config)
    problems = renderer.check()
    assert any("email/nope.html" in p and "not found" in p for p in problems)
    assert any("templates.htlm" in p and "unknown role" in p for p in problems)
    channel = config.channel("mail")
    with pytest.raises(TemplateError, match="not found"):
        renderer.email_digest(channel, edition(article(1)))


def test_layout_without_body_is_reported(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "layout.txt").write_text("Bonjour !\n", encoding="utf-8")
    config = make_config({"id": "mail", "type": "email"}, folder=str(tmp_path))
    problems = Renderer(config).check()
    assert any("email/layout.txt" in p and "{{ body }}" in p for p in problems)


def test_shipped_templates_pass_check_for_every_kind_of_channel() -> None:
    config = make_config(
        {"id": "mail", "type": "email", "send_empty": True},
        {"id": "mail-en", "type": "email", "language": "en"},
        {"id": "tg", "type": "telegram", "send_empty": True},
        {"id": "tga", "type": "telegram", "mode": "article"},
        {"id": "x", "type": "x", "send_empty": True},
        {"id": "xa", "type": "x", "mode": "article", "language": "en"},
    )
    assert Renderer(config).check() == []


# --------------------------------------------------------------------------- Telegram


def test_to_telegram_html_reduces_to_telegram_tags() -> None:
    html = ('<h2>Titre</h2><p>Un&nbsp;paragraphe avec <strong>gras</strong> &amp; <em title="x">italique</em>'
            '<br>ligne</p><ul><li>un</li><li>deux</li></ul><div class="wp-block"><img src="x.jpg">'
            '<a href="javascript:alert(1)">piège</a> <a href="https://ex.ml/?a=1&b=2" target="_blank">lien</a>'
            '</div><script>alert(1)</script><table><tr><td>cellule</td></tr></table><blockquote>cit</blockquote>')
    out = to_telegram_html(html)
    assert telegram_html_error(out) is None, out
    assert "<br" not in out and "<p" not in out and "<div" not in out and "script" not in out
    assert "alert" not in out and "javascript" not in out
    assert '<a href="https://ex.ml/?a=1&amp;b=2">lien</a>' in out
    assert "<b>Titre</b>\n\nUn\u00a0paragraphe avec <strong>gras</strong> &amp; <em>italique</em>\nligne" in out
    assert "• un\n• deux" in out
    assert to_telegram_html("") == ""
    assert escape('a & b < c > "d"') == "a &amp; b &lt; c &gt; &quot;d&quot;"


def test_short_digest_is_one_post() -> None:
    config = make_config({"id": "tg", "type": "telegram"})
    channel = config.channel("tg")
    posts = Renderer(config).telegram_posts(channel, sample_edition(channel, config, NOW))
    assert len(posts) == 1 and posts[0].photo_url is None
    assert telegram_html_error(posts[0].text) is None
    assert "<br" not in posts[0].text


def test_long_digest_is_split_between_articles() -> None:
    config = make_config({"id": "tg", "type": "telegram"})
    channel = config.channel("tg")
    arts = [article(i, title=f"Article {i:02d} : {words(8, 'titre')}", summary=words(60)) for i in range(30)]
    posts = Renderer(config).telegram_posts(channel, edition(*arts))
    assert len(posts) > 1
    seen: list[int] = []
    for number, post in enumerate(posts, 1):
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
            assert f"{number}/{len(posts)})" in post.text
    assert seen == list(range(30))  # every article once, in order
    assert "30 articles" in posts[0].text and f"(1/{len(posts)})" in posts[0].text


def test_article_too_long_for_a_post_gets_its_summary_shortened() -> None:
    config = make_config({"id": "tg", "type": "telegram"}, {"id": "tga", "type": "telegram", "mode": "article"})
    renderer = Renderer(config)
    huge = article(1, summary=words(2000, "très&<long>"))
    for channel_id in ("tg", "tga"):
        posts = renderer.telegram_posts(config.channel(channel_id), edition(huge, article(2)))
        for post in posts:
            assert telegram_html_error(post.text) is None
            assert telegram_text_length(post.text) <= MAX_TEXT
        assert "…" in posts[0].text
        assert "très&amp;&lt;long&gt;" in posts[0].text  # escaped, never cut inside an entity


def test_caption_fits_with_a_long_article() -> None:
    config = make_config({"id": "tga", "type": "telegram", "mode": "article"})
    renderer = Renderer(config)
    long = article(1, summary=words(400), image=True)
    [post] = renderer.telegram_posts(config.channel("tga"), edition(long))
    assert post.photo_url == f"{BASE}/img/1.jpg"
    assert telegram_text_length(post.text) <= MAX_CAPTION
    assert telegram_html_error(post.text) is None
    assert "…" in post.text and post.text.endswith("Lire la suite</a>")
    assert telegram_text_length(post.text) > MAX_CAPTION - 60  # shortened to fit, not emptied

    [text_post] = renderer.telegram_posts(config.channel("tga"), edition(replace(long, image_url=None)))
    assert text_post.photo_url is None and "…" not in text_post.text  # 4,096 is room enough


def test_caption_with_a_huge_title_still_fits() -> None:
    config = make_config({"id": "tga", "type": "telegram", "mode": "article"})
    absurd = article(1, title=words(400, "titre"), summary=words(100), image=True)
    [post] = Renderer(config).telegram_posts(config.channel("tga"), edition(absurd))
    assert telegram_text_length(post.text) <= MAX_CAPTION and telegram_html_error(post.text) is None
    assert f"{BASE}/2024/12/02/article-1/" in post.text


# --------------------------------------------------------------------------- X


def test_x_article_with_a_very_long_title_fits_and_keeps_the_url() -> None:
    config = make_config({"id": "xa", "type": "x", "mode": "article"})
    url = f"{BASE}/2024/12/02/{'tres-long-' * 30}slug/"
    long = replace(article(1, title=words(120, "Ségou")), url=url)
    [post] = Renderer(config).x_posts(config.channel("xa"), edition(long))
    assert fits(post) and weighted_length(post) <= 280
    assert post.endswith(url)
    assert "…" in post and post.startswith("Ségou0 Ségou1")
    assert weighted_length(post) > 200  # shortened, not emptied


def test_x_digest_links_to_the_site_and_fits() -> None:
    config = make_config({"id": "x", "type": "x"})
    arts = [article(i, title=words(80, "Bamako")) for i in range(5)]
    [post] = Renderer(config).x_posts(config.channel("x"), edition(*arts))
    assert fits(post)
    assert post.endswith(BASE) and "5 articles" in post and "À la une" in post


def test_x_article_mode_gives_one_post_per_article() -> None:
    config = make_config({"id": "xa", "type": "x", "mode": "article"})
    posts = Renderer(config).x_posts(config.channel("xa"), edition(article(1), article(2)))
    assert len(posts) == 2 and all(fits(p) for p in posts)
    assert posts[1].endswith(f"{BASE}/2024/12/02/article-2/")


def test_broken_include_names_the_included_file(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "digest.txt").write_text("{{ title }}\n{% include '_pied.txt' %}\n", encoding="utf-8")
    (tmp_path / "_pied.txt").write_text("Merci\n{% if %}\n", encoding="utf-8")
    (tmp_path / "telegram").mkdir()
    (tmp_path / "telegram" / "digest.html").write_text("<b>{{ title }}</b>\n{% include 'absent.html' %}\n",
                                                       encoding="utf-8")
    config = make_config({"id": "mail", "type": "email"}, {"id": "tg", "type": "telegram"}, folder=str(tmp_path))
    problems = Renderer(config).check()
    assert any("channel mail" in p and "_pied.txt, line 2: syntax error" in p for p in problems), problems
    assert any("channel tg" in p and "telegram/digest.html, line 2" in p and "absent.html" in p for p in problems)


# --------------------------------------------------------------------------- content that cannot be made to fit
# One article the renderer cannot shorten enough used to raise TemplateError; editions take
# the oldest unsent article first, so that article stopped its channel for good. Now every
# article gets a post within the limits, however it is made, and the others are all there.

TRACKING = "?utm_source=newsletter&utm_medium=email&utm_campaign=" + "x" * 1500
EMOJI_TITLE = ("Fête 🎉 à Ségou 👍🏾 " * 1200)[:20_000]


def _tracked(n: int, length: int = 1500, **kwargs: Any) -> Article:
    a = article(n, **kwargs)
    return replace(a, url=(a.url + "?utm_source=nl&fbclid=" + "A1b2C3d4" * length)[:len(a.url) + length])


def _assert_telegram_ok(posts: list[TelegramPost]) -> None:
    for post in posts:
        assert telegram_html_error(post.text) is None, post.text[:300]
        limit = MAX_CAPTION if post.photo_url else MAX_TEXT
        assert 0 < telegram_text_length(post.text) <= limit, (telegram_text_length(post.text), limit)


def test_visible_length_counts_what_telegram_counts() -> None:
    from bot.render.telegram import visible_length
    samples = [
        '<b><a href="https://ex.ml/?a=1&amp;b=2">Tom &amp; Jerry</a></b> &lt;3 &quot;ok&quot; &#233;t&#xE9;',
        "Fête 🎉 à Ségou 👍🏾\n\n<i>Société</i>",
        '<a href="' + "https://ex.ml/" + "x" * 2000 + '">Lire la suite</a>',
        "",
    ]
    for html in samples:
        assert visible_length(html) == telegram_text_length(html), html[:80]
    assert visible_length(samples[2]) == len("Lire la suite")  # an href is not counted


def test_tracking_url_with_a_photo_fits_in_article_mode_and_digest() -> None:
    config = make_config({"id": "tg", "type": "telegram"}, {"id": "tga", "type": "telegram", "mode": "article"})
    renderer = Renderer(config)
    tracked = _tracked(2, summary=words(60), image=True)
    assert len(tracked.url) > 1500
    arts = [article(1, image=True), tracked, article(3, image=True)]
    posts = renderer.telegram_posts(config.channel("tga"), edition(*arts))
    _assert_telegram_ok(posts)
    assert len(posts) == 3 and all(p.photo_url for p in posts)  # the href does not count: photo kept
    assert f'href="{escape(tracked.url)}"' in posts[1].text  # and the link is intact
    assert "mot59" in posts[1].text  # nothing shortened: the visible text is short
    [digest] = renderer.telegram_posts(config.channel("tg"), edition(*arts))
    _assert_telegram_ok([digest])
    for a in arts:
        assert a.title in telegram_plain_text(digest.text)


def test_five_thousand_character_url_everywhere() -> None:
    config = make_config({"id": "tg", "type": "telegram"}, {"id": "tga", "type": "telegram", "mode": "article"},
                         {"id": "x", "type": "x"}, {"id": "xa", "type": "x", "mode": "article"})
    renderer = Renderer(config)
    monster = _tracked(2, length=5000, image=True)
    assert len(monster.url) > 5000
    arts = [article(1), monster, article(3)]
    for channel_id in ("tg", "tga"):
        posts = renderer.telegram_posts(config.channel(channel_id), edition(*arts))
        _assert_telegram_ok(posts)
        shown = "".join(telegram_plain_text(p.text) for p in posts)
        for a in arts:
            assert a.title in shown
    xposts = renderer.x_posts(config.channel("xa"), edition(*arts))
    assert len(xposts) == 3 and all(fits(p) for p in xposts)
    assert xposts[0].endswith(arts[0].url) and xposts[2].endswith(arts[2].url)
    assert monster.title in xposts[1]
    [digest] = renderer.x_posts(config.channel("x"), edition(*arts))
    assert fits(digest)


def test_url_on_an_unrecognised_domain_falls_back_to_the_site_url_on_x() -> None:
    config = make_config({"id": "xa", "type": "x", "mode": "article"})
    # twitter-text knows no ".intranet" TLD: the URL is counted character by character.
    odd = replace(article(2), url="https://journal.intranet/2024/12/02/" + "un-titre-tres-long-" * 20)
    assert weighted_length(odd.url) > 280
    arts = [article(1), odd, article(3)]
    posts = Renderer(config).x_posts(config.channel("xa"), edition(*arts))
    assert len(posts) == 3 and all(fits(p) for p in posts)
    assert odd.url not in posts[1] and posts[1].endswith(BASE)
    assert posts[1].startswith(odd.title)
    assert posts[0].endswith(arts[0].url) and posts[2].endswith(arts[2].url)


def test_twenty_thousand_character_title_with_emoji() -> None:
    config = make_config({"id": "tg", "type": "telegram"}, {"id": "tga", "type": "telegram", "mode": "article"},
                         {"id": "x", "type": "x"}, {"id": "xa", "type": "x", "mode": "article"})
    renderer = Renderer(config)
    huge = article(2, title=EMOJI_TITLE, summary=words(50), image=True)
    arts = [article(1), huge, article(3)]
    for channel_id in ("tg", "tga"):
        posts = renderer.telegram_posts(config.channel(channel_id), edition(*arts))
        _assert_telegram_ok(posts)
        shown = "".join(telegram_plain_text(p.text) for p in posts)
        assert arts[0].title in shown and arts[2].title in shown and "Fête 🎉 à Ségou" in shown
    for channel_id in ("x", "xa"):
        posts = renderer.x_posts(config.channel(channel_id), edition(*arts))
        assert all(fits(p) for p in posts)
    xposts = renderer.x_posts(config.channel("xa"), edition(*arts))
    assert xposts[1].startswith("Fête 🎉 à Ségou") and xposts[1].endswith(huge.url)


def _visible_url_templates(tmp_path: Path) -> Path:
    """An admin template that prints the URL as text, as some publishers want: now the URL
    does count, and only the later rungs of the ladder can make the post fit."""
    (tmp_path / "telegram").mkdir()
    (tmp_path / "telegram" / "article.html").write_text(
        "<b>{{ article.title }}</b>\n{{ article.summary }}\n{{ article.url }}\n", encoding="utf-8")
    (tmp_path / "telegram" / "digest.html").write_text(
        "<b>{{ title }}</b>{% if parts > 1 %} ({{ part }}/{{ parts }}){% endif %}\n"
        "{% for a in articles %}\n{{ a.title }}\n{{ a.url }}\n{% endfor %}\n", encoding="utf-8")
    return tmp_path


def test_photo_is_dropped_when_the_caption_cannot_fit(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = make_config({"id": "tga", "type": "telegram", "mode": "article"}, folder=str(_visible_url_templates(tmp_path)))
    tracked = _tracked(2, length=1500, image=True)
    arts = [article(1, image=True), tracked, article(3, image=True)]
    with caplog.at_level("WARNING", logger="bot.render.renderer"):
        posts = Renderer(config).telegram_posts(config.channel("tga"), edition(*arts))
    _assert_telegram_ok(posts)
    assert [p.photo_url is not None for p in posts] == [True, False, True]
    assert tracked.url in telegram_plain_text(posts[1].text)  # as a text message the URL fits
    assert any("photo" in r.getMessage() and tracked.url[:60] in r.getMessage() for r in caplog.records)


def test_link_is_replaced_by_the_site_url_when_it_cannot_fit(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = make_config({"id": "tg", "type": "telegram"}, {"id": "tga", "type": "telegram", "mode": "article"},
                         folder=str(_visible_url_templates(tmp_path)))
    renderer = Renderer(config)
    monster = _tracked(2, length=5000, image=True)
    arts = [article(1), monster, article(3)]
    with caplog.at_level("WARNING", logger="bot.render.renderer"):
        posts = renderer.telegram_posts(config.channel("tga"), edition(*arts))
    _assert_telegram_ok(posts)
    assert posts[1].photo_url is None
    second = telegram_plain_text(posts[1].text)
    assert monster.title in second and monster.url not in second and BASE in second
    assert any("site URL" in r.getMessage() for r in caplog.records)

    digest = renderer.telegram_posts(config.channel("tg"), edition(*arts))
    _assert_telegram_ok(digest)
    shown = "".join(telegram_plain_text(p.text) for p in digest)
    assert all(a.title in shown for a in arts)
    assert arts[0].url in shown and arts[2].url in shown and monster.url not in shown


def test_last_resort_is_the_plain_title(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Categories are never shortened; thousands of them leave only the last rung.
    config = make_config({"id": "tga", "type": "telegram", "mode": "article"})
    crowded = replace(article(2, image=True), categories=tuple(f"Rubrique {i}" for i in range(2000)))
    arts = [article(1), crowded, article(3)]
    with caplog.at_level("WARNING", logger="bot.render.renderer"):
        posts = Renderer(config).telegram_posts(config.channel("tga"), edition(*arts))
    _assert_telegram_ok(posts)
    assert telegram_plain_text(posts[1].text) == crowded.title and posts[1].photo_url is None
    assert arts[0].title in telegram_plain_text(posts[0].text)
    assert any("title only" in r.getMessage() for r in caplog.records)

    huge = replace(crowded, title=EMOJI_TITLE)
    [post] = Renderer(config).telegram_posts(config.channel("tga"), edition(huge))
    _assert_telegram_ok([post])
    assert telegram_plain_text(post.text).startswith("Fête 🎉 à Ségou") and telegram_text_length(post.text) > 4000


def test_a_broken_template_is_still_a_template_error(tmp_path: Path) -> None:
    # The ladder is for content; a template that cannot fit even an empty article is the
    # template's fault and must be reported, not papered over.
    (tmp_path / "telegram").mkdir()
    (tmp_path / "telegram" / "digest.html").write_text(
        "{{ 'x' * 5000 }}\n{% for a in articles %}{{ a.title }}{% endfor %}\n", encoding="utf-8")
    config = make_config({"id": "tg", "type": "telegram"}, folder=str(tmp_path))
    with pytest.raises(TemplateError, match="telegram/digest.html"):
        Renderer(config).telegram_posts(config.channel("tg"), edition(article(1)))


# --------------------------------------------------------------------------- invisible characters on X


def test_x_strips_characters_twitter_text_refuses() -> None:
    config = make_config({"id": "x", "type": "x"}, {"id": "xa", "type": "x", "mode": "article"})
    renderer = Renderer(config)
    title = "Réunion \u202bبماكو\u202c au sommet \ufeff"
    arts = [article(1, title=title), article(2, title="A\ufffeB\uffff C \u202a\u202d\u202e")]
    for channel_id in ("x", "xa"):
        posts = renderer.x_posts(config.channel(channel_id), edition(*arts))
        for post in posts:
            assert fits(post), repr(post)
            assert not any(ch in post for ch in "\u202a\u202b\u202c\u202d\u202e\ufeff\ufffe\uffff")
    posts = renderer.x_posts(config.channel("xa"), edition(*arts))
    assert posts[0].startswith("Réunion بماكو au sommet")
    assert posts[1].startswith("AB C")


def test_x_fitting_of_a_long_title_with_invisible_characters() -> None:
    config = make_config({"id": "xa", "type": "x", "mode": "article"})
    long = article(1, title=("Réunion \u202bبماكو\u202c au sommet \ufeff" * 30))
    [post] = Renderer(config).x_posts(config.channel("xa"), edition(long))
    assert fits(post) and post.endswith(long.url) and "…" in post
    assert weighted_length(post) > 200  # shortened, not emptied
