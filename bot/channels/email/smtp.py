"""Send email through an SMTP server with aiosmtplib.

One connection is kept open across sends (a digest goes to many subscribers, and a new
TLS handshake and login per message is slow and looks like abuse to providers). When
the server drops an idle connection the next send reconnects once, but only when the
failure happened before DATA: after DATA the server may already hold the message, so the
error goes back to the dispatcher, which retries later. That is safe because email is
at-least-once here: the Message-ID comes from the idempotency key
(:func:`~bot.transports.email.message_id_for`), so a resend is recognisably the same
message.

Error translation follows SMTP reply classes: 4xx about a message is temporary
(TransientError), 5xx is permanent (PermanentError, with the server's own words). What
says nothing about the message — the server cannot be reached, refuses the greeting or the
login, answers 421 (closing), or drops the line before DATA — is ServiceUnavailable: the
dispatcher pauses the channel and the message keeps its attempts.

The provider's rate (``rate_per_minute``, ``rate_per_hour``) is declared in
:meth:`SmtpTransport.rate_limits`; the dispatcher waits on it before claiming a message.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from datetime import datetime, timezone
from typing import Callable

import aiosmtplib

from ...errors import ConfigError, PermanentError, RecipientRefused, ServiceUnavailable, TransientError
from ...limits import RateLimit
from ...models import Message, Receipt
from ...settings import secret
from ..base import ChannelKind, Host, Transport
from .bounces.classify import Verdict, find_status, refusal
from .mime import (
    DkimKey,
    EmailBody,
    build_email,
    load_dkim,
    message_id_for,
    parse_sender,
    sign_bytes,
    validate_recipient,
)
from .settings import SmtpSettings

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses: credentials may travel unencrypted there."""
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


