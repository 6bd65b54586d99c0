"""Feedback reaching the subscriber store (bot.channels.email.bounces.feedback.apply), on
SQLite and PostgreSQL: hard bounces suppress every list at once whatever the address's
case, soft ones after the channel's limit within its window, complaints unsubscribe the
list they name, and the same report applied twice counts once."""

from __future__ import annotations

from datetime import timedelta

from bot.channels.email.bounces.classify import Verdict
from bot.channels.email.bounces.dsn import parse
from bot.channels.email.bounces.feedback import Feedback, apply, list_channel
from bot.channels.email.bounces.settings import BounceSettings
from tests.channels.email.bounces.conftest import NOW, sample

LISTS = ["news", "alerts"]
POLICY = BounceSettings(soft_limit=2, soft_window=timedelta(days=10))


def soft(address: str, ref: str) -> Feedback:
    return Feedback(address, Verdict.SOFT, "5.2.2", "552 5.2.2 Boîte aux lettres pleine", ref, "dsn")


def status(store, channel_id: str, address: str) -> str:
    return store.subscribers.find(channel_id, address).status


def test_a_hard_bounce_from_a_dsn_suppresses_every_list_whatever_the_case(store):
    for channel_id in LISTS:
        store.subscribers.add(channel_id, "ibrahim.k@gmail.com", "Ibrahim", now=NOW)
    tally = apply(store, parse(sample("gmail-5.1.1-mixed-case.eml")).feedback, now=NOW, policy=POLICY,
                  channels=LISTS)
    assert tally.as_dict() == {"hard": 1, "suppressed": 2}
    assert [status(store, c, "IBRAHIM.K@GMAIL.COM") for c in LISTS] == ["bounced", "bounced"]
    event = store.subscribers.events(store.subscribers.find("news", "ibrahim.k@gmail.com").id)[-1]
    assert (event.kind, event.source) == ("bounce-hard", "bounce")
    assert event.detail.startswith("550-5.1.1 The email account that you tried to reach does not exist.")
    assert event.detail.endswith("(dsn from googlemail.com) [dsn:<6756a1b8.050a0220.2f1e3.0001.GMR@mx.google.com>]")


def test_soft_bounces_suppress_at_the_channels_limit_within_its_window(store):
    store.subscribers.add("news", "awa.diallo@orange-fr.example", None, now=NOW)
    first = parse(sample("orange-5.2.2-boite-pleine-latin1.eml")).feedback
    assert apply(store, first, now=NOW, policy=POLICY, channels=LISTS).as_dict() == {"soft": 1}
    assert status(store, "news", "awa.diallo@orange-fr.example") == "active"
    # the next soft bounce comes after the window: the count starts again
    later = NOW + timedelta(days=11)
    apply(store, [soft("Awa.Diallo@orange-fr.example", "dsn:<2>")], now=later, policy=POLICY, channels=LISTS)
    assert status(store, "news", "awa.diallo@orange-fr.example") == "active"
    tally = apply(store, [soft("awa.diallo@orange-fr.example", "dsn:<3>")], now=later + timedelta(days=1),
                  policy=POLICY, channels=LISTS)
    assert tally.as_dict() == {"soft": 1, "suppressed": 1}
    assert status(store, "news", "awa.diallo@orange-fr.example") == "bounced"
    details = [e.detail for e in store.subscribers.events(store.subscribers.find("news", "awa.diallo@orange-fr.example").id)
               if e.kind == "bounce-soft"]
    assert "Boîte aux lettres pleine" in details[0] and details[-1].endswith("[dsn:<3>] (2 of 2)")


def test_the_same_report_applied_twice_counts_once(store):
    store.subscribers.add("news", "plein@example.org", None, now=NOW)
    feedback = [soft("plein@example.org", "mailgun:evt-1")]
    apply(store, feedback, now=NOW, policy=POLICY, channels=LISTS)
    again = apply(store, feedback, now=NOW + timedelta(minutes=1), policy=POLICY, channels=LISTS)
    assert again.as_dict() == {"duplicate": 1}
    assert status(store, "news", "plein@example.org") == "active"  # one soft bounce of two
    kinds = [e.kind for e in store.subscribers.events(store.subscribers.find("news", "plein@example.org").id)]
    assert kinds.count("bounce-soft") == 1


def test_a_complaint_unsubscribes_the_list_it_names_only(store):
    for channel_id in LISTS:
        store.subscribers.add(channel_id, "salif.keita@mail-provider.example", None, now=NOW)
    tally = apply(store, parse(sample("arf-abuse.eml"), channels=LISTS).feedback, now=NOW, policy=POLICY,
                  channels=LISTS)
    assert tally.as_dict() == {"complaint": 1, "suppressed": 1}
    assert status(store, "alerts", "Salif.Keita@Mail-Provider.example") == "complained"
    assert status(store, "news", "Salif.Keita@Mail-Provider.example") == "active"


def test_a_complaint_without_a_known_list_unsubscribes_every_list(store):
    for channel_id in LISTS:
        store.subscribers.add(channel_id, "fache@example.org", None, now=NOW)
    fb = Feedback("fache@example.org", Verdict.COMPLAINT, None, "complaint abuse", "ses:fb-1", "ses",
                  channel_id="gone")
    apply(store, [fb], now=NOW, policy=POLICY, channels=LISTS)
    assert [status(store, c, "fache@example.org") for c in LISTS] == ["complained", "complained"]


def test_ignored_feedback_and_unknown_addresses_change_nothing(store):
    store.subscribers.add("news", "lecteur@segou-isp.example", None, now=NOW)
    feedback = parse(sample("postfix-5.7.1-blocklist.eml")).feedback + parse(sample("qmail-failure-notice.eml")).feedback
    tally = apply(store, feedback, now=NOW, policy=POLICY, channels=LISTS)
    assert tally.as_dict() == {"ignored": 1, "unknown address": 1}
    sub = store.subscribers.find("news", "lecteur@segou-isp.example")
    assert sub.status == "active" and [e.kind for e in store.subscribers.events(sub.id)] == ["subscribed"]


def test_list_id_names_a_known_channel_only():
    assert list_channel("L’Écho du Sahel <news.echo-sahel.example>", LISTS) == "news"
    assert list_channel("<other.example.org>", LISTS) is None
    assert list_channel(None, LISTS) is None
