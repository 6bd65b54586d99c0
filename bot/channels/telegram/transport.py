"""Posts to a Telegram channel or group through the Bot API, with python-telegram-bot.

A Telegram post cannot be taken back or deduplicated by the server, so this transport
is at-most-once: when a request left but no answer came (read timeout, connection cut
after sending) it raises :class:`~bot.errors.UncertainDelivery` and the outbox asks the
admin instead of posting twice. Everything Telegram refuses for good (bad HTML, unknown
chat, bot kicked out) is a :class:`~bot.errors.PermanentError` carrying Telegram's own
description; Telegram out of reach, answering 5xx, or asking us to slow down (flood
control, with its ``retry_after``) is :class:`~bot.errors.ServiceUnavailable`: the
dispatcher pauses the channel and the post keeps its attempts.

Telegram's flood limits (20 messages a minute per group or channel, 30 a second per bot)
are declared by :meth:`TelegramTransport.rate_limits` and held by the dispatcher before a
post is claimed (:mod:`bot.limits`), so no minute ever holds more than the limit and
channels that share a bot share its quota. PTB's own rate limiter is not used: it starts
with a full bucket and let 40 posts through in a channel's first minute.
"""

from __future__ import annotations

import logging
import warnings
from datetime import timedelta
from typing import Any, ClassVar

import httpx
from telegram import LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import ExtBot
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from ...errors import ConfigError, DeliveryError, PermanentError, ServiceUnavailable, TransientError, UncertainDelivery
from ...limits import RateLimit
from ...models import Message, Receipt
from ...settings import secret
from ..base import ChannelKind, Host, Transport
from .html import MAX_CAPTION, MAX_TEXT, visible_length
from .render import TelegramPost
from .settings import TelegramSettings

log = logging.getLogger(__name__)

