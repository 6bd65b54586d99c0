"""The commands that open the database: every command but ``check``. :mod:`bot.commands`
loads this module only when one of them runs, so ``check`` (run after every config edit)
never pays for SQLAlchemy, the store, the ingest, the daemon and the scheduler (about 0.4 s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from . import daemon
from .app import App
from .channels import registry
from .config import Config
from .daemon import ALREADY_RUNNING
from .errors import ConfigError, TamtamError
from .models import Frequency, Status
from .publish import preview, release, rerender
from .retention import prune
from .scheduler import describe
from .settings import parse_duration
from .store import Store
from .store.subscribers import Source
from .subscribers import describe as describe_subscriber
from .subscribers import export_csv, import_csv, valid_address
from .testsend import test_send


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _store(config: Config) -> Store:
    return Store(config.database_url)


# -- commands --------------------------------------------------------------------------
def cmd_once(config: Config, args: argparse.Namespace) -> int:
    app = App(config)

    async def go():  # type: ignore[no-untyped-def]
        try:
            with app.store.runner_lock() as mine:
                return await app.once() if mine else None
        finally:
            await app.aclose()

    report = asyncio.run(go())
    if report is None:
        print(ALREADY_RUNNING, file=sys.stderr)
        return 2
    for line in report.lines(app.channels.file_kinds()):
        print(line)
    return 0 if report.ok else 1


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    clean = asyncio.run(daemon.run(App(config)))
    return 0 if clean else 1


def cmd_worker(config: Config, args: argparse.Namespace) -> int:
    clean = asyncio.run(daemon.run(App(config), worker=True))
    return 0 if clean else 1


def cmd_schedules(config: Config, args: argparse.Namespace) -> int:
    """Next run times as the daemon computes them from each job's last run."""
    store = _store(config)
    rows = describe(config, store.schedule.last_runs(), _utcnow())
    store.close()
    print(f"{'job':<28} {'next run (' + config.site.timezone + ')':<36} schedule")
    for job_id, when, schedule in rows:
        print(f"{job_id:<28} {when:<36} {schedule}")
    return 0


def cmd_preview(config: Config, args: argparse.Namespace) -> int:
    channel = config.channel(args.channel)
    app = App(config)
    result = preview(app.channels, app.store, channel, now=_utcnow(), sample=args.sample)
    if result.sample:
        print("no new articles are waiting: the preview uses the sample articles" if not result.waiting
              else "the preview uses the sample articles")
    out = Path(args.out) if args.out else config.resolve("var/preview")
    try:
        written = result.write(channel, out)
    except OSError as exc:
        print(f"cannot write the preview to {out}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"preview of channel {channel.id}: {len(result.edition.articles)} article(s); "
          "nothing sent, nothing recorded")
    for w in written:
        print(f"  {w}")
    if result.problems:
        print(f"{channel.type} would refuse these messages:", file=sys.stderr)
        for p in result.problems:
            print(f"  - {p}", file=sys.stderr)
        return 2
    return 0


def _list_channel(config: Config, channel_id: str):  # type: ignore[no-untyped-def]
    """A channel that has its own list of subscribers, or ConfigError."""
    ch = config.channel(channel_id)
    if not registry.KINDS[ch.type].has_subscribers:
        listed = " or ".join(name for name, kind in registry.KINDS.items() if kind.has_subscribers)
        raise ConfigError(f"channel {ch.id!r} is a {ch.type} channel, which has no list of subscribers; "
                          f"subscribers belong to {listed} channels")
    return ch


def _signup(config: Config, store: Store):  # type: ignore[no-untyped-def]
    # The web package (Starlette, uvicorn) loads only for the commands that send a confirmation.
    from .web.signup import Signup

    return Signup(config, store, App(config, store=store).channels)


def cmd_subscribers_add(config: Config, args: argparse.Namespace) -> int:
    ch = _list_channel(config, args.channel)
    try:
        email = valid_address(args.email)
    except ValueError as exc:
        print(f"invalid address {args.email!r}: {exc}", file=sys.stderr)
        return 2
    topics = [t.strip() for t in args.topics.split(",") if t.strip()] if args.topics else None
    frequency = Frequency(args.frequency)
    store = _store(config)
    signup = None if args.confirmed else _signup(config, store)
    if signup is not None:
        signup.links  # no [web]: say so before anything is stored
    added = store.subscribers.add(ch.id, email, args.name, now=_utcnow(), source=Source.ADMIN,
                                  confirmed=args.confirmed, language=args.language, topics=topics,
                                  frequency=frequency, weekly_day=args.weekday if frequency is Frequency.WEEKLY else None)
    if added.outcome == "pending" and signup is not None:
        queued = signup.queue_confirmation(ch, added.subscriber, now=_utcnow())
        print(f"{email}: pending on {ch.id}; "
              + ("a confirmation email is queued (sent at the next dispatch)" if queued
                 else "a confirmation went out minutes ago; not sending another"))
        return 0
    said = {"created": "subscribed to", "reactivated": "subscribed to", "already": "already subscribed to",
            "suppressed": f"not added: {added.subscriber.status} ({added.subscriber.status_source}) from"}
    print(f"{email}: {said[added.outcome]} {ch.id}")
    return 1 if added.outcome == "suppressed" else 0


