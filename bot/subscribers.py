"""Subscriber addresses as admins give them: one at a time, or a CSV file from anywhere.

A CSV import keeps every good row and reports every bad one with its line, so one typo in
a 20,000-line export never loses the other 19,999 (rss2email's and listmonk's imports stop
at the first error).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from .errors import TamtamError
from .store import Store
from .store.subscribers import Source

# Column names admins use, in French and English.
NAME_ALIASES = {"e-mail": "email", "courriel": "email", "adresse": "email", "mail": "email",
                "nom": "name", "prénom nom": "name", "full name": "name"}


class CsvImportError(TamtamError):
    """The file as a whole cannot be imported (unreadable, not UTF-8, no email column)."""


def valid_address(address: str) -> str:
    """The address, normalised for storage, or ValueError saying what is wrong with it."""
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


@dataclass
class ImportResult:
    added: int = 0
    existing: int = 0
    rejected: list[str] = field(default_factory=list)  # "line N: 'value': why"
    stopped: str | None = None  # why reading stopped before the end, if it did


def import_csv(store: Store, channel_id: str, path: Path, now: datetime) -> ImportResult:
    """Import ``path`` (comma, semicolon or tab separated; ``email`` column, optional ``name``)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CsvImportError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CsvImportError(f"{path}: not UTF-8 text; save the CSV as UTF-8") from None
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:2048], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(text.splitlines(), dialect=dialect)
    fields = {NAME_ALIASES.get((f or "").strip().lower(), (f or "").strip().lower()): f
              for f in (reader.fieldnames or [])}
    if "email" not in fields:
        raise CsvImportError(f"{path}: no 'email' column in the header "
                           f"(found: {', '.join(reader.fieldnames or []) or 'nothing'})")
    result = ImportResult()
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            result.stopped = f"line {reader.line_num}: {exc}; the rows after it were not read"
            result.rejected.append(f"line {reader.line_num}: unreadable ({exc})")
            break
        raw = (row.get(fields["email"]) or "").strip()
        name = ((row.get(fields["name"]) or "").strip() or None) if "name" in fields else None
        try:
            email = valid_address(raw)
        except ValueError as exc:
            result.rejected.append(f"line {reader.line_num}: {raw!r}: {exc}")
            continue
        added = store.subscribers.add(channel_id, email, name, now=now, source=Source.IMPORT)
        if added.outcome == "suppressed":
            sub = added.subscriber
            result.rejected.append(f"line {reader.line_num}: {raw!r}: {sub.status} on "
                                   f"{sub.status_changed_at:%Y-%m-%d} ({sub.status_source}); only a new sign-up "
                                   "by the reader brings it back")
            continue
        result.added += added.created
        result.existing += not added.created
    return result
