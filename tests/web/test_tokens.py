"""Confirm, unsubscribe (page and RFC 8058 one-click) and preferences: what a link opens,
what only a POST does, and every token that must be refused."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import httpx
import pytest

from bot.store.subscribers import Source, SubscriberStatus
from tests.web.conftest import PUBLIC, csrf_of, path_of

# Exactly what Gmail sends (RFC 8058 §3.1): a POST with no cookie, no CSRF token and this body.
ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "Google-Unsubscribe"}
ONE_CLICK_BODY = b"List-Unsubscribe=One-Click"


def subscriber(web, clock, email="awa@example.org", channel="news", confirmed=True, **kw):
    return web.store.subscribers.add(channel, email, kw.pop("name", "Awa"), now=clock(), confirmed=confirmed,
                                     **kw).subscriber


def status(web, sub) -> str:
    return web.store.subscribers.get(sub.id).status


async def one_click(url: str, web) -> httpx.Response:
    """A fresh client: a mailbox provider shares no cookie with the reader's browser."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url=PUBLIC) as provider:
        return await provider.post(path_of(url), content=ONE_CLICK_BODY, headers=ONE_CLICK)


# -- confirm -----------------------------------------------------------------------------
async def test_opening_the_confirmation_link_confirms_nothing_pressing_the_button_does(client, web, clock):
    sub = subscriber(web, clock, confirmed=False)
    url = path_of(web.links.confirm("news", sub.id))
    page = await client.get(url)  # what a mail scanner that prefetches links does
    assert page.status_code == 200 and "Je confirme mon abonnement" in page.text
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    assert status(web, sub) == SubscriberStatus.PENDING
    done = await client.post(url, data={"csrf": csrf_of(page.text)})
    assert done.status_code == 200 and "Abonnement confirmé" in done.text
    assert status(web, sub) == SubscriberStatus.ACTIVE
    assert web.store.subscribers.events(sub.id)[-1].kind == "confirmed"
    again = await client.get(url)
    assert "déjà confirmé" in again.text and status(web, sub) == SubscriberStatus.ACTIVE
    assert (await client.post(url)).status_code == 200  # idempotent


async def test_an_expired_confirmation_link_confirms_nothing(client, web, clock, monkeypatch):
    sub = subscriber(web, clock, confirmed=False)
    url = path_of(web.links.confirm("news", sub.id))
    later = time.time() + timedelta(days=7, hours=1).total_seconds()
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: later)
    r = await client.post(url)
    assert r.status_code == 410 and "a expiré" in r.text and "/news/subscribe" in r.text
    assert status(web, sub) == SubscriberStatus.PENDING


async def test_a_reader_suppressed_since_cannot_be_confirmed_by_an_old_link(client, web, clock):
    sub = subscriber(web, clock, confirmed=False)
    url = path_of(web.links.confirm("news", sub.id))
    web.store.subscribers.bounce("awa@example.org", now=clock(), hard=True, reason="550 no such user")
    r = await client.post(url)
    assert r.status_code == 200 and "abonnez-vous une nouvelle fois" in r.text
    assert status(web, sub) == SubscriberStatus.BOUNCED


@pytest.mark.parametrize("route", ["confirm", "unsubscribe", "preferences"])
async def test_forged_wrong_purpose_and_other_list_tokens_are_refused(client, web, clock, route):
    sub = subscriber(web, clock, confirmed=False)
    other = subscriber(web, clock, channel="sport")
    wrong_purpose = {"confirm": web.links.unsubscribe, "unsubscribe": web.links.confirm,
                     "preferences": web.links.unsubscribe}[route]("news", sub.id).rsplit("/", 1)[1]
    right = getattr(web.links, route)("news", sub.id).rsplit("/", 1)[1]
    other_list = getattr(web.links, route)("sport", other.id).rsplit("/", 1)[1]
    forged = right[:-12] + ("a" if right[-12] != "a" else "b") + right[-11:]  # not the padding bits at the end
    for token in (wrong_purpose, other_list, forged, "x"):
        for method in ("GET", "POST"):
            r = await client.request(method, f"/news/{route}/{token}", data={"csrf": "x"})
            assert r.status_code == 400 and "pas valide" in r.text, (token, method, r.status_code)
        r = await client.post(f"/news/{route}/{token}", content=ONE_CLICK_BODY, headers=ONE_CLICK)
        assert r.status_code == 400
    assert status(web, sub) == SubscriberStatus.PENDING and status(web, other) == SubscriberStatus.ACTIVE
    assert web.store.subscribers.get(sub.id).frequency == "daily"


