"""Amazon SNS message authentication, as AWS documents it ("Verifying the signatures of
Amazon SNS messages").

A message is accepted only when:

* its ``SigningCertURL`` is ``https``, on a host the config allows (``cert_hosts``: by default
  ``sns.<region>.amazonaws.com``, a ``*`` standing for exactly one DNS label) and names a
  ``.pem`` file — so a forged message cannot point at a certificate of its own;
* that certificate, fetched through :func:`bot.net.guarded_client` (TLS verified, no
  redirects, 64 KiB at most) and cached by URL, is valid now and holds an RSA key;
* the ``Signature`` verifies over the canonical string — the documented fields of its
  ``Type``, each as ``name\\nvalue\\n`` in byte order of names — with SHA1withRSA for
  ``SignatureVersion`` 1 and SHA256withRSA for 2;
* its ``Timestamp`` is no older than ``max_age`` (nor more than five minutes ahead).

The topic allow-list is checked by the caller before any of this, so a message for a
foreign topic costs no fetch. A ``SubscribeURL`` is visited under the same host rules.
"""

from __future__ import annotations

import base64
import binascii
import re
import ssl
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ....errors import ConfigError
from ....net import guarded_client
from ...base import Host
from .settings import SesHook

#: the fields each message type signs, in the order they are signed
SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
MAX_CERT = 64 * 1024
_CACHE = 32


class SnsError(Exception):
    """A message that is refused (``status`` 400 malformed, 403 not authentic) or that
    could not be checked now (503: the certificate could not be fetched; SNS retries)."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


def canonical(message: dict[str, Any]) -> bytes:
    """The string SNS signs for ``message`` (``Subject`` only when the message has one)."""
    fields = SIGNED.get(message.get("Type", ""))
    if fields is None:
        raise SnsError(400, f"unknown SNS message Type {message.get('Type')!r}")
    out = []
    for name in fields:
        value = message.get(name)
        if value is None:
            if name == "Subject":
                continue
            raise SnsError(400, f"SNS {message['Type']} without {name}")
        out.append(f"{name}\n{value}\n")
    return "".join(out).encode("utf-8")


def host_allowed(url: str, patterns: tuple[str, ...]) -> tuple[bool, bool]:
    """(allowed, literal): ``url`` is https on an allowed host (and, for a pattern with a
    port, that port; otherwise the default one). ``literal`` when the pattern named the host
    exactly (an admin's choice, trusted even on a private address)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False, False
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        return False, False
    host = parts.hostname.lower()
    for pattern in patterns:
        p_host, _, p_port = pattern.partition(":")
        if (int(p_port) if p_port else None) != (port if port != 443 else None):
            continue
        want, have = p_host.split("."), host.split(".")
        if len(want) == len(have) and all(w == h or (w == "*" and re.fullmatch(r"[a-z0-9-]+", h))
                                          for w, h in zip(want, have)):
            return True, "*" not in p_host
    return False, False


def _when(text: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        raise SnsError(400, f"SNS Timestamp {text!r} is not a date") from None


class SnsVerifier:
    """Checks SNS messages for one ``[channels.bounces.ses]`` table; keeps fetched keys."""

    def __init__(self, hook: SesHook, host: Host):
        self.hook = hook
        self.host = host
        self._keys: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()

    def _client(self, url: str, literal: bool) -> httpx.AsyncClient:
        cafile = None
        if self.hook.ca_file:
            path = self.host.resolve(self.hook.ca_file)
            if not path.is_file():
                raise ConfigError(f"bounces.ses.ca_file {str(path)!r} not found")
            cafile = str(path)
        return guarded_client(*([url] if literal else []), verify=ssl.create_default_context(cafile=cafile),
                              timeout=self.hook.timeout.total_seconds(), follow_redirects=False)

    async def _key(self, url: str, literal: bool, now: datetime) -> rsa.RSAPublicKey:
        key = self._keys.get(url)
        if key is not None:
            self._keys.move_to_end(url)
            return key
        try:
            async with self._client(url, literal) as client:
                async with client.stream("GET", url) as response:
                    if response.status_code != 200:
                        raise SnsError(503, f"signing certificate {url} answered HTTP {response.status_code}")
                    data = b""
                    async for chunk in response.aiter_bytes():
                        data += chunk
                        if len(data) > MAX_CERT:
                            raise SnsError(403, f"signing certificate {url} is larger than {MAX_CERT} bytes")
        except httpx.HTTPError as exc:
            raise SnsError(503, f"cannot fetch the signing certificate {url}: {exc}") from exc
        try:
            cert = x509.load_pem_x509_certificate(data)
        except ValueError:
            raise SnsError(403, f"{url} is not a PEM certificate") from None
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise SnsError(403, f"the signing certificate {url} is not valid now "
                                f"({cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d})")
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SnsError(403, f"the signing certificate {url} does not hold an RSA key")
        self._keys[url] = key
        while len(self._keys) > _CACHE:
            self._keys.popitem(last=False)
        return key

    async def verify(self, message: dict[str, Any], now: datetime) -> None:
        """Return when ``message`` is authentic and fresh; raise SnsError otherwise."""
        data = canonical(message)
        algorithm = _HASHES.get(str(message.get("SignatureVersion")))
        if algorithm is None:
            raise SnsError(403, f"unsupported SNS SignatureVersion {message.get('SignatureVersion')!r}")
        url = str(message.get("SigningCertURL") or "")
        allowed, literal = host_allowed(url, self.hook.cert_hosts)
        if not allowed or not urlsplit(url).path.endswith(".pem"):
            raise SnsError(403, f"SigningCertURL {url!r} is not an https .pem on an allowed host "
                                f"({', '.join(self.hook.cert_hosts)})")
        try:
            signature = base64.b64decode(str(message.get("Signature") or ""), validate=True)
        except (binascii.Error, ValueError):
            raise SnsError(403, "the SNS Signature is not base64") from None
        key = await self._key(url, literal, now)
        try:
            key.verify(signature, data, padding.PKCS1v15(), algorithm())
        except InvalidSignature:
            raise SnsError(403, "the SNS signature does not match the message") from None
        sent = _when(message.get("Timestamp"))
        if now - sent > self.hook.max_age:
            raise SnsError(403, f"the SNS message is from {sent:%Y-%m-%d %H:%M:%S}Z, older than max_age: a replay?")
        if sent - now > timedelta(minutes=5):
            raise SnsError(403, f"the SNS message is dated {sent:%Y-%m-%d %H:%M:%S}Z, in the future")

    async def confirm(self, message: dict[str, Any]) -> None:
        """Visit a SubscriptionConfirmation's SubscribeURL (under the certificate's host rules)."""
        url = str(message.get("SubscribeURL") or "")
        allowed, literal = host_allowed(url, self.hook.cert_hosts)
        if not allowed:
            raise SnsError(403, f"SubscribeURL {url!r} is not https on an allowed host")
        try:
            async with self._client(url, literal) as client:
                response = await client.get(url)
        except httpx.HTTPError as exc:
            raise SnsError(503, f"cannot confirm the subscription at {url}: {exc}") from exc
        if response.status_code != 200:
            raise SnsError(503, f"confirming the subscription at {url} answered HTTP {response.status_code}")
