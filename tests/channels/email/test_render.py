"""Email rendering (bot.channels.email.render): one shared digest per edition, CSS inlined,
and a small envelope per recipient glued around it by ``assemble``."""

from __future__ import annotations

import html
import importlib
import json
from dataclasses import asdict, replace
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from bot.channels.email.render import EmailDigest, EmailRenderer, Recipient, assemble
from bot.channels.registry import Channels
from bot.check import check_templates
from bot.config import Config
from bot.errors import TemplateError
from bot.models import Article
from tests.test_render import BASE, article, edition, make_config, sample


def renderer(config: Config) -> EmailRenderer:
    return Channels(config).kind(config.channels[0]).renderer  # type: ignore[attr-defined,no-any-return]


def test_email_digest_french_defaults() -> None:
    config = make_config({"id": "mail", "type": "email"})
    digest = renderer(config).digest(config.channel("mail"), sample(config, "mail"))
    # The lead headline, cut so the whole subject stays within 78 characters, its open
    # guillemet closed, and how many other articles follow.
    assert digest.subject == ("L’Écho du Sahel\u00a0: Bamako\u00a0: «\u00a0la saison des pluies a dépassé nos…\u00a0»"
                              " (+3)")
    assert len(digest.subject) <= 78
    assert "Lire la suite" in digest.html and "Au sommaire" in digest.html
    assert 'style="' in digest.html  # CSS inlined once, in the shared part
    assert "<style" not in digest.html and "<script" not in digest.html
    # The sample's pictures come with no size: none is invented, and the alt falls back to the title.
    assert "width=" not in digest.html.split("<img", 1)[1].split(">", 1)[0]
    assert 'alt="Bamako&nbsp;: «&nbsp;la saison' in digest.html
    assert f"{BASE}/2024/12/01/culture-festival/" in digest.text


def test_english_channel_uses_english_strings_and_dates() -> None:
    config = make_config({"id": "news", "type": "email", "language": "en", "title": "Sahel Echo"})
    email = renderer(config)
    channel = config.channel("news")
    digest = email.digest(channel, sample(config, "news"))
    assert digest.subject == "Sahel Echo: Bamako\u00a0: «\u00a0la saison des pluies a dépassé nos attentes\u00a0»… (+3)"
    assert "Read more" in digest.html and "In this issue" in digest.html
    assert "Lire la suite" not in digest.html + digest.text
    envelope = email.envelope(channel, digest, Recipient("a@example.org", "Awa"))
    assert "Hello Awa," in envelope.html_head and 'lang="en"' in envelope.html_head
    assert "Hello Awa," in envelope.text_head


def test_templates_date_articles_in_the_site_timezone() -> None:
    late = datetime(2024, 12, 1, 23, 30, tzinfo=timezone.utc)
    for tz, expected in (("Africa/Bamako", "1 décembre 2024"), ("Europe/Paris", "2 décembre 2024")):
        config = make_config({"id": "mail", "type": "email"}, site={"timezone": tz})
        digest = renderer(config).digest(config.channel("mail"), edition(article(1, published_at=late)))
        assert expected in digest.text
        assert expected in digest.html


def test_naive_datetime_is_a_template_error_not_a_crash() -> None:
    config = make_config({"id": "mail", "type": "email"})
    naive = article(1, published_at=datetime(2024, 12, 2, 7, 0))
    with pytest.raises(TemplateError, match="no timezone") as info:
        renderer(config).digest(config.channel("mail"), edition(naive))
    assert info.value.line is not None


def test_envelope_differs_per_recipient_and_escapes() -> None:
    config = make_config({"id": "mail", "type": "email"})
    email = renderer(config)
    channel = config.channel("mail")
    digest = email.digest(channel, sample(config, "mail"))
    unsub = "https://echo.example.ml/desabonnement?token=a\"b&email=awa@example.org"
    named = email.envelope(channel, digest, Recipient("awa@example.org", "Awa <b>", unsub))
    anonymous = email.envelope(channel, digest, Recipient("x@example.org"))

    assert "Bonjour Awa &lt;b&gt;," in named.html_head
    assert "Bonjour Awa <b>," in named.text_head
    assert "Bonjour," in anonymous.html_head and "Bonjour," in anonymous.text_head
    assert 'href="https://echo.example.ml/desabonnement?token=a&#34;b&amp;email=awa@example.org"' in named.html_tail \
        or 'href="https://echo.example.ml/desabonnement?token=a&quot;b&amp;email=awa@example.org"' in named.html_tail
    assert unsub in named.text_tail
    assert "Se désabonner" in named.html_tail and "Se désabonner" not in anonymous.html_tail

    subject, html, text = assemble(digest, named)
    assert subject == digest.subject
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert html.count(digest.html) == 1 and text.count(digest.text) == 1
    assert html.index("Bonjour Awa") < html.index(digest.html) < html.index("Se désabonner")
    assert 'class="greeting" style="' in html  # the envelope's own CSS is inlined too
    assert "@media" in named.html_head  # kept for phones that read <style>


