"""The sending services' bounce and complaint webhooks, as Starlette routes the web service
mounts under ``/hooks/email/``:

=====================  =====================================================================
``POST /ses/<id>``     Amazon SES through SNS: the SNS signature (see :mod:`.sns`), the topic
                       allow-list; a SubscriptionConfirmation is confirmed
``POST /mailgun/<id>`` Mailgun webhooks v3: HMAC-SHA256 of timestamp + token with the webhook
                       signing key, and a timestamp no older than ``max_age``
``POST /postmark/<id>`` Postmark: HTTP basic auth (Postmark does not sign its webhooks)
=====================  =====================================================================

``<id>`` is the email channel whose ``[channels.bounces]`` table configures the service;
when only one channel configures a service, ``/ses`` (``/mailgun``, ``/postmark``) works
too. Answers: 200 with what was done (JSON), 400 for a malformed body, 401 for missing
or wrong credentials (Postmark), 403 for a bad or stale signature or a foreign topic, 413
for a body over 1 MiB, 503 when the SNS certificate cannot be fetched now (SNS retries).
The same delivery twice is harmless: feedback is deduplicated by the service's event id
(see :mod:`.feedback`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ....settings import secret
from ...base import Services
from . import payloads
from .feedback import Feedback, Tally, apply, email_channel_ids
from .payloads import PayloadError
from .settings import BounceSettings, MailgunHook, PostmarkHook, SesHook
from .sns import SnsError, SnsVerifier, canonical

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024


class Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        self.status = status
        self.headers = headers
        super().__init__(message)


async def _body(request: Request) -> bytes:
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            raise Refused(413, f"the body is larger than {MAX_BODY} bytes")
    return data


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refused(400, f"{what} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise Refused(400, f"{what} must be a JSON object")
    return value


class Hook:
    """One service's endpoint for one channel."""

    service: str

    def __init__(self, services: Services, channel_id: str, policy: BounceSettings):
        self.services = services
        self.channel_id = channel_id
        self.policy = policy

    async def respond(self, request: Request) -> Response:
        try:
            tally = await self.handle(request)
        except Refused as exc:
            log.warning("bounce webhook %s/%s refused (%d): %s", self.service, self.channel_id, exc.status, exc)
            return PlainTextResponse(str(exc), status_code=exc.status, headers=exc.headers)
        except PayloadError as exc:
            log.warning("bounce webhook %s/%s: malformed payload: %s", self.service, self.channel_id, exc)
            return PlainTextResponse(str(exc), status_code=400)
        return JSONResponse({"ok": True, **tally.as_dict()})

    async def handle(self, request: Request) -> Tally:
        raise NotImplementedError

    def now(self) -> datetime:
        return self.services.clock()

    async def apply(self, feedback: list[Feedback]) -> Tally:
        """Apply in a worker thread: the store is blocking."""
        store, config = self.services.store, self.services.config
        channels = email_channel_ids(config)
        tally = await asyncio.to_thread(apply, store, feedback, now=self.now(), policy=self.policy, channels=channels)
        if tally.counts:
            log.info("bounce webhook %s/%s: %s", self.service, self.channel_id, tally.line())
        return tally


class SesEndpoint(Hook):
    service = "ses"

    def __init__(self, services: Services, channel_id: str, policy: BounceSettings):
        super().__init__(services, channel_id, policy)
        self.hook: SesHook = policy.ses  # type: ignore[assignment]
        self.verifier = SnsVerifier(self.hook, services.config)

    async def handle(self, request: Request) -> Tally:
        message = _json(await _body(request), "the SNS message")
        if "Type" not in message and ("notificationType" in message or "eventType" in message):
            raise Refused(400, "this is a raw SES notification: turn off raw message delivery on the SNS "
                               "subscription, so the SNS envelope and its signature come with it")
        topic = message.get("TopicArn")
        try:
            canonical(message)  # a malformed message is 400 before anything else is looked at
            if self.hook.topics and topic not in self.hook.topics:
                raise Refused(403, f"topic {topic!r} is not in bounces.ses.topics")
            await self.verifier.verify(message, self.now())
            kind = message["Type"]
            if kind == "SubscriptionConfirmation":
                if self.hook.confirm:
                    await self.verifier.confirm(message)
                    log.info("SNS subscription to %s confirmed", topic)
                else:
                    log.warning("SNS asks to confirm the subscription to %s: visit %s", topic,
                                message.get("SubscribeURL"))
                return Tally()
            if kind == "UnsubscribeConfirmation":
                log.warning("SNS: this endpoint was unsubscribed from %s", topic)
                return Tally()
        except SnsError as exc:
            raise Refused(exc.status, str(exc)) from None
        try:
            notification = json.loads(message["Message"])
        except (TypeError, json.JSONDecodeError):
            raise Refused(400, "the SNS Message is not an SES notification (JSON)") from None
        return await self.apply(payloads.ses(notification, fallback_ref=f"sns:{message.get('MessageId')}",
                                             channels=email_channel_ids(self.services.config)))


