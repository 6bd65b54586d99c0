"""The benchmark's instruments: a child process timed with its peak RSS, postfix's
``smtp-sink`` counting what arrives (and when), a PostgreSQL schema per run, the machine.

Standard library only, except ``psycopg`` for PostgreSQL (Tamtam's own dependency, seen from
the bench venv).
"""

from __future__ import annotations

import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SOURCE = "/usr/sbin/smtp-source"

# Every process this harness starts, so an interrupted run ends exactly those and no other.
_STARTED: list[subprocess.Popen] = []


def end_started() -> None:
    for p in _STARTED:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


@dataclass
class Run:
    """One finished child process."""

    cmd: list[str]
    returncode: int
    started: float  # time.perf_counter() at start
    wall: float  # seconds
    peak_rss_mib: float  # the child's own peak resident set (getrusage of that pid)
    output: str
    timed_out: bool = False


def run_measured(cmd: list[str], *, env: dict | None = None, cwd: str | Path | None = None,
                 timeout: float | None = None) -> Run:
    """Run ``cmd`` to its end; wall time from fork to reap, peak RSS from wait4's rusage
    (Linux reports ru_maxrss in KiB). Output (stdout+stderr) goes to a file, not a pipe,
    so a chatty child never blocks on us."""
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"tamtam-bench-{uuid.uuid4().hex[:8]}.log"
    with open(log, "w+b") as out:
        started = time.perf_counter()
        p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _STARTED.append(p)
        timed_out = threading.Event()

        def watchdog() -> None:
            if not done.wait(timeout):
                timed_out.set()
                p.kill()

        done = threading.Event()
        if timeout:
            threading.Thread(target=watchdog, daemon=True).start()
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    log.unlink(missing_ok=True)
    return Run(cmd, p.returncode, started, wall, usage.ru_maxrss / 1024, text, timed_out.is_set())


_COUNTER = re.compile(rb"sess=(\d+) quit=(\d+) mesg=(\d+)")


class Sink:
    """postfix's ``smtp-sink`` on a free loopback port, its ``-c`` counters read live.

    ``received`` is the number of messages smtp-sink accepted (its ``mesg=`` counter);
    ``first``/``last`` are the perf_counter() times at which the first and the latest message
    arrived, so a sender's delivery phase is measured at the receiving end. With ``dump``,
    every transaction is appended to that file (for message sizes; slow, so only small runs).
    """

    def __init__(self, dump: Path | None = None):
        self.port = free_port()
        cmd = [SMTP_SINK, "-c"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]  # smtp-sink refuses to run as root without it
        if dump is not None:
            cmd += ["-D", str(dump)]
        cmd += [f"127.0.0.1:{self.port}", "256"]
        self.received = 0
        self.first: float | None = None
        self.last: float | None = None
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _STARTED.append(self.proc)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 10
        while True:  # this probe is a session without a message: it moves no mesg counter
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"smtp-sink did not start: {cmd}")
                time.sleep(0.02)

    def _read(self) -> None:
        fd = self.proc.stdout.fileno()
        tail = b""
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            now = time.perf_counter()
            tail = (tail + chunk)[-256:]
            counts = _COUNTER.findall(tail)
            if counts:
                mesg = int(counts[-1][2])
                with self._changed:
                    if mesg > self.received:
                        if self.first is None:
                            self.first = now
                        self.last = now
                        self.received = mesg
                        self._changed.notify_all()

    def wait_for(self, n: int, timeout: float) -> int:
        """Wait until ``n`` messages arrived or ``timeout`` seconds passed; the count."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.received < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return self.received

    def settle(self, quiet: float = 0.5, timeout: float = 10) -> int:
        """Wait until no message arrived for ``quiet`` seconds (catches extra mails)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.received
            time.sleep(quiet)
            if self.received == seen:
                break
        return self.received

    def delivery_rate(self) -> float | None:
        """Messages per second between the first and the last arrival."""
        if self.first is None or self.last is None or self.received < 2 or self.last <= self.first:
            return None
        return (self.received - 1) / (self.last - self.first)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def dump_sizes(dump: Path) -> list[int]:
    """Each message's size on the wire (CRLF line ends) in an ``smtp-sink -D`` dump file,
    without the X-* transaction lines and the Received header smtp-sink adds."""
    text = dump.read_bytes()
    sizes = []
    for chunk in re.split(rb"(?m)^X-Client-Addr: ", text)[1:]:
        lines = chunk.split(b"\n")
        i = 1  # the X-Client-Addr line itself
        while i < len(lines) and lines[i].startswith(b"X-"):
            i += 1
        if i < len(lines) and lines[i].startswith(b"Received:"):
            i += 1
            while i < len(lines) and lines[i][:1] in (b"\t", b" "):
                i += 1
        body = lines[i:]
        while body and body[-1] == b"":  # smtp-sink's separator between transactions
            body.pop()
        sizes.append(sum(len(line) + 2 for line in body))
    return sizes


# -- PostgreSQL ---------------------------------------------------------------------------

def pg_problem(url: str) -> str | None:
    """None when PostgreSQL answers at ``url``; else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not importable (Tamtam's .venv missing?)"
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means: skip the PostgreSQL rows
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return None


class PgSchema:
    """A fresh schema in the bench database for one run, dropped afterwards; ``url`` points
    Tamtam at it (search_path through libpq's options, as the tests do)."""

    def __init__(self, base_url: str):
        import psycopg

        self.base_url = base_url
        self.name = f"tamtam_bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')
        sep = "&" if "?" in base_url else "?"
        self.url = f"{base_url}{sep}options=-csearch_path%3D{self.name}"

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


def pg_version(url: str) -> str | None:
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]
    except Exception:  # noqa: BLE001
        return None


# -- the machine --------------------------------------------------------------------------

def machine(tamtam_python: Path, pg_url: str | None, root: Path) -> dict:
    info: dict = {}
    try:
        cpu = Path("/proc/cpuinfo").read_text()
        m = re.search(r"^model name\s*:\s*(.+)$", cpu, re.M)
        info["cpu"] = m.group(1).strip() if m else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    info["cores"] = os.cpu_count()
    try:
        affinity = len(os.sched_getaffinity(0))
        if affinity != info["cores"]:
            info["cores_usable"] = affinity
    except AttributeError:
        pass
    try:
        mem = Path("/proc/meminfo").read_text()
        kib = int(re.search(r"^MemTotal:\s*(\d+)", mem, re.M).group(1))
        info["ram"] = f"{kib / 2**20:.1f} GiB"
    except (OSError, AttributeError):
        info["ram"] = "?"
    info["kernel"] = f"{platform.system()} {platform.release()}"
    try:
        info["os"] = re.search(r'^PRETTY_NAME="?([^"\n]+)', Path("/etc/os-release").read_text(), re.M).group(1)
    except (OSError, AttributeError):
        pass
    r = subprocess.run([str(tamtam_python), "-c", "import sys, sqlite3; print(sys.version.split()[0], sqlite3.sqlite_version)"],
                       capture_output=True, text=True)
    if r.returncode == 0:
        py, sqlite = r.stdout.split()
        info["python"] = py
        info["sqlite"] = sqlite
    info["postgresql"] = pg_version(pg_url) if pg_url else None
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "postfix"], capture_output=True, text=True)
    info["postfix"] = r.stdout.strip() if r.returncode == 0 else None
    info["load_average_at_start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    r = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if r.returncode == 0:
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "bot"],
                               capture_output=True, text=True).stdout.strip()
        info["commit"] = r.stdout.strip() + (" + uncommitted changes in bot/" if dirty else "")
    return info
