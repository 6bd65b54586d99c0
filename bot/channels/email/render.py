"""Editions → email: a digest shared by every recipient, and a small envelope per recipient.

A digest goes to thousands of subscribers, so the article list (:class:`EmailDigest`) is
rendered and CSS-inlined once per edition and stored once; only a small
:class:`EmailEnvelope` (greeting, unsubscribe link) is made per recipient. The envelope is
the layout template rendered with a unique marker in place of the body, then cut in two
at the marker; :func:`assemble` glues the pieces back at send time.

Before the digest is rendered, the feed's own text is made ready for an inbox, once per
edition (:meth:`EmailRenderer.prepare`): French typography on titles, summaries, authors,
categories and alt texts for a French channel, a space put back after a sentence a CMS glued
to the next, and article links without the feed's tracking parameters, with the channel's
``campaign`` parameters instead. Templates then show the fields as they are.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import css_inline
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from ...errors import TemplateError
from ...models import Edition
from ...render import Templates
from ...text import french_html, link, squeeze, typeset, typography
from .settings import EmailChannelSettings

ROLES = {
    "subject": "email/subject.txt",
    "html": "email/digest.html",
    "text": "email/digest.txt",
    "layout_html": "email/layout.html",
    "layout_text": "email/layout.txt",
    "css": "email/style.css",
    "preheader": "email/preheader.txt",
}

# A start tag as an html5ever serializer writes it (css_inline, nh3): every attribute value
# in double quotes with '"' escaped, so a value is exactly "[^"]*" even if it holds '>'.
_START_TAG = re.compile(r'<[A-Za-z][^\s/>]*(?:\s+[^\s"\'>/=]+(?:="[^"]*")?)*\s*/?>')
_ATTRIBUTE_VALUE = re.compile(r'="([^"]*)"')


@dataclass(frozen=True)
class Recipient:
    """An email subscriber as the templates see them."""

    email: str
    name: str | None = None
    unsubscribe_url: str | None = None
    # with [web]: the reader's signed preferences page, and the edition in the web archive
    preferences_url: str | None = None
    archive_url: str | None = None


@dataclass(frozen=True)
class EmailDigest:
    """The part of an edition's email that is the same for every subscriber."""

    subject: str
    html: str
    text: str
    # the hidden line inbox lists show after the subject; the layout puts it first in <body>
    preheader: str = ""


@dataclass(frozen=True)
class EmailEnvelope:
    """One subscriber's wrapping around the shared digest."""

    html_head: str
    html_tail: str
    text_head: str
    text_tail: str


def assemble(digest: EmailDigest, envelope: EmailEnvelope) -> tuple[str, str, str]:
    """(subject, html, text) of one subscriber's email."""
    return (
        digest.subject,
        envelope.html_head + digest.html + envelope.html_tail,
        envelope.text_head + digest.text + envelope.text_tail,
    )


def _fill(template: str, token: str, email: str) -> str:
    return template.replace("{token}", quote(token, safe="")).replace("{email}", quote(email, safe="@"))


def unsubscribe_url(channel: EmailChannelSettings, token: str, email: str) -> str | None:
    """The channel's ``unsubscribe_url`` with ``{token}`` and ``{email}`` filled in."""
    if not channel.unsubscribe_url:
        return None
    return _fill(channel.unsubscribe_url, token, email)


def unsubscribe_mailto(channel: EmailChannelSettings, token: str, email: str) -> str | None:
    """The channel's ``unsubscribe_mailto`` as a mailto: URL for one reader. Without a
    ``{token}`` of its own, the subject carries the token, so the mailbox knows who leaves."""
    if not channel.unsubscribe_mailto:
        return None
    value = channel.unsubscribe_mailto
    if not value.lower().startswith("mailto:"):
        value = "mailto:" + value
    if "{token}" not in value:
        value += ("&" if "?" in value else "?") + "subject=unsubscribe%20{token}"
    return _fill(value, token, email)


def campaign_for(channel: EmailChannelSettings, edition: Edition) -> dict[str, str]:
    """The channel's ``campaign`` parameters with ``{channel}`` and ``{date}`` filled in."""
    date = edition.created_at.date().isoformat()
    return {k: v.replace("{channel}", channel.id).replace("{date}", date) for k, v in channel.campaign.items()}


@pass_context
def typo(ctx: Context, value: Any) -> str:
    """The ``typo`` filter: the channel's typography on any text a template shows (the
    articles' own fields are already done). On Markup, only the text between tags changes."""
    if value is None:
        return ""
    language = ctx.get("lang")
    if isinstance(value, Markup):
        return Markup(french_html(str(value))) if language == "fr" else value
    return typography(str(value), language)


def _escape_attribute_brackets(html: str) -> str:
    """HTML5 serializers (css_inline's included) leave '<' and '>' raw inside attribute
    values. That is valid HTML, but a title such as "<script>" reappearing in an ``alt``
    would alarm spam filters and naive sanitisers, so put the entities back. Text is
    untouched: the serializer already escapes '<' there, so a raw '<' only starts a tag."""
    def fix(tag: re.Match[str]) -> str:
        return _ATTRIBUTE_VALUE.sub(
            lambda v: '="' + v.group(1).replace("<", "&lt;").replace(">", "&gt;") + '"', tag.group(0))
    return _START_TAG.sub(fix, html)


