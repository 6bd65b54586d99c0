"""The readers' door: Tamtam's web service (Starlette, served by uvicorn).

==========================================  =========  ====================================================
path (under ``[web] public_url``)           methods    what
==========================================  =========  ====================================================
``/``                                       GET        the lists one can subscribe to
``/<list>/subscribe``                       GET, POST  sign-up form (CSRF, honeypot, per-address limit)
``/<list>/subscribe/sent``                  GET        "check your inbox" (whatever the address's past)
``/<list>/api/subscribe``                   POST       JSON (or a site's plain form) sign-up; CORS
``/<list>/confirm/<token>``                 GET, POST  one-button page; the POST confirms
``/<list>/unsubscribe/<token>``             GET, POST  one-button page; the POST (page or RFC 8058
                                                       one-click) unsubscribes; legacy tokens too
``/<list>/unsubscribe?token=…``             GET, POST  the same, for links made before signed tokens
``/<list>/preferences/<token>``             GET, POST  topics, frequency, weekday, language, name
``/<list>/archive``, ``/<list>/archive/N``  GET        sent editions ("view in browser")
``/<list>/feed.atom``                       GET        the editions as an Atom feed
``/hooks/<kind>/…``                         any        a channel kind's own routes (bounce webhooks)
``/healthz``                                GET        "ok" (for a load balancer)
==========================================  =========  ====================================================

Pages are Jinja2 templates under ``templates/web/`` rendered through the one template
engine (an admin's folder overrides them), without JavaScript, in the reader's language:
``?lang=``, else the subscriber's own, else the browser's ``Accept-Language``, else the
list's. Token pages are never cached and send no Referer.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit

from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from ..channels.registry import Channels
from ..config import Config
from ..errors import ConfigError, TemplateError
from ..links import LinkError, Purpose
from ..models import Subscriber
from ..settings import ChannelSettings
from ..store import Store
from ..store.subscribers import SUPPRESSED, Frequency, Source, SubscriberError, SubscriberStatus
from . import data
from .feed import atom_feed
from .oneclick import GroupCommit
from .security import CSRF_COOKIE, CSRF_FIELD, Csrf, RateLimit, origin_of
from .signup import Choice, Signup, clean_name
from .strings import LANGUAGES, accepted_language, web_strings

log = logging.getLogger(__name__)

MAX_FORM = 16_384  # bytes: a sign-up or preferences form is a few hundred
HONEYPOT = "website"  # a field people never see; bots fill it
ONE_CLICK = "List-Unsubscribe=One-Click"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # no script at all; the archive shows the email's own inline styles and the site's images
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class _Services:
    """What a kind's web routes get (:class:`bot.channels.base.Services`)."""

    def __init__(self, config: Config, store: Store, clock: Callable[[], datetime]):
        self.config, self.store, self._clock = config, store, clock

    def clock(self) -> datetime:
        return self._clock()


