"""What a run did, for the admin: polls, editions, deliveries and the problems, in plain lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping

from .dispatch import DispatchReport, Outcome
from .publish import PublishResult
from .retention import Pruned


@dataclass(frozen=True)
class PollResult:
    source_id: str
    ok: bool
    new: int = 0
    updated: int = 0
    not_modified: bool = False
    error: str | None = None
    rejected: int = 0


@dataclass
class RunReport:
    polls: list[PollResult] = field(default_factory=list)
    editions: list[PublishResult] = field(default_factory=list)
    edition_errors: list[tuple[str, str]] = field(default_factory=list)
    dispatch: DispatchReport = field(default_factory=DispatchReport)
    recovered: dict[str, int] = field(default_factory=dict)
    needs_admin: dict[str, int] = field(default_factory=dict)  # status → messages waiting for a decision
    pruned: Pruned | None = None  # what retention deleted after the dispatch

    @property
    def ok(self) -> bool:
        return (all(p.ok for p in self.polls) and not self.edition_errors and self.dispatch.ok
                and not self.recovered.get("unknown") and not any(self.needs_admin.values()))

    def lines(self, file_kinds: Mapping[str, str]) -> Iterator[str]:
        """The report as the ``once`` command prints it. ``file_kinds`` explains file suffixes."""
        for p in self.polls:
            if not p.ok:
                yield f"source {p.source_id}: FAILED — {p.error}"
                continue
            state = "not modified" if p.not_modified else f"{p.new} new, {p.updated} updated"
            if p.rejected:
                state += f", {p.rejected} refused by the database (see the log)"
            yield f"source {p.source_id}: {state}"
        for k, v in self.recovered.items():
            yield f"recovered from an interrupted run: {v} message(s) {k}"
        for e in self.editions:
            if e.edition_id is None:
                yield f"channel {e.channel_id}: nothing new to send"
            else:
                extra = f" ({e.note})" if e.note else ""
                yield (f"channel {e.channel_id}: edition {e.edition_id}, {e.articles} article(s), "
                       f"{e.messages} message(s) queued{extra}")
        for ch, err in self.edition_errors:
            yield f"channel {ch}: edition NOT built — {err}"
        d = self.dispatch
        for ch in sorted({ch for ch, o in d.counts if o is Outcome.SENT}):
            yield f"channel {ch}: {d.count(Outcome.SENT, ch)} message(s) delivered"
        for problem in d.problems:
            yield f"channel {problem.channel_id}: {problem.key} {problem.outcome.value} — {problem.reason}"
        shown = len(d.problems)
        total = sum(n for (_, o), n in d.counts.items() if o is not Outcome.SENT)
        if total > shown:
            yield f"… and {total - shown} more message(s) not delivered (see `outbox list`)"
        if self.pruned is not None and self.pruned.total:
            yield self.pruned.summary()
        waiting = ", ".join(f"{n} {status}" for status, n in sorted(self.needs_admin.items()) if n)
        if waiting:
            yield (f"{waiting} message(s) need an admin: `tamtam outbox list` shows them; `outbox retry`, "
                   "`outbox resolve` (unknown) or `outbox dismiss` (failed) settles them")
        if self.ok and not d.sent and not any(e.edition_id for e in self.editions):
            new = sum(p.new for p in self.polls)
            yield f"Nothing new: {new} new article(s), every channel is up to date; nothing was sent."
        if d.files:
            yield ""
            yield "Files written:"
            for ch in sorted({ch for ch, _, _ in d.files}):
                folders = sorted({folder for c, folder, _ in d.files if c == ch})
                for folder in folders:
                    yield f"  {folder}/  (channel {ch})"
                    for (c, f, suffix), n in sorted(d.files.items()):
                        if c == ch and f == folder:
                            yield f"    {n} × *{suffix}: {file_kinds.get(suffix, '')}"
