"""Editions → email, Telegram and X text, within each service's limits by construction.

Email is split in two because a digest goes to thousands of subscribers: the article list
(:class:`EmailDigest`) is rendered and CSS-inlined once per edition and stored once, and
only a small :class:`EmailEnvelope` (greeting, unsubscribe link) is made per recipient.
The envelope is the layout template rendered with a unique marker in place of the body,
then cut in two at the marker; :func:`assemble_email` glues the pieces back at send time.

Telegram posts and X posts are made to fit rather than checked afterwards: a summary (then
a title) is shortened on a word boundary *before* escaping, so a cut never lands inside a
tag or an entity, and a digest too long for one Telegram message is split between articles.
When shortening is not enough (a 5,000-character tracking URL, a URL X counts character by
character, a thousand categories) each article goes down a ladder of plainer forms (no
photo, the site's URL instead of its own, its title alone) that always ends in a post
within the limits. Editions take the oldest unsent article first, so an article that
could not be rendered would block its channel for good: content never raises, only a
broken template does (TemplateError).
"""

from __future__ import annotations

import logging
import re
import traceback
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import css_inline
import jinja2
from markupsafe import Markup

from bot.config import Channel, Config
from bot.errors import TemplateError
from bot.models import Article, Edition, Recipient
from bot.render import telegram as tg
from bot.render import tweet
from bot.render.tweet import MAX_WEIGHTED, truncate_to_fit, weighted_length

from .environment import build_environment, template_folders
from .filters import ELLIPSIS, excerpt
from .sample import sample_edition
from .strings import Strings

# Which template each role uses unless the channel's ``templates`` table says otherwise.
DEFAULT_TEMPLATES: dict[str, dict[str, str]] = {
    "email": {
        "subject": "email/subject.txt",
        "html": "email/digest.html",
        "text": "email/digest.txt",
        "layout_html": "email/layout.html",
        "layout_text": "email/layout.txt",
        "css": "email/style.css",
    },
    "telegram": {"digest": "telegram/digest.html", "article": "telegram/article.html"},
    "x": {"digest": "x/digest.txt", "article": "x/article.txt"},
}

# A start tag as an html5ever serializer writes it (css_inline, nh3): every attribute value
# in double quotes with '"' escaped, so a value is exactly "[^"]*" even if it holds '>'.
_START_TAG = re.compile(r'<[A-Za-z][^\s/>]*(?:\s+[^\s"\'>/=]+(?:="[^"]*")?)*\s*/?>')
_ATTRIBUTE_VALUE = re.compile(r'="([^"]*)"')
# Whitespace that may be squeezed: every kind except the no-break spaces of French typography.
_SQUEEZE = re.compile(r"[^\S\u00a0\u202f]+")

_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")

log = logging.getLogger(__name__)

# ``check`` renders against a sample edition dated here: fixed, so check is repeatable.
CHECK_NOW = datetime(2024, 12, 2, 7, 0, tzinfo=timezone.utc)


@dataclass(frozen=True)
class EmailDigest:
    """The part of an edition's email that is the same for every subscriber."""

    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class EmailEnvelope:
    """One subscriber's wrapping around the shared digest."""

    html_head: str
    html_tail: str
    text_head: str
    text_tail: str


@dataclass(frozen=True)
class TelegramPost:
    """One Telegram message in HTML parse mode; with ``photo_url`` the text is the caption."""

    text: str
    photo_url: str | None = None


def assemble_email(digest: EmailDigest, envelope: EmailEnvelope) -> tuple[str, str, str]:
    """(subject, html, text) of one subscriber's email."""
    return (
        digest.subject,
        envelope.html_head + digest.html + envelope.html_tail,
        envelope.text_head + digest.text + envelope.text_tail,
    )


