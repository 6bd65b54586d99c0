"""A Telegram channel's settings and its Bot API transport's."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal, Union

from pydantic import Field

from ...settings import ChannelSettings, Duration, TransportSettings, secret_env
from ..file import FileSettings


class TelegramSettings(TransportSettings):
    """``transport = { type = "telegram", chat_id = "@channel" }``; the token comes from ``token_env``."""

    type: Literal["telegram"]
    chat_id: str
    token_env: str = secret_env("TELEGRAM_BOT_TOKEN")
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    disable_web_page_preview: bool = False
    timeout: Duration = timedelta(seconds=30)
    # Telegram's flood limits: 20 posts a minute in a group or channel, 30 a second per bot.
    per_chat_limit: int = Field(20, ge=1)
    per_chat_period: Duration = timedelta(minutes=1)
    per_second_limit: int = Field(30, ge=1)


class TelegramChannelSettings(ChannelSettings):
    """``[[channels]] type = "telegram"``: digests or per-article posts in a channel or group."""

    type: Literal["telegram"]
    transport: Annotated[Union[TelegramSettings, FileSettings], Field(discriminator="type")]
