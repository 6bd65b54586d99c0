"""The command line: ``python main.py [--config FILE] COMMAND``.

Errors an admin can fix (config, templates, a missing secret, a bad CSV) end with a
plain message and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import logging
import signal
import sys
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from .config import Config, find_config, load_config, required_secrets
from .errors import ConfigError, TamtamError, TemplateError

log = logging.getLogger("tamtam")

ALREADY_RUNNING = ("another Tamtam (a `run` daemon or a `once`) is working on this database; "
                   "wait for it, or stop the daemon first")

FILE_KINDS = {
    ".eml": "the complete email, as a mail client receives it",
    ".html": "the email's HTML part, to open in a browser",
    ".json": "the Telegram Bot API call (sendMessage / sendPhoto) with its text",
    ".txt": "the X post text",
}


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tamtam", description="Newsletter and social distribution bot for news publishers.")
    p.add_argument("--config", "-c", help="the TOML config file (default: $TAMTAM_CONFIG, else config/tamtam.toml)")
    p.add_argument("--verbose", "-v", action="store_true", help="log every step")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run", help="the daemon: scheduler and dispatcher, until SIGTERM or Ctrl-C")
    sub.add_parser("once", help="poll every source, build every channel's edition now, deliver, exit")
    sub.add_parser("check", help="validate the config, the templates and that each named secret is set")
    pv = sub.add_parser("preview", help="render a channel's next edition to a file, sending and recording nothing")
    pv.add_argument("channel")
    pv.add_argument("--out", help="folder for the preview files (default: var/preview)")
    pv.add_argument("--sample", action="store_true",
                    help="use the shipped sample articles (the default when nothing new is waiting)")
    sub.add_parser("schedules", help="list scheduled jobs with their next run times")
    s = sub.add_parser("subscribers", help="manage an email channel's recipients")
    ssub = s.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = ssub.add_parser("add", help="add or re-activate a subscriber")
    a.add_argument("channel")
    a.add_argument("email")
    a.add_argument("--name")
    r = ssub.add_parser("remove", help="unsubscribe an address")
    r.add_argument("channel")
    r.add_argument("email")
    li = ssub.add_parser("list", help="list subscribers")
    li.add_argument("channel")
    li.add_argument("--all", action="store_true", help="include unsubscribed addresses")
    im = ssub.add_parser("import", help="import a CSV with an 'email' column (and optionally 'name')")
    im.add_argument("channel")
    im.add_argument("file")
    o = sub.add_parser("outbox", help="inspect and resolve messages that need an admin")
    osub = o.add_subparsers(dest="action", required=True, metavar="ACTION")
    ol = osub.add_parser("list", help="messages not sent (pending, failed, unknown)")
    ol.add_argument("--status", choices=["pending", "sending", "sent", "failed", "unknown"])
    ort = osub.add_parser("retry", help="send a failed or unknown message again")
    ort.add_argument("id", type=int)
    ors = osub.add_parser("resolve", help="mark an unknown message as delivered (you checked it is out)")
    ors.add_argument("id", type=int)
    return p


def _safe_url(config: Config | None) -> str:
    """The storage URL without its password, for messages."""
    if config is None:
        return "storage"
    from sqlalchemy.engine import make_url

    return make_url(config.database_url).render_as_string(hide_password=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = None
    logging.basicConfig(level=logging.INFO if args.verbose or args.command == "run" else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    path = find_config(args.config)
    try:
        config = load_config(path)
        handler = globals()[f"cmd_{args.command}"]
        return handler(config, args) or 0
    except ConfigError as exc:
        print(f"Configuration error in {exc.path or path}:" if exc.path or len(exc.problems) > 1
              else "Configuration error:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except TemplateError as exc:
        print(f"Template error: {exc}", file=sys.stderr)
        return 2
    except TamtamError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(f"Storage error ({_safe_url(config)}): {getattr(exc, 'orig', None) or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pragma: no cover
        return 130


# -- check ---------------------------------------------------------------------------
def cmd_check(config: Config, args: argparse.Namespace) -> int:
    from .render import Renderer

    import os

    problems: list[str] = []
    for env, what in required_secrets(config):
        if not os.environ.get(env):
            problems.append(f"{what}: environment variable {env} is not set")
    try:
        problems += Renderer(config).check()
    except TamtamError as exc:
        problems.append(str(exc))
    try:
        from .store import Store

        probe = Store(config.database_url, migrate=False)
        with probe.engine.connect():
            pass
        probe.close()
    except (SQLAlchemyError, OSError) as exc:
        problems.append(f"storage.url: cannot open {_safe_url(config)}: {getattr(exc, 'orig', None) or exc}")
    for ch in config.channels:
        if ch.type == "email" and not ch.unsubscribe_url:
            print(f"warning: channel {ch.id!r} has no unsubscribe_url; its emails carry no unsubscribe link")
    if problems:
        print(f"{config.path}: {len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 2
    print(f"{config.path}: OK — {len(config.sources)} source(s), {len(config.channels)} channel(s); "
          "templates render; every named secret is set.")
    return 0


# -- once ----------------------------------------------------------------------------
def cmd_once(config: Config, args: argparse.Namespace) -> int:
    from .app import App

    async def go():  # type: ignore[no-untyped-def]
        app = App(config)
        try:
            with app.store.runner_lock() as mine:
                if not mine:
                    return None
                return await app.once()
        finally:
            await app.aclose()

    report = asyncio.run(go())
    if report is None:
        print(ALREADY_RUNNING, file=sys.stderr)
        return 2
    print_report(config, report)
    return 0 if report.ok else 1


def print_report(config: Config, report) -> None:  # type: ignore[no-untyped-def]
    new = sum(p.new for p in report.polls)
    for p in report.polls:
        if not p.ok:
            print(f"source {p.source_id}: FAILED — {p.error}")
        else:
            state = "not modified" if p.not_modified else f"{p.new} new, {p.updated} updated"
            if p.rejected:
                state += f", {p.rejected} refused by the database (see the log)"
            print(f"source {p.source_id}: {state}")
    for k, v in report.recovered.items():
        print(f"recovered from an interrupted run: {v} message(s) {k}")
    for e in report.editions:
        if e.edition_id is None:
            print(f"channel {e.channel_id}: nothing new to send")
        else:
            extra = f" ({e.note})" if e.note else ""
            print(f"channel {e.channel_id}: edition {e.edition_id}, {e.articles} article(s), "
                  f"{e.messages} message(s) queued{extra}")
    for ch, err in report.edition_errors:
        print(f"channel {ch}: edition NOT built — {err}")
    d = report.dispatch
    files: dict[str, list[str]] = defaultdict(list)
    by_channel: dict[str, int] = defaultdict(int)
    for ch, key, receipt in d.sent:
        by_channel[ch] += 1
        if receipt.transport == "file" and receipt.detail:
            files[ch] += [x.strip() for x in receipt.detail.split(",") if x.strip()]
    for ch, n in sorted(by_channel.items()):
        print(f"channel {ch}: {n} message(s) delivered")
    for label, rows in (("will retry", d.retrying), ("FAILED", d.failed), ("UNKNOWN, check by hand", d.unknown)):
        for ch, key, reason in rows:
            print(f"channel {ch}: {key} {label} — {reason}")
    if report.ok and not d.sent and not any(e.edition_id for e in report.editions):
        print(f"Nothing new: {new} new article(s), every channel is up to date; nothing was sent.")
    if files:
        print("\nFiles written:")
        for ch, paths in sorted(files.items()):
            folder = Path(paths[0]).parent
            print(f"  {folder}/  (channel {ch})")
            for suffix in sorted({Path(p).suffix for p in paths}):
                n = sum(1 for p in paths if p.endswith(suffix))
                print(f"    {n} × *{suffix}: {FILE_KINDS.get(suffix, '')}")


# -- run -----------------------------------------------------------------------------
def cmd_run(config: Config, args: argparse.Namespace) -> int:
    asyncio.run(run_daemon(config))
    return 0


async def run_daemon(config: Config, *, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    """Scheduler + dispatcher until SIGTERM/SIGINT (or ``stop``). The message in flight is finished,
    then the transports close: nothing is left half-sent."""
    from .app import App

    app = App(config)
    with app.store.runner_lock() as mine:
        if not mine:
            raise TamtamError(ALREADY_RUNNING)
        await _serve(app, config, ready, stop)


SHUTDOWN_GRACE = 60  # seconds: longer than a transport's default 30 s timeout


async def _serve(app, config: Config, ready: asyncio.Event | None, stop: asyncio.Event | None) -> None:  # type: ignore[no-untyped-def]
    from .scheduler import DISPATCH_EVERY, make_scheduler, sync_jobs

    app.recover()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not the main thread
            pass
    scheduler = make_scheduler(app)
    scheduler.start(paused=True)
    changes = sync_jobs(scheduler, config)
    for job_id, what in sorted(changes.items()):
        log.info("job %s: %s", job_id, what)

    async def dispatch_tick() -> None:
        await app.dispatch()

    scheduler.add_job(dispatch_tick, "interval", seconds=DISPATCH_EVERY, id="dispatch", jobstore="memory",
                      next_run_time=datetime.now(timezone.utc))
    scheduler.resume()
    log.info("tamtam running: %d source(s), %d channel(s); stop with Ctrl-C or SIGTERM",
             len(config.sources), len(config.channels))
    if ready is not None:
        ready.set()
    await stop.wait()
    log.info("stopping: finishing the message in flight")
    app.dispatcher.stop()
    scheduler.shutdown(wait=False)
    # let running jobs reach a safe point
    pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    if pending:
        _, late = await asyncio.wait(pending, timeout=SHUTDOWN_GRACE)
        if late:
            log.warning("%d job(s) still running after %d s; stopping anyway (an interrupted post is flagged "
                        "at the next start)", len(late), SHUTDOWN_GRACE)
    await app.aclose()
    app.store.close()
    log.info("stopped")


# -- schedules -----------------------------------------------------------------------
def cmd_schedules(config: Config, args: argparse.Namespace) -> int:
    """Next run times as the daemon sees them: the stored job's time when the daemon has run
    before (an overdue one runs once at the next start), else the time the schedule gives."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from .scheduler import same_trigger, wanted_jobs
    from .store import Store

    store = Store(config.database_url)
    tz = config.site.tz

    async def stored_jobs():  # type: ignore[no-untyped-def]
        sched = AsyncIOScheduler(jobstores={"default": SQLAlchemyJobStore(engine=store.engine)}, timezone=tz)
        sched.start(paused=True)
        try:
            return {j.id: j for j in sched.get_jobs()}
        finally:
            sched.shutdown(wait=False)

    stored = asyncio.run(stored_jobs())
    described = {f"poll:{s.id}": s.poll.describe() for s in config.sources}
    described.update({f"edition:{c.id}": f"{c.schedule.describe()} ({c.type}, {c.mode})" for c in config.channels})
    now = _utcnow()
    print(f"{'job':<28} {'next run (' + config.site.timezone + ')':<36} schedule")
    for job_id, (trigger, _) in sorted(wanted_jobs(config).items()):
        job = stored.get(job_id)
        if job is not None and same_trigger(job.trigger, trigger):
            nxt = job.next_run_time
        else:
            nxt = trigger.get_next_fire_time(None, now)
        when = nxt.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z") if nxt else "never"
        if nxt and nxt < now:
            when += " (overdue)"
        print(f"{job_id:<28} {when:<36} {described[job_id]}")
    return 0