def test_shared_digest_is_rendered_once_for_many_recipients(monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config({"id": "mail", "type": "email"})
    email = renderer(config)
    channel = config.channel("mail")
    loaded: list[str] = []
    env = email.templates.env
    real = env.get_template

    def spy(name: Any, *args: Any, **kwargs: Any) -> Any:
        loaded.append(str(name))
        return real(name, *args, **kwargs)

    monkeypatch.setattr(env, "get_template", spy)
    digest = email.digest(channel, sample(config, "mail"))
    envelopes = [email.envelope(channel, digest, Recipient(f"r{i}@example.org", f"R{i}")) for i in range(25)]
    assert loaded.count("email/digest.html") == 1
    assert loaded.count("email/digest.txt") == 1
    assert loaded.count("email/subject.txt") == 1
    assert loaded.count("email/style.css") == 1  # the channel's CSS is rendered once and cached
    assert loaded.count("email/layout.html") == 25 and loaded.count("email/layout.txt") == 25
    assert len({e.html_head for e in envelopes}) == 25


def test_digest_survives_a_json_round_trip() -> None:
    # The digest is stored once per edition as JSON and rebuilt at send time.
    config = make_config({"id": "mail", "type": "email"})
    digest = renderer(config).digest(config.channel("mail"), sample(config, "mail"))
    assert EmailDigest(**json.loads(json.dumps(asdict(digest)))) == digest


def test_hostile_title_is_escaped() -> None:
    hostile = article(1, title="Tom & Jerry <script>alert('x')</script> « ok »", image=True)
    config = make_config({"id": "mail", "type": "email"})
    digest = renderer(config).digest(config.channel("mail"), edition(hostile))
    assert "<script" not in digest.html
    assert "Tom &amp; Jerry &lt;script&gt;" in digest.html
    # plain text is not escaped (French typography puts no-break spaces inside « »)
    assert "Tom & Jerry <script>alert('x')</script> «\u00a0ok\u00a0»" in digest.text


def test_subject_is_one_line_and_never_empty(tmp_path: Path) -> None:
    # A newline in a subject would be a header injection; an empty one is the template's fault.
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "subject.txt").write_text("{{ title }}\n\n{{ count }}  articles\n", encoding="utf-8")
    config = make_config({"id": "mail", "type": "email"}, folder=str(tmp_path))
    assert renderer(config).digest(config.channel("mail"), edition(article(1))).subject == "L’Écho du Sahel 1 articles"
    (tmp_path / "email" / "subject.txt").write_text("{% if false %}x{% endif %}\n", encoding="utf-8")
    config = make_config({"id": "mail", "type": "email"}, folder=str(tmp_path))
    with pytest.raises(TemplateError, match="the subject is empty"):
        renderer(config).digest(config.channel("mail"), edition(article(1)))


def test_layout_without_body_is_reported(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "layout.txt").write_text("Bonjour !\n", encoding="utf-8")
    config = make_config({"id": "mail", "type": "email"}, folder=str(tmp_path))
    problems = check_templates(config, Channels(config))
    assert any("email/layout.txt" in p and "{{ body }}" in p for p in problems)


# --------------------------------------------------------------------------- the feed's text


def digest_of(*articles: Article, language: str | None = None, **channel: Any) -> EmailDigest:
    config = make_config({"id": "mail", "type": "email", **({"language": language} if language else {}),
                          **channel})
    return renderer(config).digest(config.channel("mail"), edition(*articles))


FEED_TITLE = "Festival «Rives du Niger»: Ségou attend 40 000 visiteurs"
FEED_SUMMARY = "L'affiche est dévoilée... Combien de places? 2 840, pour 1 250 000 francs ; en 2026 !"


def test_french_channel_sets_the_feeds_text_in_french_typography() -> None:
    a = replace(article(1, title=FEED_TITLE, summary=FEED_SUMMARY), author="Awa N'Diaye", categories=("Société",))
    digest = digest_of(a)
    title = "Festival «\u00a0Rives du Niger\u00a0»\u00a0: Ségou attend 40\u202f000 visiteurs"
    summary = ("L’affiche est dévoilée… Combien de places\u202f? 2\u202f840, pour 1\u202f250\u202f000 francs\u202f; "
               "en 2026\u202f!")
    for part in (digest.text, html.unescape(digest.html)):
        assert title in part and summary in part and "Awa N’Diaye" in part
    assert title in digest.subject
    # « 40 000 » can no longer wrap as « 40 / 000 », nor « Centre 2030 » break after « at 375 px
    assert "40 000" not in digest.text and "« " not in digest.text


