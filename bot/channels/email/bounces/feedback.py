"""One piece of feedback about one address — a bounce or a complaint, from a DSN, an ARF
report or a sending service's webhook — and how it reaches the subscriber store.

Applying is idempotent: every feedback carries a ``ref`` that names the report it came
from (the DSN's Message-ID, SES's feedbackId, Mailgun's event id, Postmark's bounce ID),
and the event the store records ends with ``[ref]``. Feedback whose ref is already among
the address's events is skipped, so a webhook delivered twice, or a mailbox message read
again after a crash between "counted" and "flagged", never counts twice. The check and the
write are one transaction on the address's locked rows (``Subscribers._rows_once``), so two
copies of one report arriving at the same instant count once too.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from ....store.subscribers import Source
from .classify import Verdict
from .settings import BounceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Feedback:
    """What one report says about one address."""

    address: str
    verdict: Verdict
    status: str | None  # RFC 3463 code, "5.1.1"
    diagnostic: str  # the receiving server's words, one line
    ref: str  # names the report: deduplicates
    origin: str  # dsn, arf, ses, mailgun, postmark
    why: str = ""  # why this verdict (classify's words)
    channel_id: str | None = None  # a complaint about one list (from its List-Id), else every list

    @property
    def reason(self) -> str:
        """The event's detail as ``subscribers show`` prints it: code, the server's words,
        where it came from, and the ref that deduplicates."""
        head = f"{self.status} " if self.status and self.status not in self.diagnostic else ""
        return f"{head}{self.diagnostic or self.why or self.verdict.value} ({self.origin}) [{self.ref}]"


class Tally:
    """What applying a batch of feedback did, for a log line or a webhook's answer."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, what: str, n: int = 1) -> None:
        self.counts[what] += n

    def line(self) -> str:
        order = ("hard", "soft", "complaint", "suppressed", "duplicate", "ignored", "unknown address", "unreadable")
        parts = [f"{self.counts[k]} {k}" for k in order if self.counts[k]]
        return ", ".join(parts) or "nothing to do"

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)


def list_channel(list_id: str | None, channels: Iterable[str]) -> str | None:
    """The channel a ``List-Id: Title <news.echo.example>`` header names (Tamtam writes
    ``<channel id>.<host>``), when that channel exists."""
    m = re.search(r"<([a-z0-9][a-z0-9_-]{0,63})\.[^<>]*>", list_id or "")
    return m.group(1) if m and m.group(1) in set(channels) else None


def email_channel_ids(config: Any) -> list[str]:
    """The lists an address may be on: every email channel of the config."""
    from ..settings import EmailChannelSettings  # here, not at the top: email.settings imports this package

    return [c.id for c in config.channels if isinstance(c, EmailChannelSettings)]


def apply(store: Any, feedback: Iterable[Feedback], *, now: datetime, policy: BounceSettings,
          channels: Iterable[str], tally: Tally | None = None) -> Tally:
    """Apply each piece of feedback to the store (hard → bounced at once, soft → counted,
    complaint → complained), skipping what was applied before. ``channels`` are the ids of
    the lists an address may be on (the email channels of the config)."""
    tally = tally or Tally()
    channels = list(channels)
    for fb in feedback:
        if fb.verdict is Verdict.IGNORE:
            log.info("%s for %s not counted: %s (%s)", fb.origin, fb.address, fb.why, fb.reason)
            tally.add("ignored")
            continue
        if not any(store.subscribers.find(c, fb.address) for c in channels):
            tally.add("unknown address")
            continue
        if fb.verdict is Verdict.COMPLAINT:
            done = store.subscribers.complaint(fb.address, now=now, reason=fb.reason, ref=fb.ref,
                                               channel_id=fb.channel_id if fb.channel_id in channels else None)
        else:
            done = store.subscribers.bounce(fb.address, now=now, hard=fb.verdict is Verdict.HARD, reason=fb.reason,
                                            source=Source.BOUNCE, soft_limit=policy.soft_limit,
                                            soft_window=policy.soft_window, ref=fb.ref)
        if done is None:  # the same report, applied before (or by a copy of it arriving with it)
            tally.add("duplicate")
            continue
        tally.add(fb.verdict.value)
        if done:
            tally.add("suppressed", len(done))
            log.info("%s suppressed by a %s (%s): %s", fb.address, fb.verdict.value, fb.origin, fb.reason)
    return tally