class EmailRenderer:
    """Renders a channel's digests and envelopes; caches the channel's CSS."""

    def __init__(self, templates: Templates):
        self.templates = templates
        # Alphanumeric only, so neither autoescape nor the CSS inliner can alter it.
        self._marker = "TAMTAMBODY" + uuid.uuid4().hex
        self._css: dict[str, str] = {}

    def _name(self, channel: EmailChannelSettings, role: str) -> str:
        return self.templates.name(channel, role, ROLES)

    def _css_for(self, channel: EmailChannelSettings) -> str:
        if channel.id not in self._css:
            self._css[channel.id] = self.templates.render(self._name(channel, "css"),
                                                          self.templates.base_context(channel))
        return self._css[channel.id]

    def prepare(self, channel: EmailChannelSettings, edition: Edition) -> Edition:
        """``edition`` with its articles' text and links as an inbox should show them (see
        the module docstring). Done once per edition, never per recipient."""
        language = channel.language or self.templates.site.language
        campaign = campaign_for(channel, edition)
        return replace(edition, articles=tuple(replace(typeset(a, language), url=link(a.url, campaign))
                                               for a in edition.articles))

    def digest(self, channel: EmailChannelSettings, edition: Edition) -> EmailDigest:
        """Subject, inlined HTML body and text body shared by every recipient of ``edition``."""
        edition = self.prepare(channel, edition)
        ctx = self.templates.context(channel, edition)
        subject_name = self._name(channel, "subject")
        # One line: a newline in a subject would be a header injection.
        subject = squeeze(self.templates.render(subject_name, ctx))
        if not subject:
            raise TemplateError(subject_name, "the subject is empty")
        preheader = squeeze(self.templates.render(self._name(channel, "preheader"), ctx))
        html_name = self._name(channel, "html")
        body = self.templates.render(html_name, ctx)
        try:
            html = css_inline.inline_fragment(body.strip(), self._css_for(channel), load_remote_stylesheets=False)
            html = _escape_attribute_brackets(html)
        except (css_inline.InlineError, ValueError) as exc:
            raise TemplateError(html_name, f"its CSS could not be inlined: {exc}") from exc
        text = self.templates.render(self._name(channel, "text"), ctx).strip()
        return EmailDigest(subject=subject, html=html, text=text, preheader=preheader)

    def envelope(self, channel: EmailChannelSettings, digest: EmailDigest, recipient: Recipient) -> EmailEnvelope:
        """The greeting and footer around ``digest`` for one recipient."""
        ctx: dict[str, Any] = {
            **self.templates.base_context(channel),
            "subject": digest.subject,
            "preheader": digest.preheader,
            "recipient": recipient,
            "css": Markup(self._css_for(channel)),
        }
        html_name = self._name(channel, "layout_html")
        page = self.templates.render(html_name, {**ctx, "body": Markup(self._marker)})
        try:
            page = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False).inline(page)
            page = _escape_attribute_brackets(page)
        except (css_inline.InlineError, ValueError) as exc:
            raise TemplateError(html_name, f"its CSS could not be inlined: {exc}") from exc
        html_head, html_tail = self._split(html_name, page)
        text_name = self._name(channel, "layout_text")
        text_head, text_tail = self._split(text_name, self.templates.render(text_name, {**ctx, "body": self._marker}))
        return EmailEnvelope(html_head=html_head, html_tail=html_tail,
                             text_head=text_head.lstrip(), text_tail=text_tail.rstrip() + "\n")

    def compile_envelope(self, channel: EmailChannelSettings, digest: EmailDigest, *, named: bool,
                         unsubscribe: bool, pages: bool) -> dict[str, Any] | None:
        """The whole email of one group of readers around ``digest``, cut at the per-reader
        fields: ``{"html": [pieces], "html_fields": [names], "text": …, "text_fields": …}``
        (pieces alternate with fields). The layout is rendered once with a marker in each
        reader field (``named`` says whether the greeting has a name; ``links``/``archive``
        whether the reader's links exist), so a reader's email is a splice, not a render
        (:mod:`.wire`). Returns None when a template altered a field (a filter on the name,
        say), so the marker cannot be found whole: then each reader gets a rendered envelope."""
        token = uuid.uuid4().hex

        def mark(field: str) -> str:
            return f"TTF{token}{field}"

        recipient = Recipient(email=mark("email"), name=mark("name") if named else None,
                              unsubscribe_url=mark("unsubscribe") if unsubscribe else None,
                              preferences_url=mark("preferences") if pages else None,
                              archive_url=mark("archive") if pages else None)
        envelope = self.envelope(channel, digest, recipient)
        pattern = re.compile(f"TTF{token}(email|name|unsubscribe|preferences|archive)")
        out: dict[str, Any] = {}
        for part, whole in (("html", envelope.html_head + digest.html + envelope.html_tail),
                            ("text", envelope.text_head + digest.text + envelope.text_tail)):
            pieces = pattern.split(whole)
            if token in "".join(pieces[0::2]) or token.upper() in "".join(pieces[0::2]).upper():
                return None
            out[part], out[f"{part}_fields"] = pieces[0::2], pieces[1::2]
        return out

    def _split(self, name: str, page: str) -> tuple[str, str]:
        pieces = page.split(self._marker)
        if len(pieces) != 2:
            raise TemplateError(name, f"a layout must show {{{{ body }}}} exactly once, it shows it {len(pieces) - 1} times")
        return pieces[0], pieces[1]