# Telegram's answers when it could not download the picture we pointed it to. The post
# itself is fine, so we send it again without the picture.
_PHOTO_FETCH_ERRORS = (
    "wrong file identifier/http url specified",
    "failed to get http url content",
    "wrong type of the web page content",
    "wrong remote file identifier",
    "image_process_failed",
    "photo_invalid_dimensions",
    "photo_save_file_invalid",
)


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _retry_after(exc: RetryAfter) -> float:
    """PTB 22 returns an int or a timedelta depending on PTB_TIMEDELTA, warning about the
    int; we accept both and keep the warning out of the logs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        return _seconds(exc.retry_after)


def translate(exc: TelegramError, where: str) -> DeliveryError:
    """Map a python-telegram-bot error to the outbox's vocabulary. Order matters: in PTB
    ``BadRequest`` and ``TimedOut`` are both subclasses of ``NetworkError``."""
    cause = exc.__cause__
    if isinstance(exc, RetryAfter):
        seconds = _retry_after(exc)
        return ServiceUnavailable(f"{where}: Telegram flood control, retry after {seconds:g} s", retry_after=seconds)
    if isinstance(exc, TimedOut):
        if isinstance(cause, (httpx.ConnectTimeout, httpx.PoolTimeout)):
            return ServiceUnavailable(f"{where}: could not connect to Telegram in time (the request was not sent)")
        # A read or write timeout: the request (or part of it) left and no answer came.
        return UncertainDelivery(f"{where}: no answer from Telegram in time; the post may or may not be out")
    if isinstance(exc, ChatMigrated):
        return PermanentError(
            f"{where}: the group became the supergroup {exc.new_chat_id}; put that id in chat_id"
        )
    if isinstance(exc, InvalidToken):
        # PTB's message may quote the token itself: never repeat it.
        return PermanentError(f"{where}: Telegram rejected the bot token (401 Unauthorized)")
    if isinstance(exc, Forbidden):
        return PermanentError(f"{where}: Telegram refused: {exc.message}")
    if isinstance(exc, BadRequest):
        return PermanentError(f"{where}: Telegram refused the message: {exc.message}")
    if isinstance(exc, NetworkError):
        if isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout)):
            return ServiceUnavailable(f"{where}: cannot reach Telegram: {exc.message}")
        if isinstance(cause, (httpx.ReadError, httpx.RemoteProtocolError)):
            # The connection broke after the request was written: same doubt as a read timeout.
            return UncertainDelivery(f"{where}: the connection broke before Telegram answered ({exc.message}); "
                                     "the post may or may not be out")
        if cause is not None:
            # Something else broke inside the HTTP client (PTB: "Unknown error in HTTP
            # implementation"), possibly after the request left: do not risk a double post.
            return UncertainDelivery(f"{where}: {exc.message}; the post may or may not be out")
        return ServiceUnavailable(f"{where}: {exc.message}")  # Telegram answered 5xx: it did not post
    return TransientError(f"{where}: unexpected Telegram error: {exc.message}")


class TelegramTransport(Transport):
    name: ClassVar[str] = "telegram"
    at_least_once: ClassVar[bool] = False
    max_text: ClassVar[int | None] = MAX_TEXT  # visible characters in UTF-16 units
    max_caption: ClassVar[int] = MAX_CAPTION  # the same, for a photo's caption

    settings: TelegramSettings

    def __init__(self, settings: TelegramSettings, host: Host, kind: ChannelKind):
        super().__init__(settings, host, kind)
        self._bot: ExtBot[Any] | None = None

    def _timeout(self) -> float:
        return self.settings.timeout.total_seconds()

    def rate_limits(self, message: Message) -> list[RateLimit]:
        """Per chat and per bot. The key names the bot by the public half of its token (its id)."""
        s = self.settings
        token = self._bot.token if self._bot is not None else ""
        bot = f"telegram:{token.split(':', 1)[0] or s.token_env}"
        chat = (message.destination or s.chat_id).strip()
        # Telegram counts a message when it arrives; one that left early may arrive late and
        # make a window look shorter there than here, so each window is a little longer.
        period = s.per_chat_period.total_seconds()
        return [RateLimit(f"{bot}:chat:{chat}", s.per_chat_limit, period * 1.02 + 0.2),
                RateLimit(bot, s.per_second_limit, 1.1)]

    def _where(self, chat: str) -> str:
        return f"telegram chat {chat}"

    async def open(self) -> None:
        """Build the bot and call getMe, so a wrong token or an unreachable API shows up
        before the first post instead of in the middle of an edition."""
        if self._bot is not None:
            return
        token = secret(self.settings.token_env, "telegram transport token_env")
        if not token:
            raise ConfigError("telegram transport: token_env is empty; name the variable holding the bot token")
        timeout = self._timeout()
        request = HTTPXRequest(
            connection_pool_size=8,
            connect_timeout=timeout,
            read_timeout=timeout,
            write_timeout=timeout,
            pool_timeout=timeout,
            media_write_timeout=timeout,
        )
        try:
            bot: ExtBot[Any] = ExtBot(
                token=token,
                base_url=self.settings.base_url,
                base_file_url=self.settings.base_file_url,
                request=request,
            )
        except InvalidToken:
            # from None: PTB's message would put the token in the log.
            raise ConfigError(
                f"telegram transport: the value of ${self.settings.token_env} is not a bot token"
            ) from None
        try:
            await bot.initialize()
        except InvalidToken:
            await self._shutdown(bot)
            raise ConfigError(
                f"telegram transport: Telegram rejected the bot token in ${self.settings.token_env} "
                f"(401 Unauthorized at {self.settings.base_url}); check it with @BotFather"
            ) from None  # from None: PTB's message quotes the token
        except TelegramError as exc:
            await self._shutdown(bot)
            raise translate(exc, f"telegram getMe at {self.settings.base_url}") from exc
        self._bot = bot
        log.info("telegram: connected as @%s", bot.username)

    async def send(self, message: Message) -> Receipt:
        chat = (message.destination or self.settings.chat_id).strip()
        where = self._where(chat)
        post = message.body
        if not isinstance(post, TelegramPost):
            raise PermanentError(f"{where}: message {message.key} is a {message.kind!r} message, not telegram")
        # The renderer fits posts with this very measure (visible text, UTF-16 units), so
        # what it makes always passes; a post over the limit never reaches Telegram.
        limit = self.max_caption if post.photo_url else MAX_TEXT
        what = "caption" if post.photo_url else "text"
        length = visible_length(post.text)
        if length > limit:
            raise PermanentError(
                f"{where}: message {message.key}: the {what} is {length} characters, Telegram allows {limit}"
            )
        if not post.photo_url and not post.text.strip():
            raise PermanentError(f"{where}: message {message.key} has no text")
        if self._bot is None:
            await self.open()
        assert self._bot is not None
        detail_extra = ""
        try:
            if post.photo_url:
                try:
                    sent = await self._bot.send_photo(
                        chat_id=chat, photo=post.photo_url, caption=post.text or None,
                        parse_mode=ParseMode.HTML,
                    )
                except BadRequest as exc:
                    if not any(s in exc.message.lower() for s in _PHOTO_FETCH_ERRORS) or not post.text.strip():
                        raise
                    # A post without its picture beats no post.
                    log.warning("%s: Telegram could not use the photo %s (%s); posting the text alone",
                                where, post.photo_url, exc.message)
                    detail_extra = f" (photo refused: {exc.message}; sent as text)"
                    sent = await self._send_text(chat, post.text)
            else:
                sent = await self._send_text(chat, post.text)
        except TelegramError as exc:
            raise translate(exc, where) from exc
        return Receipt(
            transport=self.name,
            remote_id=str(sent.message_id),
            detail=f"chat {chat} message {sent.message_id}{detail_extra}",
        )

    async def _send_text(self, chat: str, text: str) -> Any:
        assert self._bot is not None
        return await self._bot.send_message(
            chat_id=chat, text=text, parse_mode=ParseMode.HTML,
            link_preview_options=LinkPreviewOptions(is_disabled=self.settings.disable_web_page_preview),
        )

    @staticmethod
    async def _shutdown(bot: ExtBot[Any]) -> None:
        try:
            await bot.shutdown()
        except Exception:  # pragma: no cover - closing is best effort
            log.exception("telegram: closing the HTTP client failed")

    async def aclose(self) -> None:
        bot, self._bot = self._bot, None
        if bot is not None:
            await self._shutdown(bot)