class WebApp:
    """One config's web service. ``on_queued(channel_id)`` is called when a confirmation
    email is queued, so a running daemon can send it at once."""

    def __init__(self, config: Config, *, store: Store | None = None, channels: Channels | None = None,
                 clock: Callable[[], datetime] = _utcnow, on_queued: Callable[[str], Any] | None = None):
        if config.web is None:
            raise ConfigError("the web service needs a [web] table (public_url, secret_env); see config/example.toml")
        self.config = config
        self.web = config.web
        self.links = config.links
        assert self.links is not None
        self.store = store or Store(config.database_url)
        self.channels = channels or Channels(config)
        self.templates = self.channels.templates
        self.clock = clock
        self.on_queued = on_queued
        self.signup = Signup(config, self.store, self.channels)
        self.topics = data.Topics(self.store, self.web.topics)
        self.csrf = Csrf(self.links.signer, secure=self.web.public_url.startswith("https://"))
        self.limit = RateLimit(self.web.signup_limit, self.web.signup_window)
        self.unsubscriber = GroupCommit(self.store, clock)
        self.prefix = urlsplit(self.web.public_url).path.rstrip("/")
        self.origins = {origin_of(self.web.public_url), *self.web.cors_origins}
        self._lists = {c.id: c for c in self.lists()}
        self.app = Starlette(routes=self._routes(), exception_handlers={HTTPException: self._http_error})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            target = self._unsubscribe_target(scope["path"])
            if target is not None:
                await self._one_click_asgi(scope, receive, send, *target)
                return
        await self.app(scope, receive, send)

    # -- the one-click fast path ---------------------------------------------------------
    def _unsubscribe_target(self, path: str) -> tuple[ChannelSettings, str] | None:
        """(list, token) when ``path`` is a signed unsubscribe link."""
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                return None
            path = path[len(self.prefix):]
        parts = path.split("/")
        if len(parts) != 4 or parts[2] != "unsubscribe" or "." not in parts[3]:
            return None
        channel = self._lists.get(parts[1])
        return None if channel is None else (channel, parts[3])

    async def _one_click_asgi(self, scope: Any, receive: Any, send: Any, channel: ChannelSettings, token: str) -> None:
        """RFC 8058 one-click POSTs answered without the router: mailbox providers send
        them in bursts, and this is where p99 is won. Anything else posted to an unsubscribe
        link (the page's own button, a multipart body) goes on to the routes, body intact."""
        headers = dict(scope["headers"])
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > MAX_FORM:
                break
        body = b"".join(chunks)
        if not more and kind in (b"application/x-www-form-urlencoded", b"") and \
                ("List-Unsubscribe", "One-Click") in parse_qsl(body.decode("latin-1")):
            response = await self._one_click(channel, token)
            await response(scope, receive, send)
            return
        replay = [{"type": "http.request", "body": body, "more_body": more}]

        async def replayed() -> Any:
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)

    # -- routes ----------------------------------------------------------------------
    def _routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            Route("/", self.index),
            Route("/healthz", lambda request: PlainTextResponse("ok")),
        ]
        services = _Services(self.config, self.store, self.clock)
        for kind in self.channels:
            own = kind.routes(services)
            if own:
                routes.append(Mount(f"/hooks/{kind.name}", routes=own))
        routes += [
            Route("/{channel}/subscribe", self.subscribe, methods=["GET", "POST"]),
            Route("/{channel}/subscribe/sent", self.sent),
            Route("/{channel}/api/subscribe", self.api_subscribe, methods=["POST", "OPTIONS"]),
            Route("/{channel}/confirm/{token}", self.confirm, methods=["GET", "POST"]),
            Route("/{channel}/unsubscribe/{token}", self.unsubscribe, methods=["GET", "POST"]),
            Route("/{channel}/unsubscribe", self.unsubscribe, methods=["GET", "POST"]),
            Route("/{channel}/preferences/{token}", self.preferences, methods=["GET", "POST"]),
            Route("/{channel}/archive", self.archive),
            Route("/{channel}/archive/{edition:int}", self.edition),
            Route("/{channel}/feed.atom", self.feed),
        ]
        return [Mount(self.prefix, routes=routes)] if self.prefix else routes

    # -- helpers ---------------------------------------------------------------------
    def lists(self) -> list[ChannelSettings]:
        """The channels readers can subscribe to (enabled, with a list of subscribers)."""
        return [c for c in self.config.channels if c.enabled and self.channels.kind(c).has_subscribers]

    def _list(self, request: Request) -> ChannelSettings:
        wanted = request.path_params["channel"]
        for channel in self.lists():
            if channel.id == wanted:
                return channel
        raise HTTPException(404)

    def _lang(self, request: Request, channel: ChannelSettings | None, preferred: str | None = None,
              form: Any = None) -> str:
        for candidate in ((form.get("lang") if form is not None else None), request.query_params.get("lang"),
                          preferred, accepted_language(request.headers.get("accept-language"))):
            if candidate in LANGUAGES:
                return candidate
        return (channel.language if channel is not None else None) or self.config.site.language

    def _title(self, channel: ChannelSettings) -> str:
        return channel.title or self.config.site.name

    def page(self, request: Request, name: str, *, lang: str, channel: ChannelSettings | None = None,
             status: int = 200, private: bool = False, **ctx: Any) -> HTMLResponse:
        """Render ``web/<name>.html``. ``private`` pages (those behind a token) are never
        cached nor indexed. A CSRF field is made for pages that post a form."""
        field, new_cookie = self.csrf.issue(request.cookies.get(CSRF_COOKIE))
        other = "en" if lang == "fr" else "fr"
        query = dict(request.query_params)
        query["lang"] = other
        context = {
            "site": self.config.site, "channel": channel, "title": self._title(channel) if channel else self.config.site.name,
            "lang": lang, "locale": lang, "tz": self.config.site.tz, "w": web_strings(lang), "other_lang": other, "other_lang_name": web_strings(other)["language_name"],
            "switch_url": f"{request.url.path}?{urlencode(query)}", "csrf": field, "csrf_field": CSRF_FIELD,
            "honeypot": HONEYPOT, "private": private, "links": self.links, **ctx,
        }
        try:
            html = self.templates.render(f"web/{name}.html", context)
        except TemplateError:
            log.exception("web page %s cannot be rendered", name)
            return HTMLResponse("<!DOCTYPE html><title>Error</title><p>Error / Erreur</p>", status_code=500,
                                headers=SECURITY_HEADERS)
        response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
        response.headers["Content-Language"] = lang
        if private:
            response.headers["Cache-Control"] = "no-store"
            response.headers["X-Robots-Tag"] = "noindex"
        if new_cookie:
            response.set_cookie(**self.csrf.cookie_args(new_cookie))  # type: ignore[arg-type]
        return response

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        if status == 405:
            return PlainTextResponse("Method Not Allowed", status_code=405, headers=SECURITY_HEADERS)
        lang = self._lang(request, None)
        return self.page(request, "error", lang=lang, status=status, heading=web_strings(lang)["not_found_title"],
                         message=web_strings(lang)["not_found"])

    async def _form(self, request: Request) -> Any:
        """The posted form (url-encoded or multipart, no files), or None when too large or unreadable."""
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_FORM):
            return None
        try:
            return await request.form(max_files=0, max_fields=100)
        except Exception:  # a malformed body is the sender's problem; answer 400
            return None

    def _choice(self, channel: ChannelSettings, form: Any) -> Choice:
        topics = self.topics.pick(channel, [str(v) for v in form.getlist("topics")])
        try:
            frequency = Frequency(str(form.get("frequency") or Frequency.DAILY.value))
        except ValueError:
            frequency = Frequency.DAILY
        day = str(form.get("weekday") or "")
        weekly_day = int(day) if day.isdigit() and int(day) < 7 else 0
        language = form.get("language")
        return Choice(topics=topics, frequency=frequency, weekly_day=weekly_day if frequency is Frequency.WEEKLY else None,
                      language=language if language in LANGUAGES else None)

    def _client(self, request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def _queued(self, channel: ChannelSettings) -> None:
        if self.on_queued is not None:
            try:
                self.on_queued(channel.id)
            except Exception:  # the confirmation waits for the next dispatch instead
                log.exception("could not start a dispatch for %s", channel.id)

    # -- index -----------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        lang = self._lang(request, None)
        return self.page(request, "index", lang=lang, lists=[(c, self._title(c)) for c in self.lists()])

    # -- sign-up ---------------------------------------------------------------------
    def _signup_page(self, request: Request, channel: ChannelSettings, lang: str, *, status: int = 200,
                     values: dict[str, Any] | None = None, error: str | None = None, notice: str | None = None
                     ) -> HTMLResponse:
        shown = {"email": "", "name": "", "topics": [], "frequency": Frequency.DAILY.value, "weekday": "0",
                 "language": lang, **(values or {})}
        return self.page(request, "subscribe", lang=lang, channel=channel, status=status,
                         topics=self.topics(channel), values=shown, error=error, notice=notice,
                         action=_path(self.links.subscribe(channel.id)))

    async def subscribe(self, request: Request) -> Response:
        channel = self._list(request)
        if request.method == "GET":
            return self._signup_page(request, channel, self._lang(request, channel))
        form = await self._form(request)
        if form is None:
            return PlainTextResponse("Bad Request", status_code=400)
        lang = self._lang(request, channel, form=form)
        w = web_strings(lang)
        values = {"email": str(form.get("email") or ""), "name": str(form.get("name") or ""),
                  "topics": [str(v) for v in form.getlist("topics")], "frequency": str(form.get("frequency") or "daily"),
                  "weekday": str(form.get("weekday") or "0"), "language": str(form.get("language") or lang)}
        if not self.csrf.valid(form.get(CSRF_FIELD), request.cookies.get(CSRF_COOKIE)):
            return self._signup_page(request, channel, lang, status=403, values=values, notice=w["form_expired"])
        if not self.limit.allow(self._client(request)):
            return self.page(request, "error", lang=lang, channel=channel, status=429,
                             heading=w["too_many_title"], message=w["too_many"])
        sent = RedirectResponse(f"{self.links.subscribe(channel.id)}/sent?lang={lang}", status_code=303)
        if form.get(HONEYPOT):
            log.info("sign-up to %s: honeypot filled from %s; ignored", channel.id, self._client(request))
            return sent
        try:
            await run_in_threadpool(self.signup.sign_up, channel, values["email"], values["name"],
                                    self._choice(channel, form), source=Source.FORM, now=self.clock())
        except ValueError as exc:
            return self._signup_page(request, channel, lang, status=400, values=values,
                                     error=w["invalid_email"].format(why=str(exc)))
        self._queued(channel)
        return sent

    async def sent(self, request: Request) -> Response:
        channel = self._list(request)
        days = max(1, round(self.web.confirm_ttl.total_seconds() / 86400))
        return self.page(request, "sent", lang=self._lang(request, channel), channel=channel, days=days)

    def _cors(self, request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        if origin and origin.lower() in self.origins:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {"Vary": "Origin"}

    async def api_subscribe(self, request: Request) -> Response:
        """The JSON sign-up (``{"email": …, "name": …, "topics": […], "frequency": …,
        "weekday": …, "language": …}``) a site's own form posts to; a plain HTML form may
        post here too (it is sent on to ``redirect`` when that is on an allowed origin, else
        to the "check your inbox" page)."""
        channel = self._list(request)
        cors = self._cors(request)
        if request.method == "OPTIONS":
            if "Access-Control-Allow-Origin" not in cors:
                return Response(status_code=403, headers=cors)
            return Response(status_code=204, headers={**cors, "Access-Control-Allow-Methods": "POST",
                                                      "Access-Control-Allow-Headers": "Content-Type",
                                                      "Access-Control-Max-Age": "86400"})
        origin = request.headers.get("origin")
        is_json = request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"
        lang = self._lang(request, channel)
        if origin and origin.lower() not in self.origins:
            # a page on another site: only the ones the config names may post here
            return JSONResponse({"ok": False, "error": "origin", "message": "origin not allowed"}, 403, headers=cors)
        if is_json:
            body = await request.body()
            try:
                fields = json.loads(body) if len(body) <= MAX_FORM else None
            except (ValueError, UnicodeDecodeError):
                fields = None
            if not isinstance(fields, dict):
                return JSONResponse({"ok": False, "error": "bad_request", "message": web_strings(lang)["api_bad_request"]},
                                    400, headers=cors)
            form = _JsonForm(fields)
        else:
            form = await self._form(request)
            if form is None:
                return JSONResponse({"ok": False, "error": "bad_request"}, 400, headers=cors)
        lang = self._lang(request, channel, form=form)
        w = web_strings(lang)
        if not self.limit.allow(self._client(request)):
            return JSONResponse({"ok": False, "error": "rate_limited", "message": w["api_too_many"]}, 429,
                                headers={**cors, "Retry-After": str(int(self.web.signup_window.total_seconds()))})
        ok = JSONResponse({"ok": True, "message": w["api_ok"]}, 202, headers=cors)
        if not is_json:
            target = str(form.get("redirect") or "")
            ok = RedirectResponse(target if target and origin_of(target) in self.origins and "://" in target
                                  else f"{self.links.subscribe(channel.id)}/sent?lang={lang}", status_code=303,
                                  headers=cors)
        if form.get(HONEYPOT):
            return ok
        try:
            await run_in_threadpool(self.signup.sign_up, channel, str(form.get("email") or ""),
                                    str(form.get("name") or "") or None, self._choice(channel, form),
                                    source=Source.API, now=self.clock())
        except ValueError:
            return JSONResponse({"ok": False, "error": "invalid_email", "message": w["api_invalid_email"]}, 400,
                                headers=cors)
        self._queued(channel)
        return ok

    # -- tokens ----------------------------------------------------------------------
    def _token_error(self, request: Request, channel: ChannelSettings, exc: LinkError, lang: str) -> HTMLResponse:
        w = web_strings(lang)
        expired = exc.reason == "expired"
        return self.page(request, "error", lang=lang, channel=channel, status=410 if expired else 400, private=True,
                         heading=w["error_title"], message=w["link_expired"] if expired else w["link_invalid"],
                         subscribe_link=True)

    def _subscriber(self, channel: ChannelSettings, purpose: Purpose, token: str) -> Subscriber:
        """The subscriber a token names, or LinkError. An unsubscribe link may also carry
        the random token stored per subscriber (links sent before signed tokens)."""
        try:
            subscriber_id = self.links.verify(purpose, token, channel.id)
        except LinkError as exc:
            if purpose is Purpose.UNSUBSCRIBE and exc.reason == "invalid" and token and "." not in token:
                legacy = self.store.subscribers.by_token(token)
                if legacy is not None and legacy.channel_id == channel.id:
                    return legacy
            raise
        try:
            return self.store.subscribers.get(subscriber_id)
        except SubscriberError:
            raise LinkError("invalid") from None

    def _token(self, request: Request) -> str:
        return request.path_params.get("token") or request.query_params.get("token") or ""

    # -- confirm ---------------------------------------------------------------------
    async def confirm(self, request: Request) -> Response:
        channel = self._list(request)
        try:
            sub = await run_in_threadpool(self._subscriber, channel, Purpose.CONFIRM, self._token(request))
        except LinkError as exc:
            return self._token_error(request, channel, exc, self._lang(request, channel))
        lang = self._lang(request, channel, sub.language)
        w = web_strings(lang)
        if request.method == "POST" and sub.status is SubscriberStatus.PENDING:
            try:
                sub = await run_in_threadpool(self.store.subscribers.confirm, sub.id, now=self.clock())
            except SubscriberError:
                sub = await run_in_threadpool(self.store.subscribers.get, sub.id)
        if sub.status in SUPPRESSED:
            return self.page(request, "error", lang=lang, channel=channel, private=True, heading=w["confirm_title"],
                             message=w["confirm_suppressed"], subscribe_link=True)
        if sub.status is SubscriberStatus.ACTIVE:
            return self.page(request, "confirmed", lang=lang, channel=channel, private=True, subscriber=sub,
                             already=request.method == "GET",
                             preferences_url=self.links.preferences(channel.id, sub.id))
        return self.page(request, "confirm", lang=lang, channel=channel, private=True, subscriber=sub,
                         action=request.url.path)

    # -- unsubscribe -----------------------------------------------------------------
    async def unsubscribe(self, request: Request) -> Response:
        channel = self._list(request)
        token = self._token(request)
        one_click = False
        if request.method == "POST":
            one_click = await self._is_one_click(request)
            if one_click and "." in token:
                return await self._one_click(channel, token)
        try:
            sub = await run_in_threadpool(self._subscriber, channel, Purpose.UNSUBSCRIBE, token)
        except LinkError as exc:
            if one_click:
                return PlainTextResponse("This unsubscribe link is not valid.", status_code=400)
            return self._token_error(request, channel, exc, self._lang(request, channel))
        if request.method == "POST":
            await self.unsubscriber.unsubscribe(channel.id, sub.id, Source.ONE_CLICK if one_click else Source.LINK)
            if one_click:
                # RFC 8058: the mailbox provider posted; it reads only the status
                return PlainTextResponse("Unsubscribed.", headers={"Cache-Control": "no-store"})
            sub = await run_in_threadpool(self.store.subscribers.get, sub.id)
        lang = self._lang(request, channel, sub.language)
        if sub.status in SUPPRESSED:
            return self.page(request, "unsubscribed", lang=lang, channel=channel, private=True, subscriber=sub)
        return self.page(request, "unsubscribe", lang=lang, channel=channel, private=True, subscriber=sub,
                         action=request.url.path + ("" if "token" in request.path_params else f"?token={token}"),
                         preferences_url=self.links.preferences(channel.id, sub.id))

    async def _is_one_click(self, request: Request) -> bool:
        """The body says ``List-Unsubscribe=One-Click`` (RFC 8058), url-encoded or multipart."""
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_FORM):
            return False
        if request.headers.get("content-type", "").split(";")[0].strip().lower() == "multipart/form-data":
            form = await self._form(request)
            return form is not None and form.get("List-Unsubscribe") == "One-Click"
        body = await request.body()
        return len(body) <= MAX_FORM and ("List-Unsubscribe", "One-Click") in parse_qsl(body.decode("latin-1"))

    async def _one_click(self, channel: ChannelSettings, token: str) -> Response:
        """The hot path a mailbox provider takes: check the signature, unsubscribe (grouped
        with the other requests of the moment), answer 200 once it is committed. The token
        alone names the reader; the store checks the list again in the same statement."""
        try:
            subscriber_id = self.links.verify(Purpose.UNSUBSCRIBE, token, channel.id)
        except LinkError:
            return PlainTextResponse("This unsubscribe link is not valid.", status_code=400)
        await self.unsubscriber.unsubscribe(channel.id, subscriber_id, Source.ONE_CLICK)
        return PlainTextResponse("Unsubscribed.", headers={"Cache-Control": "no-store"})

    # -- preferences -----------------------------------------------------------------
    async def preferences(self, request: Request) -> Response:
        channel = self._list(request)
        token = self._token(request)
        try:
            sub = await run_in_threadpool(self._subscriber, channel, Purpose.PREFERENCES, token)
        except LinkError as exc:
            return self._token_error(request, channel, exc, self._lang(request, channel))
        here = self.links.preferences(channel.id, sub.id)
        notice = None
        if request.method == "POST":
            form = await self._form(request)
            if form is None:
                return PlainTextResponse("Bad Request", status_code=400)
            lang = self._lang(request, channel, sub.language, form=form)
            if not self.csrf.valid(form.get(CSRF_FIELD), request.cookies.get(CSRF_COOKIE)):
                return self._preferences_page(request, channel, sub, lang, status=403,
                                              notice=web_strings(lang)["form_expired"])
            choice = self._choice(channel, form)
            await run_in_threadpool(
                self.store.subscribers.set_preferences, sub.id, now=self.clock(),
                language=choice.language, topics=choice.topics, all_topics=choice.topics is None,
                frequency=choice.frequency, weekly_day=choice.weekly_day, name=_name(form.get("name")))
            saved_lang = choice.language or lang
            return RedirectResponse(f"{here}?saved=1&lang={saved_lang}", status_code=303)
        lang = self._lang(request, channel, sub.language)
        if request.query_params.get("saved"):
            notice = web_strings(lang)["saved"]
        return self._preferences_page(request, channel, sub, lang, notice=notice, saved=bool(notice))

    def _preferences_page(self, request: Request, channel: ChannelSettings, sub: Subscriber, lang: str, *,
                          status: int = 200, notice: str | None = None, saved: bool = False) -> HTMLResponse:
        topics = self.topics(channel)
        chosen = list(sub.topics) if sub.topics is not None else []
        return self.page(request, "preferences", lang=lang, channel=channel, status=status, private=True,
                         subscriber=sub, topics=topics + [t for t in chosen if t not in topics], chosen=chosen,
                         notice=notice, saved=saved, action=_path(self.links.preferences(channel.id, sub.id)),
                         unsubscribe_url=self.links.unsubscribe(channel.id, sub.id),
                         active=sub.status is SubscriberStatus.ACTIVE)

    # -- archive ---------------------------------------------------------------------
    def _view(self, channel: ChannelSettings, row: data.EditionRow) -> Any:
        return self.channels.kind(channel).web_view(channel, row.shared or {})

    async def archive(self, request: Request) -> Response:
        channel = self._list(request)
        before = request.query_params.get("before")
        rows = await run_in_threadpool(data.editions, self.store, channel.id, limit=30,
                                       before=int(before) if before and before.isdigit() else None)
        items = [(row, view) for row in rows if (view := self._view(channel, row)) is not None]
        lang = self._lang(request, channel)
        return self.page(request, "archive", lang=lang, channel=channel, items=items,
                         older=rows[-1].id if len(rows) == 30 else None, feed_url=self.links.feed(channel.id))

    async def edition(self, request: Request) -> Response:
        channel = self._list(request)
        row = await run_in_threadpool(data.edition, self.store, channel.id, request.path_params["edition"])
        view = self._view(channel, row) if row is not None else None
        if view is None:
            raise HTTPException(404)
        lang = self._lang(request, channel)
        return self.page(request, "edition", lang=lang, channel=channel, row=row, view=view,
                         body=Markup(view.html), archive_url=self.links.archive(channel.id))

    async def feed(self, request: Request) -> Response:
        channel = self._list(request)
        rows = await run_in_threadpool(data.editions, self.store, channel.id, limit=20)
        entries = [(row, view) for row in rows if (view := self._view(channel, row)) is not None]
        xml = atom_feed(self.links, channel, self._title(channel), self.config.site, entries)
        return Response(xml, media_type="application/atom+xml; charset=utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


class _JsonForm:
    """A JSON object read like a form (``get`` and ``getlist``)."""

    def __init__(self, fields: dict[str, Any]):
        self.fields = fields

    def get(self, key: str, default: Any = None) -> Any:
        value = self.fields.get(key, default)
        return value if isinstance(value, (str, int)) and not isinstance(value, bool) else default

    def getlist(self, key: str) -> list[Any]:
        value = self.fields.get(key)
        if isinstance(value, list):
            return [v for v in value if isinstance(v, str)]
        return [value] if isinstance(value, str) else []


def _name(value: Any) -> str | None:
    """The name field of the preferences form: '' clears it, absent leaves it."""
    return None if value is None else (clean_name(str(value)) or "")


def _path(url: str) -> str:
    """A form's action as a path: the page and the form share the public origin."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
