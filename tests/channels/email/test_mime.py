"""The MIME message (bot.channels.email.mime): structure, headers and French text, read back
with the stdlib parser."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import pytest

from bot.channels.email.mime import EmailBody, build_email, html_part, message_id_for
from bot.channels.telegram.render import TelegramPost
from bot.errors import ConfigError, PermanentError
from bot.models import Message

NOW = datetime(2024, 12, 2, 7, 30, tzinfo=timezone.utc)
FROM = "L’Écho du Sahel <news@echo-sahel.example>"
SUBJECT = "L’essentiel du 2 décembre 2024 : « Bamako accueille le sommet » — ça commence"
TEXT = (
    "Bonjour,\n\n"
    "« Le président a reçu à Koulouba les délégués de l’Union », a précisé le communiqué. "
    "Garçons et filles, élèves de l’école française, étaient là à 8 h 30 pour la cérémonie "
    "d’ouverture, sous un soleil déjà très chaud — une très longue ligne pour vérifier le pliage.\n\n"
    "Se désabonner : https://echo-sahel.example/desabonnement?t=abc\n"
)
HTML = (
    "<!doctype html><html lang=\"fr\"><body><h1>L’essentiel du 2 décembre 2024</h1>"
    "<p>« Le président a reçu à Koulouba les délégués de l’Union », a précisé le communiqué. "
    "Garçons et filles étaient là à 8 h 30.</p></body></html>"
)


def make_message(**overrides) -> Message:
    """An email message; overrides name Message fields (key, kind, destination …) or body
    fields (subject, text, html, headers)."""
    body = dict(
        subject=SUBJECT, text=TEXT, html=HTML,
        headers={
            "List-Unsubscribe": "<https://echo-sahel.example/desabonnement?t=abc>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": "L’Écho du Sahel <news.echo-sahel.example>",
        },
    )
    values = dict(key="edition:12:news:ami@example.org", channel_id="news", kind="email",
                  destination="ami@example.org")
    for name, value in overrides.items():
        (body if name in body else values)[name] = value
    return Message(**values, body=EmailBody(**body))


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def lf(text: str) -> str:
    """Wire text lines end in CRLF (RFC 5322); compare with the LF original."""
    return text.replace("\r\n", "\n")


def test_structure_headers_and_french_text_survive_a_round_trip():
    raw = build_email(make_message(), from_addr=FROM, reply_to="redaction@echo-sahel.example", now=NOW).as_bytes()
    assert raw.isascii(), "7-bit on the wire: no relay can mangle the accents"
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    msg = parse(raw)

    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert all(p["Content-Transfer-Encoding"] in ("quoted-printable", "base64") for p in parts)
    assert lf(parts[0].get_content()) == TEXT
    assert lf(parts[1].get_content()).rstrip("\n") == HTML
    for part in parts:
        body = part.get_content()
        for needle in ("«", "»", "’", "é", "à", "ç"):
            assert needle in body

    head = "\r\n" + raw.split(b"\r\n\r\n")[0].decode("ascii")
    subject_line = head[head.index("\r\nSubject: "):].split("\r\n")[1]
    assert subject_line.startswith("Subject: ") and "=?utf-8?" in subject_line  # RFC 2047 encoded...
    assert msg["Subject"] == SUBJECT  # ...and decodes back to the French text
    sender = msg["From"].addresses[0]
    assert sender.display_name == "L’Écho du Sahel"
    assert sender.addr_spec == "news@echo-sahel.example"
    assert msg["To"] == "ami@example.org"
    assert msg["Reply-To"] == "redaction@echo-sahel.example"
    assert parsedate_to_datetime(msg["Date"]) == NOW
    assert msg["Message-ID"] == message_id_for("edition:12:news:ami@example.org", "echo-sahel.example")
    assert msg["List-Unsubscribe"] == "<https://echo-sahel.example/desabonnement?t=abc>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Id"] == "L’Écho du Sahel <news.echo-sahel.example>"


def test_message_id_is_deterministic_and_depends_on_key_and_domain():
    a = message_id_for("edition:12:news:ami@example.org", "echo.example")
    assert a == message_id_for("edition:12:news:ami@example.org", "echo.example")
    assert a.startswith("<") and a.endswith("@echo.example>")
    assert a != message_id_for("edition:12:news:bob@example.org", "echo.example")
    assert a != message_id_for("edition:12:news:ami@example.org", "other.example")
    # The same key always gives the same header, whenever the message is rebuilt.
    first = build_email(make_message(), from_addr=FROM, now=NOW)
    later = build_email(make_message(), from_addr=FROM, now=datetime(2024, 12, 3, tzinfo=timezone.utc))
    assert first["Message-ID"] == later["Message-ID"]


def test_explicit_domain_names_the_message_id():
    msg = build_email(make_message(), from_addr=FROM, domain="lists.echo.example", now=NOW)
    assert msg["Message-ID"] == message_id_for(make_message().key, "lists.echo.example")


def test_text_only_message_is_a_single_plain_part():
    msg = parse(build_email(make_message(html=None), from_addr="news@echo.example", now=NOW).as_bytes())
    assert msg.get_content_type() == "text/plain"
    assert lf(msg.get_content()) == TEXT
    assert html_part(msg) is None


def test_html_part_helper_returns_the_html():
    built = build_email(make_message(), from_addr=FROM, now=NOW)
    assert lf(html_part(built)).rstrip("\n") == HTML


def test_international_domain_is_sent_in_punycode():
    msg = parse(build_email(make_message(destination="awa@café.example"), from_addr=FROM, now=NOW).as_bytes())
    assert msg["To"] == "awa@xn--caf-dma.example"


@pytest.mark.parametrize("bad", ["pas-une-adresse", "ami@", "@example.org", "a b@example.org", "ami@example..org", ""])
def test_invalid_recipient_is_permanent_and_names_the_address(bad):
    with pytest.raises(PermanentError) as info:
        build_email(make_message(destination=bad), from_addr=FROM, now=NOW)
    assert f"invalid recipient address {bad!r}:" in str(info.value)


def test_header_injection_is_refused():
    with pytest.raises(PermanentError, match="List-Id"):
        build_email(make_message(headers={"List-Id": "x\r\nBcc: victim@example.org"}), from_addr=FROM, now=NOW)


def test_message_headers_cannot_override_transport_headers():
    with pytest.raises(PermanentError, match="'From'"):
        build_email(make_message(headers={"From": "evil@example.org"}), from_addr=FROM, now=NOW)


@pytest.mark.parametrize("subject", [None, "", " \t "])
def test_missing_subject_is_permanent(subject):
    with pytest.raises(PermanentError, match="no subject"):
        build_email(make_message(subject=subject), from_addr=FROM, now=NOW)


def test_wrong_kind_or_body_is_permanent():
    with pytest.raises(PermanentError, match="not an email"):
        build_email(make_message(kind="telegram"), from_addr=FROM, now=NOW)
    post = Message("k", "news", "email", "ami@example.org", TelegramPost("<b>« Bamako »</b>"))
    with pytest.raises(PermanentError, match="not an email"):
        build_email(post, from_addr=FROM, now=NOW)


@pytest.mark.parametrize("bad", ["Journal sans adresse", "a@b.example, c@d.example", "rédaction@echo.example"])
def test_bad_sender_is_a_config_error(bad):
    with pytest.raises(ConfigError):
        build_email(make_message(), from_addr=bad, now=NOW)


def test_naive_now_is_taken_as_utc():
    msg = build_email(make_message(), from_addr=FROM, now=datetime(2024, 12, 2, 7, 30))
    assert parsedate_to_datetime(str(msg["Date"])) == NOW