def _escape_attribute_brackets(html: str) -> str:
    """HTML5 serializers (css_inline's included) leave '<' and '>' raw inside attribute
    values. That is valid HTML, but a title such as "<script>" reappearing in an ``alt``
    would alarm spam filters and naive sanitisers, so put the entities back. Text is
    untouched: the serializer already escapes '<' there, so a raw '<' only starts a tag."""
    def fix(tag: re.Match[str]) -> str:
        return _ATTRIBUTE_VALUE.sub(
            lambda v: '="' + v.group(1).replace("<", "&lt;").replace(">", "&gt;") + '"', tag.group(0))
    return _START_TAG.sub(fix, html)


def _shorten_for_x(text: str, budget: int) -> str:
    """At most ``budget`` weighted characters of ``text``, by X's rules (word boundary,
    never inside a URL or an emoji), or "" when not even « … » fits."""
    if not text or budget <= 1:
        return ""
    try:
        return truncate_to_fit(_SQUEEZE.sub(" ", text).strip(), budget)
    except ValueError:
        return ""


def _cut_utf16(text: str, limit: int) -> str:
    """The longest :func:`excerpt` of ``text`` that is at most ``limit`` UTF-16 code units
    (an emoji counts 2, so ``limit // 2`` characters always fit)."""
    lo, hi = limit // 2, limit + 1  # excerpt(text, lo) fits; the largest that fits is in [lo, hi)
    if tg.utf16_len(excerpt(text, limit)) <= limit:
        return excerpt(text, limit)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if tg.utf16_len(excerpt(text, mid)) <= limit:
            lo = mid
        else:
            hi = mid
    return excerpt(text, lo)


def _clean_for_x(article: Article) -> Article:
    """``article`` with the characters X refuses removed from what an X template shows."""
    return replace(article, title=tweet.clean(article.title), summary=tweet.clean(article.summary),
                   author=None if article.author is None else tweet.clean(article.author),
                   categories=tuple(tweet.clean(c) for c in article.categories))