def _reply(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"{exc.code} {exc.message}".strip()


class _Lane:
    """One SMTP connection of the transport's pool, carrying one transaction at a time."""

    def __init__(self) -> None:
        self.smtp: aiosmtplib.SMTP | None = None


class SmtpTransport(Transport):
    name = "smtp"
    at_least_once = True

    settings: SmtpSettings

    def __init__(self, settings: SmtpSettings, host: Host, kind: ChannelKind, *,
                 clock: Callable[[], datetime] | None = None):
        super().__init__(settings, host, kind)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._timeout = settings.timeout.total_seconds()
        # ``connections`` lanes, each a kept connection; a send takes the idle one used last,
        # so one-at-a-time sending keeps to one connection and the others open under load.
        self.concurrency = settings.connections
        self._lanes = [_Lane() for _ in range(settings.connections)]
        self._idle: asyncio.LifoQueue[_Lane] = asyncio.LifoQueue()
        for lane in self._lanes:
            self._idle.put_nowait(lane)
        self._credentials: tuple[str, str] | None = None
        self._dkim: DkimKey | None = None
        self._checked = False
        self._where = f"{settings.host}:{settings.port}"

    # -- connection ---------------------------------------------------------------------

    def _check_config(self) -> None:
        """Read secrets and refuse unsafe settings once, before the first connection."""
        if self._checked:
            return
        s = self.settings
        self._sender = parse_sender(s.from_addr, where="smtp transport 'from'")
        if s.reply_to:
            parse_sender(s.reply_to, where="smtp transport 'reply_to'")
        username = secret(s.username_env, "smtp transport username_env")
        password = secret(s.password_env, "smtp transport password_env")
        if (username is None) != (password is None):
            raise ConfigError("smtp transport: give both username_env and password_env, or neither")
        if username is not None and s.security == "none" and not is_loopback(s.host):
            raise ConfigError(
                f"smtp transport: refusing to send the password unencrypted to {s.host!r}; "
                "set security = \"starttls\" or \"tls\""
            )
        self._credentials = (username, password) if username is not None else None
        if s.ca_file and not self.host.resolve(s.ca_file).is_file():
            raise ConfigError(f"smtp transport: ca_file {str(self.host.resolve(s.ca_file))!r} not found")
        if s.dkim is not None:
            self._dkim = load_dkim(s.dkim, self.host.resolve(s.dkim.key_file))
        self._checked = True

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            username=self._credentials[0] if self._credentials else None,
            password=self._credentials[1] if self._credentials else None,
            timeout=self._timeout,
            use_tls=s.security == "tls",
            start_tls=True if s.security == "starttls" else False,
            validate_certs=s.validate_certs,
            cert_bundle=str(self.host.resolve(s.ca_file)) if s.ca_file else None,
        )

    async def _connect(self, lane: _Lane) -> aiosmtplib.SMTP:
        """A fresh, logged-in connection, or a DeliveryError/ConfigError saying why not."""
        self._check_config()
        self._drop(lane)
        smtp = self._client()
        try:
            await smtp.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            # A refused login concerns every message: the channel waits for the admin.
            hint = "" if 400 <= exc.code < 500 else " (check the credentials)"
            raise ServiceUnavailable(f"SMTP login at {self._where} refused: {_reply(exc)}{hint}") from exc
        except aiosmtplib.SMTPConnectResponseError as exc:
            raise ServiceUnavailable(f"SMTP server {self._where} refused the connection: {_reply(exc)}") from exc
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPServerDisconnected,
                OSError) as exc:
            raise ServiceUnavailable(f"cannot connect to SMTP server {self._where}: {exc}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise ServiceUnavailable(f"SMTP server {self._where} failed the handshake: {_reply(exc)}") from exc
        except aiosmtplib.SMTPException as exc:
            # No STARTTLS, no AUTH, no usable AUTH mechanism: the settings do not match
            # this server, and retrying will not change that.
            raise ConfigError(f"smtp transport {self._where}: {exc} (check 'security' and the credentials)") from exc
        lane.smtp = smtp
        log.info("connected to SMTP server %s (%s)", self._where, self.settings.security)
        return smtp

    @staticmethod
    def _drop(lane: _Lane) -> None:
        if lane.smtp is not None:
            lane.smtp.close()
            lane.smtp = None

    @staticmethod
    def _by_code(exc: aiosmtplib.SMTPResponseException, what: str, recipient: str | None = None,
                 at_data: bool = False) -> TransientError | PermanentError:
        if exc.code == 421:  # "service not available, closing": about the server, not the message
            return ServiceUnavailable(f"{what}: {_reply(exc)}")
        if 400 <= exc.code < 500:
            return TransientError(f"{what}: {_reply(exc)}")
        if recipient and (verdict := refusal(_reply(exc), exc.code, at_data=at_data)) is not None:
            # the address itself bounced: the dispatcher tells the subscriber list
            return RecipientRefused(f"{what}: {_reply(exc)}", recipient, hard=verdict is Verdict.HARD,
                                    status=find_status(_reply(exc)))
        return PermanentError(f"{what}: {_reply(exc)}")

    def rate_limits(self, message: Message) -> list[RateLimit]:
        """The provider's quota, shared by every channel sending through the same account."""
        s = self.settings
        account = f"smtp:{s.host}:{s.port}:{s.username_env or '-'}"
        limits = [RateLimit(account + ":minute", s.rate_per_minute, 60.0)]
        if s.rate_per_hour:
            limits.append(RateLimit(account + ":hour", s.rate_per_hour, 3600.0))
        return limits

    async def open(self) -> None:
        """Check the settings, read the credentials and connect one lane (so a wrong
        password shows now); the others connect when they are first needed."""
        self._check_config()
        lane = await self._idle.get()
        try:
            if lane.smtp is None or not lane.smtp.is_connected:
                await self._connect(lane)
        finally:
            self._idle.put_nowait(lane)

    async def aclose(self) -> None:
        for lane in self._lanes:
            smtp, lane.smtp = lane.smtp, None
            if smtp is None:
                continue
            if smtp.is_connected:
                try:
                    await smtp.quit(timeout=min(self._timeout, 5.0))
                except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
                    pass  # the server went first; nothing is lost
            smtp.close()

    # -- sending ------------------------------------------------------------------------

    async def send(self, message: Message) -> Receipt:
        s = self.settings
        self._check_config()
        body = message.body
        if message.kind == "email" and isinstance(body, EmailBody) and body.wire is not None:
            # spliced from its group's compiled email: these bytes are the message
            recipient = validate_recipient(message.destination)
            raw = sign_bytes(body.wire, self._dkim) if self._dkim is not None else body.wire
            message_id = message_id_for(message.key, self._sender.domain)
        else:
            msg = build_email(message, from_addr=s.from_addr, reply_to=s.reply_to, now=self.clock(), dkim=self._dkim)
            recipient = msg["To"].addresses[0].addr_spec
            # an address that is not ASCII goes in the header as UTF-8 (RFC 6532), never as an encoded word
            raw = msg.as_bytes() if recipient.isascii() else msg.as_bytes(policy=msg.policy.clone(utf8=True))
            message_id = str(msg["Message-ID"])
        sender = self._sender.addr_spec
        ready = (isinstance(body, EmailBody) and body.wire is not None and self._dkim is None
                 and sender.isascii() and recipient.isascii())
        lane = await self._idle.get()
        try:
            reply = await self._transaction(lane, sender, recipient, raw, message.key, ready=ready,
                                            utf8=not recipient.isascii())
        except asyncio.CancelledError:
            self._drop(lane)  # half a transaction on the wire: never reuse that connection
            raise
        finally:
            self._idle.put_nowait(lane)
        return Receipt(transport=self.name, remote_id=message_id, detail=reply)

    async def _transaction(self, lane: _Lane, sender: str, recipient: str, raw: bytes, key: str, *,
                           ready: bool = False, utf8: bool = False) -> str:
        """MAIL, RCPT, DATA on the lane's kept connection; one reconnect if it went stale before DATA.
        ``utf8``: the recipient is not ASCII, so the envelope needs SMTPUTF8 (RFC 6531)."""
        reused = lane.smtp is not None and lane.smtp.is_connected
        smtp = lane.smtp if reused else await self._connect(lane)
        assert smtp is not None
        try:
            await self._mail(smtp, sender, ready, utf8)
        except (aiosmtplib.SMTPServerDisconnected, ConnectionError, aiosmtplib.SMTPResponseException) as exc:
            stale = isinstance(exc, (aiosmtplib.SMTPServerDisconnected, ConnectionError)) or \
                getattr(exc, "code", 0) == 421
            if not (reused and stale):
                raise self._mail_error(lane, exc, sender) from exc
            log.info("SMTP connection to %s went stale (%s); reconnecting", self._where, exc)
            smtp = await self._connect(lane)
            try:
                await self._mail(smtp, sender, ready, utf8)
            except (aiosmtplib.SMTPException, OSError) as exc2:
                raise self._mail_error(lane, exc2, sender) from exc2
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise self._mail_error(lane, exc, sender) from exc

        try:
            await self._rcpt(smtp, recipient, ready, utf8)
        except aiosmtplib.SMTPRecipientRefused as exc:
            await self._reset(lane, smtp, exc.code)
            raise self._by_code(exc, f"recipient {recipient!r} refused by {self._where}", recipient) from exc
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset(lane, smtp, exc.code)
            raise self._by_code(exc, f"SMTP server {self._where} refused RCPT for {recipient!r}", recipient) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            self._drop(lane)
            raise ServiceUnavailable(f"connection to {self._where} lost before DATA: {exc}") from exc

        try:
            response = await (self._data_as_is(smtp, raw) if ready else smtp.data(raw))
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset(lane, smtp, exc.code)
            raise self._by_code(exc, f"SMTP server {self._where} refused the message for {recipient!r}", recipient,
                                at_data=True) from exc
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            # The message may have been accepted before the line went quiet. Retrying is
            # safe: the Message-ID is the same, so the reader sees one email.
            self._drop(lane)
            raise TransientError(
                f"connection to {self._where} lost after DATA for {key!r} (may have been delivered; "
                f"a resend keeps the same Message-ID): {exc}"
            ) from exc
        return f"{response.code} {response.message}".strip()

    async def _mail(self, smtp: aiosmtplib.SMTP, sender: str, plain: bool, utf8: bool = False) -> None:
        """MAIL FROM. For a plain ASCII envelope (``plain``: a spliced message, whose
        addresses were checked when it was queued and at send) the command is written as it
        is; aiosmtplib's ``mail`` parses and re-quotes both addresses every time, which was
        a tenth of the sending time for a large list. For a recipient that is not ASCII,
        ``MAIL FROM:<…> SMTPUTF8`` if the server offers it; if not, that message fails
        (PermanentError, naming the reason) and the connection carries the next one."""
        if utf8:
            if smtp.is_ehlo_or_helo_needed:
                await smtp.ehlo()
            if not smtp.supports_extension("smtputf8"):
                raise PermanentError(f"the recipient's address is not ASCII and {self._where} does not offer "
                                     "SMTPUTF8 (RFC 6531), so it cannot be sent there")
            await smtp.mail(sender, options=["SMTPUTF8"], encoding="utf-8")
            return
        if not plain or smtp.is_ehlo_or_helo_needed:  # the first MAIL greets the server first
            await smtp.mail(sender)
            return
        response = await smtp.execute_command(b"MAIL", b"FROM:<" + sender.encode("ascii") + b">",
                                              timeout=self._timeout)
        if response.code != 250:
            raise aiosmtplib.SMTPSenderRefused(response.code, response.message, sender)

    async def _rcpt(self, smtp: aiosmtplib.SMTP, recipient: str, plain: bool, utf8: bool = False) -> None:
        """RCPT TO, written as it is for a plain ASCII address (see :meth:`_mail`)."""
        if not plain:
            await smtp.rcpt(recipient, encoding="utf-8" if utf8 else "ascii")
            return
        response = await smtp.execute_command(b"RCPT", b"TO:<" + recipient.encode("ascii") + b">",
                                              timeout=self._timeout)
        if response.code not in (250, 251):
            raise aiosmtplib.SMTPRecipientRefused(response.code, response.message, recipient)

    async def _data_as_is(self, smtp: aiosmtplib.SMTP, raw: bytes) -> aiosmtplib.SMTPResponse:
        """DATA with bytes already in SMTP form (CRLF only, no line starting with a dot: a
        spliced message, :data:`.wire.WIRE_READY`): aiosmtplib's own ``data`` would rescan
        them with two regular expressions, a sixth of the sending time."""
        start = await smtp.execute_command(b"DATA", timeout=self._timeout)
        if start.code != 354:
            raise aiosmtplib.SMTPDataError(start.code, start.message)
        assert smtp.protocol is not None
        smtp.protocol.write(raw + b".\r\n")
        response = await smtp.protocol.read_response(timeout=self._timeout)
        if response.code != 250:
            raise aiosmtplib.SMTPDataError(response.code, response.message)
        return response

    def _mail_error(self, lane: _Lane, exc: BaseException, sender: str) -> TransientError | PermanentError:
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            if exc.code == 421:
                self._drop(lane)
            return self._by_code(exc, f"SMTP server {self._where} refused sender {sender!r}")
        self._drop(lane)
        return ServiceUnavailable(f"connection to {self._where} lost before sending: {exc}")

    async def _reset(self, lane: _Lane, smtp: aiosmtplib.SMTP, code: int) -> None:
        """Clear the envelope so the kept connection can carry the next message."""
        if code == 421:  # the server is closing the connection
            self._drop(lane)
            return
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            self._drop(lane)