def cmd_subscribers_show(config: Config, args: argparse.Namespace) -> int:
    ids = [_list_channel(config, args.channel).id] if args.channel else \
        [c.id for c in config.channels if registry.KINDS[c.type].has_subscribers]
    lines = describe_subscriber(_store(config), ids, args.email)
    if not lines:
        print(f"{args.email}: on no list", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def cmd_subscribers_export(config: Config, args: argparse.Namespace) -> int:
    ch = _list_channel(config, args.channel)
    store = _store(config)
    if not args.out or args.out == "-":
        n = export_csv(store, ch.id, sys.stdout, everyone=not args.active)
    else:
        try:
            fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # addresses: private
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                n = export_csv(store, ch.id, out, everyone=not args.active)
        except OSError as exc:
            print(f"cannot write {args.out}: {exc.strerror}", file=sys.stderr)
            return 2
    print(f"{n} subscriber(s) exported", file=sys.stderr)
    return 0


def cmd_subscribers_remove(config: Config, args: argparse.Namespace) -> int:
    ch = _list_channel(config, args.channel)
    try:
        email = valid_address(args.email)
    except ValueError:
        email = args.email.strip()  # let an admin remove a malformed address that got in somehow
    removed = _store(config).subscribers.remove(ch.id, email, now=_utcnow())
    print(f"{args.email}: {'unsubscribed from' if removed else 'was not subscribed to'} {ch.id}")
    return 0 if removed else 1


def cmd_subscribers_list(config: Config, args: argparse.Namespace) -> int:
    ch = _list_channel(config, args.channel)
    n = 0
    for s in _store(config).subscribers.iter(ch.id, active_only=not args.all):
        print(f"{s.email}\t{s.name or ''}{'' if s.active else f'  ({s.status})'}")
        n += 1
    print(f"{n} subscriber(s)", file=sys.stderr)
    return 0


def cmd_subscribers_import(config: Config, args: argparse.Namespace) -> int:
    ch = _list_channel(config, args.channel)
    path = Path(args.file)
    store = _store(config)
    signup = None if args.consent else _signup(config, store)
    if signup is not None:
        signup.links  # no [web]: say so before anything is stored
    now = _utcnow()
    progress = _progress("imported") if sys.stderr.isatty() else None
    try:
        result = import_csv(store, ch.id, path, now, consent=args.consent,
                            on_pending=(lambda sub: signup.queue_confirmation(ch, sub, now=now)) if signup else None,
                            on_progress=progress)
    except TamtamError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    finally:
        if progress is not None:
            print(file=sys.stderr)
    if result.encoding != "utf-8":
        print(f"{path}: not UTF-8; read as Windows-1252 (Excel's CSV)", file=sys.stderr)
    if result.stopped:
        print(f"{path}, {result.stopped}", file=sys.stderr)
    pending = f", {result.pending} pending (a confirmation email each)" if result.pending else ""
    print(f"{path}: {result.added} added{pending}, {result.existing} already subscribed, "
          f"{len(result.rejected)} rejected")
    for note in result.notes:
        print(f"  note: {note}", file=sys.stderr)
    for bad in result.rejected:
        print(f"  - {bad}", file=sys.stderr)
    return 1 if result.rejected else 0


def _progress(what: str):  # type: ignore[no-untyped-def]
    """A progress line for a terminal: "imported 45,000 / 100,000 rows (45 %)", rewritten in place."""
    def show(done: int, total: int) -> None:
        print(f"\r{what} {done:,} / {total:,} rows ({100 * done // max(total, 1)} %)", end="", file=sys.stderr,
              flush=True)
    return show


def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    # Starlette and uvicorn load only for the commands that serve.
    from .web import WebApp
    from .web.server import serve

    serve(WebApp(config), config)
    return 0


def cmd_test_send(config: Config, args: argparse.Namespace) -> int:
    channel = config.channel(args.channel)
    app = App(config)
    result = asyncio.run(test_send(app.channels, app.store, channel, args.address, now=_utcnow()))
    what = "the sample articles" if result.sample else f"{result.articles} waiting article(s)"
    print(f"test edition of {channel.id} ({what}) sent to {args.address}: {len(result.receipts)} message(s); "
          "nothing recorded")
    for receipt in result.receipts:
        print(f"  {receipt.transport}: {receipt.remote_id or ''} {receipt.detail}".rstrip())
    return 0


def _when(text: str | None, config: Config) -> datetime | None:
    """``--since``/``--until``: a duration meaning that long ago ("2h", "3d"), or a date or
    date and time (ISO 8601) in the site's timezone unless it names its own."""
    if text is None:
        return None
    try:
        return _utcnow() - parse_duration(text)
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{text!r} is neither a duration ('2h', '3d') nor a date ('2026-11-29' or "
                          "'2026-11-29T07:00')") from None
    return value if value.tzinfo else value.replace(tzinfo=config.site.tz)


def _selection(config: Config, args: argparse.Namespace) -> dict:
    return dict(ids=args.ids, channel=args.channel, since=_when(args.since, config), until=_when(args.until, config))


def cmd_outbox_list(config: Config, args: argparse.Namespace) -> int:
    n = 0
    for r in _store(config).outbox.list(Status(args.status) if args.status else None,
                                                     channel=args.channel, since=_when(args.since, config),
                                                     until=_when(args.until, config)):
        edition = f"e{r.edition_id}" if r.edition_id is not None else "-"
        print(f"{r.id}\t{r.status}\t{r.channel_id}\t{edition}\t{r.destination}\t{r.attempts} attempt(s)\t"
              f"{r.last_error or ''}")
        n += 1
    print(f"{n} message(s)", file=sys.stderr)
    return 0


def _require_selection(args: argparse.Namespace) -> None:
    if not (args.ids or args.channel or args.since or args.until or getattr(args, "status", None) or args.all):
        raise ConfigError("say which messages: ids, --channel, --status, --since/--until, or --all")


def cmd_outbox_retry(config: Config, args: argparse.Namespace) -> int:
    _require_selection(args)
    outbox = _store(config).outbox
    if len(args.ids) == 1 and not (args.channel or args.status or args.since or args.until):
        outbox.retry(args.ids[0], _utcnow())  # one message: say why if it cannot be retried
        print(f"message {args.ids[0]} will be sent at the next dispatch")
        return 0
    statuses = [Status(args.status)] if args.status else [Status.FAILED, Status.UNKNOWN]
    n = outbox.retry_where(_utcnow(), statuses=statuses, **_selection(config, args))
    print(f"{n} message(s) will be sent at the next dispatch")
    return 0 if n else 1


def cmd_outbox_dismiss(config: Config, args: argparse.Namespace) -> int:
    _require_selection(args)
    n = _store(config).outbox.dismiss_where(_utcnow(), **_selection(config, args))
    print(f"{n} failed message(s) dismissed: they stay recorded, and no longer need an admin")
    return 0 if n else 1


def cmd_outbox_rerender(config: Config, args: argparse.Namespace) -> int:
    app = App(config)
    channel = config.channel(args.channel)
    done = rerender(app.channels, app.store, channel, args.edition, now=_utcnow())
    print(f"edition {done.edition_id}: {done.updated} failed message(s) rendered again and queued"
          + (f", {done.added} new part(s) queued" if done.added else "")
          + (f", {done.dropped} dismissed (no such part now)" if done.dropped else "")
          + (f"; {done.unmatched} new part(s) left out because part of the edition already went out"
             if done.unmatched else ""))
    return 0


def cmd_outbox_release(config: Config, args: argparse.Namespace) -> int:
    n = release(_store(config), args.edition, now=_utcnow())
    print(f"edition {args.edition}: {n} article(s) released; the channel's next edition carries them")
    return 0


def cmd_outbox_prune(config: Config, args: argparse.Namespace) -> int:
    retention = config.delivery.retention
    if args.older_than:
        try:
            retention = parse_duration(args.older_than)
        except ValueError as exc:
            raise ConfigError(f"--older-than: {exc}") from None
    if retention is None:
        print("delivery.retention is 'forever': nothing is deleted (say --older-than to prune anyway)")
        return 0
    done = prune(_store(config), retention, now=_utcnow(), dry_run=args.dry_run)
    print(done.summary(dry_run=args.dry_run))
    return 0


def cmd_outbox_resolve(config: Config, args: argparse.Namespace) -> int:
    _store(config).outbox.resolve(args.id, _utcnow())
    print(f"message {args.id} marked as delivered")
    return 0
