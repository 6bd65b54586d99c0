"""Subscriber addresses as admins give them: one at a time, or a CSV file from anywhere
(Excel's French semicolon files in Windows-1252 included); and as they take them back:
an export, and everything known about one address.

A CSV import keeps every good row and reports every bad one with its line, so one typo in
a 20,000-line export never loses the other 19,999 (rss2email's and listmonk's imports stop
at the first error).
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Callable

from email_validator import EmailNotValidError, validate_email

from .errors import TamtamError
from .models import Subscriber
from .store import Store
from .store.outbox import STATISTICS_EVERY
from .store.subscribers import Source

# Column names admins use, in French and English (compared in lower case, accents kept).
COLUMN_ALIASES = {
    "email": "email", "e-mail": "email", "courriel": "email", "adresse": "email", "mail": "email",
    "adresse e-mail": "email", "adresse email": "email", "adresse électronique": "email", "email address": "email",
    "e-mail address": "email",
    "name": "name", "nom complet": "name", "prénom nom": "name", "full name": "name",
    "prénom": "first", "prenom": "first", "first name": "first", "firstname": "first", "given name": "first",
    "nom": "last", "nom de famille": "last", "last name": "last", "lastname": "last", "surname": "last",
}
NAME_ALIASES = COLUMN_ALIASES  # the name before first and last names were told apart


class CsvImportError(TamtamError):
    """The file as a whole cannot be imported (unreadable, no email column)."""


# An ASCII local part of the plainest kind (RFC 5322 dot-atom): most addresses of a list.
_PLAIN_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


@functools.lru_cache(maxsize=4096)
def _domain(domain: str) -> str | None:
    """The normalised domain email-validator gives for ``domain``, or None if it refuses it.
    A list of 100,000 readers has a few hundred domains: each is validated once."""
    try:
        return validate_email(f"a@{domain}", check_deliverability=False).domain
    except EmailNotValidError:
        return None


def valid_address(address: str) -> str:
    """The address, normalised for storage, or ValueError saying what is wrong with it.

    email-validator judges every address; for the common one (a plain ASCII local part) it
    judges the domain once per import and the local part here by the same rule, which keeps
    an import of 100,000 rows within seconds. Anything else goes to email-validator whole."""
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if at and len(local) <= 64 and _PLAIN_LOCAL.fullmatch(local):
        normalised = _domain(domain)
        if normalised is not None and len(local) + 1 + len(normalised) <= 254:
            return f"{local}@{normalised}"
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


@dataclass
class ImportResult:
    added: int = 0  # active now (with consent)
    pending: int = 0  # waiting for their confirmation (without consent)
    existing: int = 0
    rejected: list[str] = field(default_factory=list)  # "line N: 'value': why"
    notes: list[str] = field(default_factory=list)  # rows imported after a repair, and why
    stopped: str | None = None  # why reading stopped before the end, if it did
    encoding: str = "utf-8"


def read_text(path: Path) -> tuple[str, str]:
    """(text, encoding): UTF-8 (with or without BOM), else Windows-1252 — what Excel's
    French "CSV (séparateur : point-virgule)" writes. Every byte is a character in
    cp1252 but five, so a file that is neither still reads, and bad rows show as such."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CsvImportError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace"), "cp1252"


