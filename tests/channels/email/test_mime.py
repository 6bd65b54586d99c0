"""The MIME message (bot.channels.email.mime): structure, headers and French text, read back
with the stdlib parser."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import dkim
import pytest

from bot.channels.email.mime import EmailBody, build_email, html_part, load_dkim, message_id_for
from bot.channels.email.settings import DkimSettings
from bot.channels.telegram.render import TelegramPost
from bot.errors import ConfigError, PermanentError
from bot.models import Message
from tests.channels.email.keys import rsa_key

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


# -- the subject's no-break spaces ---------------------------------------------------------------

def test_no_break_spaces_in_the_subject_reach_the_wire():
    subject = "L’Écho du Sahel\u00a0: Budget 2027, l’Assemblée adopte la loi de finances… (+11)"
    raw = build_email(make_message(subject=subject), from_addr=FROM, now=NOW).as_bytes()
    assert parse(raw)["Subject"] == subject  # not "L’Écho du Sahel : …" with a plain space
    folded = parse(build_email(make_message(subject="Un\r\n  titre\tsur\n\ndeux lignes\u202f?"), from_addr=FROM,
                               now=NOW).as_bytes())
    assert folded["Subject"] == "Un titre sur deux lignes\u202f?"  # line breaks and tabs only become a space


# -- DKIM ---------------------------------------------------------------------------------------

KEY = rsa_key()
SETTINGS = DkimSettings(selector="tamtam", domain="echo-sahel.example", key_file="dkim.pem")


def test_a_signed_message_verifies_against_the_published_key(tmp_path):
    key = load_dkim(SETTINGS, KEY.write(tmp_path / "dkim.pem"))
    raw = build_email(make_message(), from_addr=FROM, now=NOW, dkim=key).as_bytes()
    assert raw.isascii() and all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert dkim.verify(raw, dnsfunc=KEY.dns("tamtam", "echo-sahel.example"))
    msg = parse(raw)
    tags = dict(t.strip().split("=", 1) for t in "".join(str(msg["DKIM-Signature"]).split()).split(";") if t)
    assert tags["d"] == "echo-sahel.example" and tags["s"] == "tamtam" and tags["c"] == "relaxed/relaxed"
    signed = tags["h"].lower().split(":")
    for header in ("from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-id"):
        assert header in signed
    assert msg["Subject"] == SUBJECT and lf(html_part(msg)).rstrip("\n") == HTML  # the message itself is unchanged


def test_a_changed_message_fails_verification(tmp_path):
    key = load_dkim(SETTINGS, KEY.write(tmp_path / "dkim.pem"))
    raw = build_email(make_message(), from_addr=FROM, now=NOW, dkim=key).as_bytes()
    dns = KEY.dns("tamtam", "echo-sahel.example")
    assert not dkim.verify(raw.replace(b"To: ami@example.org", b"To: autre@example.org"), dnsfunc=dns)
    start = raw.index(b"\r\n\r\n", raw.index(b"Content-Transfer-Encoding:")) + 4  # a part's first byte
    changed = raw[:start] + bytes([raw[start] ^ 1]) + raw[start + 1:]  # one letter of the text changes
    assert parse(changed).get_body(("plain",)).get_content() != parse(raw).get_body(("plain",)).get_content()
    assert not dkim.verify(changed, dnsfunc=dns)
    other = rsa_key(seed=7)
    assert not dkim.verify(raw, dnsfunc=other.dns("tamtam", "echo-sahel.example"))


def test_an_unusable_key_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        load_dkim(SETTINGS, tmp_path / "absent.pem")
    (tmp_path / "bad.pem").write_text("-----BEGIN RSA PRIVATE KEY-----\nbm9wZQ==\n-----END RSA PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match="not an RSA private key"):
        load_dkim(SETTINGS, tmp_path / "bad.pem")


def test_a_long_unsubscribe_link_stays_a_link_in_the_header() -> None:
    """The email package folds a long URL into RFC 2047 encoded words, which no mail client
    reads as a link (found at smtp-sink by the benchmark). It is written as it is, folded
    only between the https and the mailto entries."""
    from datetime import datetime, timezone
    from email import message_from_bytes, policy

    from bot.channels.email.mime import EmailBody, build_email
    from bot.models import Message

    url = "https://echo-du-sahel.example/desabonnement?jeton=" + "Zx9_-" * 20
    value = f"<{url}>, <mailto:desabonnement@echo-du-sahel.example?subject=jeton-abc>"
    msg = Message("news:e1:a@example.org", "news", "email", "a@example.org",
                  EmailBody("Sujet", "texte", None, {"List-Unsubscribe": value,
                                                     "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}))
    raw = build_email(msg, from_addr="L’Écho <lettre@echo-du-sahel.example>",
                      now=datetime(2026, 11, 29, tzinfo=timezone.utc)).as_bytes()
    assert f"List-Unsubscribe: <{url}>,\r\n <mailto:".encode() in raw and b"=?utf-8?" not in raw.split(b"To:")[1]
    assert message_from_bytes(raw, policy=policy.default)["List-Unsubscribe"] == value
