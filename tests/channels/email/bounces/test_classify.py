"""The verdict on an address for one failed delivery (bot.channels.email.bounces.classify):
RFC 3463 classes, the diagnostic words that override a misused code, and the stricter rule
for refusals at send time."""

from __future__ import annotations

import pytest

from bot.channels.email.bounces.classify import Verdict, classify, find_code, find_status, one_line, refusal

HARD, SOFT, IGNORE = Verdict.HARD, Verdict.SOFT, Verdict.IGNORE


@pytest.mark.parametrize("status, diagnostic, verdict", [
    ("2.0.0", "250 2.0.0 Ok: queued", IGNORE),
    ("4.2.2", "452 4.2.2 Mailbox full", SOFT),
    ("4.1.1", "450 4.1.1 user unknown (directory unavailable)", SOFT),  # temporary words never make it hard
    ("5.1.1", "550 5.1.1 no such user", HARD),
    ("5.1.2", "550 5.1.2 Host unknown", HARD),
    ("5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound", HARD),  # null MX / not found (RFC 7505)
    ("5.1.6", "550 5.1.6 mailbox has moved", HARD),
    ("5.1.7", "553 5.1.7 bad sender address syntax", IGNORE),
    ("5.1.8", "553 5.1.8 <bounces@echo-sahel.example>: Sender address rejected: Domain not found", IGNORE),
    ("5.2.1", "550 5.2.1 The email account that you tried to reach is disabled", HARD),
    ("5.2.2", "552 5.2.2 Mailbox full", SOFT),
    ("5.2.3", "552 5.2.3 Message exceeds maximum size", IGNORE),
    ("5.3.4", "552 5.3.4 Message too big for system", IGNORE),
    ("5.3.2", "550 5.3.2 System not accepting network messages", SOFT),
    ("5.4.4", "550 5.4.4 Unable to route", HARD),
    ("5.4.7", "550 5.4.7 Delivery time expired", SOFT),
    ("5.5.2", "500 5.5.2 Syntax error", SOFT),
    ("5.6.0", "550 5.6.0 Content rejected", IGNORE),
    ("5.7.1", "550 5.7.1 Message rejected as spam by Content Filtering", IGNORE),
    ("5.7.26", "550 5.7.26 Unauthenticated email is not accepted due to DMARC policy", IGNORE),
])
def test_verdict_follows_the_rfc_3463_class(status, diagnostic, verdict):
    assert classify(status, diagnostic)[0] is verdict


@pytest.mark.parametrize("status, diagnostic", [
    ("5.7.1", "550 5.7.1 <x@contoso.example>: Recipient address rejected: User unknown"),
    ("5.4.1", "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)"),  # Exchange Online
    ("5.0.0", 'unknown user: "bob"'),  # Postfix local delivery
    (None, "550 Adresse d au moins un destinataire invalide. Invalid recipient. OFR_416 [416]"),  # Orange
    (None, "550 5.1.1 Destinataire inconnu : l’adresse n’existe pas"),
    (None, "550 Cette boîte aux lettres est désactivée"),
])
def test_words_that_say_no_such_mailbox_make_a_permanent_failure_hard(status, diagnostic):
    verdict, why = classify(status, diagnostic)
    assert verdict is HARD, why


@pytest.mark.parametrize("code, diagnostic, verdict", [
    (550, "550 Requested action not taken: mailbox unavailable", HARD),
    (551, "551 User not local", HARD),
    (553, "553 mailbox name not allowed", HARD),
    (552, "552 Requested mail action aborted: exceeded storage allocation", SOFT),
    (550, "550 Boîte aux lettres pleine", SOFT),
    (554, "554 Transaction failed", IGNORE),
    (550, "550 Your IP is listed on a block list", IGNORE),
    (550, "550 Authentication required", IGNORE),
    (450, "450 Requested mail action not taken", SOFT),
])
def test_without_an_enhanced_code_the_reply_code_and_words_decide(code, diagnostic, verdict):
    assert classify(None, diagnostic)[0] is verdict
    if code >= 500:  # Postfix's "5.0.0" is as good as no enhanced code
        assert classify("5.0.0", diagnostic, code)[0] is verdict


def test_a_failure_that_says_nothing_counts_soft_not_hard():
    assert classify(None, "")[0] is SOFT
    assert classify(None, "delivery failed")[0] is SOFT


def test_status_and_code_are_found_in_diagnostics():
    assert find_status("smtp; 550-5.1.1 The email account") == "5.1.1"
    assert find_status("Sorry, no mailbox here by that name. (#5.1.1)") == "5.1.1"
    assert find_status("550 5.1.10 RESOLVER") == "5.1.10"
    assert find_status("host [192.0.2.4] said 5.6.7.8 and v1.2.3") is None  # IPs and versions are not codes
    assert find_code("smtp; 550 5.1.1 x") == 550 and find_code("X-Postfix; unknown user") is None


def test_one_line_folds_a_multi_line_reply():
    gmail = ("smtp; 550-5.1.1 The email account that you tried to reach does not exist. Please try\n"
             " 550-5.1.1 double-checking the recipient's email address for typos or\n"
             " 550 5.1.1  unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser - gsmtp")
    assert one_line(gmail) == ("550-5.1.1 The email account that you tried to reach does not exist. Please try "
                               "double-checking the recipient's email address for typos or unnecessary spaces. "
                               "https://support.google.com/mail/?p=NoSuchUser - gsmtp")
    assert one_line("x" * 400).endswith("…") and len(one_line("x" * 400)) == 300
    assert one_line("host said: 550 5.1.1 User unknown") == "host said: 550 5.1.1 User unknown"


@pytest.mark.parametrize("reply, code, at_data, verdict", [
    ("550 5.1.1 <parti@example.org>: Recipient address rejected: User unknown", 550, False, HARD),
    ("550 5.2.1 Account disabled", 550, False, HARD),
    ("552 5.2.2 Boîte pleine", 552, False, SOFT),
    ("550 5.7.1 Relaying denied", 550, False, None),  # our relay's problem: every recipient would get it
    ("554 5.7.1 Client host rejected: blocked using zen.spamhaus.org", 554, False, None),
    ("530 5.7.0 Authentication required", 530, False, None),
    ("550 5.4.7 Delivery time expired", 550, False, None),  # soft for a DSN, nothing at send time
    ("550 5.1.1 User unknown", 550, True, HARD),  # a server that refuses recipients after DATA
    ("550 Message rejected", 550, True, None),  # after DATA a bare 550 is about the message
    ("554 5.7.1 Message refused: spam score too high", 554, True, None),
])
def test_a_refusal_at_send_time_counts_only_when_it_names_the_mailbox(reply, code, at_data, verdict):
    assert refusal(reply, code, at_data=at_data) is verdict