def test_english_channel_keeps_the_feeds_text_as_it_is() -> None:
    digest = digest_of(article(1, title=FEED_TITLE, summary=FEED_SUMMARY), language="en", title="Sahel Echo")
    assert FEED_TITLE in digest.text and FEED_SUMMARY in digest.text


def test_typography_never_breaks_the_markup() -> None:
    hostile = article(1, title='Un "titre" : <b>gras</b> & l\'«esprit»', summary="Voir https://e.example/?a=1&b=l'x : ici",
                      image=True)
    digest = digest_of(hostile)
    typeset = 'Un "titre"\u00a0: <b>gras</b> & l\'«\u00a0esprit\u00a0»'  # the ' before « is no apostrophe
    parser = _Tags()
    parser.feed(digest.html)
    assert [t for t, _ in parser.tags].count("b") == 0  # the title's <b> is text, escaped
    assert _first_img(digest.html)["alt"] == typeset
    assert typeset in parser.text  # the headline and the table of contents read the same
    assert "Voir https://e.example/?a=1&b=l'x\u00a0: ici" in parser.text  # the URL in the text is intact


class _Tags(HTMLParser):
    """The tags (with their decoded attributes) and the decoded text of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text += data


def test_summary_is_cut_after_a_sentence_never_inside_a_word() -> None:
    summary = ("Le convoi humanitaire parti de Bamako mardi est arrivé au Mali.Conduite par M. Mohamed Keïta, "
               "la délégation rencontre les élus de Gao avant de repartir vers Tombouctou. ") * 4
    digest = digest_of(article(1, summary=summary))
    shown = next(line for line in digest.text.split("\n") if line.startswith("Le convoi"))
    assert len(shown) <= 400 and shown.endswith("…")
    assert "Mali. Conduite" in shown and "Mali.Conduite" not in shown
    assert shown.endswith("Tombouctou…")  # the last whole sentence that fits


def test_image_alt_and_size_come_from_the_feed() -> None:
    wide = replace(article(1, image=True), image_alt="Les camions à l'entrée de Gao", image_width=1536,
                   image_height=1024)
    img = _first_img(digest_of(wide).html)
    assert (img["alt"], img["width"], img["height"]) == ("Les camions à l’entrée de Gao", "560", "373")
    small = replace(article(1, image=True), image_width=150, image_height=150)
    img = _first_img(digest_of(small).html)
    assert (img["width"], img["height"]) == ("150", "150") and "max-width: 150px" in (img["style"] or "")
    unknown = _first_img(digest_of(article(1, image=True)).html)
    assert "width" not in unknown and "height" not in unknown  # never a made-up 560×315
    assert unknown["alt"] == "Titre numéro 1\u00a0: l’actualité du jour"  # no alt in the feed: the title


def _first_img(page: str) -> dict[str, str | None]:
    parser = _Tags()
    parser.feed(page)
    return next(attrs for tag, attrs in parser.tags if tag == "img")


def _links(page: str) -> list[str]:
    parser = _Tags()
    parser.feed(page)
    return [str(attrs["href"]) for tag, attrs in parser.tags if tag == "a" and "/article-" in str(attrs.get("href"))]


def test_feed_tracking_is_removed_from_article_links() -> None:
    tracked = replace(article(1, image=True), url=f"{BASE}/a/?utm_source=rss&utm_medium=rss&p=2&fbclid=Xy#haut")
    digest = digest_of(tracked)
    assert f"{BASE}/a/?p=2#haut" in digest.text
    assert "utm_" not in digest.html + digest.text and "fbclid" not in digest.html + digest.text


def test_channel_campaign_is_added_to_every_article_link() -> None:
    campaign = {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "{channel}-{date}"}
    a = replace(article(1, image=True), url=f"{BASE}/2024/12/02/article-1/?utm_source=rss")
    digest = digest_of(a, article(2), article(3), campaign=campaign)
    wanted = "?utm_source=newsletter&utm_medium=email&utm_campaign=mail-2024-12-02"
    links = _links(digest.html)
    assert len(links) == 3 + 3 + 1 + 3  # table of contents, headlines, the lead's picture, « Lire la suite »
    assert all(u.endswith(wanted) for u in links), links
    assert f"{BASE}/2024/12/02/article-1/{wanted}" in digest.text and "utm_source=rss" not in digest.text


# --------------------------------------------------------------------------- subject, preheader


def test_subject_is_the_lead_headline_and_the_count_of_the_others() -> None:
    long_title = "Budget 2027 : l'Assemblée adopte la loi de finances après une nuit de débats houleux"
    digest = digest_of(*(article(i, title=long_title if i == 1 else None) for i in range(1, 13)))
    assert digest.subject == "L’Écho du Sahel\u00a0: Budget 2027\u00a0: l’Assemblée adopte la loi de finances… (+11)"
    assert len(digest.subject) <= 78
    assert digest_of(article(1, title="Court")).subject == "L’Écho du Sahel\u00a0: Court"  # alone: no (+0)


def test_article_mode_subject_is_the_whole_title_and_an_empty_edition_says_the_date() -> None:
    config = make_config({"id": "mail", "type": "email", "mode": "article"})
    title = "Budget 2027 : l'Assemblée adopte la loi de finances après une nuit de débats houleux et longs"
    digest = renderer(config).digest(config.channel("mail"), edition(article(1, title=title)))
    assert digest.subject == "Budget 2027\u00a0: l’Assemblée adopte la loi de finances après une nuit de débats houleux et longs"
    config = make_config({"id": "mail", "type": "email", "send_empty": True})
    assert renderer(config).digest(config.channel("mail"), edition()).subject == \
        "L’Écho du Sahel — 2 décembre 2024\u00a0: 0 article"


def test_preheader_is_hidden_and_first_in_the_body() -> None:
    config = make_config({"id": "mail", "type": "email"})
    email = renderer(config)
    channel = config.channel("mail")
    digest = email.digest(channel, sample(config, "mail"))
    assert digest.preheader == ("Les pluviomètres de la capitale ont enregistré 20\u202f% de précipitations de plus "
                                "que l’an dernier. Les maraîchers du fleuve s’en réjouissent.")
    subject, page, text = assemble(digest, email.envelope(channel, digest, Recipient("a@example.org", "Awa")))
    body = page.split("<body", 1)[1]
    hidden = body.index('class="preheader"')
    assert hidden < body.index(digest.preheader) < body.index("Bonjour Awa")
    tag = body[body.rindex("<", 0, hidden):body.index(">", hidden)]
    assert "display:none" in tag and 'aria-hidden="true"' in tag
    assert digest.preheader not in text.split("Bonjour Awa", 1)[0]  # the text part starts with the greeting


def test_preheader_lists_the_other_headlines_when_the_lead_has_no_summary() -> None:
    digest = digest_of(article(1, summary=""), article(2, title="Deuxième"), article(3, title="Troisième"))
    assert digest.preheader == "Deuxième · Troisième"


def test_digests_stored_before_the_preheader_still_load() -> None:
    config = make_config({"id": "mail", "type": "email"})
    stored = {k: v for k, v in asdict(renderer(config).digest(config.channel("mail"), sample(config, "mail"))).items()
              if k != "preheader"}
    assert EmailDigest(**stored).preheader == ""


# --------------------------------------------------------------------------- templates and cost


def test_typo_filter_for_an_admins_own_text(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "subject.txt").write_text(
        "{{ \"Édition spéciale: l'été, 40 000 lecteurs!\"|typo }}\n", encoding="utf-8")
    config = make_config({"id": "mail", "type": "email"}, folder=str(tmp_path))
    assert renderer(config).digest(config.channel("mail"), edition(article(1))).subject == \
        "Édition spéciale\u00a0: l’été, 40\u202f000 lecteurs\u202f!"
    config = make_config({"id": "mail", "type": "email", "language": "en"}, folder=str(tmp_path))
    assert renderer(config).digest(config.channel("mail"), edition(article(1))).subject == \
        "Édition spéciale: l'été, 40 000 lecteurs!"


def test_typography_runs_once_per_edition_not_per_recipient(monkeypatch: pytest.MonkeyPatch) -> None:
    # The module, not the function of the same name bot.text exports.
    typography_module = importlib.import_module("bot.text.typography")
    config = make_config({"id": "mail", "type": "email"})
    email = renderer(config)
    channel = config.channel("mail")
    calls: list[str] = []
    real = typography_module.typography
    monkeypatch.setattr(typography_module, "typography", lambda text, lang: calls.append(text) or real(text, lang))
    digest = email.digest(channel, sample(config, "mail"))
    per_edition = len(calls)
    assert per_edition > 0
    for i in range(50):
        email.envelope(channel, digest, Recipient(f"r{i}@example.org", f"R{i}"))
    assert len(calls) == per_edition
