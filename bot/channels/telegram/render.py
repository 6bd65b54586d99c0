"""Editions → Telegram posts, within Telegram's limits by construction.

A summary (then a title) is shortened on a word boundary *before* escaping, so a cut never
lands inside a tag or an entity, and a digest too long for one message is split between
articles. When shortening is not enough (a 5,000-character tracking URL, a thousand
categories) an article goes down a ladder of plainer forms (no photo, the site's URL
instead of its own, its title alone) that always ends in a post within the limits: content
never raises, only a broken template does (TemplateError).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Callable

from ...errors import TemplateError
from ...models import Article, Edition
from ...render import Templates
from ...text import cut_to, excerpt, last_resort_title, said_fallback, shrink
from . import html as tg
from .settings import TelegramChannelSettings

ROLES = {"digest": "telegram/digest.html", "article": "telegram/article.html"}
_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")


@dataclass(frozen=True)
class TelegramPost:
    """One Telegram message in HTML parse mode; with ``photo_url`` the text is the caption."""

    text: str
    photo_url: str | None = None


class TelegramRenderer:
    def __init__(self, templates: Templates):
        self.templates = templates
        self.site = templates.site

    def posts(self, channel: TelegramChannelSettings, edition: Edition) -> list[TelegramPost]:
        """Posts for ``edition``: one per article in article mode (a photo with a caption
        when the article has an image), else the digest split into as few posts as fit.
        Every post is within Telegram's limits, whatever the articles hold."""
        if channel.mode == "article":
            return [self._article(channel, edition, a) for a in edition.articles]
        return self._digest(channel, edition)

    def _render(self, name: str, ctx: dict[str, Any]) -> str:
        # Templates are easier to write when blank lines may pile up; a post shows one.
        return _BLANK_LINES.sub("\n\n", tg.tidy(self.templates.render(name, ctx))).strip()

    def _article(self, channel: TelegramChannelSettings, edition: Edition, article: Article) -> TelegramPost:
        """One article's post, down a ladder that always ends in a post: the template with
        the summary then the title shortened; then without the photo (4,096 characters
        instead of a 1,024-character caption); then with the site's URL in place of the
        article's; finally the article's title alone, cut to fit."""
        name = self.templates.name(channel, "article", ROLES)

        def attempt(art: Article, photo: str | None) -> str | None:
            limit = tg.MAX_CAPTION if photo else tg.MAX_TEXT

            def render(arts: list[Article]) -> str:
                return self._render(name, self.templates.context(
                    channel, edition, arts, article=arts[0], caption=bool(photo), part=1, parts=1))

            found = shrink(render, [art], lambda text: tg.visible_length(text) <= limit, tg.utf16_len,
                           excerpt, limit)
            if found is not None and not found[1]:
                raise TemplateError(name, "the post is empty")
            return None if found is None else found[1]

        photo = article.image_url
        text = attempt(article, photo)
        if text is not None:
            return TelegramPost(text=text, photo_url=photo)
        site = self.site.base_url
        rungs: list[tuple[Article, str]] = []
        if photo:
            rungs.append((article, "without its photo, as a text message"))
        if article.url != site:
            rungs.append((replace(article, url=site), ("without its photo, " if photo else "")
                          + "with the site URL instead of its own"))
        for candidate, how in rungs:
            text = attempt(candidate, None)
            if text is not None:
                said_fallback(channel, article.url, how)
                return TelegramPost(text=text)
        said_fallback(channel, article.url, "as its title only")
        title = last_resort_title([article.title, channel.title, self.site.name, self.site.base_url])
        return TelegramPost(text=tg.escape(cut_to(title, tg.MAX_TEXT, tg.utf16_len)))

    def _digest(self, channel: TelegramChannelSettings, edition: Edition) -> list[TelegramPost]:
        name = self.templates.name(channel, "digest", ROLES)
        limit = tg.MAX_TEXT

        def ok(text: str) -> bool:
            return tg.visible_length(text) <= limit

        def render(arts: list[Article], part: int, parts: int) -> str:
            return self._render(name, self.templates.context(channel, edition, arts, part=part, parts=parts,
                                                             caption=False))

        articles = list(edition.articles)
        whole = render(articles, 1, 1)
        if ok(whole):
            return [TelegramPost(text=whole)]
        # Pack greedily, numbering against an upper bound of the number of posts so a
        # post's "(2/3)" can only get shorter once the real total is known.
        upper = max(len(articles), 1)
        parts: list[list[Article]] = []
        current: list[Article] = []
        for article in articles:
            part = len(parts) + 1
            if current and ok(render(current + [article], part, upper)):
                current.append(article)
                continue
            if current:
                parts.append(current)
                part += 1
            current = [self._digest_item(channel, name, article, lambda arts, p=part: render(arts, p, upper), ok)]
        parts.append(current)
        posts = []
        for i, arts in enumerate(parts, 1):
            text = render(arts, i, len(parts))
            if not ok(text):  # only a template that grows when the total shrinks
                raise TemplateError(name, f"post {i} of {len(parts)} is {tg.visible_length(text)} characters, "
                                          f"over Telegram's {limit}")
            posts.append(TelegramPost(text=text))
        return posts

    def _digest_item(self, channel: TelegramChannelSettings, name: str, article: Article,
                     render: Callable[[list[Article]], str], ok: Callable[[str], bool]) -> Article:
        """``article`` as it fits alone in a digest post: shortened; else with the site's URL
        in place of its own; else reduced to its title (no summary, no categories, no
        picture, the site's URL). A template that cannot fit even that has a fixed part too
        long for any post, which is the template's fault: TemplateError."""
        site = self.site.base_url
        rungs: list[tuple[Article, str | None]] = [(article, None)]
        if article.url != site:
            rungs.append((replace(article, url=site), "with the site URL instead of its own"))
        rungs.append((replace(article, url=site, summary="", categories=(), author=None, content_html="",
                              image_url=None), "as its title only"))
        for candidate, how in rungs:
            found = shrink(render, [candidate], ok, tg.utf16_len, excerpt, tg.MAX_TEXT)
            if found is not None:
                if how:
                    said_fallback(channel, article.url, how)
                return found[0][0]
        raise TemplateError(name, "a post does not fit even with one article reduced to a two-letter title; "
                                  "the template's own text is too long")
