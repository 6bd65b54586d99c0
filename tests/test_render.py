"""The shared template engine (bot.render): the one Jinja environment, the admin's folder in
front of the shipped templates, filters, UI strings, template errors that name the file and
the line, ``check_templates`` across kinds, and the sample edition.

How each service's messages are made is tested per kind in tests/channels/<kind>/; the
helpers below (a config, articles, editions) are shared with those tests. Golden files live
in tests/golden/ and are checked by tests/test_render_golden.py.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.channels.registry import Channels
from bot.check import check_templates
from bot.config import Config, parse_config
from bot.errors import ConfigError, TemplateError
from bot.models import Article, Edition
from bot.render import Templates, sample_edition
from bot.render.filters import format_date, format_datetime, format_time
from bot.render.strings import Strings

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


def sample(config: Config, channel_id: str) -> Edition:
    return sample_edition(config.channel(channel_id), config.site.base_url, NOW)


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


def test_template_filters_take_the_timezone_and_language_from_the_context(tmp_path: Path) -> None:
    # A template never passes locale or tz: the engine's context carries the site's and channel's.
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "article.txt").write_text(
        "{{ article.published_at|format_date }} {{ article.published_at|format_time }}\n", encoding="utf-8")
    late = article(1, published_at=datetime(2024, 12, 1, 23, 30, tzinfo=timezone.utc))
    for tz, language, expected in (("Africa/Bamako", "fr", "1 décembre 2024 23:30"),
                                   ("Europe/Paris", "fr", "2 décembre 2024 00:30"),
                                   ("Europe/Paris", "en", "December 2, 2024 12:30\u202fAM")):
        config = make_config({"id": "xa", "type": "x", "mode": "article", "language": language},
                             site={"timezone": tz}, folder=str(tmp_path))
        templates = Channels(config).templates
        channel = config.channel("xa")
        out = templates.render("x/article.txt", templates.context(channel, edition(late), article=late))
        assert out == expected


def test_naive_datetime_is_a_template_error_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "article.txt").write_text(
        "{{ article.title }}\n{{ article.published_at|format_date }}\n", encoding="utf-8")
    config = make_config({"id": "xa", "type": "x", "mode": "article"}, folder=str(tmp_path))
    templates = Channels(config).templates
    naive = article(1, published_at=datetime(2024, 12, 2, 7, 0))
    with pytest.raises(TemplateError, match="no timezone") as info:
        templates.render("x/article.txt", templates.context(config.channel("xa"), edition(naive), article=naive))
    assert info.value.template == "x/article.txt" and info.value.line == 2


def test_plural_strings_follow_the_language_rule() -> None:
    assert Strings("fr").n("articles", 0) == "0 article"
    assert Strings("fr").n("articles", 1) == "1 article"
    assert Strings("fr").n("articles", 8) == "8 articles"
    assert Strings("en").n("articles", 0) == "0 articles"
    assert Strings("en").n("articles", 1) == "1 article"


# --------------------------------------------------------------------------- the engine


def test_context_falls_back_to_the_site_title_and_language() -> None:
    config = make_config({"id": "mail", "type": "email"},
                         {"id": "news", "type": "email", "language": "en", "title": "Sahel Echo"})
    templates = Templates(config.site)
    site_ctx = templates.context(config.channel("mail"), edition(article(1), article(2)), [])
    assert site_ctx["title"] == "L’Écho du Sahel" and site_ctx["lang"] == "fr" and site_ctx["t"].language == "fr"
    assert site_ctx["articles"] == [] and site_ctx["count"] == 2 and site_ctx["now"] == NOW
    own = templates.base_context(config.channel("news"))
    assert own["title"] == "Sahel Echo" and own["locale"] == "en" and own["t"]["read_more"] == "Read more"
    assert templates.strings("en") is templates.strings("en")  # one Strings per language


def test_template_name_is_the_override_else_the_default() -> None:
    config = make_config({"id": "mail", "type": "email", "templates": {"html": "email/maison.html"}})
    channel = config.channel("mail")
    roles = {"html": "email/digest.html", "text": "email/digest.txt"}
    assert Templates.name(channel, "html", roles) == "email/maison.html"
    assert Templates.name(channel, "text", roles) == "email/digest.txt"
    with pytest.raises(TemplateError, match="no template role 'htlm'; expected one of html, text"):
        Templates.name(channel, "htlm", roles)


def test_kinds_add_their_filters_to_the_one_environment() -> None:
    channels = Channels(make_config({"id": "mail", "type": "email"}))
    filters = channels.templates.env.filters
    assert {"format_date", "format_time", "format_datetime", "excerpt", "tg", "telegram_html"} <= set(filters)
    assert all(kind.templates is channels.templates for kind in channels)


def test_html_is_autoescaped_and_text_is_not(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text("{{ v }}", encoding="utf-8")
    (tmp_path / "page.txt").write_text("{{ v }}", encoding="utf-8")
    templates = Templates(make_config({"id": "mail", "type": "email"}).site, tmp_path)
    assert templates.render("page.html", {"v": "Tom & <b>"}) == "Tom &amp; &lt;b&gt;"
    assert templates.render("page.txt", {"v": "Tom & <b>"}) == "Tom & <b>"


# --------------------------------------------------------------------------- admin folder


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
    channels = Channels(config)
    assert check_templates(config, channels) == []
    channel = config.channel("mail")
    digest = channels.kind(channel).renderer.digest(channel, sample(config, "mail"))
    assert "Édition spéciale L’Écho du Sahel" in digest.html
    assert "Lire la suite" in digest.html  # the rest still comes from the shipped template
    assert "2 décembre 2024 · 4 articles" not in digest.html  # the overridden block is gone
    x = config.channel("x")
    posts = channels.kind(x).renderer.posts(x, sample(config, "x"))
    assert posts[0].text.startswith("🔴 Bamako\u00a0:")


def test_missing_admin_folder_is_a_config_error(tmp_path: Path) -> None:
    config = make_config({"id": "mail", "type": "email"}, folder="absent", base_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="absent"):
        Channels(config)


# --------------------------------------------------------------------------- template errors and check


def test_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "digest.html").write_text(
        "<h1>{{ title }}</h1>\n{% for a in articles %}\n<p>{{ a.title }</p>\n{% endfor %}\n", encoding="utf-8")
    config = make_config({"id": "mail", "type": "email"}, folder=str(tmp_path))
    channels = Channels(config)
    channel = config.channel("mail")
    with pytest.raises(TemplateError) as info:
        channels.kind(channel).renderer.digest(channel, sample(config, "mail"))
    assert info.value.template == "email/digest.html" and info.value.line == 3
    problems = check_templates(config, channels)
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
    channels = Channels(config)
    tga = config.channel("tga")
    with pytest.raises(TemplateError, match="artcle") as info:
        channels.kind(tga).renderer.posts(tga, edition(article(1)))
    assert info.value.template == "telegram/article.html" and info.value.line == 3
    problems = check_templates(config, channels)
    assert any("channel tga" in p and "artcle" in p and "line 3" in p for p in problems)
    assert any("channel x" in p and "titre" in p and "x/digest.txt, line 1" in p for p in problems)


def test_missing_template_and_unknown_role_are_reported() -> None:
    config = make_config({"id": "mail", "type": "email", "templates": {"html": "email/nope.html", "htlm": "x.html"}})
    channels = Channels(config)
    problems = check_templates(config, channels)
    assert any("email/nope.html" in p and "not found" in p for p in problems)
    assert any("templates.htlm" in p and "unknown role" in p for p in problems)
    channel = config.channel("mail")
    with pytest.raises(TemplateError, match="not found"):
        channels.kind(channel).renderer.digest(channel, edition(article(1)))


def test_broken_include_names_the_included_file(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "digest.txt").write_text("{{ title }}\n{% include '_pied.txt' %}\n", encoding="utf-8")
    (tmp_path / "_pied.txt").write_text("Merci\n{% if %}\n", encoding="utf-8")
    (tmp_path / "telegram").mkdir()
    (tmp_path / "telegram" / "digest.html").write_text("<b>{{ title }}</b>\n{% include 'absent.html' %}\n",
                                                       encoding="utf-8")
    config = make_config({"id": "mail", "type": "email"}, {"id": "tg", "type": "telegram"}, folder=str(tmp_path))
    problems = check_templates(config, Channels(config))
    assert any("channel mail" in p and "_pied.txt, line 2: syntax error" in p for p in problems), problems
    assert any("channel tg" in p and "telegram/digest.html, line 2" in p and "absent.html" in p for p in problems)


def test_shipped_templates_pass_check_for_every_kind_of_channel() -> None:
    config = make_config(
        {"id": "mail", "type": "email", "send_empty": True},
        {"id": "mail-en", "type": "email", "language": "en"},
        {"id": "tg", "type": "telegram", "send_empty": True},
        {"id": "tga", "type": "telegram", "mode": "article"},
        {"id": "x", "type": "x", "send_empty": True},
        {"id": "xa", "type": "x", "mode": "article", "language": "en"},
    )
    assert check_templates(config, Channels(config)) == []


def test_check_renders_an_empty_edition_only_for_channels_that_send_one(tmp_path: Path) -> None:
    # A template that assumes at least one article breaks only a channel that sends empty editions.
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "digest.txt").write_text("{{ articles[0].title }}\n{{ site.base_url }}\n", encoding="utf-8")
    config = make_config({"id": "x", "type": "x"}, {"id": "x-vide", "type": "x", "send_empty": True},
                         folder=str(tmp_path))
    problems = check_templates(config, Channels(config))
    assert len(problems) == 1, problems
    assert problems[0].startswith("channel x-vide: with an empty edition: ") and "x/digest.txt, line 1" in problems[0]


# --------------------------------------------------------------------------- sample edition


def test_sample_edition_is_the_whole_sample_for_a_digest_and_its_first_article_otherwise() -> None:
    config = make_config({"id": "mail", "type": "email"}, {"id": "tga", "type": "telegram", "mode": "article"})
    digest = sample_edition(config.channel("mail"), BASE + "/", NOW)
    assert digest.channel_id == "mail" and digest.created_at == NOW and len(digest.articles) == 4
    assert all(a.url.startswith(BASE + "/2024/") and a.published_at < NOW for a in digest.articles)
    # awkward on purpose: escaping and missing fields must be handled by every template
    assert any("<script>" in a.title and "&" in a.title for a in digest.articles)
    assert any(a.author is None and not a.categories and not a.summary and a.image_url is None
               for a in digest.articles)
    [first] = sample_edition(config.channel("tga"), BASE, NOW).articles
    assert first == digest.articles[0] and first.image_url is not None


def test_compiled_templates_are_cached_and_an_edited_template_is_compiled_again(tmp_path, monkeypatch):
    """Jinja2's bytecode cache spares each command compiling every template; an admin's edit
    is seen at once, and a cache that cannot be written or read only costs time."""
    import shutil

    from bot.render import environment

    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    monkeypatch.setattr(environment, "_bytecode_cache", lambda: environment._BytecodeCache(
        str(cache), pattern=f"tamtam-{environment._FINGERPRINT}-%s.cache"))
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "hello.txt").write_text("Bonjour {{ name }} !", encoding="utf-8")

    def render() -> str:
        return environment.build_environment([folder]).get_template("hello.txt").render(name="Awa")

    assert render() == "Bonjour Awa !"
    assert len(list(cache.glob(f"tamtam-{environment._FINGERPRINT}-*.cache"))) == 1
    assert render() == "Bonjour Awa !"  # from the cache
    (folder / "hello.txt").write_text("Salut {{ name }} !", encoding="utf-8")
    assert render() == "Salut Awa !"
    for f in cache.iterdir():
        f.write_bytes(b"\x00garbage")  # a file cut short or damaged
    assert render() == "Salut Awa !"
    shutil.rmtree(cache)  # a cache that cannot be written (gone, full, read-only)
    (folder / "hello.txt").write_text("Re-bonjour {{ name }}", encoding="utf-8")
    assert render() == "Re-bonjour Awa"
