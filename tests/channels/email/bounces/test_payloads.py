"""The sending services' documented payloads as feedback
(bot.channels.email.bounces.payloads), on samples in tests/data/bounces/*.json."""

from __future__ import annotations

import copy
import json

import pytest

from bot.channels.email.bounces import payloads
from bot.channels.email.bounces.classify import Verdict
from bot.channels.email.bounces.payloads import PayloadError
from tests.channels.email.bounces.conftest import sample

HARD, SOFT, IGNORE, COMPLAINT = Verdict.HARD, Verdict.SOFT, Verdict.IGNORE, Verdict.COMPLAINT


def load(name: str) -> dict:
    return json.loads(sample(name))


def ses(message: dict) -> list:
    return payloads.ses(message, fallback_ref="sns:m-1", channels=("news", "alerts"))


def test_ses_permanent_bounce_is_hard_with_the_recipients_own_words():
    fb, = ses(load("ses-bounce-permanent.json"))
    assert (fb.address, fb.verdict, fb.status, fb.origin) == ("Parti@Bamako-Mail.example", HARD, "5.1.1", "ses")
    assert fb.reason == ("550 5.1.1 <parti@bamako-mail.example>: Recipient address rejected: User unknown (ses) "
                         "[ses:0102019395a1c2d3-5e8f0a1b-7c2d-4e3f-9a8b-1c2d3e4f5a6b-000000]")


@pytest.mark.parametrize("btype, sub, status, verdict", [
    ("Permanent", "General", "5.7.1", IGNORE),  # SES says permanent, the status says policy
    ("Permanent", "General", "5.2.2", SOFT),
    ("Permanent", "General", None, HARD),
    ("Permanent", "NoEmail", "5.7.1", HARD),
    ("Permanent", "Suppressed", None, HARD),
    ("Permanent", "OnAccountSuppressionList", None, HARD),
    ("Transient", "MailboxFull", "5.2.2", SOFT),
    ("Transient", "General", "4.4.7", SOFT),
    ("Transient", "MessageTooLarge", "5.3.4", IGNORE),
    ("Transient", "ContentRejected", "5.6.0", IGNORE),
    ("Transient", "AttachmentRejected", "5.6.0", IGNORE),
    ("Undetermined", "Undetermined", None, SOFT),
])
def test_ses_bounce_types(btype, sub, status, verdict):
    message = load("ses-bounce-permanent.json")
    message["bounce"].update(bounceType=btype, bounceSubType=sub)
    recipient = message["bounce"]["bouncedRecipients"][0]
    recipient.pop("diagnosticCode")
    recipient["status"] = status
    assert [f.verdict for f in ses(message)] == [verdict]


def test_ses_transient_and_complaint_samples():
    fb, = ses(load("ses-bounce-transient-mailboxfull.json"))
    assert fb.verdict is SOFT and "Boîte aux lettres pleine" in fb.diagnostic
    fb, = ses(load("ses-complaint.json"))
    assert (fb.verdict, fb.channel_id, fb.diagnostic) == (COMPLAINT, "alerts", "complaint abuse from Yahoo!-Mail-Feedback")


def test_ses_complaints_that_are_not_complaints():
    message = load("ses-complaint.json")
    message["complaint"]["complaintFeedbackType"] = "not-spam"
    assert [f.verdict for f in ses(message)] == [IGNORE]
    message = load("ses-complaint.json")
    message["complaint"]["complaintSubType"] = "OnAccountSuppressionList"
    assert [f.verdict for f in ses(message)] == [IGNORE]


def test_ses_event_publishing_uses_event_type_and_other_events_say_nothing():
    message = load("ses-bounce-permanent.json")
    message["eventType"] = message.pop("notificationType")
    assert [f.verdict for f in ses(message)] == [HARD]
    assert ses({"notificationType": "Delivery", "delivery": {}, "mail": {}}) == []


def test_ses_without_a_feedback_id_falls_back_to_the_sns_message_id():
    message = load("ses-bounce-permanent.json")
    del message["bounce"]["feedbackId"]
    assert ses(message)[0].ref == "ses:sns:m-1"


