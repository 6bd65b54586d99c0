"""bot.channels.email.wire: a group's email compiled once, a reader's bytes spliced from it.
What a mail client reads (through the standard library's parser) must equal what
build_email makes for the same content: the same headers, the same decoded parts."""

from __future__ import annotations

import html as H
from datetime import datetime, timezone
from email import message_from_bytes, policy
from email.utils import format_datetime

import pytest

from bot.channels.email.mime import EmailBody, build_email
from bot.channels.email.wire import Part, WireEmail, qp
from bot.models import Message

NOW = datetime(2026, 11, 29, 7, 0, tzinfo=timezone.utc)
FROM = "L’Écho du Sahel <lettre@echo.example>"
SUBJECT = "L’Écho du Sahel\u00a0: Budget 2027, l’Assemblée adopte… (+11)"
LONG = "« L’Écho du Sahel » — les pluviomètres ont enregistré 20\u202f% de plus ; é à ç œ 😀. " * 40
HTML = ("<html><body><p>Bonjour ", ",</p><p>" + LONG + "</p>\n<a href=\"", "\">Se désabonner</a> . final\n</body></html>")
TEXT = ("Bonjour ", ",\n\n" + LONG + "\n.\nSe désabonner : ", "\n")
VALUES = {"name": "Awa <Traoré> & « co »", "unsub": "https://echo.example/u/abc.def?x=1&y=2"}
HEADERS = {"List-Id": "L’Écho du Sahel <news.echo.example>"}


def wire(html: bool = True) -> WireEmail:
    return WireEmail(subject=SUBJECT, from_addr=FROM, text=Part(TEXT, ["name", "unsub"]),
                     html=Part(HTML, ["name", "unsub"]) if html else None, headers=HEADERS, domain="echo.example")


def expected(pieces: tuple[str, ...], escape=lambda v: v) -> str:  # type: ignore[no-untyped-def]
    return pieces[0] + escape(VALUES["name"]) + pieces[1] + escape(VALUES["unsub"]) + pieces[2]


def text_of(part) -> str:  # type: ignore[no-untyped-def]
    return part.get_content().replace("\r\n", "\n")


@pytest.mark.parametrize("with_html", [True, False])
def test_a_spliced_message_reads_as_the_reference_builder_s(with_html: bool) -> None:
    raw = wire(with_html).message(to="awa@example.org", key="news:e1:awa@example.org", date=format_datetime(NOW),
                                  values=VALUES, headers={"List-Unsubscribe": f"<{VALUES['unsub']}>"})
    got = message_from_bytes(raw, policy=policy.default)
    body = EmailBody(SUBJECT, expected(TEXT), expected(HTML, lambda v: H.escape(v, quote=True)) if with_html else None,
                     {**HEADERS, "List-Unsubscribe": f"<{VALUES['unsub']}>"})
    ref = message_from_bytes(build_email(Message("news:e1:awa@example.org", "news", "email", "awa@example.org", body),
                                         from_addr=FROM, now=NOW).as_bytes(), policy=policy.default)
    for header in ("Subject", "From", "To", "Date", "Message-ID", "List-Id", "List-Unsubscribe", "MIME-Version"):
        assert str(got[header]) == str(ref[header]), header
    assert got["Subject"] == SUBJECT  # the no-break space before « : » survives
    assert got.get_content_type() == ref.get_content_type()
    assert text_of(got.get_body(("plain",))) == text_of(ref.get_body(("plain",)))
    if with_html:
        assert text_of(got.get_body(("html",))) == text_of(ref.get_body(("html",)))
        assert [p.get_content_type() for p in got.iter_parts()] == ["text/plain", "text/html"]
    assert all(len(line) <= 998 for line in raw.split(b"\r\n")) and raw.isascii()  # 7-bit, any relay takes it
    body_lines = raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n")
    assert all(len(line) <= 76 for line in body_lines)  # quoted-printable's own limit


def test_pieces_join_at_any_point_even_inside_a_multibyte_character_run() -> None:
    for cut in range(0, 40):
        a, b = LONG[:cut], LONG[cut:80]
        raw = qp(a) + qp(b)
        import binascii

        assert binascii.a2b_qp(raw.replace(b"\r\n", b"\n")).decode() == a + b


def test_a_header_value_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        wire().message(to="a@example.org", key="k", date="x", headers={"List-Unsubscribe": "<a>\r\nBcc: x@evil"})


def test_no_line_starts_with_a_dot_so_smtp_needs_no_stuffing() -> None:
    w = WireEmail(subject="s", from_addr=FROM, text=Part((".début\n.\n...suite ", "\n.fin"), ["name"]),
                  html=Part(("<p>", ".</p>\n.<b>x</b>"), ["name"]), headers={}, domain="echo.example")
    raw = w.message(to="a@example.org", key="k", date="d", values={"name": ".Awa"})
    assert not any(line.startswith(b".") for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    msg = message_from_bytes(raw, policy=policy.default)
    assert text_of(msg.get_body(("plain",))) == ".début\n.\n...suite .Awa\n.fin\n"


def test_the_quick_recipient_check_says_what_email_validator_says() -> None:
    import random

    from email_validator import EmailNotValidError, validate_email

    from bot.channels.email.mime import validate_recipient
    from bot.errors import PermanentError

    def reference(address: str) -> str:
        try:
            info = validate_email(address, check_deliverability=False, allow_smtputf8=True)
        except EmailNotValidError:
            return "refused"
        return info.ascii_email or f"{info.local_part}@{info.ascii_domain}"

    def ours(address: str) -> str:
        try:
            return validate_recipient(address)
        except PermanentError:
            return "refused"

    rng = random.Random(11)
    cases = ["a@example.org", "A.B@EXAMPLE.org", "a@пример.рф", "josé@exemple.ml", "a..b@x.org", "a@x", "a@-x.org"]
    cases += ["".join(rng.choice("ab.+_-é!") for _ in range(rng.randint(1, 10))) + "@" +
              rng.choice(["example.org", "Exemple.ML", "ex--ample.org", "пример.рф", "a.b.c.d"]) for _ in range(2000)]
    assert [(c, ours(c)) for c in cases if ours(c) != reference(c)] == []
