"""Outbound HTTP that cannot be turned against the machine it runs on.

Tamtam fetches URLs that come from outside: a feed's redirects today, images and link
checks later. A feed host that answers ``302 Location: http://127.0.0.1:5432/`` (or the
cloud's metadata address) would otherwise make Tamtam read an internal service and
publish what it said. So every request an outbound client sends — the first one and each
redirect — is checked before it leaves: a host the admin configured is trusted (a feed on
a private address is a real deployment), any other host must resolve only to public
addresses. Loopback, private, link-local (which holds the cloud metadata service at
169.254.169.254), carrier-grade NAT, multicast, reserved and unspecified addresses are
refused, and the refusal names the host and the address.

Known limit: the check resolves the name, and the connection resolves it again; a host
whose DNS answer changes in between (DNS rebinding with a zero TTL) is not caught here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any, Iterable
from urllib.parse import urlsplit

import httpx


class RefusedAddress(httpx.RequestError):
    """A request was about to reach an address outside the public internet."""


def why_not_public(address: str) -> str | None:
    """None when ``address`` is a public (global) IP, else what it is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for attribute, what in (("is_loopback", "a loopback"), ("is_unspecified", "an unspecified"),
                            ("is_link_local", "a link-local (cloud metadata)"), ("is_multicast", "a multicast"),
                            ("is_private", "a private"), ("is_reserved", "a reserved")):
        if getattr(ip, attribute):
            return f"{what} address"
    if not ip.is_global:
        return "a non-public address"
    return None


async def _addresses(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def _host(url: httpx.URL | str) -> str:
    return (urlsplit(str(url)).hostname or "").lower()


def guard(trusted_hosts: Iterable[str]) -> Any:
    """An httpx request hook that refuses any request to a non-trusted host that resolves
    to a non-public address."""
    trusted = {h.lower().strip("[]") for h in trusted_hosts if h}

    async def check(request: httpx.Request) -> None:
        host = request.url.host.lower().strip("[]")
        if host in trusted:
            return
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        try:
            addresses = await _addresses(host, port)
        except OSError:
            return  # it does not resolve: the connection fails with its own clear error
        for address in addresses:
            reason = why_not_public(address)
            if reason:
                raise RefusedAddress(
                    f"refused to fetch {request.url}: {host} is {address}, {reason}; only the configured host "
                    f"({', '.join(sorted(trusted)) or 'none'}) may be on such an address", request=request)

    return check


def guarded_client(*trusted_urls: str, **kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every request (redirects included) passes :func:`guard`;
    the hosts of ``trusted_urls`` are the ones the admin configured."""
    hooks = kwargs.pop("event_hooks", {}) or {}
    hooks = {**hooks, "request": [guard(_host(u) for u in trusted_urls), *hooks.get("request", [])]}
    return httpx.AsyncClient(event_hooks=hooks, **kwargs)
