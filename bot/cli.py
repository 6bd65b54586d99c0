"""The command line: ``tamtam [--config FILE] COMMAND`` (or ``python main.py …``).

The parser, and nothing heavy: each command is a small function in :mod:`bot.commands`
(``check``) or :mod:`bot.store_commands` (the rest),
loaded only once the arguments are parsed, so ``tamtam --help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys

from . import redact
from .models import Frequency, Status


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tamtam", description="Newsletter and social distribution bot for news publishers.")
    p.add_argument("--config", "-c", help="the TOML config file (default: $TAMTAM_CONFIG, else config/tamtam.toml)")
    p.add_argument("--verbose", "-v", action="store_true", help="log every step")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run", help="the daemon: scheduler and dispatcher, until SIGTERM or Ctrl-C").set_defaults(func="cmd_run")
    sub.add_parser("worker", help="one of several processes delivering from one (PostgreSQL) database; "
                   "one of them schedules; until SIGTERM").set_defaults(func="cmd_worker")
    sub.add_parser("once", help="poll every source, build every channel's edition now, deliver, exit"
                   ).set_defaults(func="cmd_once")
    sub.add_parser("check", help="validate the config, the templates and that each named secret is set"
                   ).set_defaults(func="cmd_check")
    pv = sub.add_parser("preview", help="render a channel's next edition to a file, sending and recording nothing")
    pv.add_argument("channel")
    pv.add_argument("--out", help="folder for the preview files (default: var/preview)")
    pv.add_argument("--sample", action="store_true",
                    help="use the shipped sample articles (the default when nothing new is waiting)")
    pv.set_defaults(func="cmd_preview")
    sub.add_parser("schedules", help="list scheduled jobs with their next run times").set_defaults(func="cmd_schedules")
    sub.add_parser("serve", help="the web service alone (sign-up, unsubscribe, preferences, archive), "
                   "until Ctrl-C; `run` serves it too").set_defaults(func="cmd_serve")
    ts = sub.add_parser("test-send", help="send a channel's next edition to one address, recording nothing")
    ts.add_argument("channel")
    ts.add_argument("address")
    ts.set_defaults(func="cmd_test_send")

    s = sub.add_parser("subscribers", help="manage a channel's list of subscribers")
    ssub = s.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = ssub.add_parser("add", help="add a subscriber: pending until they confirm the email sent to them, "
                                     "or active at once with --confirmed")
    a.add_argument("channel")
    a.add_argument("email")
    a.add_argument("--name")
    a.add_argument("--confirmed", action="store_true",
                   help="the address already consented: active at once, no confirmation email")
    a.add_argument("--language", choices=["fr", "en"], help="the emails' language (default: the list's)")
    a.add_argument("--topics", help="comma-separated categories (default: every topic)")
    a.add_argument("--frequency", choices=[f.value for f in Frequency], default=Frequency.DAILY.value)
    a.add_argument("--weekday", type=int, choices=range(7), default=0, metavar="0-6",
                   help="with --frequency weekly: 0 = Monday … 6 = Sunday")
    a.set_defaults(func="cmd_subscribers_add")
    sh = ssub.add_parser("show", help="an address's status, preferences and history on every list")
    sh.add_argument("email")
    sh.add_argument("--channel", help="only this list")
    sh.set_defaults(func="cmd_subscribers_show")
    ex = ssub.add_parser("export", help="the list as CSV (every status; --active for active readers only)")
    ex.add_argument("channel")
    ex.add_argument("--out", help="a file (default: standard output)")
    ex.add_argument("--active", action="store_true", help="only active subscribers")
    ex.set_defaults(func="cmd_subscribers_export")
    r = ssub.add_parser("remove", help="unsubscribe an address")
    r.add_argument("channel")
    r.add_argument("email")
    r.set_defaults(func="cmd_subscribers_remove")
    li = ssub.add_parser("list", help="list subscribers")
    li.add_argument("channel")
    li.add_argument("--all", action="store_true", help="include unsubscribed addresses")
    li.set_defaults(func="cmd_subscribers_list")
    im = ssub.add_parser("import", help="import a CSV with an 'email' column (and optionally 'name', or first "
                                        "and last names); each address gets a confirmation email unless --consent")
    im.add_argument("channel")
    im.add_argument("file")
    im.add_argument("--consent", action="store_true",
                    help="every address in the file already consented: active at once, no confirmation email")
    im.set_defaults(func="cmd_subscribers_import")

    o = sub.add_parser("outbox", help="inspect and resolve messages that need an admin")
    osub = o.add_subparsers(dest="action", required=True, metavar="ACTION")

    def selection(sp: argparse.ArgumentParser, statuses: list[str] | None) -> None:
        sp.add_argument("ids", type=int, nargs="*", help="message ids")
        sp.add_argument("--channel", help="only this channel's messages")
        if statuses:
            sp.add_argument("--status", choices=statuses)
        sp.add_argument("--since", help="changed since: a duration ago ('2h') or a date/time ('2026-11-29T07:00')")
        sp.add_argument("--until", help="changed before: a duration ago or a date/time")

    ol = osub.add_parser("list", help="messages not sent (pending, failed, unknown …)")
    selection(ol, [s.value for s in Status])
    ol.set_defaults(func="cmd_outbox_list", all=True)
    ort = osub.add_parser("retry", help="send failed or unknown messages again (by id, channel, status or time)")
    selection(ort, [Status.FAILED.value, Status.UNKNOWN.value, Status.DISMISSED.value])
    ort.add_argument("--all", action="store_true", help="every failed and unknown message")
    ort.set_defaults(func="cmd_outbox_retry")
    od = osub.add_parser("dismiss", help="leave failed messages as they are (they stop counting as needing you)")
    selection(od, None)
    od.add_argument("--all", action="store_true", help="every failed message")
    od.set_defaults(func="cmd_outbox_dismiss")
    orr = osub.add_parser("rerender", help="render an edition's failed messages again with today's templates")
    orr.add_argument("channel")
    orr.add_argument("edition", type=int)
    orr.set_defaults(func="cmd_outbox_rerender")
    orl = osub.add_parser("release", help="give the articles of an edition that failed whole to the next edition")
    orl.add_argument("edition", type=int)
    orl.set_defaults(func="cmd_outbox_release")
    opr = osub.add_parser("prune", help="delete settled messages older than delivery.retention (run does it hourly)")
    opr.add_argument("--older-than", metavar="DURATION", help="instead of delivery.retention, e.g. '7d'")
    opr.add_argument("--dry-run", action="store_true", help="say what would go, delete nothing")
    opr.set_defaults(func="cmd_outbox_prune")
    ors = osub.add_parser("resolve", help="mark an unknown message as delivered (you checked it is out)")
    ors.add_argument("id", type=int)
    ors.set_defaults(func="cmd_outbox_resolve")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; what it prints and logs passes through :mod:`bot.redact`."""
    args = parser().parse_args(argv)
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = redact.RedactingStream(sys.stdout), redact.RedactingStream(sys.stderr)
    try:
        # the commands and all they need load only now: `--help` never pays for them
        from .commands import run

        return run(args)
    finally:
        sys.stdout, sys.stderr = streams
