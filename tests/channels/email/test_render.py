"""Email rendering (bot.channels.email.render): one shared digest per edition, CSS inlined,
and a small envelope per recipient glued around it by ``assemble``."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from bot.channels.email.render import EmailDigest, EmailRenderer, Recipient, assemble
from bot.channels.registry import Channels
from bot.check import check_templates
from bot.config import Config
from bot.errors import TemplateError
from tests.test_render import BASE, article, edition, make_config, sample


def renderer(config: Config) -> EmailRenderer:
    return Channels(config).kind(config.channels[0]).renderer  # type: ignore[attr-defined,no-any-return]


def test_email_digest_french_defaults() -> None:
    config = make_config({"id": "mail", "type": "email"})
    digest = renderer(config).digest(config.channel("mail"), sample(config, "mail"))
    assert digest.subject == "L’Écho du Sahel — 2 décembre 2024\u00a0: 4 articles"
    assert "Lire la suite" in digest.html and "Au sommaire" in digest.html
    assert 'style="' in digest.html  # CSS inlined once, in the shared part
    assert "<style" not in digest.html and "<script" not in digest.html
    assert 'width="560"' in digest.html and 'height="315"' in digest.html and "alt=" in digest.html
    assert f"{BASE}/2024/12/01/culture-festival/" in digest.text


def test_english_channel_uses_english_strings_and_dates() -> None:
    config = make_config({"id": "news", "type": "email", "language": "en", "title": "Sahel Echo"})
    email = renderer(config)
    channel = config.channel("news")
    digest = email.digest(channel, sample(config, "news"))
    assert digest.subject == "Sahel Echo — December 2, 2024: 4 articles"
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
    assert "Tom & Jerry <script>alert('x')</script> « ok »" in digest.text  # plain text is not escaped


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
