"""Reading the bounce mailbox's messages (bot.channels.email.bounces.dsn) on samples shaped
like what Postfix, Gmail, Outlook, Orange, Exim, qmail and feedback loops send
(tests/data/bounces/, written from RFC 3464, 5965 and 6533 and the providers' examples)."""

from __future__ import annotations

import pytest

from bot.channels.email.bounces.classify import Verdict
from bot.channels.email.bounces.dsn import parse
from tests.channels.email.bounces.conftest import SAMPLES, sample

HARD, SOFT, IGNORE, COMPLAINT = Verdict.HARD, Verdict.SOFT, Verdict.IGNORE, Verdict.COMPLAINT
CHANNELS = ("news", "alerts")

#: sample → its kind, and (address, verdict, status, words of the diagnostic) per recipient
EXPECTED = {
    "postfix-5.1.1-user-unknown.eml": ("dsn", [
        ("parti@bamako-mail.example", HARD, "5.1.1", "User unknown in virtual mailbox table")]),
    "gmail-5.1.1-mixed-case.eml": ("dsn", [
        ("Ibrahim.K@Gmail.com", HARD, "5.1.1", "does not exist. Please try double-checking")]),
    "outlook-5.1.10-non-remis-fr.eml": ("dsn", [
        ("aminata.traore@contoso-mali.example", HARD, "5.1.10", "Recipient not found by SMTP address lookup")]),
    "orange-5.2.2-boite-pleine-latin1.eml": ("dsn", [
        ("Awa.Diallo@orange-fr.example", SOFT, "5.2.2", "Boîte aux lettres pleine")]),
    "global-dsn-utf8-5.1.1.eml": ("dsn", [
        ("anaïs@exemple-eai.example", HARD, "5.1.1", "Destinataire inconnu : l’adresse")]),
    "multi-recipient-hard-and-expired.eml": ("dsn", [
        ("moussa@kayes-net.example", HARD, "5.1.2", "Host unknown"),
        ("fatou@sikasso.example", SOFT, "4.4.1", "Connection timed out")]),
    "postfix-delayed-4.4.1.eml": ("dsn", [("fatou@sikasso.example", IGNORE, "4.4.1", "Connection timed out")]),
    "postfix-5.7.1-blocklist.eml": ("dsn", [("lecteur@segou-isp.example", IGNORE, "5.7.1", "blocked using")]),
    "exim-plain-5.1.1.eml": ("plain", [("oumar@timbuktu-mail.example", HARD, "5.1.1", "User unknown")]),
    "qmail-failure-notice.eml": ("plain", [("kadi@mopti-net.example", HARD, "5.1.1", "no mailbox here")]),
    "arf-abuse.eml": ("arf", [("Salif.Keita@Mail-Provider.example", COMPLAINT, None, "feedback-type abuse")]),
    "arf-redacted.eml": ("arf", []),
    "auto-reply-absent-fr.eml": ("none", []),
}


def test_every_sample_is_covered():
    assert {p.name for p in SAMPLES.glob("*.eml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample(name):
    kind, expected = EXPECTED[name]
    report = parse(sample(name), channels=CHANNELS)
    assert report.kind == kind
    got = [(f.address, f.verdict, f.status) for f in report.feedback]
    assert got == [(a, v, s) for a, v, s, _ in expected]
    for fb, (_, _, _, words) in zip(report.feedback, expected):
        assert words in fb.diagnostic
        assert "\n" not in fb.reason and fb.reason.endswith(f"[{fb.ref}]")
    if not expected:
        assert report.note


def test_a_dsn_reason_reads_as_code_words_origin_and_ref():
    fb, = parse(sample("postfix-5.1.1-user-unknown.eml")).feedback
    assert fb.reason == ("550 5.1.1 <parti@bamako-mail.example>: Recipient address rejected: User unknown in "
                         "virtual mailbox table (dsn from mail.echo-sahel.example) "
                         "[dsn:<20241202073104.4Y2kTq0Z9Hz9sWb@mail.echo-sahel.example>]")


def test_recipients_of_one_report_share_its_ref():
    refs = {f.ref for f in parse(sample("multi-recipient-hard-and-expired.eml")).feedback}
    assert refs == {"dsn:<20241204073055.4Y3zQk5lJfz9sWc@mail.echo-sahel.example>"}


def test_a_report_without_message_id_is_named_by_its_content():
    raw = sample("postfix-5.1.1-user-unknown.eml").replace(b"Message-Id: <20241202073104.4Y2kTq0Z9Hz9sWb@", b"X-Id: <")
    first, again = parse(raw).feedback[0], parse(raw).feedback[0]
    assert first.ref.startswith("dsn:sha256:") and first.ref == again.ref
    assert parse(raw + b"\n").feedback[0].ref != first.ref


def test_a_complaint_names_its_list_from_the_returned_list_id():
    fb, = parse(sample("arf-abuse.eml"), channels=CHANNELS).feedback
    assert fb.channel_id == "alerts" and fb.origin == "arf from SomeGenerator"
    assert parse(sample("arf-abuse.eml"), channels=("news",)).feedback[0].channel_id is None  # no such list here


def test_original_recipient_wins_over_a_forwarded_final_recipient():
    raw = sample("postfix-5.1.1-user-unknown.eml").replace(
        b"Final-Recipient: rfc822; parti@bamako-mail.example", b"Final-Recipient: rfc822; relais@autre.example")
    assert [f.address for f in parse(raw).feedback] == ["parti@bamako-mail.example"]


def test_the_returned_copy_of_our_own_message_is_never_read_for_addresses():
    report = parse(sample("exim-plain-5.1.1.eml"))
    assert "someone-else@echo-sahel.example" not in {f.address for f in report.feedback}


def test_a_person_writing_to_the_bounce_address_is_not_a_bounce():
    raw = (b"From: Awa <awa@example.org>\nTo: bounces@echo-sahel.example\nSubject: Question\n"
           b"Message-ID: <q1@example.org>\n\n<parti@bamako-mail.example>:\n550 5.1.1 User unknown\n")
    report = parse(raw)
    assert report.kind == "none" and report.feedback == [] and report.note == "not a bounce"


def test_an_exim_delay_warning_counts_nothing():
    raw = sample("exim-plain-5.1.1.eml").replace(b"Subject: Mail delivery failed: returning message to sender",
                                                b"Subject: Warning: message 1tHxyZ-0003kQ-8b delayed 24 hours")
    assert [f.verdict for f in parse(raw).feedback] == [IGNORE]


def test_garbage_is_no_report():
    assert parse(b"\x00\xff not an email at all").feedback == []
    assert parse(b"").feedback == []
