"""Serving the web app with uvicorn: inside ``tamtam run`` (same event loop as the
scheduler, stopped by the daemon's own shutdown) or alone (``tamtam serve``).

Tamtam binds the socket itself, so an address already in use is a plain error naming
``[web] bind``/``port`` (uvicorn alone would exit the process). Inside the daemon, uvicorn
must not take SIGTERM/SIGINT: the daemon's handlers decide when everything stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
import signal
import socket
import ssl
from typing import Any, Iterator

import uvicorn

from ..config import Config
from ..errors import ConfigError

log = logging.getLogger(__name__)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port``, or ConfigError saying why not."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"web: cannot listen on {host}:{port} ([web] bind and port): {exc.strerror or exc}") from None
    return sock


def uvicorn_config(app: Any, config: Config) -> uvicorn.Config:
    web = config.web
    assert web is not None
    tls: dict[str, Any] = {}
    if web.tls_cert and web.tls_key:
        cert, key = str(config.resolve(web.tls_cert)), str(config.resolve(web.tls_key))
        try:  # a missing or mismatched file is the admin's to fix: say which, before serving
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"web.tls_cert/tls_key: cannot load {cert} and {key}: "
                              f"{getattr(exc, 'strerror', None) or exc}") from None
        tls = {"ssl_certfile": cert, "ssl_keyfile": key}
    return uvicorn.Config(
        app, host=web.bind, port=web.port, lifespan="off", log_level="warning", access_log=False, **tls,
        server_header=False, date_header=True,
        # behind a reverse proxy, the reader's address is in X-Forwarded-For: believed only
        # from the proxies the config names (web.trusted_proxies)
        proxy_headers=bool(web.trusted_proxies), forwarded_allow_ips=list(web.trusted_proxies),
        timeout_keep_alive=5, limit_concurrency=1000, backlog=2048)


class _Embedded(uvicorn.Server):
    """uvicorn without its signal handlers (the daemon's decide)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebServer:
    """The web app served in the current event loop until :meth:`stop`."""

    def __init__(self, app: Any, config: Config):
        self.config = config
        self.server = _Embedded(uvicorn_config(app, config))
        self.task: asyncio.Task[None] | None = None
        self.socket: socket.socket | None = None

    @property
    def port(self) -> int:
        assert self.socket is not None
        return int(self.socket.getsockname()[1])

    async def start(self) -> None:
        web = self.config.web
        assert web is not None
        self.socket = bind_socket(web.bind, web.port)
        self.task = asyncio.ensure_future(self.server.serve(sockets=[self.socket]))
        while not self.server.started:
            if self.task.done():
                self.task.result()  # raises what stopped it
                raise ConfigError("web: the server stopped while starting")
            await asyncio.sleep(0.02)
        log.info("web: serving %s on %s:%d", web.public_url, web.bind, self.port)

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, let requests in progress finish (at most ``timeout`` seconds)."""
        if self.task is None:
            return
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout)
        except asyncio.TimeoutError:
            self.server.force_exit = True
            await asyncio.wait([self.task], timeout=2)
        finally:
            if self.socket is not None:
                self.socket.close()
            self.task = None


def serve(app: Any, config: Config) -> None:
    """``tamtam serve``: the web app alone, until SIGTERM or Ctrl-C; requests in progress
    finish (uvicorn's own handlers would re-raise the signal and end with its status)."""
    web = config.web
    assert web is not None
    sock = bind_socket(web.bind, web.port)
    log.info("web: serving %s on %s:%d (Ctrl-C to stop)", web.public_url, web.bind, sock.getsockname()[1])
    server = _Embedded(uvicorn_config(app, config))

    async def main() -> None:
        # What start-up made lives as long as the process: keep it out of the collector's
        # full passes, which otherwise pause every request in flight now and then.
        gc.collect()
        gc.freeze()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        await server.serve(sockets=[sock])

    try:
        with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
            runner.run(main())  # uvloop when installed (uvicorn picks it), else asyncio's own loop
    finally:
        sock.close()
