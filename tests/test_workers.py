"""Several ``tamtam worker`` processes on one PostgreSQL outbox: they share the delivery,
one of them schedules, and killing any of them with SIGKILL loses nothing and doubles
nothing — every subscriber gets every edition once (an email repeated only as the same
Message-ID), no edition is built twice, and when the scheduler's process dies another
worker takes the scheduling over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime, timezone
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.store import Store
from bot.store import tables as t
from tests.conftest import ROOT
from tests.fakes.feed_server import FeedServer
from tests.fakes.hosts import Hosts, available
from tests.fakes.smtp_server import SmtpServer

READERS = [f"lecteur{i:03d}@example.org" for i in range(150)]
FEED = (ROOT / "config" / "demo" / "feed.xml").read_bytes()
N_ARTICLES = FEED.count(b"<item>")
PER_EDITION = 4
EDITIONS = -(-N_ARTICLES // PER_EDITION)


def write_config(folder: Path, db_url: str, feed_url: str, smtp: SmtpServer) -> Path:
    path = folder / "tamtam.toml"
    path.write_text(f'''
[site]
name = "L’Écho du Sahel"
base_url = "https://echo.example"

[storage]
url = "{db_url}"

[delivery]
batch_size = 10
lease = "3s"
takeover = "1s"
dispatch_every = "1s"
backoff_base = "1s"
pause_max = "2s"
shutdown_grace = "10s"

[[sources]]
id = "echo"
url = "{feed_url}"
poll = {{ every = "1s" }}

[[channels]]
id = "lettre"
type = "email"
schedule = {{ every = "3s" }}
frequencies = ["daily"]
lookback = "3650d"
max_articles = {PER_EDITION}
[channels.transport]
type = "smtp"
host = "127.0.0.1"
port = {smtp.port}
security = "none"
from = "L’Écho du Sahel <lettre@echo.example>"
timeout = "5s"
rate_per_minute = 1500
connections = 2
''', encoding="utf-8")
    return path


class Worker:
    def __init__(self, n: int, config: Path, folder: Path):
        self.log = folder / f"worker{n}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAMTAM_")}
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--config", str(config), "worker"],
                                         env=env, stdout=out, stderr=out)

    @property
    def leads(self) -> bool:
        return "now schedules polls and editions" in self.log.read_text(errors="replace")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


def wait_for(what, deadline: float = 120.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if what():
            return True
        time.sleep(0.05)
    return False


def test_three_workers_one_killed_mid_send_and_the_scheduler_killed(tmp_path, pg_url):
    with FeedServer() as feeds, SmtpServer() as smtp:
        config = write_config(tmp_path, pg_url, feeds.add_feed("/feed/", FEED), smtp)
        store = Store(pg_url)
        for reader in READERS:
            store.subscribers.add("lettre", reader, None, now=datetime.now(timezone.utc))
        workers = [Worker(n, config, tmp_path) for n in range(3)]
        try:
            assert wait_for(lambda: sum(w.leads for w in workers) == 1), "no worker took the scheduler"
            leader = next(w for w in workers if w.leads)
            assert wait_for(lambda: len(smtp.received) >= 60), "nothing was delivered"
            # the scheduler's process dies after the first edition; another must take over
            leader.kill()
            others = [w for w in workers if w is not leader]
            assert wait_for(lambda: sum(w.leads for w in others) == 1, deadline=30), "nobody took the scheduler over"
            # and a worker dies in the middle of sending
            assert wait_for(lambda: len(smtp.received) >= 200)
            victim = next(w for w in others if not w.leads)
            victim.kill()
            survivor = next(w for w in others if w is not victim)
            done = wait_for(lambda: sum(1 for m in smtp.received for _ in m.rcpt_tos)
                            >= len(READERS) * EDITIONS and _settled(store), deadline=180)
            logs = "\n".join(w.log.read_text(errors="replace")[-2000:] for w in workers)
            assert done, f"the outbox never settled:\n{logs}"
        finally:
            for w in workers:
                if w.proc.poll() is None:
                    w.proc.send_signal(signal.SIGTERM)
            for w in workers:
                try:
                    w.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    w.kill()
        assert survivor.proc.returncode == 0  # a clean stop after all that
        with store.engine.connect() as conn:
            editions = conn.execute(select(t.editions.c.id, t.editions.c.article_count)).all()
            taken = conn.execute(select(t.edition_articles.c.article_id)).scalars().all()
        store.close()
        # no edition built twice: each article in exactly one edition, the editions as planned
        assert len(taken) == len(set(taken)) == N_ARTICLES
        assert len(editions) == EDITIONS and all(n > 0 for _, n in editions)
        # every subscriber got every edition once; a repeat only of one Message-ID
        ids: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for m in smtp.received:
            msg = message_from_bytes(m.raw, policy=policy.default)
            for rcpt in m.rcpt_tos:
                ids[rcpt][str(msg["Message-ID"])] += 1
        assert sorted(ids) == READERS
        assert all(len(got) == EDITIONS for got in ids.values())
        assert "Traceback" not in logs


def _settled(store: Store) -> bool:
    with store.engine.connect() as conn:
        statuses = conn.execute(select(t.outbox.c.status)).scalars().all()
    return len(statuses) == len(READERS) * EDITIONS and set(statuses) == {"sent"}


@pytest.mark.parametrize("first, second", [("worker", "once"), ("once", "worker")])
def test_workers_and_a_run_never_share_a_database(tmp_path, db_url, first, second):
    """``run``/``once`` settle every message left sending at start, so they never run beside
    workers (which hold the runner lock shared), and workers refuse beside them."""
    store = Store(db_url)
    with store.runner_lock(shared=first == "worker") as mine:
        assert mine
        with store.runner_lock(shared=second == "worker") as also:
            assert not also
    with store.runner_lock(shared=True) as a, store.runner_lock(shared=True) as b:
        assert a and b  # any number of workers
    store.close()


@pytest.mark.skipif(hosts_unavailable := available(), reason=hosts_unavailable or "")
def test_workers_on_separate_hosts_share_the_outbox(tmp_path, pg_url):
    """Two workers on two hosts (network namespaces: each its own address, no view of this
    machine's loopback), reaching PostgreSQL, the SMTP server and the feed over the network.
    One is killed mid-send; the other delivers everything."""
    with FeedServer(host="0.0.0.0") as feeds, Hosts(2, forward={5432: ("127.0.0.1", 5432)}) as hosts:
        smtp = SmtpServer()
        smtp.host = "0.0.0.0"
        smtp.start()
        try:
            feed_path = feeds.add_feed("/feed/", FEED).split(":", 2)[2].split("/", 1)[1]
            store = Store(pg_url)
            for reader in READERS[:100]:
                store.subscribers.add("lettre", reader, None, now=datetime.now(timezone.utc))
            procs = []
            for n, host in enumerate(hosts):
                folder = tmp_path / host.name
                folder.mkdir()
                url = pg_url.replace("127.0.0.1", host.gateway)
                config = write_config(folder, url, f"http://{host.gateway}:{feeds.url('/').rsplit(':', 1)[1]}"
                                      f"/{feed_path}", smtp)
                config.write_text(config.read_text(encoding="utf-8").replace('host = "127.0.0.1"',
                                                                               f'host = "{host.gateway}"'),
                                  encoding="utf-8")
                log = folder / "worker.log"
                env = {k: v for k, v in os.environ.items() if not k.startswith("TAMTAM_")}
                with open(log, "wb") as out:
                    procs.append((host, log, subprocess.Popen(
                        host.command(sys.executable, str(ROOT / "main.py"), "--config", str(config), "worker"),
                        env=env, stdout=out, stderr=out)))
            assert wait_for(lambda: len(smtp.received) >= 80), "\n".join(l.read_text()[-1500:] for _, l, _ in procs)
            peers = {m.peer[0] for m in smtp.received}
            _, _, first = procs[0]
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            done = wait_for(lambda: _delivered(store, 100) and _received(smtp) >= 100 * EDITIONS, deadline=180)
            _, log, second = procs[1]
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
            assert done, log.read_text()[-3000:]
        finally:
            smtp.stop()
        store.close()
    assert peers <= {h.address for h in hosts} and peers  # the mail came from the hosts' own addresses
    got: dict[str, set[str]] = defaultdict(set)
    for m in smtp.received:
        msg = message_from_bytes(m.raw, policy=policy.default)
        for rcpt in m.rcpt_tos:
            got[rcpt].add(str(msg["Message-ID"]))
    assert sorted(got) == READERS[:100] and all(len(ids) == EDITIONS for ids in got.values())


def _delivered(store: Store, readers: int) -> bool:
    with store.engine.connect() as conn:
        statuses = conn.execute(select(t.outbox.c.status)).scalars().all()
    return len(statuses) == readers * EDITIONS and set(statuses) == {"sent"}


def _received(smtp: SmtpServer) -> int:
    return len({(rcpt, message_from_bytes(m.raw, policy=policy.default)["Message-ID"])
                for m in smtp.received for rcpt in m.rcpt_tos})
