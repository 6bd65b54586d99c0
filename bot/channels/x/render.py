"""Editions → X posts: each one X accepts, by twitter-text's weighted count.

Titles are shortened, never URLs; an article URL X cannot fit (over ~4,100 characters, or
on a domain twitter-text does not know, which then counts character by character) gives
way to the site's URL, and as a last resort the post is the title alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from ...errors import TemplateError
from ...models import Article, Edition
from ...render import Templates
from ...text import ELLIPSIS, last_resort_title, said_fallback, shrink, squeeze
from . import tweet
from .settings import XChannelSettings

ROLES = {"digest": "x/digest.txt", "article": "x/article.txt"}


@dataclass(frozen=True)
class XPost:
    """One post's text."""

    text: str


def shorten(text: str, budget: int) -> str:
    """At most ``budget`` weighted characters of ``text``, by X's rules (word boundary,
    never inside a URL or an emoji), or "" when not even « … » fits."""
    if not text or budget <= 1:
        return ""
    try:
        return tweet.truncate_to_fit(squeeze(text), budget)
    except ValueError:
        return ""


def _clean(article: Article) -> Article:
    """``article`` with the characters X refuses removed from what an X template shows."""
    return replace(article, title=tweet.clean(article.title), summary=tweet.clean(article.summary),
                   author=None if article.author is None else tweet.clean(article.author),
                   categories=tuple(tweet.clean(c) for c in article.categories))


class XRenderer:
    def __init__(self, templates: Templates):
        self.templates = templates
        self.site = templates.site

    def posts(self, channel: XChannelSettings, edition: Edition) -> list[XPost]:
        """One post per article in article mode, one post linking to the site for a digest.

        Each post is one X accepts (:func:`tweet.fits`): 280 weighted characters at most
        and no character twitter-text refuses (they are removed, see :func:`tweet.clean`)."""
        role = "article" if channel.mode == "article" else "digest"
        name = self.templates.name(channel, role, ROLES)
        site = self.site.base_url

        def render_with(extra: Callable[[list[Article]], dict[str, Any]]) -> Callable[[list[Article]], str]:
            return lambda arts: tweet.clean(self.templates.render(
                name, self.templates.context(channel, edition, arts, **extra(arts)))).strip()

        cleaned = [_clean(a) for a in edition.articles]
        groups = [[a] for a in cleaned] if role == "article" else [cleaned]
        posts = []
        for arts in groups:
            render = render_with((lambda a: {"article": a[0]}) if role == "article" else (lambda a: {}))
            if not render(arts):
                raise TemplateError(name, "the post is empty")
            rungs: list[tuple[list[Article], str | None]] = [(arts, None)]
            if any(a.url != site for a in arts):
                rungs.append(([replace(a, url=site) for a in arts], "with the site URL instead of its own"))
            text = None
            for candidate, how in rungs:
                found = shrink(render, candidate, tweet.fits, tweet.weighted_length, shorten, tweet.MAX_WEIGHTED)
                if found is not None:
                    text = found[1]
                    if how:
                        said_fallback(channel, arts[0].url, how)
                    break
            if text is None:
                if not arts:
                    raise TemplateError(name, f"the post is over {tweet.MAX_WEIGHTED} weighted characters "
                                              "with no article in it; the template's own text is too long")
                said_fallback(channel, arts[0].url, "as its title only")
                title = last_resort_title([arts[0].title, channel.title, self.site.name, self.site.base_url])
                text = shorten(tweet.clean(title), tweet.MAX_WEIGHTED) or ELLIPSIS
            posts.append(XPost(text))
        return posts
