"""A real SMTP server on 127.0.0.1 for tests, built on aiosmtpd.

It stores every message it accepts, logs every MAIL, RCPT and DATA it is sent (so a test can
prove nothing reached it), and can misbehave on demand: require AUTH, speak STARTTLS or
implicit TLS with a certificate made at test time, refuse chosen recipients with 550 or 451,
answer the next MAIL, RCPT or DATA with any reply (a 421 also closes the connection, as a
server shutting down does), hold an answer back to provoke a read timeout, drop the
connection right after DATA, or drop every open connection.
The server runs in its own thread and event loop (aiosmtpd's Controller), so the client
under test talks to it over a real socket exactly as it would to a provider.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


@dataclass
class Received:
    """One accepted message: the envelope and the exact bytes after DATA."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    peer: Any = None
    dropped: bool = False  # the server hung up instead of answering DATA


@dataclass
class TestCert:
    """A self-signed certificate for 127.0.0.1 / localhost, and its key."""

    __test__ = False  # not a pytest test class

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx


def make_cert(folder: Path) -> TestCert:
    """Make a throwaway certificate with the ``openssl`` command; skip the test without it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed, so no test certificate can be made for TLS tests")
    cert, key = folder / "cert.pem", folder / "key.pem"
    cmd = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
           "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
           "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
           "-addext", "basicConstraints=critical,CA:TRUE"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {done.stderr.strip()[:300]}")
    return TestCert(cert=cert, key=key)


STAGES = ("MAIL", "RCPT", "DATA")


@dataclass
class _Behaviour:
    refuse: dict[str, str] = field(default_factory=dict)  # recipient → full SMTP reply
    drop_after_data: int = 0  # hang up after DATA this many more times
    replies: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in STAGES})  # next answers
    holds: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})  # seconds


class _Handler:
    def __init__(self, server: "SmtpServer"):
        self.server = server

    async def _hold(self, stage: str) -> None:
        """Wait before answering, when a test asked for it (cut short when the server stops)."""
        owner = self.server
        with owner._lock:
            hold = owner.behaviour.holds[stage].pop(0) if owner.behaviour.holds[stage] else 0.0
        deadline = time.monotonic() + hold
        while time.monotonic() < deadline and not owner._closing.is_set():
            await asyncio.sleep(0.02)

    def _reply(self, server: SMTP, stage: str) -> str | None:
        """The reply a test injected for this command, if any."""
        owner = self.server
        with owner._lock:
            reply = owner.behaviour.replies[stage].pop(0) if owner.behaviour.replies[stage] else None
        if reply is not None and reply.startswith("421") and server.transport is not None:
            # 421: the server answers, then closes the connection (RFC 5321 §3.8)
            asyncio.get_running_loop().call_soon(server.transport.close)
        return reply

    async def handle_MAIL(self, server: SMTP, session: Any, envelope: Any, address: str, mail_options: list[str]):
        self.server._log("MAIL", " ".join([address, *mail_options]))
        await self._hold("MAIL")
        reply = self._reply(server, "MAIL")
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Any, envelope: Any, address: str, rcpt_options: list[str]):
        self.server._log("RCPT", address)
        await self._hold("RCPT")
        reply = self.server.behaviour.refuse.get(address.lower()) or self._reply(server, "RCPT")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        self.server._log("DATA", f"{len(raw)} bytes")
        reply = self._reply(server, "DATA")
        if reply is not None:  # refused: the message is not stored
            return reply
        with self.server._lock:
            drop = self.server.behaviour.drop_after_data > 0
            if drop:
                self.server.behaviour.drop_after_data -= 1
            self.server.received.append(Received(mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos),
                                                 raw=raw, peer=session.peer, dropped=drop))
            queued = len(self.server.received)
        if drop:
            server.transport.abort()  # no reply to DATA: the client cannot know
        await self._hold("DATA")  # the message is already stored: the client cannot know
        return "250 2.0.0 Ok: queued as T%d" % queued


class _Session(SMTP):
    """aiosmtpd's SMTP session, able to refuse the greeting (``SmtpServer.greeting``)."""

    owner: "SmtpServer"

    async def _handle_client(self) -> None:
        if self.owner.greeting:
            await self.push(self.owner.greeting)  # e.g. "421 4.3.2 Service not available"
            assert self.transport is not None
            self.transport.close()
            return
        await super()._handle_client()


class _Controller(Controller):
    """A Controller that can bind port 0 and remembers every connection it served."""

    def __init__(self, owner: "SmtpServer", *args: Any, **kwargs: Any):
        self.owner = owner
        super().__init__(*args, **kwargs)

    def factory(self) -> SMTP:
        smtp = _Session(self.handler, **self.SMTP_kwargs)
        smtp.owner = self.owner
        with self.owner._lock:
            self.owner._sessions.append(smtp)
        return smtp

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]  # port 0 → the one the OS chose
        super()._trigger_server()