# -- unsubscribe -------------------------------------------------------------------------
async def test_the_unsubscribe_page_asks_once_and_offers_preferences_instead(client, web, clock):
    sub = subscriber(web, clock)
    url = path_of(web.links.unsubscribe("news", sub.id))
    page = await client.get(url)
    assert page.status_code == 200 and "Me désabonner" in page.text and "awa@example.org" in page.text
    assert "Modifier mes préférences" in page.text and "/news/preferences/" in page.text
    assert status(web, sub) == SubscriberStatus.ACTIVE  # a GET changes nothing
    done = await client.post(url, data={"csrf": csrf_of(page.text)})
    assert done.status_code == 200 and "désabonné" in done.text
    assert status(web, sub) == SubscriberStatus.UNSUBSCRIBED
    assert web.store.subscribers.get(sub.id).status_source == Source.LINK
    again = await client.post(url, data={})
    assert again.status_code == 200 and "désabonné" in again.text  # idempotent
    assert [e.kind for e in web.store.subscribers.events(sub.id)].count("unsubscribed") == 1


async def test_one_click_exactly_as_gmail_sends_it(web, clock):
    sub = subscriber(web, clock)
    url = web.links.unsubscribe("news", sub.id)
    r = await one_click(url, web)
    assert r.status_code == 200 and "set-cookie" not in r.headers
    got = web.store.subscribers.get(sub.id)  # honoured before the answer
    assert got.status == SubscriberStatus.UNSUBSCRIBED and got.status_source == Source.ONE_CLICK
    assert (await one_click(url, web)).status_code == 200  # a provider that retries
    assert [e.kind for e in web.store.subscribers.events(sub.id)].count("unsubscribed") == 1


async def test_one_click_as_multipart_and_for_a_pending_reader(web, clock):
    sub = subscriber(web, clock, confirmed=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url=PUBLIC) as provider:
        r = await provider.post(path_of(web.links.unsubscribe("news", sub.id)),
                                files={"List-Unsubscribe": (None, "One-Click")})
    assert r.status_code == 200 and status(web, sub) == SubscriberStatus.UNSUBSCRIBED


async def test_links_sent_before_signed_tokens_still_unsubscribe(client, web, clock):
    sub = subscriber(web, clock)
    other = subscriber(web, clock, email="sidi@example.org", channel="sport")
    page = await client.get(f"/news/unsubscribe?token={sub.token}")
    assert page.status_code == 200 and 'action="/news/unsubscribe?token=' in page.text
    assert (await client.post(f"/news/unsubscribe/{other.token}", content=ONE_CLICK_BODY,
                              headers=ONE_CLICK)).status_code == 400  # another list's reader
    r = await client.post(f"/news/unsubscribe/{sub.token}", content=ONE_CLICK_BODY, headers=ONE_CLICK)
    assert r.status_code == 200 and status(web, sub) == SubscriberStatus.UNSUBSCRIBED
    assert status(web, other) == SubscriberStatus.ACTIVE
    assert (await client.get(f"/news/preferences/{sub.token}")).status_code == 400  # only unsubscribe


async def test_two_hundred_one_clicks_at_once_are_all_honoured(web, clock):
    subs = [subscriber(web, clock, email=f"r{i}@example.org") for i in range(200)]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url=PUBLIC) as provider:
        answers = await asyncio.gather(*(provider.post(path_of(web.links.unsubscribe("news", s.id)),
                                                       content=ONE_CLICK_BODY, headers=ONE_CLICK) for s in subs))
    assert {r.status_code for r in answers} == {200}
    assert web.store.subscribers.counts("news") == {SubscriberStatus.UNSUBSCRIBED: 200}


# -- preferences -------------------------------------------------------------------------
async def test_preferences_change_through_the_signed_link(client, web, clock):
    sub = subscriber(web, clock, topics=["Sport"])
    url = path_of(web.links.preferences("news", sub.id))
    page = await client.get(url)
    assert page.status_code == 200 and 'value="Sport" checked' in page.text and 'value="Awa"' in page.text
    assert page.headers["x-robots-tag"] == "noindex"
    refused = await client.post(url, data={"frequency": "weekly", "weekday": "2"})  # no CSRF token
    assert refused.status_code == 403 and web.store.subscribers.get(sub.id).frequency == "daily"
    saved = await client.post(url, data={"csrf": csrf_of(page.text), "name": "Awa D.", "topics": [],
                                         "frequency": "weekly", "weekday": "2", "language": "en"})
    assert saved.status_code == 303 and saved.headers["location"].endswith("?saved=1&lang=en")
    got = web.store.subscribers.get(sub.id)
    assert (got.name, got.topics, got.frequency, got.weekly_day, got.language) == ("Awa D.", None, "weekly", 2, "en")
    shown = await client.get(path_of(saved.headers["location"]))
    assert "Your preferences are saved" in shown.text and '<html lang="en">' in shown.text
    assert web.store.subscribers.events(sub.id)[-1].kind == "preferences"


async def test_the_name_field_cannot_inject_html_or_headers(client, web, clock):
    sub = subscriber(web, clock)
    url = path_of(web.links.preferences("news", sub.id))
    page = await client.get(url)
    await client.post(url, data={"csrf": csrf_of(page.text), "name": '"><script>x()</script>\r\nTo: a@b.c'})
    stored = web.store.subscribers.get(sub.id).name
    assert "\n" not in stored and "\r" not in stored
    shown = await client.get(url)
    assert "<script>x()</script>" not in shown.text and "&lt;script&gt;" in shown.text