def import_csv(store: Store, channel_id: str, path: Path, now: datetime, *, consent: bool = True,
               on_pending: Callable[[Subscriber], Any] | None = None,
               on_progress: Callable[[int, int], Any] | None = None) -> ImportResult:
    """Import ``path`` (comma, semicolon or tab separated; an ``email`` column, optional
    ``name`` or first and last name columns). With ``consent`` the addresses are active at
    once; without it each is pending and ``on_pending`` is called for it (to send its
    confirmation email). A row with more fields than the header has its extra fields joined
    to the last column (a name with the separator in it) and is noted; every other bad row
    is rejected with its line, never the whole file."""
    text, encoding = read_text(path)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
        first = text.split("\n", 1)[0]
        if first.count(";") > first.count(","):
            dialect = _Semicolon
    reader = csv.DictReader(text.splitlines(), dialect=dialect, restkey=_EXTRA)
    header = [(f or "").strip() for f in (reader.fieldnames or [])]
    columns: dict[str, str] = {}
    for raw_name, cleaned in zip(reader.fieldnames or [], header):
        role = COLUMN_ALIASES.get(cleaned.lower())
        if role and role not in columns:
            columns[role] = raw_name
    if "email" not in columns:
        raise CsvImportError(f"{path}: no 'email' column in the header (found: {', '.join(header) or 'nothing'}); "
                             "name it 'email', 'e-mail' or 'courriel'")
    last_column = (reader.fieldnames or [])[-1]
    delimiter = getattr(dialect, "delimiter", ",")
    result = ImportResult(encoding=encoding)
    rows = iter(reader)
    batch: list[tuple[str, str | None, int, str]] = []  # (address, name, line, as written)
    total = max(1, len(text.splitlines()) - 1)

    def flush() -> None:
        people = [(email, name) for email, name, _, _ in batch]
        for added, (_, _, line, raw) in zip(store.subscribers.add_many(
                channel_id, people, now=now, source=Source.IMPORT, confirmed=consent), batch):
            sub = added.subscriber
            if added.outcome == "suppressed":
                result.rejected.append(f"line {line}: {raw!r}: {sub.status} on {sub.status_changed_at:%Y-%m-%d} "
                                       f"({sub.status_source}); only a new sign-up by the reader brings it back")
            elif added.outcome == "pending":
                result.pending += 1
                if on_pending is not None:
                    on_pending(sub)
            elif added.created:
                result.added += 1
            else:
                result.existing += 1
        batch.clear()
        if on_progress is not None:
            on_progress(reader.line_num - 1, total)

    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            result.stopped = f"line {reader.line_num}: {exc}; the rows after it were not read"
            result.rejected.append(f"line {reader.line_num}: unreadable ({exc})")
            break
        extra = [v for v in row.pop(_EXTRA, None) or [] if v is not None]
        note = None
        if any(v.strip() for v in extra):
            joined = delimiter.join([row.get(last_column) or "", *extra]).strip(delimiter + " ")
            row[last_column] = joined
            note = (f"line {reader.line_num}: {len(extra)} field(s) more than the header; "
                    f"kept as part of {last_column.strip()!r}: {joined!r}")

        def cell(role: str) -> str:
            return (row.get(columns[role]) or "").strip() if role in columns else ""

        raw = cell("email")
        if "\ufffd" in raw:
            result.rejected.append(f"line {reader.line_num}: {raw!r}: characters that are neither UTF-8 nor "
                                   "Windows-1252; save the file as UTF-8")
            continue
        name = cell("name") or " ".join(p for p in (cell("first"), cell("last")) if p) or None
        try:
            email = valid_address(raw)
        except ValueError as exc:
            result.rejected.append(f"line {reader.line_num}: {raw!r}: {exc}")
            continue
        if note:
            result.notes.append(note)
        batch.append((email, name, reader.line_num, raw))
        if len(batch) >= IMPORT_CHUNK:
            flush()
    if batch:
        flush()
    if result.added + result.pending >= STATISTICS_EVERY:  # the next edition's queries plan on them
        store.subscribers.refresh_statistics()
    return result


#: Rows written per transaction by an import.
IMPORT_CHUNK = 5000


_EXTRA = "\x00extra"  # where DictReader puts the fields beyond the header


class _Semicolon(csv.excel):
    delimiter = ";"


EXPORT_COLUMNS = ("email", "name", "status", "language", "topics", "frequency", "weekly_day", "created_at",
                  "confirmed_at", "status_changed_at", "status_source")


def _cell(value: Any) -> str:
    """A value as a CSV cell a spreadsheet will not run: '=', '+', '-', '@' first are quoted away."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    text = "|".join(value) if isinstance(value, tuple) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_csv(store: Store, channel_id: str, out: IO[str], *, everyone: bool = True) -> int:
    """Write the channel's subscribers as CSV (UTF-8, comma; topics joined by '|');
    ``everyone`` includes the pending and suppressed ones. Returns how many rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    n = 0
    for sub in store.subscribers.iter(channel_id, active_only=not everyone):
        writer.writerow([_cell(getattr(sub, column)) for column in EXPORT_COLUMNS])
        n += 1
    return n


def describe(store: Store, channel_ids: list[str], address: str) -> list[str]:
    """What Tamtam knows of ``address`` on each list: status, preferences, then every event."""
    lines: list[str] = []
    for channel_id in channel_ids:
        sub = store.subscribers.find(channel_id, address)
        if sub is None:
            continue
        day = "" if sub.weekly_day is None else f" ({_WEEKDAYS[sub.weekly_day]})"
        lines += [
            f"{sub.email} on {channel_id}: {sub.status} since {sub.status_changed_at:%Y-%m-%d %H:%M} UTC "
            f"({sub.status_source})",
            f"  name: {sub.name or '-'}",
            f"  language: {sub.language or 'the list’s'}; frequency: {sub.frequency}{day}; topics: "
            f"{', '.join(sub.topics) if sub.topics is not None else 'all'}",
            f"  added {sub.created_at:%Y-%m-%d %H:%M} UTC"
            + (f"; confirmed {sub.confirmed_at:%Y-%m-%d %H:%M} UTC" if sub.confirmed_at else ""),
            "  events:",
        ]
        for event in store.subscribers.events(sub.id):
            lines.append(f"    {event.at:%Y-%m-%d %H:%M} {event.kind} ({event.source})"
                         + (f": {event.detail}" if event.detail else ""))
    return lines


_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
