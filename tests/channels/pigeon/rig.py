"""The pigeon kind's place in the contract suite: its sample message and the loft's rig.

Listed in :data:`tests.channels.rigs.TEST_KIND_MODULES`; importing this module registers
both, and ``KIND`` tells the contract which kind to register around its tests.
"""

from __future__ import annotations

from typing import Any

from tests.channels.pigeon.kind import PigeonKind, PigeonNote
from tests.channels.pigeon.loft import Loft
from tests.channels.rigs import Rig, Sample, register_rig, register_sample
from tests.fakes.smtp_server import free_port

KIND = PigeonKind


@register_sample
class PigeonSample(Sample):
    kind = "pigeon"
    destination = "colombier"

    def body(self, text: str) -> PigeonNote:
        return PigeonNote(text)

    def read_file(self, suffix: str, data: bytes) -> str | None:
        return data.decode("utf-8")


@register_rig
class PigeonRig(Rig):
    name = "pigeon"

    def __enter__(self) -> "PigeonRig":
        self.loft = Loft().start()
        self.monkeypatch.setenv("CONTRACT_PIGEON_TOKEN", self.loft.token)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loft.stop()

    def table(self) -> dict[str, Any]:
        return {"type": "pigeon", "url": self.loft.url, "token_env": "CONTRACT_PIGEON_TOKEN", "timeout": "5s"}

    def arrived(self) -> list[str]:
        return self.loft.texts

    def requests(self) -> int:
        return len(self.loft.requests)

    def unreachable(self) -> dict[str, Any]:
        return {"url": f"http://127.0.0.1:{free_port()}"}

    def answer_late(self) -> None:
        self.loft.hold_next(60)

    def fail_service(self) -> None:
        self.loft.fail_next(503)

    def rate_limit(self, seconds: int) -> None:
        self.loft.fail_next(429, retry_after=seconds)