# -- preview -------------------------------------------------------------------------
def cmd_preview(config: Config, args: argparse.Namespace) -> int:
    import json

    from .publish import preview
    from .render import Renderer, assemble_email
    from .store import Store

    channel = config.channel(args.channel)
    store = Store(config.database_url)
    result = preview(config, Renderer(config), store, channel, now=_utcnow(), sample=args.sample)
    edition, items = result.edition, result.items
    if result.sample:
        print("no new articles are waiting: the preview uses the sample articles" if not result.waiting
              else "the preview uses the sample articles")
    out = Path(args.out) if args.out else config.resolve("var/preview")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"cannot write the preview to {out}: {exc.strerror}", file=sys.stderr)
        return 2
    written = []
    if channel.type == "email":
        digest, envelope = items[0]
        subject, html, text = assemble_email(digest, envelope)
        (out / f"{channel.id}.html").write_text(html, encoding="utf-8")
        (out / f"{channel.id}.txt").write_text(f"Subject: {subject}\n\n{text}", encoding="utf-8")
        written = [out / f"{channel.id}.html", out / f"{channel.id}.txt"]
    elif channel.type == "telegram":
        path = out / f"{channel.id}.json"
        path.write_text(json.dumps([{"text": p.text, "photo_url": p.photo_url} for p in items], ensure_ascii=False,
                                   indent=2), encoding="utf-8")
        written = [path]
    else:
        path = out / f"{channel.id}.txt"
        path.write_text("\n\n---\n\n".join(items), encoding="utf-8")
        written = [path]
    print(f"preview of channel {channel.id}: {len(edition.articles)} article(s), {len(items)} message(s); "
          "nothing sent, nothing recorded")
    for w in written:
        print(f"  {w}")
    return 0