@pytest.mark.parametrize("breakage", [
    lambda m: m["bounce"].pop("bouncedRecipients"),
    lambda m: m["bounce"].update(bouncedRecipients=[]),
    lambda m: m["bounce"]["bouncedRecipients"][0].update(emailAddress="pas une adresse"),
    lambda m: m.update(bounce="oops"),
])
def test_ses_malformed_bounces_are_payload_errors(breakage):
    message = load("ses-bounce-permanent.json")
    breakage(message)
    with pytest.raises(PayloadError):
        ses(message)


def test_mailgun_events():
    fb, = payloads.mailgun(load("mailgun-failed-permanent.json")["event-data"])
    assert (fb.address, fb.verdict, fb.status, fb.ref) == ("moussa@kayes-net.example", HARD, "5.1.1",
                                                            "mailgun:G9Bn5sl1TC6nu79C8C0bwg")
    assert fb.diagnostic == "550 5.1.1 The email account that you tried to reach does not exist."
    assert [f.verdict for f in payloads.mailgun(load("mailgun-failed-temporary.json")["event-data"])] == [IGNORE]
    assert [f.verdict for f in payloads.mailgun(load("mailgun-failed-old.json")["event-data"])] == [SOFT]
    assert [f.verdict for f in payloads.mailgun(load("mailgun-complained.json")["event-data"])] == [COMPLAINT]
    assert payloads.mailgun({"event": "delivered", "recipient": "a@example.org", "id": "x"}) == []


@pytest.mark.parametrize("reason, verdict", [("suppress-bounce", HARD), ("suppress-unsubscribe", IGNORE),
                                             ("suppress-complaint", IGNORE), ("espblock", IGNORE)])
def test_mailgun_reasons(reason, verdict):
    event = copy.deepcopy(load("mailgun-failed-permanent.json")["event-data"])
    event["reason"] = reason
    event["delivery-status"] = {"message": "", "code": 605}
    assert [f.verdict for f in payloads.mailgun(event)] == [verdict]


def test_mailgun_policy_refusal_marked_permanent_is_not_counted():
    event = load("mailgun-failed-permanent.json")["event-data"]
    event["delivery-status"] = {"code": 550, "message": "5.7.1 Our system has detected that this message is likely "
                                                        "unsolicited mail", "enhanced-code": "5.7.1"}
    assert [f.verdict for f in payloads.mailgun(event)] == [IGNORE]


def test_mailgun_malformed_events():
    for event in ({"event": "failed", "id": "x"}, {"event": "failed", "recipient": "a@example.org"},
                  {"event": "failed", "recipient": "a@example.org", "id": "x", "severity": "sometimes"}):
        with pytest.raises(PayloadError):
            payloads.mailgun(event)


@pytest.mark.parametrize("btype, verdict", [
    ("HardBounce", HARD), ("BadEmailAddress", HARD), ("SoftBounce", SOFT), ("Transient", SOFT),
    ("DnsError", SOFT), ("Unknown", SOFT), ("AutoResponder", IGNORE), ("Blocked", IGNORE),
    ("DMARCPolicy", IGNORE), ("SpamNotification", IGNORE), ("ManuallyDeactivated", IGNORE),
    ("ChallengeVerification", IGNORE),
])
def test_postmark_bounce_types(btype, verdict):
    payload = load("postmark-bounce-hard.json")
    payload["Type"] = btype
    assert [f.verdict for f in payloads.postmark(payload)] == [verdict]


def test_postmark_samples():
    fb, = payloads.postmark(load("postmark-bounce-hard.json"))
    assert (fb.address, fb.verdict, fb.status, fb.ref) == ("Oumar@Timbuktu-Mail.example", HARD, "5.1.1",
                                                            "postmark:4323372036854775807")
    assert fb.diagnostic == "550 5.1.1 The email account that you tried to reach does not exist."
    assert [f.verdict for f in payloads.postmark(load("postmark-bounce-soft.json"))] == [SOFT]
    assert [f.verdict for f in payloads.postmark(load("postmark-spam-complaint.json"))] == [COMPLAINT]
    assert payloads.postmark({"RecordType": "Delivery", "Recipient": "a@example.org"}) == []
    with pytest.raises(PayloadError):
        payloads.postmark({"RecordType": "Bounce", "Type": "HardBounce", "ID": 1})