class Renderer:
    """Renders editions with one Jinja environment built from the config."""

    def __init__(self, config: Config):
        self.config = config
        self.folders: list[Path] = template_folders(config)
        self.env: jinja2.Environment = build_environment(config)
        # Alphanumeric only, so neither autoescape nor the CSS inliner can alter it.
        self._marker = "TAMTAMBODY" + uuid.uuid4().hex
        self._strings: dict[str, Strings] = {}
        self._css: dict[str, str] = {}

    # ------------------------------------------------------------------ templates

    def template_name(self, channel: Channel, role: str) -> str:
        """The template ``channel`` uses for ``role``: its override, else the default."""
        defaults = DEFAULT_TEMPLATES[channel.type]
        if role not in defaults:
            raise TemplateError(role, f"a {channel.type} channel has no template role {role!r}; "
                                      f"expected one of {', '.join(defaults)}")
        return channel.templates.get(role) or defaults[role]

    def _load(self, name: str) -> jinja2.Template:
        """Find and compile a template; a missing or unparsable one is a TemplateError."""
        try:
            return self.env.get_template(name)
        except jinja2.TemplateNotFound as exc:
            missing = exc.name or name
            searched = ", ".join(str(f) for f in self.folders)
            via = "" if missing == name else f" (needed by {name})"
            raise TemplateError(missing, f"not found{via}; searched {searched}") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(exc.name or name, f"syntax error: {exc.message}", exc.lineno) from exc

    def _render(self, name: str, context: dict[str, Any]) -> str:
        """Render one template, turning every failure into a TemplateError with a line."""
        template = self._load(name)
        try:
            return template.render(context)
        except jinja2.TemplateNotFound as exc:  # an {% include %}/{% import %} names a missing file
            where, line = self._locate(exc, name)
            searched = ", ".join(str(f) for f in self.folders)
            raise TemplateError(where, f"uses {exc.name or '?'!s}, which is not found; searched {searched}", line) from exc
        except jinja2.TemplateSyntaxError as exc:  # … or a file that does not parse
            raise TemplateError(exc.name or name, f"syntax error: {exc.message}", exc.lineno) from exc
        except Exception as exc:  # an admin's template can fail in any way; never crash the run
            where, line = self._locate(exc, name)
            if isinstance(exc, jinja2.UndefinedError):
                message = f"undefined variable: {exc.message}"
            else:
                message = f"{type(exc).__name__}: {exc}"
            raise TemplateError(where, message, line) from exc

    def _locate(self, exc: BaseException, name: str) -> tuple[str, int | None]:
        """The template and line where a render error happened. Jinja rewrites the
        traceback so template frames carry the template's file name and line."""
        found: tuple[str, int | None] = (name, None)
        for frame in traceback.extract_tb(exc.__traceback__):
            path = Path(frame.filename)
            for folder in self.folders:
                try:
                    rel = path.resolve().relative_to(folder.resolve())
                except (ValueError, OSError):
                    continue
                found = (rel.as_posix(), frame.lineno)
                break
        return found

    def _strings_for(self, language: str) -> Strings:
        if language not in self._strings:
            self._strings[language] = Strings(language)
        return self._strings[language]

    def _base_context(self, channel: Channel) -> dict[str, Any]:
        site = self.config.site
        lang = channel.language or site.language
        return {
            "site": site,
            "channel": channel,
            "title": channel.title or site.name,
            "t": self._strings_for(lang),
            "lang": lang,
            "locale": lang,
            "tz": site.tz,
        }

    def _context(self, channel: Channel, edition: Edition, articles: Sequence[Article] | None = None,
                 **extra: Any) -> dict[str, Any]:
        arts = list(edition.articles if articles is None else articles)
        return {
            **self._base_context(channel),
            "edition": edition,
            "articles": arts,
            "count": len(edition.articles),
            "now": edition.created_at,
            **extra,
        }

    # ------------------------------------------------------------------ email

    def _css_for(self, channel: Channel) -> str:
        if channel.id not in self._css:
            self._css[channel.id] = self._render(self.template_name(channel, "css"), self._base_context(channel))
        return self._css[channel.id]

    def email_digest(self, channel: Channel, edition: Edition) -> EmailDigest:
        """Subject, inlined HTML body and text body shared by every recipient of ``edition``."""
        ctx = self._context(channel, edition)
        subject_name = self.template_name(channel, "subject")
        # One line: a newline in a subject would be a header injection.
        subject = _SQUEEZE.sub(" ", self._render(subject_name, ctx)).strip()
        if not subject:
            raise TemplateError(subject_name, "the subject is empty")
        html_name = self.template_name(channel, "html")
        body = self._render(html_name, ctx)
        try:
            html = css_inline.inline_fragment(body.strip(), self._css_for(channel), load_remote_stylesheets=False)
            html = _escape_attribute_brackets(html)
        except (css_inline.InlineError, ValueError) as exc:
            raise TemplateError(html_name, f"its CSS could not be inlined: {exc}") from exc
        text = self._render(self.template_name(channel, "text"), ctx).strip()
        return EmailDigest(subject=subject, html=html, text=text)

    def email_envelope(self, channel: Channel, digest: EmailDigest, recipient: Recipient) -> EmailEnvelope:
        """The greeting and footer around ``digest`` for one recipient."""
        ctx = {
            **self._base_context(channel),
            "subject": digest.subject,
            "recipient": recipient,
            "css": Markup(self._css_for(channel)),
        }
        html_name = self.template_name(channel, "layout_html")
        page = self._render(html_name, {**ctx, "body": Markup(self._marker)})
        try:
            page = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False).inline(page)
            page = _escape_attribute_brackets(page)
        except (css_inline.InlineError, ValueError) as exc:
            raise TemplateError(html_name, f"its CSS could not be inlined: {exc}") from exc
        html_head, html_tail = self._split(html_name, page)
        text_name = self.template_name(channel, "layout_text")
        text_head, text_tail = self._split(text_name, self._render(text_name, {**ctx, "body": self._marker}))
        return EmailEnvelope(html_head=html_head, html_tail=html_tail,
                             text_head=text_head.lstrip(), text_tail=text_tail.rstrip() + "\n")

    def _split(self, name: str, page: str) -> tuple[str, str]:
        pieces = page.split(self._marker)
        if len(pieces) != 2:
            raise TemplateError(name, f"a layout must show {{{{ body }}}} exactly once, it shows it {len(pieces) - 1} times")
        return pieces[0], pieces[1]

    # ------------------------------------------------------------------ fitting

    def _shrink(self, render: Callable[[list[Article]], str], articles: list[Article],
                ok: Callable[[str], bool], size: Callable[[str], int], shorten: Callable[[str, int], str],
                limit: int) -> tuple[list[Article], str] | None:
        """Render ``articles``; if ``ok`` refuses the output, shorten summaries, then titles,
        until it accepts. Returns the shortened articles and the output, or None when even
        the shortest titles without summaries are refused (the caller then takes the next
        rung of its ladder; nothing here raises for content that is too long).

        The shortening happens on the plain text, before the template escapes it, so it
        never cuts a tag or an entity; a binary search finds the longest text that fits.
        ``shorten(text, n)`` keeps at most ``n`` units of ``text`` (characters for
        Telegram, X's weighted characters for X); ``size`` measures a field in those units
        (or more), which bounds the search.

        A shown field longer than the post's ``limit`` can never fit, so longer fields are
        first cut to ``limit`` (a field the template does not show may be cut too: no one
        sees it). That keeps a 20,000-character title from costing seconds of measuring.
        """
        def clip(text: str) -> str:
            return text if len(text) <= limit else shorten(text, limit)

        articles = [a if len(a.title) <= limit and len(a.summary) <= limit
                    else replace(a, title=clip(a.title), summary=clip(a.summary)) for a in articles]
        out = render(articles)
        if ok(out):
            return articles, out

        def shrink(summary: int | None, title: int | None) -> list[Article]:
            return [replace(a,
                            summary=a.summary if summary is None else shorten(a.summary, summary),
                            title=a.title if title is None else shorten(a.title, title))
                    for a in articles]

        for field, longest in (("summary", max((size(a.summary) for a in articles), default=0)),
                               ("title", max((size(a.title) for a in articles), default=0))):
            def attempt(n: int) -> tuple[list[Article], str]:
                arts = shrink(n, None) if field == "summary" else shrink(0, n)
                return arts, render(arts)

            start = 0 if field == "summary" else len(ELLIPSIS) + 1
            arts, out = attempt(start)
            if not ok(out):
                continue
            lo, hi = start, min(longest, limit + 1)  # the largest n that fits lies in [lo, hi)
            best = (arts, out)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                arts_mid, out_mid = attempt(mid)
                if ok(out_mid):
                    lo, best = mid, (arts_mid, out_mid)
                else:
                    hi = mid
            return best
        return None

    def _fallback(self, channel: Channel, article: Article, how: str) -> None:
        """Say so when an article went out in a reduced form: an admin may want to know."""
        url = article.url if len(article.url) <= 120 else article.url[:120] + "…"
        log.warning("channel %s: article %s is too long for a %s post even shortened; sent %s",
                    channel.id, url, channel.type, how)

    def _fallback_title(self, channel: Channel, articles: Sequence[Article]) -> str:
        """The words a last-resort post shows: the (first) article's title, else the channel's."""
        for text in [*(a.title for a in articles[:1]), channel.title or "", self.config.site.name,
                     self.config.site.base_url]:
            flat = _SQUEEZE.sub(" ", text or "").strip()
            if flat:
                return flat
        return ELLIPSIS

    # ------------------------------------------------------------------ Telegram

    def telegram_posts(self, channel: Channel, edition: Edition) -> list[TelegramPost]:
        """Posts for ``edition``: one per article in article mode (a photo with a caption
        when the article has an image), else the digest split into as few posts as fit.
        Every post is within Telegram's limits, whatever the articles hold."""
        if channel.mode == "article":
            return [self._telegram_article(channel, edition, a) for a in edition.articles]
        return self._telegram_digest(channel, edition)

    def _telegram_render(self, name: str, ctx: dict[str, Any]) -> str:
        # Templates are easier to write when blank lines may pile up; a post shows one.
        return _BLANK_LINES.sub("\n\n", tg.tidy(self._render(name, ctx))).strip()

    def _telegram_article(self, channel: Channel, edition: Edition, article: Article) -> TelegramPost:
        """One article's post, down a ladder that always ends in a post: the template with
        the summary then the title shortened; then without the photo (4,096 characters
        instead of a 1,024-character caption); then with the site's URL in place of the
        article's; finally the article's title alone, cut to fit."""
        name = self.template_name(channel, "article")

        def attempt(art: Article, photo: str | None) -> str | None:
            limit = tg.MAX_CAPTION if photo else tg.MAX_TEXT

            def render(arts: list[Article]) -> str:
                return self._telegram_render(name, self._context(
                    channel, edition, arts, article=arts[0], caption=bool(photo), part=1, parts=1))

            found = self._shrink(render, [art], lambda text: tg.visible_length(text) <= limit, tg.utf16_len,
                                 excerpt, limit)
            if found is not None and not found[1]:
                raise TemplateError(name, "the post is empty")
            return None if found is None else found[1]

        photo = article.image_url
        text = attempt(article, photo)
        if text is not None:
            return TelegramPost(text=text, photo_url=photo)
        site = self.config.site.base_url
        rungs: list[tuple[Article, str]] = []
        if photo:
            rungs.append((article, "without its photo, as a text message"))
        if article.url != site:
            rungs.append((replace(article, url=site), ("without its photo, " if photo else "")
                          + "with the site URL instead of its own"))
        for candidate, how in rungs:
            text = attempt(candidate, None)
            if text is not None:
                self._fallback(channel, article, how)
                return TelegramPost(text=text)
        self._fallback(channel, article, "as its title only")
        return TelegramPost(text=tg.escape(_cut_utf16(self._fallback_title(channel, [article]), tg.MAX_TEXT)))

    def _telegram_digest(self, channel: Channel, edition: Edition) -> list[TelegramPost]:
        name = self.template_name(channel, "digest")
        limit = tg.MAX_TEXT

        def ok(text: str) -> bool:
            return tg.visible_length(text) <= limit

        def render(arts: list[Article], part: int, parts: int) -> str:
            return self._telegram_render(name, self._context(
                channel, edition, arts, part=part, parts=parts, caption=False))

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
            current = [self._digest_item(channel, name, article, lambda arts, p=part: render(arts, p, upper),
                                         ok, tg.utf16_len, excerpt, limit)]
        parts.append(current)
        posts = []
        for i, arts in enumerate(parts, 1):
            text = render(arts, i, len(parts))
            if not ok(text):  # only a template that grows when the total shrinks
                raise TemplateError(name, f"post {i} of {len(parts)} is {tg.visible_length(text)} characters, "
                                          f"over Telegram's {limit}")
            posts.append(TelegramPost(text=text))
        return posts

    def _digest_item(self, channel: Channel, name: str, article: Article, render: Callable[[list[Article]], str],
                     ok: Callable[[str], bool], size: Callable[[str], int],
                     shorten: Callable[[str, int], str], limit: int) -> Article:
        """``article`` as it fits alone in a digest post: shortened; else with the site's URL
        in place of its own; else reduced to its title (no summary, no categories, no
        picture, the site's URL). A template that cannot fit even that has a fixed part too
        long for any post, which is the template's fault: TemplateError."""
        site = self.config.site.base_url
        rungs: list[tuple[Article, str | None]] = [(article, None)]
        if article.url != site:
            rungs.append((replace(article, url=site), "with the site URL instead of its own"))
        rungs.append((replace(article, url=site, summary="", categories=(), author=None, content_html="",
                              image_url=None), "as its title only"))
        for candidate, how in rungs:
            found = self._shrink(render, [candidate], ok, size, shorten, limit)
            if found is not None:
                if how:
                    self._fallback(channel, article, how)
                return found[0][0]
        raise TemplateError(name, "a post does not fit even with one article reduced to a two-letter title; "
                                  "the template's own text is too long")

    # ------------------------------------------------------------------ X

    def x_posts(self, channel: Channel, edition: Edition) -> list[str]:
        """One post per article in article mode, one post linking to the site for a digest.

        Each post is one X accepts (:func:`bot.render.tweet.fits`): 280 weighted characters
        at most and no character twitter-text refuses (they are removed, see
        :func:`bot.render.tweet.clean`). Titles are shortened, never URLs; an article URL
        X cannot fit (over ~4,100 characters, or on a domain twitter-text does not know,
        which then counts character by character) gives way to the site's URL, and as a
        last resort the post is the title alone."""
        role = "article" if channel.mode == "article" else "digest"
        name = self.template_name(channel, role)
        site = self.config.site.base_url

        def render_with(extra: Callable[[list[Article]], dict[str, Any]]) -> Callable[[list[Article]], str]:
            return lambda arts: tweet.clean(self._render(name, self._context(channel, edition, arts,
                                                                             **extra(arts)))).strip()

        cleaned = [_clean_for_x(a) for a in edition.articles]
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
                found = self._shrink(render, candidate, tweet.fits, weighted_length, _shorten_for_x, MAX_WEIGHTED)
                if found is not None:
                    text = found[1]
                    if how:
                        self._fallback(channel, arts[0], how)
                    break
            if text is None:
                if not arts:
                    raise TemplateError(name, f"the post is over {MAX_WEIGHTED} weighted characters "
                                              "with no article in it; the template's own text is too long")
                self._fallback(channel, arts[0], "as its title only")
                text = _shorten_for_x(tweet.clean(self._fallback_title(channel, arts)), MAX_WEIGHTED) or ELLIPSIS
            posts.append(text)
        return posts

    # ------------------------------------------------------------------ check

    def check(self) -> list[str]:
        """Every problem with the templates the configured channels use, one line each:
        unknown roles, missing templates, syntax errors, and errors from a trial render
        against the sample edition. ``[]`` when all is well."""
        problems: list[str] = []
        for channel in self.config.channels:
            roles = DEFAULT_TEMPLATES[channel.type]
            for role in channel.templates:
                if role not in roles:
                    problems.append(f"channel {channel.id}: templates.{role}: unknown role for a {channel.type} "
                                    f"channel; expected one of {', '.join(roles)}")
            used = list(roles) if channel.type == "email" else [channel.mode]
            loadable = True
            for role in used:
                try:
                    name = self.template_name(channel, role)
                    self._load(name)
                except TemplateError as exc:
                    problems.append(f"channel {channel.id}: {exc}")
                    loadable = False
            if not loadable:
                continue
            editions = [sample_edition(channel, self.config, CHECK_NOW)]
            if channel.send_empty:
                editions.append(Edition(channel.id, (), CHECK_NOW))
            for edition in editions:
                try:
                    self._trial(channel, edition)
                except TemplateError as exc:
                    kind = "an empty edition" if not edition.articles else "the sample edition"
                    problems.append(f"channel {channel.id}: with {kind}: {exc}")
        return list(dict.fromkeys(problems))

    def _trial(self, channel: Channel, edition: Edition) -> None:
        if channel.type == "email":
            digest = self.email_digest(channel, edition)
            for recipient in (Recipient("lecteur@example.org", "Aminata", "https://example.org/unsub?t=a&b=1"),
                              Recipient("anonyme@example.org")):
                self.email_envelope(channel, digest, recipient)
        elif channel.type == "telegram":
            self.telegram_posts(channel, edition)
        else:
            self.x_posts(channel, edition)
