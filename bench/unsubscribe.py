"""One-click unsubscribes under load: the web service served by uvicorn (``tamtam serve`` in
its own process), hit by this process with 200 concurrent RFC 8058 POSTs.

    .venv/bin/python bench/unsubscribe.py [--readers 4000] [--concurrency 200] [--storage URL]

Two shapes of load, each request a different reader's signed link:

* burst      — 200 connections opened first, then every one posts at the same instant
               (a mailbox provider replaying a batch), repeated ``--bursts`` times;
* sustained  — 200 keep-alive connections posting back to back until every reader left.

It reports requests/s, p50/p99/max latency (from the request's first byte to the last
byte of the answer), then checks the store: every reader unsubscribed with one event each,
and on a sample of fresh readers, that the row says "unsubscribed" the moment the 200
arrives (honoured before the response returns). The client is plain asyncio sockets with
pre-built requests, so the measure is the server's, not an HTTP library's.
Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import load_config  # noqa: E402
from bot.store import Store  # noqa: E402
from bot.store.subscribers import SubscriberStatus  # noqa: E402

BODY = b"List-Unsubscribe=One-Click"
SECRET_ENV = "TAMTAM_BENCH_WEB_SECRET"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(folder: Path, port: int, storage: str) -> Path:
    (folder / "config").mkdir(parents=True, exist_ok=True)
    path = folder / "config" / "bench.toml"
    path.write_text(f'''
[site]
name = "Bench"
base_url = "https://bench.example"

[storage]
url = "{storage}"

[web]
public_url = "http://127.0.0.1:{port}"
port = {port}
secret_env = "{SECRET_ENV}"

[[channels]]
id = "news"
type = "email"
schedule = {{ cron = "0 7 * * *" }}
transport = {{ type = "file", dir = "var/out" }}
''', encoding="utf-8")
    return path


def request(path: str, port: int) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: Google-Unsubscribe\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(BODY)}\r\n\r\n").encode() + BODY


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> tuple[float, int]:
    start = time.perf_counter()
    writer.write(raw)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return time.perf_counter() - start, status


async def burst(port: int, requests: list[bytes]) -> tuple[list[tuple[float, int]], float]:
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in requests]
    go = asyncio.Event()

    async def one(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], raw: bytes) -> tuple[float, int]:
        await go.wait()
        return await exchange(*conn, raw)

    tasks = [asyncio.ensure_future(one(c, r)) for c, r in zip(conns, requests)]
    await asyncio.sleep(0.05)
    start = time.perf_counter()
    go.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
    elapsed = time.perf_counter() - start
    for _, writer in conns:
        writer.close()
    return list(results), elapsed


async def sustained(port: int, requests: list[bytes], concurrency: int) -> tuple[list[tuple[float, int]], float]:
    queue = list(reversed(requests))
    results: list[tuple[float, int]] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            results.append(await exchange(reader, writer, queue.pop()))
        writer.close()

    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), timeout=300)
    return results, time.perf_counter() - start


def summary(name: str, results: list[tuple[float, int]], elapsed: float) -> str:
    times = sorted(t for t, _ in results)
    bad = sum(1 for _, s in results if s != 200)
    p = lambda q: times[min(len(times) - 1, int(q * len(times)))] * 1000  # noqa: E731
    return (f"{name:<10} {len(results):>6} requests  {len(results) / elapsed:>8.0f} req/s  "
            f"p50 {p(0.50):6.1f} ms  p99 {p(0.99):6.1f} ms  max {times[-1] * 1000:6.1f} ms  non-200: {bad}")


async def honoured_on_answer(port: int, store: Store, sample: list[tuple[int, bytes]]) -> int:
    """How many of ``sample`` read as unsubscribed in the store the moment their 200 arrived."""
    ok = 0
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for subscriber_id, raw in sample:
        _, status = await exchange(reader, writer, raw)
        ok += status == 200 and store.subscribers.get(subscriber_id).status == SubscriberStatus.UNSUBSCRIBED
    writer.close()
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readers", type=int, default=4000, help="readers for the sustained run")
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--bursts", type=int, default=5)
    ap.add_argument("--storage", help="a database URL (default: a fresh SQLite file)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        storage = args.storage or f"sqlite:///{folder / 'bench.db'}"
        config_path = write_config(folder, port, storage)
        env = {**os.environ, SECRET_ENV: "bench-secret-0123456789-abcdefghij"}
        os.environ[SECRET_ENV] = env[SECRET_ENV]
        config = load_config(config_path)
        store = Store(config.database_url)
        links = config.links
        assert links is not None
        now = datetime.now(timezone.utc)
        total = args.readers + args.bursts * args.concurrency + 50  # + 20 warm-up, + 30 checked one by one
        print(f"adding {total} readers …", file=sys.stderr)
        ids = [store.subscribers.add("news", f"reader{i}@example.org", None, now=now).subscriber.id
               for i in range(total)]
        paths = [links.unsubscribe("news", i)[len(links.public_url):] for i in ids]
        reqs = [request(p, port) for p in paths]

        server = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--config", str(config_path), "serve"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        print(server.stderr.read().decode() if server.stderr else "", file=sys.stderr)
                        return 1
                    time.sleep(0.1)
            print(f"server: `tamtam serve` (pid {server.pid}), storage {store.db.backend}, "
                  f"client: {args.concurrency} connections from another process; {os.cpu_count()} CPU(s), "
                  f"load average {os.getloadavg()[0]:.2f} before the run (other work on the machine skews it)")

            async def run() -> None:
                # the client's own collector pauses would count as server latency
                gc.collect()
                gc.freeze()
                gc.disable()
                warm = reqs[-50:]
                await sustained(port, warm[:20], 10)  # imports, first connections, SQLite page cache
                at = 0
                burst_results: list[tuple[float, int]] = []
                burst_time = 0.0
                for _ in range(args.bursts):
                    results, elapsed = await burst(port, reqs[at:at + args.concurrency])
                    burst_results += results
                    burst_time += elapsed
                    at += args.concurrency
                print(summary("burst", burst_results, burst_time))
                results, elapsed = await sustained(port, reqs[at:at + args.readers], args.concurrency)
                print(summary("sustained", results, elapsed))
                sample = list(zip(ids[-30:], reqs[-30:]))
                ok = await honoured_on_answer(port, store, sample)
                print(f"honoured before the answer: {ok}/{len(sample)} readers read as unsubscribed when their 200 arrived")

            try:
                import uvloop  # the client's own overhead stays out of the server's latency

                uvloop.run(run())
            except ImportError:
                asyncio.run(run())
        finally:
            server.terminate()
            server.wait(timeout=30)
        counts = store.subscribers.counts("news")
        left = counts.get(SubscriberStatus.UNSUBSCRIBED, 0)
        events = sum(1 for i in ids if store.subscribers.events(i)[-1].kind == "unsubscribed")
        print(f"store: {left} of the {total} readers posted for are unsubscribed, {events} with their event"
              + ("" if left == total == events else " — SOME ARE NOT"))
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