# -- subscribers ---------------------------------------------------------------------
def _email_channel(config: Config, channel_id: str):  # type: ignore[no-untyped-def]
    ch = config.channel(channel_id)
    if ch.type != "email":
        raise ConfigError(f"channel {ch.id!r} is a {ch.type} channel; subscribers belong to email channels")
    return ch


def _valid_email(address: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


def cmd_subscribers(config: Config, args: argparse.Namespace) -> int:
    from .store import Store

    ch = _email_channel(config, args.channel)
    store = Store(config.database_url)
    now = _utcnow()
    if args.action == "add":
        try:
            email = _valid_email(args.email)
        except ValueError as exc:
            print(f"invalid address {args.email!r}: {exc}", file=sys.stderr)
            return 2
        _, created = store.add_subscriber(ch.id, email, args.name, now=now)
        print(f"{email}: {'subscribed' if created else 'already subscribed'} to {ch.id}")
    elif args.action == "remove":
        try:
            email = _valid_email(args.email)
        except ValueError:
            email = args.email.strip()  # let an admin remove a malformed address that got in somehow
        removed = store.remove_subscriber(ch.id, email)
        print(f"{args.email}: {'unsubscribed from' if removed else 'was not subscribed to'} {ch.id}")
        return 0 if removed else 1
    elif args.action == "list":
        subs = store.subscribers(ch.id, active_only=not args.all)
        for s in subs:
            state = "" if s.active else "  (unsubscribed)"
            print(f"{s.email}\t{s.name or ''}{state}")
        print(f"{len(subs)} subscriber(s)", file=sys.stderr)
    elif args.action == "import":
        return import_csv(store, ch.id, Path(args.file), now)
    return 0


# Column names admins use, in French and English.
NAME_ALIASES = {"e-mail": "email", "courriel": "email", "adresse": "email", "mail": "email",
                "nom": "name", "prénom nom": "name", "full name": "name"}


def import_csv(store, channel_id: str, path: Path, now: datetime) -> int:  # type: ignore[no-untyped-def]
    """Keep the good rows, report every bad one with its line number."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        print(f"cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        print(f"{path}: not UTF-8 text; save the CSV as UTF-8", file=sys.stderr)
        return 2
    sample = text[:2048]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(text.splitlines(), dialect=dialect)
    fields = {NAME_ALIASES.get((f or "").strip().lower(), (f or "").strip().lower()): f
              for f in (reader.fieldnames or [])}
    if "email" not in fields:
        print(f"{path}: no 'email' column in the header (found: {', '.join(reader.fieldnames or []) or 'nothing'})",
              file=sys.stderr)
        return 2
    added = existing = 0
    bad: list[str] = []
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            print(f"{path}, line {reader.line_num}: {exc}; the rows after it were not read", file=sys.stderr)
            bad.append(f"line {reader.line_num}: unreadable ({exc})")
            break
        line = reader.line_num
        raw = (row.get(fields["email"]) or "").strip()
        name = (row.get(fields["name"]) or "").strip() or None if "name" in fields else None
        try:
            email = _valid_email(raw)
        except ValueError as exc:
            bad.append(f"line {line}: {raw!r}: {exc}")
            continue
        _, created = store.add_subscriber(channel_id, email, name, now=now)
        added += created
        existing += not created
    print(f"{path}: {added} added, {existing} already subscribed, {len(bad)} rejected")
    for b in bad:
        print(f"  - {b}", file=sys.stderr)
    return 1 if bad else 0


# -- outbox --------------------------------------------------------------------------
def cmd_outbox(config: Config, args: argparse.Namespace) -> int:
    from sqlalchemy import select, update

    from .store import Store
    from .store import tables as t

    store = Store(config.database_url)
    o = t.outbox
    if args.action == "list":
        q = select(o).order_by(o.c.id)
        q = q.where(o.c.status == args.status) if args.status else q.where(o.c.status != "sent")
        with store.engine.connect() as conn:
            rows = conn.execute(q).all()
        for r in rows:
            print(f"{r.id}\t{r.status}\t{r.channel_id}\t{r.destination}\t{r.attempts} attempt(s)\t{r.last_error or ''}")
        print(f"{len(rows)} message(s)", file=sys.stderr)
        return 0
    with store.begin() as conn:
        row = conn.execute(select(o).where(o.c.id == args.id)).first()
        if row is None:
            print(f"no outbox message {args.id}", file=sys.stderr)
            return 1
        if args.action == "retry":
            if row.status not in ("failed", "unknown"):
                print(f"message {args.id} is {row.status}; only failed or unknown messages can be retried", file=sys.stderr)
                return 1
            conn.execute(update(o).where(o.c.id == args.id).values(status="pending", next_attempt_at=_utcnow(),
                                                                    attempts=0, updated_at=_utcnow()))
            print(f"message {args.id} will be sent at the next dispatch")
        else:
            if row.status != "unknown":
                print(f"message {args.id} is {row.status}; only unknown messages can be resolved", file=sys.stderr)
                return 1
            conn.execute(update(o).where(o.c.id == args.id).values(status="sent", sent_at=_utcnow(),
                                                                    receipt="marked delivered by the admin",
                                                                    updated_at=_utcnow()))
            print(f"message {args.id} marked as delivered")
    return 0
