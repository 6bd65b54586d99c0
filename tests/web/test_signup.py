"""Sign-up: the form (CSRF, honeypot, per-address limit), the JSON endpoint (CORS), the
same answer whatever the address's past, and a confirmation email queued outside any edition."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from bot.links import Purpose
from bot.retention import LOOSE_KEPT, prune
from bot.store import Finished, Status
from bot.store.subscribers import Frequency, SubscriberStatus
from bot.web.signup import CONFIRM_EVERY
from tests.web.conftest import PUBLIC, csrf_of, sign_up


def confirmations(web) -> list:
    return [r for r in web.store.outbox.list(None) if ":confirm:" in r.key]


async def test_the_form_is_french_by_default_accessible_and_sets_its_csrf_cookie(client):
    r = await client.get("/news/subscribe")
    assert r.status_code == 200
    assert '<html lang="fr">' in r.text and "S’abonner à La lettre de l’Écho" in r.text
    for field in ("email", "name", "weekday"):  # every input has its label
        assert f'<label for="{field}">' in r.text and f'id="{field}"' in r.text
    assert "<script" not in r.text and 'name="viewport"' in r.text
    assert "tamtam_csrf=" in r.headers["set-cookie"] and "httponly" in r.headers["set-cookie"].lower()
    assert "samesite=lax" in r.headers["set-cookie"].lower() and "secure" in r.headers["set-cookie"].lower()
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    english = await client.get("/news/subscribe?lang=en")
    assert '<html lang="en">' in english.text and "Subscribe to La lettre de l’Écho" in english.text
    browser = await client.get("/news/subscribe", headers={"Accept-Language": "en-GB,en;q=0.9,fr;q=0.5"})
    assert '<html lang="en">' in browser.text
    assert '<html lang="en">' in (await client.get("/sport/subscribe")).text  # an English list


async def test_only_lists_have_a_form(client):
    assert (await client.get("/fil/subscribe")).status_code == 404  # a Telegram channel has no readers' list
    assert (await client.get("/nope/subscribe")).status_code == 404


async def test_a_sign_up_is_pending_and_its_confirmation_is_queued_outside_any_edition(client, web):
    r = await sign_up(client, email="Awa.Diarra@Example.org", name="Awa", frequency="weekly", weekday="4",
                      language="en")
    assert r.status_code == 303 and r.headers["location"] == f"{PUBLIC}/news/subscribe/sent?lang=fr"
    sub = web.store.subscribers.find("news", "awa.diarra@example.org")
    assert sub.status == SubscriberStatus.PENDING and sub.name == "Awa" and sub.status_source == "form"
    assert (sub.frequency, sub.weekly_day, sub.language) == (Frequency.WEEKLY, 4, "en")
    [row] = confirmations(web)
    assert row.edition_id is None and row.destination == "Awa.Diarra@example.org"
    body = row.payload["body"]
    assert body["subject"] == "Confirm your subscription to La lettre de l’Écho"  # the reader's language
    url = re.search(r"https://\S+/news/confirm/(\S+)", body["text"])
    assert url and web.links.verify(Purpose.CONFIRM, url.group(1), "news") == sub.id
    assert url.group(0) in body["html"] and "Hello Awa," in body["text"]
    sent = await client.get(r.headers["location"])
    assert "Vérifiez votre boîte de réception" in sent.text and "7" in sent.text


async def test_the_answer_is_the_same_whether_or_not_the_address_exists(client, web, clock):
    first = await sign_up(client, email="awa@example.org")
    web.store.subscribers.confirm(web.store.subscribers.find("news", "awa@example.org").id, now=clock())
    clock.advance(hours=1)
    again = await sign_up(client, email="AWA@example.org")
    stranger = await sign_up(client, email="nobody@example.org")
    assert first.status_code == again.status_code == stranger.status_code == 303
    assert first.headers["location"] == again.headers["location"] == stranger.headers["location"]
    assert web.store.subscribers.find("news", "awa@example.org").status == SubscriberStatus.ACTIVE
    assert len(confirmations(web)) == 2  # the active reader got no second confirmation


async def test_a_form_post_without_its_csrf_token_is_refused(client, web):
    refused = await client.post("/news/subscribe", data={"email": "awa@example.org"})
    assert refused.status_code == 403 and "Le formulaire a expiré" in refused.text
    assert 'value="awa@example.org"' in refused.text  # what was typed is kept
    page = await client.get("/news/subscribe")
    client.cookies.clear()
    no_cookie = await client.post("/news/subscribe", data={"csrf": csrf_of(page.text), "email": "awa@example.org"})
    assert no_cookie.status_code == 403
    await client.get("/news/subscribe")  # a fresh cookie …
    stolen = await client.post("/news/subscribe", data={"csrf": csrf_of(page.text), "email": "awa@example.org"})
    assert stolen.status_code == 403  # … does not match another browser's token
    assert web.store.subscribers.find("news", "awa@example.org") is None and not confirmations(web)


async def test_an_invalid_address_is_said_and_nothing_is_stored(client, web):
    r = await sign_up(client, email="awa.example.org")
    assert r.status_code == 400 and 'aria-invalid="true"' in r.text and "Cette adresse ne semble pas valide" in r.text
    assert web.store.subscribers.counts("news") == {}


async def test_the_honeypot_answers_like_a_success_and_stores_nothing(client, web):
    r = await sign_up(client, email="bot@example.org", website="https://spam.example")
    assert r.status_code == 303 and r.headers["location"].endswith("/news/subscribe/sent?lang=fr")
    assert web.store.subscribers.find("news", "bot@example.org") is None and not confirmations(web)


async def test_a_flood_from_one_address_is_refused_beyond_the_limit(client, web):
    answers = [(await sign_up(client, email=f"reader{i}@example.org")).status_code for i in range(7)]
    assert answers == [303] * 5 + [429] * 2
    assert web.store.subscribers.counts("news") == {SubscriberStatus.PENDING: 5}
    # another address is not held back by this one's flood
    other = web.app  # the same app, seen from elsewhere
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=other, client=("198.51.100.9", 1)),
                                 base_url=PUBLIC) as elsewhere:
        assert (await sign_up(elsewhere, email="later@example.org")).status_code == 303


async def test_one_mailbox_gets_one_confirmation_per_ten_minutes(client, web, clock):
    for _ in range(3):
        assert (await sign_up(client, email="awa@example.org")).status_code == 303
    assert len(confirmations(web)) == 1
    clock.advance(minutes=11)
    await sign_up(client, email="awa@example.org")
    assert len(confirmations(web)) == 2


async def test_pruning_the_outbox_never_lets_a_second_confirmation_through(client, web, clock):
    """The confirmation's row, keyed by its 10-minute window, is what refuses a second one;
    `outbox prune --older-than 1m` must not delete it while that window is open."""
    assert CONFIRM_EVERY <= LOOSE_KEPT
    await sign_up(client, email="awa@example.org")
    [row] = confirmations(web)
    web.store.outbox.claim(row.id, clock.now)
    web.store.outbox.finish_many([Finished(row.id, Status.SENT, clock.now)])
    clock.advance(minutes=2)
    assert prune(web.store, timedelta(minutes=1), now=clock.now).loose == 0
    await sign_up(client, email="awa@example.org")
    assert not confirmations(web)  # (which lists what is not sent): the first went, no second
    assert [r.id for r in web.store.outbox.list(Status.SENT)] == [row.id]
    clock.advance(hours=2)  # long after its window, the row may go
    assert prune(web.store, timedelta(minutes=1), now=clock.now).loose == 1


async def test_html_and_header_injection_in_the_name_is_escaped_everywhere(client, web):
    name = 'Awa</p><script>alert(1)</script>\r\nBcc: victim@example.org'
    r = await sign_up(client, email="awa@example.org", name=name)
    assert r.status_code == 303
    sub = web.store.subscribers.find("news", "awa@example.org")
    assert "\r" not in sub.name and "\n" not in sub.name  # one line: it can never become a header
    body = confirmations(web)[0].payload["body"]
    assert "<script>" not in body["html"] and "&lt;script&gt;" in body["html"]
    assert not any("\n" in v or "\r" in v for v in [body["subject"], *body["headers"].values()])
    # the page that shows what was typed (an invalid address) escapes it too
    page = await sign_up(client, email="not-an-address", name=name)
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text


async def test_the_json_endpoint_answers_allowed_sites_the_same_for_every_address(tmp_path, secret_env, clock):
    import httpx

    from bot.web import WebApp
    from tests.web.conftest import make_config

    config = make_config(f"sqlite:///{tmp_path / 'api.db'}", tmp_path, cors_origins=["https://www.echo.example"])
    web = WebApp(config, clock=clock)
    site = {"Origin": "https://www.echo.example"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url=PUBLIC) as c:
        pre = await c.options("/news/api/subscribe", headers={**site, "Access-Control-Request-Method": "POST"})
        assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == "https://www.echo.example"
        assert "POST" in pre.headers["access-control-allow-methods"]
        r = await c.post("/news/api/subscribe", headers=site,
                         json={"email": "fatou@example.org", "name": "Fatou", "topics": [], "frequency": "daily"})
        assert r.status_code == 202 and r.json()["ok"] is True
        assert r.headers["access-control-allow-origin"] == "https://www.echo.example"
        again = await c.post("/news/api/subscribe", headers=site, json={"email": "FATOU@example.org"})
        assert again.status_code == 202 and again.json() == r.json()
        assert web.store.subscribers.find("news", "fatou@example.org").status == SubscriberStatus.PENDING
        bad = await c.post("/news/api/subscribe", headers=site, json={"email": "fatou"})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_email"
        junk = await c.post("/news/api/subscribe", headers={**site, "Content-Type": "application/json"},
                            content=b"{not json")
        assert junk.status_code == 400
        other = await c.post("/news/api/subscribe", headers={"Origin": "https://evil.example"},
                             json={"email": "victim@example.org"})
        assert other.status_code == 403 and "access-control-allow-origin" not in other.headers
        assert web.store.subscribers.find("news", "victim@example.org") is None
        # a WordPress page's plain HTML form, sent on to the site's own thank-you page
        form = await c.post("/news/api/subscribe", headers=site,
                            data={"email": "moussa@example.org", "redirect": "https://www.echo.example/merci/"})
        assert form.status_code == 303 and form.headers["location"] == "https://www.echo.example/merci/"
        elsewhere = await c.post("/news/api/subscribe", headers=site,
                                 data={"email": "moussa@example.org", "redirect": "https://evil.example/"})
        assert elsewhere.headers["location"].startswith(f"{PUBLIC}/news/subscribe/sent")  # no open redirect
        flood = [(await c.post("/news/api/subscribe", headers=site, json={"email": f"r{i}@example.org"})).status_code
                 for i in range(3)]
        assert flood[-1] == 429 and json.loads((await c.post("/news/api/subscribe", headers=site,
                                                             json={"email": "z@example.org"})).text)["ok"] is False
    web.store.close()


async def test_topics_come_from_the_site_s_categories_most_common_first(client, web):
    from datetime import datetime, timezone

    from bot.models import Article

    when = datetime(2026, 11, 28, tzinfo=timezone.utc)
    web.store.articles.upsert([
        Article("s", f"g{i}", f"https://echo.example/{i}", f"T{i}", when, categories=cats)
        for i, cats in enumerate([("Politique", "Économie"), ("Économie",), ("economie", "Sport"), ("Culture",)])],
        now=when)
    page = await client.get("/news/subscribe")
    shown = re.findall(r'name="topics" value="([^"]+)"', page.text)
    assert shown[0] == "Économie" and set(shown) == {"Économie", "Politique", "Sport", "Culture"}
    r = await sign_up(client, email="awa@example.org", topics="Sport")
    assert r.status_code == 303
    assert web.store.subscribers.find("news", "awa@example.org").topics == ("Sport",)


@pytest.mark.parametrize("frequency, weekday, expected", [("instant", "3", ("instant", None)),
                                                          ("weekly", "6", ("weekly", 6)),
                                                          ("sometimes", "9", ("daily", None))])
async def test_frequency_choices(client, web, frequency, weekday, expected):
    await sign_up(client, email="awa@example.org", frequency=frequency, weekday=weekday)
    sub = web.store.subscribers.find("news", "awa@example.org")
    assert (sub.frequency, sub.weekly_day) == expected
