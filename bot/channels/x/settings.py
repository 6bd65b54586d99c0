"""An X channel's settings and its API transport's."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal, Union

from pydantic import Field

from ...settings import ChannelSettings, Duration, TransportSettings, secret_env
from ..file import FileSettings


class XSettings(TransportSettings):
    """``transport = { type = "x" }``; the four OAuth 1.0a secrets come from the environment."""

    type: Literal["x"]
    account: str = "x"
    api_base_url: str = "https://api.twitter.com"
    consumer_key_env: str = secret_env("X_CONSUMER_KEY")
    consumer_secret_env: str = secret_env("X_CONSUMER_SECRET")
    access_token_env: str = secret_env("X_ACCESS_TOKEN")
    access_token_secret_env: str = secret_env("X_ACCESS_TOKEN_SECRET")
    timeout: Duration = timedelta(seconds=30)


class XChannelSettings(ChannelSettings):
    """``[[channels]] type = "x"``: one share snippet per article, or one post linking to the site."""

    type: Literal["x"]
    transport: Annotated[Union[XSettings, FileSettings], Field(discriminator="type")]