class SmtpServer:
    """The test server. Use as a context manager; ``host``/``port`` say where it listens.

    ``auth=("user", "secret")`` requires AUTH PLAIN/LOGIN with those credentials;
    ``tls="starttls"`` offers (and requires) STARTTLS, ``tls="implicit"`` speaks TLS from
    the first byte; both need ``cert``.
    """

    def __init__(self, *, auth: tuple[str, str] | None = None, tls: str | None = None,
                 cert: TestCert | None = None, smtputf8: bool = True):
        if tls not in (None, "starttls", "implicit"):
            raise ValueError(f"tls must be None, 'starttls' or 'implicit', got {tls!r}")
        if tls and cert is None:
            raise ValueError("a TLS server needs a certificate (make_cert)")
        self.auth = auth
        self.tls = tls
        self.cert = cert
        self.smtputf8 = smtputf8  # offer SMTPUTF8 (RFC 6531), as aiosmtpd does by default
        self.received: list[Received] = []
        #: every MAIL, RCPT and DATA received, in order, as (command, argument)
        self.commands: list[tuple[str, str]] = []
        self.behaviour = _Behaviour()
        self._closing = threading.Event()
        self.auth_attempts: list[tuple[str, bool]] = []
        self._lock = threading.Lock()
        self._sessions: list[SMTP] = []
        self._controller: _Controller | None = None
        self.host = "127.0.0.1"
        self.port = 0  # 0 until started; a restart after stop() listens on the same port again
        #: when set, every new connection gets this reply instead of the 220 greeting, then is closed
        self.greeting: str | None = None

    # -- misbehaviour -------------------------------------------------------------------

    def refuse(self, recipient: str, reply: str) -> None:
        """Answer RCPT TO for ``recipient`` with ``reply``, e.g. '550 5.1.1 No such user'."""
        self.behaviour.refuse[recipient.lower()] = reply

    def drop_after_data(self, times: int = 1) -> None:
        """Hang up without answering DATA, the next ``times`` messages (they are still stored)."""
        self.behaviour.drop_after_data = times

    def fail_next(self, reply: str, *, at: str = "DATA", n: int = 1) -> None:
        """Answer the next ``n`` commands ``at`` ("MAIL", "RCPT" or "DATA") with ``reply``,
        e.g. '451 4.3.0 Try again later'. A refused DATA is not stored; a 421 also closes
        the connection after answering."""
        if at not in STAGES:
            raise ValueError(f"at must be one of {STAGES}, got {at!r}")
        with self._lock:
            self.behaviour.replies[at].extend([reply] * n)

    def hold_next(self, seconds: float, *, at: str = "DATA", n: int = 1) -> None:
        """Hold the answer to the next ``n`` commands ``at`` for ``seconds`` (cut short when
        the server stops). A held DATA is stored first, like a server that queued the
        message and then went quiet: the client cannot know it was accepted."""
        if at not in STAGES:
            raise ValueError(f"at must be one of {STAGES}, got {at!r}")
        with self._lock:
            self.behaviour.holds[at].extend([seconds] * n)

    def _log(self, command: str, argument: str) -> None:
        with self._lock:
            self.commands.append((command, argument))

    def drop_connections(self) -> None:
        """Close every client connection now, as a server does with idle clients."""
        assert self._controller is not None
        done = threading.Event()

        def close_all() -> None:
            for smtp in self.sessions:
                if smtp.transport is not None:
                    smtp.transport.close()
            done.set()

        self._controller.loop.call_soon_threadsafe(close_all)
        done.wait(5)

    @property
    def sessions(self) -> list[SMTP]:
        """Client connections served so far (the start-up probe excluded)."""
        with self._lock:
            return list(self._sessions)

    # -- life cycle ---------------------------------------------------------------------

    def _authenticate(self, server: SMTP, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = False
        login = None
        if isinstance(auth_data, LoginPassword) and self.auth is not None:
            login = auth_data.login.decode("utf-8", "replace")
            ok = (login, auth_data.password.decode("utf-8", "replace")) == self.auth
        self.auth_attempts.append((login or "", ok))
        return AuthResult(success=ok, handled=False)

    def start(self) -> "SmtpServer":
        self._closing.clear()
        kwargs: dict[str, Any] = {}
        ssl_context = None
        if self.tls == "implicit":
            assert self.cert is not None
            ssl_context = self.cert.server_context()
        elif self.tls == "starttls":
            assert self.cert is not None
            kwargs.update(tls_context=self.cert.server_context(), require_starttls=True)
        if self.auth is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=self.tls == "starttls")
        kwargs.update(enable_SMTPUTF8=self.smtputf8)
        self._controller = _Controller(self, _Handler(self), hostname=self.host, port=self.port,
                                       ssl_context=ssl_context,
                                       server_hostname="localhost", ready_timeout=10, **kwargs)
        self._controller.start()
        self.port = self._controller.port
        with self._lock:
            self._sessions.clear()  # forget the controller's own start-up probe
        return self

    def stop(self) -> None:
        self._closing.set()  # cuts held answers short
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> "SmtpServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    """A port nothing listens on (bound, then released), for 'server not listening' tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    """A plain SMTP server without AUTH, started for one test."""
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> TestCert:
    return make_cert(tmp_path_factory.mktemp("smtp-cert"))
