"""Readers get what they chose: topics, language, frequency. Readers who chose the same
share one rendered and compiled email; each reader's message is spliced from it with their
own name and links (bot/channels/email/wire.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy

from bot.channels.registry import Channels
from bot.config import parse_config
from bot.models import Article
from bot.publish import publish
from bot.store import Store
from bot.store.subscribers import Frequency

NOW = datetime(2026, 12, 2, 7, 0, tzinfo=timezone.utc)  # a Wednesday


def config(tmp_path, db_url):
    return parse_config({
        "site": {"name": "L’Écho du Sahel", "base_url": "https://echo.example"},
        "storage": {"url": db_url},
        "channels": [{"id": "news", "type": "email", "schedule": {"cron": "30 6 * * *"}, "lookback": "3650d",
                      "unsubscribe_url": "https://echo.example/desabonnement?jeton={token}",
                      "transport": {"type": "file", "dir": str(tmp_path / "out")}}],
    }, base_dir=str(tmp_path))


def article(i: int, category: str) -> Article:
    return Article(source_id="s", guid=f"g{i}", url=f"https://echo.example/{i}", title=f"Titre {category} {i}",
                   published_at=NOW - timedelta(hours=i), categories=(category,), summary=f"Résumé {i}.")


def readers_mail(store: Store, channels: Channels, cfg) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Each reader's email, built as the dispatcher builds it, parsed as a mail client reads it."""
    channel = cfg.channels[0]
    kind = channels.kind(channel)
    out = {}
    for row in store.outbox.list():
        msg = kind.message(channel, row.key, row.destination, row.payload, store.editions.shared(row.edition_id))
        out[row.destination] = message_from_bytes(msg.body.wire, policy=policy.default)
    return out


def test_topics_and_language_make_groups_rendered_once(tmp_path, db_url):
    cfg = config(tmp_path, db_url)
    store = Store(db_url)
    store.articles.upsert([article(1, "Sport"), article(2, "Politique"), article(3, "Économie")], now=NOW)
    subs = store.subscribers
    subs.add("news", "tous@example.org", "Tous & <Toutes>", now=NOW)
    subs.add("news", "sport@example.org", None, now=NOW, topics=["sport"])
    subs.add("news", "sport2@example.org", "Awa", now=NOW, topics=["SPORT ", "Culture"])
    subs.add("news", "eco@example.org", None, now=NOW, topics=["Economie"])  # accents and case fold away
    subs.add("news", "english@example.org", "Ann", now=NOW, language="en")
    subs.add("news", "culture@example.org", None, now=NOW, topics=["Culture"])  # nothing for them today
    channels = Channels(cfg)
    result = publish(channels, store, cfg.channels[0], now=NOW)
    assert result.messages == 5  # the culture-only reader gets no empty digest
    shared = store.editions.shared(result.edition_id)
    digests = [name for name in shared if not name.endswith((".named", ".anonymous"))]
    assert len(digests) == 5  # all, fr+sport, fr+sport/culture, fr+économie, en: each rendered once
    mail = readers_mail(store, channels, cfg)
    html = {who: m.get_body(("html",)).get_content() for who, m in mail.items()}
    assert all(f"Titre {c}" in html["tous@example.org"] for c in ("Sport 1", "Politique 2", "Économie 3"))
    for who in ("sport@example.org", "sport2@example.org"):
        assert "Titre Sport 1" in html[who] and "Politique" not in html[who] and "Économie" not in html[who]
    assert "Titre Économie 3" in html["eco@example.org"] and "Sport" not in html["eco@example.org"]
    assert "Hello Ann," in html["english@example.org"] and "Read more" in html["english@example.org"]
    assert "Bonjour Tous &amp; &lt;Toutes&gt;," in html["tous@example.org"]  # a name is escaped, never markup
    assert "Bonjour Awa," in html["sport2@example.org"]
    for who, m in mail.items():
        assert m["To"] == who and m["List-Unsubscribe"].startswith("<https://echo.example/desabonnement?jeton=")
        assert str(subs.find("news", who).token) in m["List-Unsubscribe"]
    store.close()


def test_frequencies_are_streams_with_their_own_schedule_cursor_and_readers(tmp_path, db_url):
    cfg = config(tmp_path, db_url)
    store = Store(db_url)
    channels = Channels(cfg)
    kind = channels.kind(cfg.channels[0])
    streams = {s.id: s for s in kind.streams(cfg.channels[0], cfg.site)}
    assert list(streams) == ["news", "news~instant", "news~weekly"]
    assert streams["news~instant"].mode == "article" and streams["news~instant"].schedule.every == timedelta(minutes=10)
    assert streams["news~weekly"].schedule.cron == "30 6 * * *"  # every day at the channel's time …
    assert streams["news~weekly"].cursor(NOW) == "news~weekly-2"  # … for the readers of that weekday
    store.articles.upsert([article(1, "Sport"), article(2, "Politique")], now=NOW)
    store.subscribers.add("news", "daily@example.org", None, now=NOW)
    store.subscribers.add("news", "instant@example.org", None, now=NOW, frequency=Frequency.INSTANT)
    store.subscribers.add("news", "wed@example.org", None, now=NOW, frequency=Frequency.WEEKLY, weekly_day=2)
    store.subscribers.add("news", "fri@example.org", None, now=NOW, frequency=Frequency.WEEKLY, weekly_day=4)
    daily = publish(channels, store, cfg.channels[0], now=NOW, stream=streams["news"])
    instant = publish(channels, store, cfg.channels[0], now=NOW, stream=streams["news~instant"])
    weekly = publish(channels, store, cfg.channels[0], now=NOW, stream=streams["news~weekly"])
    to = {}
    for row in store.outbox.list():
        to.setdefault(row.edition_id, []).append(row.destination)
    assert to[daily.edition_id] == ["daily@example.org"]
    assert to[instant.edition_id] == ["instant@example.org", "instant@example.org"]  # one email per article
    assert to[weekly.edition_id] == ["wed@example.org"]
    # each stream keeps its own cursor: the same articles went to each of them once
    assert (daily.articles, instant.articles, weekly.articles) == (2, 2, 2)
    again = publish(channels, store, cfg.channels[0], now=NOW + timedelta(days=2), stream=streams["news~weekly"])
    assert again.articles == 2 and again.messages == 1  # Friday's readers get the week, from their own cursor
    store.close()
