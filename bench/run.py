"""Tamtam side by side with its peers and with the wire, in one run (issue #8, item 5).

    make bench                                   (= bench/run.py --compare --write-docs)
    make bench BENCH_ARGS="--full"               1,000 / 10,000 / 100,000 subscribers
    .venv/bin/python bench/run.py --compare [--sizes 1000,5000] [--pg-sizes 1000] [--rounds 3]
                                  [--only fanout,rss2email,startup,workers,ingest,unsubscribe]
                                  [--write-docs] [--no-install]
    .venv/bin/python bench/run.py --docs-from var/bench/latest.json   (rewrite the doc only)

First it installs what it needs (bench/install.py: postfix's smtp-sink/smtp-source, hyperfine,
and .venv-bench with rss2email, fastfeedparser, matplotlib), then re-runs itself in
.venv-bench. Tamtam itself always runs as a user runs it: ``.venv/bin/python main.py``, one
process per command, timed from fork to exit, peak RSS from the kernel (wait4).

What runs, round after round (A, B, A, B …; at least 3 rounds; figures are medians):

* fan-out   per list size N: a fresh database, ``subscribers import --consent`` of an N-row
            CSV (timed on its own), then ``once`` (poll the demo feed, publish one 12-article
            digest, deliver it) through the SMTP transport into ``smtp-sink`` on loopback, the
            rate limit lifted. Mails are counted at the sink and must equal N. Then
            ``smtp-source`` (C, postfix's load generator) sends N messages of the same size
            over 1 and over 4 connections into a sink of its own — the wire's limit on this
            machine. The same Tamtam run on PostgreSQL (a fresh schema per run) for
            ``--pg-sizes``.
* rss2email the 1,000-item feed of bench/ingest.py (French, ~3 KB HTML each), every item a
            mail (text + HTML) to one address through smtp-sink, beside Tamtam's digest to
            1,000 subscribers. Different work, same figure: 1,000 mails out of a feed tool.
* workers   1 vs 2 ``tamtam worker`` processes on one PostgreSQL outbox (skipped, saying so,
            while the command does not exist).
* startup   ``--help`` and ``check`` (hyperfine when installed, else repeated timings).
* ingest    bench/ingest.py (its own rounds and table), when present.
* unsubscribe  bench/unsubscribe.py (one-click unsubscribes under load), when present.

Results go to var/bench/latest.json (and a dated copy); ``--write-docs`` also writes
docs/benchmarks.md and docs/benchmarks-fanout.png from them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import install  # noqa: E402
import measure  # noqa: E402
from measure import Run, Sink, median, run_measured  # noqa: E402

DEFAULT_SIZES = (1000, 5000)
DEFAULT_PG_SIZES = (1000,)
FULL_SIZES = (1000, 10000, 100000)
SECTIONS = ("fanout", "rss2email", "workers", "startup", "ingest", "unsubscribe")
DEMO_FEED = ROOT / "config" / "demo" / "feed.xml"
DEMO_CONFIG = ROOT / "config" / "demo.toml"
RESULTS = ROOT / "var" / "bench"
STATUS_ENV = "TAMTAM_BENCH_INSTALL_STATUS"
FROM = "L’Écho du Sahel <lettre@echo-du-sahel.example>"


def log(msg: str = "") -> None:
    print(msg, flush=True)


def fmt_n(n: int) -> str:
    return f"{n:,}"


# -- Tamtam ---------------------------------------------------------------------------------

class Tamtam:
    """Tamtam's command line as a user runs it, with the bench's config files."""

    def __init__(self, python: Path):
        self.python = python
        self.main = ROOT / "main.py"

    def cmd(self, config: Path | None, *args: str) -> list[str]:
        base = [str(self.python), str(self.main)]
        return base + (["--config", str(config)] if config else []) + list(args)

    def has_command(self, name: str) -> bool:
        r = subprocess.run(self.cmd(None, name, "--help"), capture_output=True, text=True, cwd=ROOT)
        return r.returncode == 0


def write_config(folder: Path, storage_url: str, port: int) -> Path:
    """One email channel, the demo feed, SMTP into the sink, the rate limit lifted."""
    path = folder / "bench.toml"
    path.write_text(f'''# written by bench/run.py
[site]
name = "L’Écho du Sahel"
base_url = "https://echo-du-sahel.example"
language = "fr"
timezone = "Africa/Bamako"

[storage]
url = "{storage_url}"

[[sources]]
id = "echo"
url = "{DEMO_FEED}"

[[channels]]
id = "newsletter"
type = "email"
mode = "digest"
schedule = {{ cron = "0 7 * * *" }}
max_articles = 12
lookback = "3650d"
unsubscribe_url = "https://echo-du-sahel.example/desabonnement?jeton={{token}}"

[channels.transport]
type = "smtp"
host = "127.0.0.1"
port = {port}
security = "none"
from = "{FROM}"
rate_per_minute = 1000000000
''', encoding="utf-8")
    return path


def subscribers_csv(work: Path, n: int) -> Path:
    path = work / f"subscribers-{n}.csv"
    if not path.exists():
        with open(path, "w", encoding="utf-8") as f:
            f.write("email,name\n")
            for i in range(n):
                f.write(f"lecteur{i}@example.org,Lecteur {i}\n")
    return path


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path, status: dict):
        self.args = args
        self.work = work
        self.status = status
        self.tamtam = Tamtam(Path(args.tamtam_python))
        self.results: dict = {"runs": [], "skipped": [], "durations": {}}
        self.pg_url: str | None = args.pg_url
        self.calibration: dict = {}

    # -- helpers ---------------------------------------------------------------------------

    def skip(self, what: str, why: str) -> None:
        msg = f"{what}: skipped — {why}"
        log(f"  ! {msg}")
        self.results["skipped"].append(msg)

    def have(self, requirement_prefix: str) -> bool:
        return any(k.startswith(requirement_prefix) and v["ok"] for k, v in self.status.items())

    def record(self, rec: dict) -> dict:
        self.results["runs"].append(rec)
        return rec

    # -- one Tamtam fan-out -------------------------------------------------------------------

    def tamtam_fanout(self, n: int, backend: str, rnd: int, *, dump: Path | None = None) -> dict:
        folder = Path(tempfile.mkdtemp(prefix=f"fanout-{backend}-{n}-", dir=self.work))
        schema = None
        rec: dict = {"section": "fanout", "variant": f"tamtam-{backend}", "n": n, "round": rnd}
        try:
            if backend == "postgresql":
                schema = measure.PgSchema(self.pg_url)
                storage = schema.url
            else:
                storage = f"sqlite:///{folder / 'tamtam.db'}"
            with Sink(dump=dump) as sink:
                config = write_config(folder, storage, sink.port)
                csv = subscribers_csv(self.work, n)
                timeout = 120 + n / 5  # far beyond today's speed; a hung run still ends
                imp = run_measured(self.tamtam.cmd(config, "subscribers", "import", "--consent", "newsletter", str(csv)),
                                   cwd=ROOT, timeout=timeout)
                rec.update(import_wall=imp.wall, import_rss=imp.peak_rss_mib, import_rate=n / imp.wall)
                if imp.returncode != 0 or f"{n} added" not in imp.output:
                    return self._failed(rec, "subscribers import", imp)
                once = run_measured(self.tamtam.cmd(config, "once"), cwd=ROOT, timeout=timeout)
                received = sink.wait_for(n, timeout=10)
                received = sink.settle(quiet=0.3)
                rec.update(wall=once.wall, rss=once.peak_rss_mib, received=received, rate=received / once.wall,
                           delivery_rate=sink.delivery_rate(),
                           first_mail_after=(sink.first - once.started) if sink.first else None,
                           delivery_wall=(sink.last - sink.first) if sink.first else None)
                if once.returncode != 0:
                    return self._failed(rec, "once", once)
            rec["ok"] = received == n
            if not rec["ok"]:
                rec["note"] = f"smtp-sink received {received}, expected {n}; `once` said: " + \
                    " | ".join(once.output.strip().splitlines()[-4:])[-400:]
                keep_log(rec, once)
            return rec
        finally:
            if schema is not None:
                schema.drop()
            shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def _failed(rec: dict, step: str, run: Run) -> dict:
        tail = " | ".join(run.output.strip().splitlines()[-3:])
        rec["ok"] = False
        rec["note"] = f"{step} exited {run.returncode}{' (timed out)' if run.timed_out else ''}: {tail[-300:]}"
        keep_log(rec, run)
        return rec

    # -- smtp-source ----------------------------------------------------------------------------

    def smtp_source(self, n: int, sessions: int, rnd: int, payload: int, *, dump: Path | None = None) -> dict:
        rec: dict = {"section": "fanout", "variant": f"smtp-source-{sessions}", "n": n, "round": rnd}
        with Sink(dump=dump) as sink:
            cmd = [measure.SMTP_SOURCE, "-d", "-s", str(sessions), "-m", str(n), "-l", str(payload),
                   "-f", "lettre@echo-du-sahel.example", "-t", "lecteur@example.org", "-M", "bench.example",
                   f"127.0.0.1:{sink.port}"]
            r = run_measured(cmd, timeout=60 + n / 50)
            received = sink.wait_for(n, timeout=10)
            received = sink.settle(quiet=0.2)
            rec.update(wall=r.wall, rss=r.peak_rss_mib, received=received, rate=received / r.wall,
                       delivery_rate=sink.delivery_rate())
        if r.returncode != 0:
            return self._failed(rec, "smtp-source", r)
        rec["ok"] = received == n
        if not rec["ok"]:
            rec["note"] = f"smtp-sink received {received}, expected {n}"
        return rec

    # -- rss2email ------------------------------------------------------------------------------

    def feed_file(self, items: int) -> Path:
        """The ingest benchmark's feed (bench/ingest.py's make_feed), so rss2email reads the same
        1,000 items; the demo feed's 12 items cloned if that file is not there."""
        path = self.work / f"feed-{items}.xml"
        if path.exists():
            return path
        try:
            from ingest import make_feed  # bench/ingest.py, written beside this file

            data = make_feed(items)
            self.results["rss2email_feed"] = f"bench/ingest.py make_feed({items})"
        except ImportError:
            data = clone_demo_feed(items)
            self.results["rss2email_feed"] = f"config/demo/feed.xml's 12 items cloned to {items}"
        path.write_bytes(data)
        return path

    def rss2email(self, feed: Path, n: int, rnd: int, *, dump: Path | None = None) -> dict:
        folder = Path(tempfile.mkdtemp(prefix="rss2email-", dir=self.work))
        r2e = str(install.BENCH_VENV / "bin" / "r2e")
        rec: dict = {"section": "rss2email", "variant": "rss2email", "n": n, "round": rnd}
        try:
            with Sink(dump=dump) as sink:
                cfg = folder / "rss2email.cfg"
                cfg.write_text(f"""[DEFAULT]
from = lettre@echo-du-sahel.example
to = lecteur@example.org
email-protocol = smtp
smtp-server = 127.0.0.1
smtp-port = {sink.port}
smtp-ssl = False
smtp-auth = False
html-mail = True
multipart-html = True
""")
                data = folder / "rss2email.json"
                add = run_measured([r2e, "-c", str(cfg), "-d", str(data), "add", "echo", str(feed)], timeout=60)
                if add.returncode != 0:
                    return self._failed(rec, "r2e add", add)
                r = run_measured([r2e, "-c", str(cfg), "-d", str(data), "run"], timeout=120 + n)
                received = sink.wait_for(n, timeout=10)
                received = sink.settle(quiet=0.3)
                rec.update(wall=r.wall, rss=r.peak_rss_mib, received=received, rate=received / r.wall,
                           delivery_rate=sink.delivery_rate())
                if r.returncode != 0:
                    return self._failed(rec, "r2e run", r)
            rec["ok"] = received == n
            if not rec["ok"]:
                rec["note"] = f"smtp-sink received {received}, expected {n}"
                keep_log(rec, r)
            return rec
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    # -- calibration --------------------------------------------------------------------------

    def calibrate(self) -> bool:
        """Tiny runs into a dumping sink: each sender works at all, and the sizes of the mails
        (smtp-source is then given a payload that makes its messages as big as Tamtam's)."""
        log("calibration: message sizes (tiny runs into a dumping smtp-sink)")
        folder = Path(tempfile.mkdtemp(prefix="calibrate-", dir=self.work))
        folder.chmod(0o777)  # smtp-sink writes the dump as nobody
        try:
            rec = self.tamtam_fanout(3, "sqlite", 0, dump=folder / "tamtam.dump")
            sizes = measure.dump_sizes(folder / "tamtam.dump") if (folder / "tamtam.dump").exists() else []
            if not rec.get("ok") or len(sizes) != 3:
                log(f"  ! Tamtam's own trial run failed: {rec.get('note')}")
                self.results["calibration"] = {"error": rec.get("note")}
                return False
            tamtam_bytes = round(sum(sizes) / len(sizes))
            probe = 10000
            src = self.smtp_source(1, 1, 0, probe, dump=folder / "source.dump")
            overhead = measure.dump_sizes(folder / "source.dump")[0] - probe if src.get("ok") else 200
            payload = max(0, tamtam_bytes - overhead)
            self.calibration = {"tamtam_bytes": tamtam_bytes, "source_payload": payload,
                                "source_bytes": payload + overhead}
            if "rss2email" in self.args.only and self.have("rss2email"):
                r = self.rss2email(DEMO_FEED, 12, 0, dump=folder / "r2e.dump")
                r2e_sizes = measure.dump_sizes(folder / "r2e.dump") if (folder / "r2e.dump").exists() else []
                if r.get("ok") and r2e_sizes:
                    self.calibration["rss2email_bytes_demo"] = round(sum(r2e_sizes) / len(r2e_sizes))
            log(f"  Tamtam's digest: {fmt_n(tamtam_bytes)} bytes a mail; smtp-source gets -l {fmt_n(payload)} "
                f"(+{overhead} bytes of its own headers)")
            self.results["calibration"] = self.calibration
            return True
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    # -- sections -----------------------------------------------------------------------------

    def fanout_rounds(self) -> None:
        a = self.args
        do_fanout = "fanout" in a.only
        do_r2e = "rss2email" in a.only
        if do_r2e and not self.have("rss2email"):
            self.skip("rss2email", "not installed in .venv-bench (see the install lines above)")
            do_r2e = False
        if self.pg_url and a.pg_sizes:
            problem = measure.pg_problem(self.pg_url)
            if problem:
                self.skip("Tamtam on PostgreSQL", f"{self.pg_url} does not answer: {problem}")
                a.pg_sizes = []
        sizes = sorted(set(a.sizes) | set(a.pg_sizes)) if do_fanout else []
        if do_r2e and a.rss_items not in sizes:
            sizes = sorted(set(sizes) | {a.rss_items})  # the Tamtam side of the comparison
        feed = self.feed_file(a.rss_items) if do_r2e else None
        payload = self.calibration["source_payload"]
        for rnd in range(1, a.rounds + 1):
            log(f"round {rnd}/{a.rounds}")
            for n in sizes:
                plan = []
                if n in a.sizes or (do_r2e and n == a.rss_items):
                    plan.append(("tamtam-sqlite", lambda n=n: self.tamtam_fanout(n, "sqlite", rnd)))
                if do_r2e and n == a.rss_items:
                    plan.append(("rss2email", lambda: self.rss2email(feed, a.rss_items, rnd)))
                if do_fanout and n in a.sizes:
                    plan.append(("smtp-source-1", lambda n=n: self.smtp_source(n, 1, rnd, payload)))
                if do_fanout and n in a.pg_sizes:
                    plan.append(("tamtam-postgresql", lambda n=n: self.tamtam_fanout(n, "postgresql", rnd)))
                if do_fanout and n in a.sizes:
                    plan.append(("smtp-source-4", lambda n=n: self.smtp_source(n, 4, rnd, payload)))
                for name, job in plan:
                    rec = self.record(job())
                    log("  " + describe_run(rec))

    def workers(self) -> None:
        # ----------------------------------------------------------------------------------
        # SLOT: 1 vs 2 workers on PostgreSQL (issue #8, item 4). Runs when `tamtam worker`
        # exists. ASSUMES: `tamtam --config FILE worker` delivers from the outbox until
        # SIGTERM; an edition can be queued without delivering it through App.poll_all +
        # App.publish (see QUEUE below). Adjust both here if the command differs.
        # ----------------------------------------------------------------------------------
        if not self.tamtam.has_command("worker"):
            self.skip("1 vs 2 workers on PostgreSQL", "`tamtam worker` does not exist yet")
            return
        if not self.pg_url or measure.pg_problem(self.pg_url):
            self.skip("1 vs 2 workers on PostgreSQL", "PostgreSQL does not answer")
            return
        n = self.args.workers_size
        for rnd in range(1, self.args.rounds + 1):
            for k in (1, 2):
                rec = self.record(self.worker_run(n, k, rnd))
                log("  " + describe_run(rec))

    QUEUE = """
import asyncio, sys
from bot.app import App
from bot.config import load_config
app = App(load_config(sys.argv[1]))
asyncio.run(app.poll_all())
result = app.publish(app.config.channels[0])
asyncio.run(app.aclose())
app.store.close()
print("queued", getattr(result, "messages", result))
"""

    def worker_run(self, n: int, k: int, rnd: int) -> dict:
        folder = Path(tempfile.mkdtemp(prefix=f"workers-{k}-", dir=self.work))
        schema = measure.PgSchema(self.pg_url)
        rec: dict = {"section": "workers", "variant": f"workers-{k}", "n": n, "round": rnd}
        procs: list[tuple[subprocess.Popen, object]] = []
        try:
            with Sink() as sink:
                config = write_config(folder, schema.url, sink.port)
                imp = run_measured(self.tamtam.cmd(config, "subscribers", "import", "--consent", "newsletter",
                                                   str(subscribers_csv(self.work, n))), cwd=ROOT, timeout=120 + n / 5)
                if imp.returncode != 0:
                    return self._failed(rec, "subscribers import", imp)
                q = run_measured([str(self.tamtam.python), "-c", self.QUEUE, str(config)], cwd=ROOT, timeout=120 + n / 5)
                if q.returncode != 0 or sink.received:
                    return self._failed(rec, "queueing the edition", q)
                started = time.perf_counter()
                for i in range(k):
                    out = open(folder / f"worker-{i}.log", "wb")
                    p = subprocess.Popen(self.tamtam.cmd(config, "worker"), cwd=ROOT, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                    measure._STARTED.append(p)
                    procs.append((p, out))
                received = sink.wait_for(n, timeout=120 + n / 5)
                received = sink.settle(quiet=0.5)
                end = sink.last or time.perf_counter()
                peaks = []
                for p, out in procs:
                    p.send_signal(signal.SIGTERM)
                for p, out in procs:
                    try:
                        _, status, usage = os.wait4(p.pid, 0)
                        p.returncode = os.waitstatus_to_exitcode(status)
                        peaks.append(usage.ru_maxrss / 1024)
                    except ChildProcessError:
                        pass
                    out.close()
                wall = end - started
                rec.update(wall=wall, rate=received / wall if wall > 0 else None, received=received,
                           rss=max(peaks) if peaks else None, delivery_rate=sink.delivery_rate())
            rec["ok"] = received == n
            if not rec["ok"]:
                rec["note"] = f"smtp-sink received {received}, expected {n}"
            return rec
        finally:
            for p, out in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            schema.drop()
            shutil.rmtree(folder, ignore_errors=True)

    def startup(self) -> None:
        runs = self.args.startup_runs
        commands = {
            "--help": self.tamtam.cmd(None, "--help"),
            "check": self.tamtam.cmd(DEMO_CONFIG, "check"),
        }
        out: dict = {"tool": "hyperfine" if shutil.which("hyperfine") else "repeated timings", "runs": runs,
                     "commands": {}}
        for name, cmd in commands.items():
            times: list[float] = []
            if shutil.which("hyperfine"):
                js = self.work / "hyperfine.json"
                r = subprocess.run(["hyperfine", "--shell=none", "--warmup", "2", "--runs", str(runs),
                                    "--export-json", str(js), "--style", "none", shlex.join(cmd)],
                                   cwd=ROOT, capture_output=True, text=True)
                if r.returncode == 0:
                    times = json.loads(js.read_text())["results"][0]["times"]
                else:
                    log(f"  hyperfine failed ({r.stderr.strip()[-200:]}); timing {name} by hand")
            if not times:
                for i in range(runs + 2):
                    run = run_measured(cmd, cwd=ROOT, timeout=60)
                    if i >= 2:  # two warm-ups, as with hyperfine
                        times.append(run.wall)
            rss = run_measured(cmd, cwd=ROOT, timeout=60)
            out["commands"][name] = {"median": median(times), "min": min(times), "max": max(times),
                                     "rss": rss.peak_rss_mib, "cmd": " ".join(cmd[1:]).replace(str(ROOT) + "/", ""),
                                     "ok": rss.returncode == 0}
            log(f"  {name:<7} median {median(times):.3f} s (min {min(times):.3f}, max {max(times):.3f}), "
                f"peak RSS {rss.peak_rss_mib:.0f} MiB")
        self.results["startup"] = out

    def external(self, name: str, script: Path, python: Path, want: dict[str, list[str]], timeout: float) -> None:
        """Run a sibling benchmark script and keep its output (its own table)."""
        if not script.exists():
            self.skip(name, f"{script.relative_to(ROOT)} is not there")
            return
        if not python.exists():
            self.skip(name, f"{python} is missing")
            return
        if "__main__" not in script.read_text(encoding="utf-8"):
            self.skip(name, f"{script.relative_to(ROOT)} has no command-line entry yet")
            return
        helptext = subprocess.run([str(python), str(script), "--help"], cwd=ROOT, capture_output=True, text=True).stdout
        extra: list[str] = []
        for flag, values in want.items():
            if flag in helptext:
                extra += [flag, *values]
        cmd = [str(python), str(script), *extra]
        log(f"  $ {' '.join(cmd).replace(str(ROOT) + '/', '')}")
        r = run_measured(cmd, cwd=ROOT, timeout=timeout)
        text = r.output.rstrip()
        log("\n".join("    " + line for line in text.splitlines()))
        self.results[name] = {"cmd": " ".join(cmd[1:]).replace(str(ROOT) + "/", ""), "returncode": r.returncode,
                              "wall": r.wall, "output": text, "timed_out": r.timed_out}
        if r.returncode != 0:
            log(f"  ! {name} exited {r.returncode}")

    def run(self) -> dict:
        a = self.args
        timed = self.results["durations"]
        t = time.perf_counter()
        fan = "fanout" in a.only or "rss2email" in a.only or "workers" in a.only
        if fan and not self.status.get("postfix (smtp-sink, smtp-source)", {}).get("ok", Path(measure.SMTP_SINK).exists()):
            self.skip("fan-out, rss2email and workers", "postfix's smtp-sink/smtp-source are not installed")
            fan = False
        if fan and not self.calibrate():
            self.skip("fan-out, rss2email and workers", "Tamtam's trial run into smtp-sink failed")
            fan = False
        timed["calibration"] = time.perf_counter() - t
        if fan and ("fanout" in a.only or "rss2email" in a.only):
            log("fan-out (and rss2email), interleaved")
            t = time.perf_counter()
            self.fanout_rounds()
            timed["fanout + rss2email"] = time.perf_counter() - t
        if fan and "workers" in a.only:
            log("workers on PostgreSQL")
            t = time.perf_counter()
            self.workers()
            timed["workers"] = time.perf_counter() - t
        if "startup" in a.only:
            log("start-up times")
            t = time.perf_counter()
            self.startup()
            timed["startup"] = time.perf_counter() - t
        if "ingest" in a.only:
            log("ingest (bench/ingest.py)")
            t = time.perf_counter()
            want = {"--rounds": [str(a.rounds)]}
            if a.full:
                want["--items"] = ["1000", "10000"]
            self.external("ingest", BENCH / "ingest.py", install.bin_python(install.BENCH_VENV), want, timeout=1800)
            timed["ingest"] = time.perf_counter() - t
        if "unsubscribe" in a.only:
            log("one-click unsubscribes (bench/unsubscribe.py)")
            t = time.perf_counter()
            self.external("unsubscribe", BENCH / "unsubscribe.py", Path(a.tamtam_python), {}, timeout=900)
            timed["unsubscribe"] = time.perf_counter() - t
        return self.results


def keep_log(rec: dict, run: Run) -> None:
    """A failed run's whole output, kept under var/bench/ for a look afterwards."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"failed-{rec['variant']}-{rec['n']}-round{rec['round']}-{int(time.time())}.log"
    path.write_text("$ " + shlex.join(run.cmd) + "\n" + run.output, encoding="utf-8")
    rec["log"] = str(path.relative_to(ROOT))


def clone_demo_feed(items: int) -> bytes:
    """The demo feed's 12 items repeated to ``items``, each with its own guid and link."""
    src = DEMO_FEED.read_text(encoding="utf-8")
    found = re.findall(r"\t<item>.*?</item>\n", src, re.S)
    head = src[:src.index("\t<item>")]
    tail = src[src.rindex("</item>") + len("</item>\n"):]
    out = []
    for i in range(items):
        item = found[i % len(found)]
        item = re.sub(r"<guid([^>]*)>([^<]*)</guid>", lambda m: f"<guid{m.group(1)}>{m.group(2)}&amp;n={i}</guid>", item)
        item = re.sub(r"<link>([^<]*)</link>", lambda m: f"<link>{m.group(1)}?n={i}</link>", item, count=1)
        out.append(item)
    return (head + "".join(out) + tail).encode("utf-8")


def describe_run(rec: dict) -> str:
    name = f"{rec['variant']:<18} {fmt_n(rec['n']):>7}"
    if not rec.get("ok"):
        return f"{name}  FAILED: {rec.get('note')}"
    parts = []
    if "import_wall" in rec:
        parts.append(f"import {rec['import_wall']:.1f} s")
    parts.append(f"{rec['wall']:.1f} s = {rec['rate']:,.0f} mails/s")
    if rec.get("delivery_rate"):
        parts.append(f"at the sink {rec['delivery_rate']:,.0f}/s")
    if rec.get("rss") is not None and not rec["variant"].startswith("smtp-source"):
        parts.append(f"peak {rec['rss']:.0f} MiB")
    parts.append(f"{fmt_n(rec['received'])}/{fmt_n(rec['n'])} at the sink")
    return f"{name}  " + ", ".join(parts)


# -- entry point ----------------------------------------------------------------------------

def parse_sizes(text: str) -> list[int]:
    if text.strip().lower() in ("", "none", "0"):
        return []
    return sorted({int(x.replace("_", "").replace(",", "")) for x in re.split(r"[ ,]+", text.strip()) if x})


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", action="store_true", help="run the side-by-side comparison (what this script does)")
    ap.add_argument("--full", action="store_true",
                    help=f"the issue's full set: {', '.join(map(fmt_n, FULL_SIZES))} subscribers on SQLite and "
                         "PostgreSQL, workers at 10,000, ingest at 1,000 and 10,000 items (hours at today's speed)")
    ap.add_argument("--sizes", type=parse_sizes, default=None,
                    help=f"list sizes on SQLite (default {','.join(map(str, DEFAULT_SIZES))})")
    ap.add_argument("--pg-sizes", type=parse_sizes, default=None,
                    help=f"list sizes on PostgreSQL (default {','.join(map(str, DEFAULT_PG_SIZES))}; 'none' to skip)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of A, B, A, B … (medians; at least 3 advised)")
    ap.add_argument("--rss-items", type=int, default=1000, help="items (= mails) for the rss2email comparison")
    ap.add_argument("--workers-size", type=int, default=None, help="subscribers for the workers runs (1,000; --full 10,000)")
    ap.add_argument("--startup-runs", type=int, default=10, help="timed runs per start-up command")
    ap.add_argument("--only", type=lambda s: [x.strip() for x in s.split(",") if x.strip()], default=list(SECTIONS),
                    help=f"sections to run, comma-separated: {','.join(SECTIONS)}")
    ap.add_argument("--skip", type=lambda s: [x.strip() for x in s.split(",") if x.strip()], default=[],
                    help="sections not to run")
    ap.add_argument("--pg-url", default=os.environ.get("TAMTAM_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
                    help="PostgreSQL database for the PostgreSQL runs (a fresh schema per run; "
                         "$TAMTAM_BENCH_PG_URL)")
    ap.add_argument("--tamtam-python", default=str(install.project_python()),
                    help="the interpreter that runs Tamtam (default: .venv/bin/python)")
    ap.add_argument("--no-install", action="store_true", help="install nothing; use what is there")
    ap.add_argument("--write-docs", action="store_true", help="write docs/benchmarks.md and docs/benchmarks-fanout.png")
    ap.add_argument("--docs-from", metavar="JSON", help="write the docs from a saved result file and exit (no run)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.docs_from:
        import report

        results = json.loads(Path(args.docs_from).read_text())
        report.write_docs(results, ROOT)
        return 0
    unknown = set(args.only) - set(SECTIONS) | set(args.skip) - set(SECTIONS)
    if unknown:
        parser().error(f"unknown section(s) {', '.join(sorted(unknown))}; known: {', '.join(SECTIONS)}")
    args.only = [s for s in args.only if s not in args.skip]
    args.sizes = args.sizes if args.sizes is not None else list(FULL_SIZES if args.full else DEFAULT_SIZES)
    args.pg_sizes = args.pg_sizes if args.pg_sizes is not None else list(FULL_SIZES if args.full else DEFAULT_PG_SIZES)
    args.workers_size = args.workers_size or (10000 if args.full else 1000)
    if args.rounds < 1:
        parser().error("--rounds must be at least 1")

    # 1. install, then carry on inside .venv-bench (matplotlib, the peers)
    bench_py = install.bin_python(install.BENCH_VENV)
    if os.environ.get(STATUS_ENV):
        status = json.loads(os.environ[STATUS_ENV])
    else:
        t = time.perf_counter()
        if args.no_install:
            status = {"postfix (smtp-sink, smtp-source)": {"ok": Path(measure.SMTP_SINK).exists(), "note": "not checked"}}
            for req in install._requirements():
                status[req] = {"ok": bench_py.exists(), "note": "not checked (--no-install)"}
        else:
            status = install.ensure_all()
        status["_seconds"] = {"ok": True, "note": f"{time.perf_counter() - t:.1f}"}
        if bench_py.exists() and Path(sys.prefix).resolve() != install.BENCH_VENV.resolve():
            env = {**os.environ, STATUS_ENV: json.dumps(status)}
            os.execve(str(bench_py), [str(bench_py), str(Path(__file__).resolve()), *(argv if argv is not None else sys.argv[1:])], env)
    install_seconds = float(status.pop("_seconds", {"note": "0"})["note"])

    RESULTS.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc)
    work = Path(tempfile.mkdtemp(prefix="tamtam-bench-"))
    os.chmod(work, 0o755)
    bench = Bench(args, work, status)
    res = bench.results
    res.update(started=started.isoformat(timespec="seconds"),
               argv=["bench/run.py", *(argv if argv is not None else sys.argv[1:])],
               settings={"sizes": args.sizes, "pg_sizes": args.pg_sizes, "rounds": args.rounds,
                         "rss_items": args.rss_items, "workers_size": args.workers_size, "sections": args.only,
                         "pg_url": args.pg_url},
               install=status)
    res["durations"]["install"] = install_seconds
    res["machine"] = measure.machine(Path(args.tamtam_python), args.pg_url, ROOT)
    peers = {}
    for name in ("rss2email", "fastfeedparser", "feedparser", "matplotlib"):
        try:
            from importlib.metadata import version

            peers[name] = version(name)
        except Exception:  # noqa: BLE001
            peers[name] = None
    res["machine"]["peers"] = peers
    log(f"machine: {res['machine'].get('cpu')}, {res['machine'].get('cores')} cores, {res['machine'].get('ram')}, "
        f"load {res['machine'].get('load_average_at_start')}; work folder {work}")
    log(f"sizes {args.sizes} on SQLite, {args.pg_sizes} on PostgreSQL, {args.rounds} rounds; sections {', '.join(args.only)}")
    total = time.perf_counter()
    try:
        bench.run()
    except KeyboardInterrupt:
        log("interrupted: writing what was measured")
        res["interrupted"] = True
    finally:
        measure.end_started()
        shutil.rmtree(work, ignore_errors=True)
    res["durations"]["total"] = time.perf_counter() - total
    res["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")

    import report

    summary = report.summarise(res)
    res["summary"] = summary
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(res, indent=1, ensure_ascii=False)
    (RESULTS / f"results-{stamp}.json").write_text(text, encoding="utf-8")
    (RESULTS / "latest.json").write_text(text, encoding="utf-8")
    log()
    log(report.markdown(res, for_terminal=True))
    log(f"results: {(RESULTS / 'latest.json').relative_to(ROOT)} (and results-{stamp}.json)")
    if args.write_docs:
        written = report.write_docs(res, ROOT)
        log("wrote " + ", ".join(str(p.relative_to(ROOT)) for p in written))
    failed = [r for r in res["runs"] if not r.get("ok")]
    return 1 if failed or res.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
