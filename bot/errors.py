"""Tamtam's error tree. Every error says *what* and *where*; delivery errors also say
whether trying again can help, because the outbox — not the transport — decides when
to retry.

::

    TamtamError
     ├── ConfigError          the config file is wrong: names the key, the value, what is expected
     ├── TemplateError        a template is missing or broken: names the template and the line
     ├── SourceError          a feed could not be fetched or read; the source is retried at its next poll
     └── DeliveryError        a transport could not deliver one message
          ├── TransientError  try again later; carries retry_after. An answer about this message:
          │    │              it costs the message one of its attempts
          │    └── ServiceUnavailable  the service could not be reached, or is failing or rate
          │                   limiting everyone (connect refused, TLS, 421, 5xx, 429): it says nothing
          │                   about this message, so the channel pauses and the message keeps its attempts
          ├── PermanentError  will never succeed as it is (bad address, refused content, auth)
          │    └── RecipientRefused  the receiving server refused the recipient's address itself
          │                   (SMTP 5.1.1 at RCPT): a bounce at send time, for the subscriber list
          ├── UncertainDelivery  the request left but no answer came (read timeout): it may have been delivered
          └── AlreadyDelivered  the service says it already has this message (X duplicate): counts as sent

Transports translate their library's exceptions into these with ``raise … from exc`` so the
original cause stays in the traceback of the log.
"""

from __future__ import annotations


class TamtamError(Exception):
    """Base of every error Tamtam raises on purpose."""


class ConfigError(TamtamError):
    """The configuration is invalid. ``problems`` lists one line per bad key."""

    def __init__(self, message: str, problems: list[str] | None = None, path: str | None = None):
        self.problems = problems or [message]
        self.path = path
        super().__init__(message)

    def __str__(self) -> str:  # pragma: no cover - trivial
        head = f"{self.path}: " if self.path else ""
        if len(self.problems) == 1:
            return head + self.problems[0]
        return head + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class TemplateError(TamtamError):
    """A template could not be found, parsed or rendered."""

    def __init__(self, template: str, message: str, line: int | None = None):
        self.template = template
        self.line = line
        where = f"{template}, line {line}" if line else template
        super().__init__(f"template {where}: {message}")


class SourceError(TamtamError):
    """A source could not be fetched or parsed. Never fatal: the next poll tries again."""

    def __init__(self, source_id: str, message: str):
        self.source_id = source_id
        super().__init__(f"source {source_id!r}: {message}")


class DeliveryError(TamtamError):
    """One message could not be delivered."""

    def __init__(self, message: str):
        self.reason = message
        super().__init__(message)


class TransientError(DeliveryError):
    """Temporary failure: the outbox retries later, no sooner than ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float | None = None):
        self.retry_after = retry_after
        super().__init__(message)


class ServiceUnavailable(TransientError):
    """The service could not be reached, or answers every message with a failure (5xx, 421,
    flood control). The dispatcher pauses the channel with a growing backoff (a circuit
    breaker) and puts the message back without spending an attempt: an hour-long outage
    must not fail a whole edition."""


class PermanentError(DeliveryError):
    """The message will never be accepted as it is; retrying cannot help."""


class RecipientRefused(PermanentError):
    """The receiving server refused this recipient's address for good: the address bounced
    at send time. ``hard`` (no such mailbox, disabled, no mail server for the domain)
    suppresses it at once; otherwise (a full mailbox refused with 5.2.2) it counts as a
    soft bounce. A refusal that says nothing against the address (policy, spam, our own
    sender) is a plain PermanentError, never this."""

    def __init__(self, message: str, address: str, *, hard: bool = True, status: str | None = None):
        self.address = address
        self.hard = hard
        self.status = status
        super().__init__(message)


class UncertainDelivery(DeliveryError):
    """The request was sent but no answer came back, so the message may or may not be out.

    For an at-least-once transport (email with a fixed Message-ID) the outbox retries;
    for an at-most-once one (a Telegram or X post) it flags the message for the admin
    instead of risking a double post.
    """


class AlreadyDelivered(DeliveryError):
    """The service reports it already holds this exact message, so it counts as sent."""
