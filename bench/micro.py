"""Throughput and memory of Tamtam's hot paths, on the bundled demo data.

    .venv/bin/python bench/micro.py [--recipients N] [--repeat K]

In-process micro-benchmarks of single steps (no SMTP, no peers); `make bench` runs the
side-by-side comparison in bench/run.py instead.

Each figure is the median of K runs. What it measures, and why:

* parse      — feed bytes → normalised articles (the demo feed, 12 articles, one very long):
               articles per second.
* envelope   — the email digest's shared part is rendered once per edition; each recipient
               costs one small envelope. Reported as envelopes per second, and as the ratio
               against rendering the whole digest for every recipient (what the split saves).
* publish    — edition → render → outbox rows for N subscribers in one transaction (SQLite),
               with the peak Python memory it allocates (tracemalloc).
* dispatch   — outbox rows → the file transport (SQLite claims and receipts included):
               messages per second.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import App  # noqa: E402
from bot.channels.email.render import Recipient, assemble  # noqa: E402
from bot.channels.registry import Channels  # noqa: E402
from bot.config import parse_config  # noqa: E402
from bot.ingest import parse_feed  # noqa: E402
from bot.models import Edition  # noqa: E402

NOW = datetime(2026, 11, 29, 7, 0, tzinfo=timezone.utc)
FEED = (ROOT / "config" / "demo" / "feed.xml").read_bytes()


def config(folder: Path):
    return parse_config({
        "site": {"name": "L’Écho du Sahel", "base_url": "https://echo-du-sahel.example"},
        "storage": {"url": f"sqlite:///{folder / 'bench.db'}"},
        "sources": [{"id": "echo", "url": str(ROOT / "config" / "demo" / "feed.xml")}],
        "channels": [{"id": "newsletter", "type": "email", "schedule": {"cron": "0 7 * * *"}, "lookback": "3650d",
                      "unsubscribe_url": "https://echo-du-sahel.example/desabonnement?jeton={token}",
                      "transport": {"type": "file", "dir": str(folder / "out")}}],
    }, base_dir=str(folder))


def median_rate(fn, count: int, repeat: int) -> float:
    rates = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        rates.append(count / (time.perf_counter() - t0))
    return statistics.median(rates)


def bench_parse(repeat: int) -> float:
    articles = parse_feed(FEED, source_id="echo", base_url="https://echo-du-sahel.example", now=NOW)
    return median_rate(lambda: [parse_feed(FEED, source_id="echo", base_url="https://echo-du-sahel.example",
                                           now=NOW) for _ in range(20)], 20 * len(articles), repeat)


def bench_envelope(cfg, repeat: int, recipients: int) -> tuple[float, float]:
    channel = cfg.channels[0]
    renderer = Channels(cfg).kind(channel).renderer
    articles = tuple(a for a in parse_feed(FEED, source_id="echo", base_url="https://x", now=NOW))
    edition = Edition("newsletter", articles, NOW, id=1)
    people = [Recipient(f"lecteur{i}@example.org", f"Lecteur {i}", f"https://x/u?t={i}") for i in range(recipients)]

    def split():
        digest = renderer.digest(channel, edition)
        for r in people:
            assemble(digest, renderer.envelope(channel, digest, r))

    def whole_each_time():
        for r in people[: max(1, recipients // 20)]:
            digest = renderer.digest(channel, edition)
            assemble(digest, renderer.envelope(channel, digest, r))

    split_rate = median_rate(split, recipients, repeat)
    naive_rate = median_rate(whole_each_time, max(1, recipients // 20), repeat)
    return split_rate, split_rate / naive_rate


def bench_publish_dispatch(repeat: int, recipients: int) -> tuple[float, float, float]:
    pub, disp, peaks = [], [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = config(Path(tmp))
            app = App(cfg, clock=lambda: NOW)
            for i in range(recipients):
                app.store.subscribers.add("newsletter", f"lecteur{i}@example.org", None, now=NOW)
            asyncio.run(app.poll_all(NOW))
            tracemalloc.start()
            t0 = time.perf_counter()
            result = app.publish(cfg.channels[0], NOW)
            pub.append(result.messages / (time.perf_counter() - t0))
            peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
            t0 = time.perf_counter()
            report = asyncio.run(app.dispatch())
            disp.append(report.sent / (time.perf_counter() - t0))
            assert report.sent == recipients, report
            asyncio.run(app.aclose())
            app.store.close()
    return statistics.median(pub), statistics.median(disp), statistics.median(peaks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipients", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config(Path(tmp))
        parse = bench_parse(args.repeat)
        env_rate, ratio = bench_envelope(cfg, args.repeat, args.recipients)
    pub, disp, peak = bench_publish_dispatch(args.repeat, args.recipients)
    print(f"medians of {args.repeat} runs, {args.recipients} recipients, Python {sys.version.split()[0]}")
    print(f"parse     {parse:10.0f} articles/s")
    print(f"envelope  {env_rate:10.0f} recipients/s   ({ratio:.0f}× rendering the whole digest per recipient)")
    print(f"publish   {pub:10.0f} outbox rows/s   (peak {peak:.1f} MiB allocated)")
    print(f"dispatch  {disp:10.0f} messages/s (file transport, SQLite)")


if __name__ == "__main__":
    main()
