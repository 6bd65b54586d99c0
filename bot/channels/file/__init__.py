"""The file transport: any channel kind's messages written to disk instead of sent (the
demo, and a dry run). Every kind accepts it; the kind says how its messages look as files."""

from typing import Literal

from ...settings import TransportSettings


class FileSettings(TransportSettings):
    """``transport = { type = "file", dir = "var/out" }``"""

    type: Literal["file"]
    dir: str = "var/out"


from .transport import FileTransport  # noqa: E402 - the transport module needs FileSettings above

__all__ = ["FileSettings", "FileTransport"]