class MailgunEndpoint(Hook):
    service = "mailgun"

    def __init__(self, services: Services, channel_id: str, policy: BounceSettings):
        super().__init__(services, channel_id, policy)
        self.hook: MailgunHook = policy.mailgun  # type: ignore[assignment]
        self.key = (secret(self.hook.signing_key_env, f"channels[{channel_id}].bounces.mailgun.signing_key_env")
                    or "").encode("utf-8")

    async def handle(self, request: Request) -> Tally:
        body = await _body(request)
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise Refused(400, "expected Mailgun's JSON webhooks (v3); form-encoded legacy webhooks are not read")
        payload = _json(body, "the Mailgun webhook")
        signed = payload.get("signature")
        if not isinstance(signed, dict) or not all(isinstance(signed.get(k), str) for k in
                                                   ("timestamp", "token", "signature")):
            raise Refused(403, "the Mailgun webhook carries no signature")
        expected = hmac.new(self.key, (signed["timestamp"] + signed["token"]).encode("utf-8"),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signed["signature"].lower()):
            raise Refused(403, "the Mailgun signature does not match (check signing_key_env)")
        try:
            sent = datetime.fromtimestamp(int(signed["timestamp"]), timezone.utc)
        except (ValueError, OverflowError, OSError):
            raise Refused(403, "the Mailgun timestamp is not a number") from None
        if abs(self.now() - sent) > self.hook.max_age:
            raise Refused(403, f"the Mailgun signature is from {sent:%Y-%m-%d %H:%M:%S}Z, outside max_age: a replay?")
        if "event-data" not in payload:
            raise Refused(400, "the Mailgun webhook has no event-data")
        return await self.apply(payloads.mailgun(payload["event-data"]))


class PostmarkEndpoint(Hook):
    service = "postmark"

    def __init__(self, services: Services, channel_id: str, policy: BounceSettings):
        super().__init__(services, channel_id, policy)
        hook: PostmarkHook = policy.postmark  # type: ignore[assignment]
        where = f"channels[{channel_id}].bounces.postmark"
        self.user = (secret(hook.username_env, f"{where}.username_env") or "").encode("utf-8")
        self.password = (secret(hook.password_env, f"{where}.password_env") or "").encode("utf-8")

    def _authorised(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(value.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        # both compared, always, so the time taken says nothing about which one was wrong
        ok_user = hmac.compare_digest(user, self.user)
        ok_password = hmac.compare_digest(password, self.password)
        return bool(sep) and ok_user and ok_password

    async def handle(self, request: Request) -> Tally:
        if not self._authorised(request.headers.get("authorization", "")):
            raise Refused(401, "Postmark webhooks need the basic auth credentials of bounces.postmark",
                          headers={"WWW-Authenticate": 'Basic realm="tamtam bounces"'})
        return await self.apply(payloads.postmark(_json(await _body(request), "the Postmark webhook")))


ENDPOINTS: dict[str, Callable[[Services, str, BounceSettings], Hook]] = {
    "ses": SesEndpoint, "mailgun": MailgunEndpoint, "postmark": PostmarkEndpoint}


def routes(services: Services) -> list[Route]:
    """Every configured endpoint, per channel, and under the bare service name when only one
    channel configures that service. Secrets are read now: a missing one stops the web
    service at start with a ConfigError naming it."""
    from ..settings import EmailChannelSettings  # here, not at the top: email.settings imports this package

    out: list[Route] = []
    for service, make in ENDPOINTS.items():
        configured = [c for c in services.config.channels
                      if isinstance(c, EmailChannelSettings) and getattr(c.bounces, service) is not None]
        for channel in configured:
            # a bound method, which Starlette calls with the request (an object would be taken for an ASGI app)
            endpoint: Callable[[Request], Awaitable[Response]] = make(services, channel.id, channel.bounces).respond
            out.append(Route(f"/{service}/{channel.id}", endpoint, methods=["POST"]))
            if len(configured) == 1:
                out.append(Route(f"/{service}", endpoint, methods=["POST"]))
    return out
