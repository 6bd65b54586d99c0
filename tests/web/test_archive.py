"""What a sent edition becomes on the web: the archive, each edition as its email showed it
("view in browser"), the Atom feed; and the per-reader signed links every email carries."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from email import message_from_bytes, policy
from xml.etree import ElementTree as ET

import httpx

from bot.app import App
from bot.links import Purpose
from bot.models import Article
from bot.store.subscribers import SubscriberStatus
from tests.web.conftest import PUBLIC, path_of, sign_up

WHEN = datetime(2026, 11, 28, 6, 0, tzinfo=timezone.utc)


def publish(web, clock, *titles: str) -> int:
    web.store.articles.upsert([Article("echo", f"https://echo.example/{t}", f"https://echo.example/{t}", t, WHEN,
                                       categories=("Politique",), summary=f"Résumé de {t}.") for t in titles],
                              now=WHEN)
    app = App(web.config, store=web.store, clock=clock)
    result = app.publish(web.config.channel("news"), clock())
    assert result.edition_id is not None
    return result.edition_id


async def test_the_archive_lists_sent_editions_and_shows_each_as_its_email(client, web, clock):
    web.store.subscribers.add("news", "awa@example.org", "Awa", now=clock())
    first = publish(web, clock, "Budget 2027 adopté")
    clock.advance(days=1)
    second = publish(web, clock, "Le fleuve <monte> à Ségou")
    page = await client.get("/news/archive")
    assert page.status_code == 200
    links = re.findall(r'href="([^"]+/news/archive/\d+)"', page.text)
    assert links == [f"{PUBLIC}/news/archive/{second}", f"{PUBLIC}/news/archive/{first}"]  # newest first
    assert 'type="application/atom+xml"' in page.text
    one = await client.get(f"/news/archive/{second}")
    assert one.status_code == 200 and "Le fleuve &lt;monte&gt; à Ségou" in one.text
    assert "<monte>" not in one.text
    assert "Bonjour Awa" not in one.text and "awa@example.org" not in one.text  # nobody's envelope
    assert (await client.get("/news/archive/999999")).status_code == 404
    assert (await client.get(f"/sport/archive/{second}")).status_code == 404  # another list's edition


async def test_the_atom_feed_lists_the_editions(client, web, clock):
    web.store.subscribers.add("news", "awa@example.org", None, now=clock())
    edition = publish(web, clock, "Budget 2027 adopté")
    r = await client.get("/news/feed.atom")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(r.content)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    [entry] = feed.findall("a:entry", ns)
    assert entry.find("a:id", ns).text == f"{PUBLIC}/news/archive/{edition}"
    assert "Budget 2027" in entry.find("a:title", ns).text
    assert "Budget 2027" in entry.find("a:content", ns).text


async def test_every_email_carries_the_reader_s_own_working_links(client, web, clock, tmp_path):
    sub = web.store.subscribers.add("news", "awa@example.org", 'Awa <b>"x"</b>', now=clock()).subscriber
    edition = publish(web, clock, "Budget 2027 adopté")
    app = App(web.config, store=web.store, clock=clock)
    report = await app.dispatch()
    assert report.sent == 1
    [eml] = (tmp_path / "out" / "news").glob("*.eml")
    msg = message_from_bytes(eml.read_bytes(), policy=policy.default)
    unsubscribe = re.search(r"<(https://[^>]+)>", str(msg["List-Unsubscribe"])).group(1)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert web.links.verify(Purpose.UNSUBSCRIBE, unsubscribe.rsplit("/", 1)[1], "news") == sub.id
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert f"{PUBLIC}/news/archive/{edition}" in html and f"{PUBLIC}/news/archive/{edition}" in text
    preferences = re.search(r'href="(https://[^"]+/news/preferences/[^"]+)"', html).group(1)
    assert unsubscribe in html and unsubscribe in text and preferences in text
    assert "<b>" not in html and "Awa &lt;b&gt;" in html  # the name is escaped in the email
    # and each link opens the right page
    assert (await client.get(path_of(f"{PUBLIC}/news/archive/{edition}"))).status_code == 200
    prefs = await client.get(path_of(preferences))
    assert prefs.status_code == 200 and "awa@example.org" in prefs.text
    assert (await client.get(path_of(unsubscribe))).status_code == 200
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url=PUBLIC) as gmail:
        r = await gmail.post(path_of(unsubscribe), content=b"List-Unsubscribe=One-Click",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and web.store.subscribers.get(sub.id).status == SubscriberStatus.UNSUBSCRIBED


async def test_a_confirmation_is_an_email_of_its_own(client, web, clock, tmp_path):
    await sign_up(client, email="fatou@example.org", name="Fatou")
    report = await App(web.config, store=web.store, clock=clock).dispatch()
    assert report.sent == 1  # sent although Fatou is not (yet) an active subscriber
    [eml] = (tmp_path / "out" / "news").glob("*.eml")
    msg = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert str(msg["Subject"]) == "Confirmez votre abonnement à La lettre de l’Écho"
    assert "List-Unsubscribe" not in msg  # nothing to leave yet
    link = re.search(rf"{PUBLIC}/news/confirm/\S+", msg.get_body(("plain",)).get_content()).group(0)
    page = await client.get(path_of(link))
    assert "Je confirme mon abonnement" in page.text
