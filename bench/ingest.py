"""Ingest throughput and memory: a big French feed read from a local file, parsed, normalised,
sanitised and stored, against feedparser and fastfeedparser in the same run.

    .venv/bin/python bench/ingest.py [--items 1000 10000] [--rounds 3] [--postgres URL] [--baseline DIR]

Every measurement runs in a fresh subprocess (so peak RSS is that one job's, read with
getrusage(RUSAGE_CHILDREN)), and the jobs are interleaved round by round (A, B, C, A, B, C …)
so a busy moment of the machine hits every contender alike. Figures are medians.

* tamtam          the whole path in one process, as ``once`` does it: start Python, import,
                  read the file, parse, normalise, sanitise (nh3), upsert into a fresh SQLite
                  (or PostgreSQL) database. Items/s over the whole process's wall time, and
                  over the ingest alone (start of the poll → last commit).
* tamtam-parse    parse, normalise and sanitise only (parse_feed), no database.
* before          with --baseline DIR, the whole path of another copy of bot/ (say, the one
                  before a change), in the same run. To make one from the last commit:
                  cp -r bot DIR/ && git show HEAD:bot/ingest/parse.py > DIR/bot/ingest/parse.py …
* feedparser      ``feedparser.parse`` of the same bytes: parse only, and the whole process
                  (start, import, read, parse).
* fastfeedparser  ``fastfeedparser.parse``: parse only (installed into the venv for the bench;
                  not a dependency of Tamtam).

``make_feed(n)`` is also what the tests use to get a feed of this shape.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from html import escape
from pathlib import Path

SITE = "https://echo-du-sahel.example"

_WORDS = ("le gouvernement", "les députés", "la ministre de l’Économie", "le maire de Ségou", "les éleveurs",
          "la société civile", "les enseignants", "la Banque centrale", "les commerçants du marché de Médine",
          "l’opposition", "les habitants de Kayes", "la préfecture de Mopti", "les agriculteurs de l’Office du Niger")
_VERBS = ("a annoncé", "ont dénoncé", "prévoit", "a salué", "réclament", "a présenté", "ont adopté", "envisage",
          "a reporté", "ont célébré")
_OBJECTS = ("un plan de 412 milliards de francs CFA", "la réouverture des écoles fermées depuis 2022",
            "une hausse de 6 % du prix du mil", "la construction de trois forages à Kati",
            "le nouveau pont sur le fleuve Niger", "« un budget de responsabilité »",
            "la baisse des frais de transfert d’argent", "un festival sur les rives du Niger",
            "l’arrivée de la saison sèche", "la création d’un fonds pour les jeunes entrepreneurs")
_TAILS = ("selon un communiqué publié dimanche", "après une nuit de débats", "à l’approche de l’hivernage",
          "devant les autorités traditionnelles", "au grand soulagement des familles", "sans donner de calendrier",
          "a-t-on appris de source officielle", "malgré les réserves des bailleurs")
_QUOTES = ("Il n’y a pas de sécurité durable sans écoles ouvertes", "Nous attendons des actes, pas des promesses",
           "C’est une première étape, mais le chemin reste long", "Le prix du sac a presque doublé en un an")
_TITLES = ("Budget 2027 : l’Assemblée adopte la loi de finances", "Sécurité & développement : le plan « Centre 2030 »",
           "Festival « Rives du Niger » : Ségou attend 40 000 visiteurs", "Crue du fleuve : l’alerte levée à Kayes",
           "Mobile money : les frais entre opérateurs baissent", "Éducation : 1 200 écoles rouvrent leurs portes",
           "Marché de Médine : le prix du riz en hausse", "Élevage : la transhumance sous surveillance")
_CATEGORIES = ("Politique", "Économie", "Société", "Régions", "Culture", "Sécurité", "Éducation", "Santé",
               "Sport", "Environnement")
_AUTHORS = ("Awa Sangaré", "Oumar Traoré", "Djénéba Samaké", "Ibrahim Ouédraogo", "Fatoumata Diallo", "Sékou Keïta")
_HEAD = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"
	xmlns:content="http://purl.org/rss/1.0/modules/content/"
	xmlns:dc="http://purl.org/dc/elements/1.1/"
	xmlns:atom="http://www.w3.org/2005/Atom"
	xmlns:media="http://search.yahoo.com/mrss/">
<channel>
	<title>L’Écho du Sahel</title>
	<atom:link href="{SITE}/feed/" rel="self" type="application/rss+xml" />
	<link>{SITE}</link>
	<description>Le quotidien d’information de Bamako</description>
	<language>fr-FR</language>
"""


def _sentence(rng: random.Random) -> str:
    subject = rng.choice(_WORDS)
    return (f"{subject[0].upper()}{subject[1:]} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}, "
            f"{rng.choice(_TAILS)}.")


def _paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(_sentence(rng) for _ in range(sentences))


def _item(i: int, rng: random.Random, when: datetime) -> str:
    slug = f"article-{i}"
    day = when.strftime("%Y/%m/%d")
    link = f"{SITE}/{day}/{slug}/"
    upload = f"{SITE}/wp-content/uploads/{when:%Y/%m}/photo-{i}"
    title = f"{rng.choice(_TITLES)} ({i})"
    alt = f"Photo {i} : {rng.choice(_WORDS)} à Bamako"
    lead = _paragraph(rng, 3)
    paragraphs = [lead] + [_paragraph(rng, rng.randint(2, 4)) for _ in range(rng.randint(4, 6))]
    figure = (f'<figure><img src="{upload}-1024x683.jpg" alt="{escape(alt)}" width="1024" height="683" '
              f'srcset="{upload}-300x200.jpg 300w, {upload}-1024x683.jpg 1024w, {upload}-1536x1024.jpg 1536w, '
              f'{upload}-2048x1365.jpg 2048w" sizes="(max-width: 1024px) 100vw, 1024px" />'
              f"<figcaption>{escape(alt)}. © L’Écho du Sahel</figcaption></figure>")
    body = [f"<p><strong>Bamako</strong> – {paragraphs[0]}</p>", figure]
    for n, p in enumerate(paragraphs[1:], 1):
        if n == 2:
            body.append(f"<h2>{rng.choice(_TITLES)}</h2>")
        if n == 3:
            body.append(f"<blockquote><p>« {rng.choice(_QUOTES)} », a déclaré {rng.choice(_AUTHORS)}.</p></blockquote>")
        if n == 4:
            p += f' <a href="/{day}/article-{max(i - 1, 0)}/">Lire aussi notre article précédent</a>.'
        body.append(f"<p>{p}</p>")
    content = "\n".join(body)
    words = lead.split()
    excerpt = " ".join(words[:40])  # WordPress cuts its excerpts at a word count
    cats = rng.sample(_CATEGORIES, rng.randint(1, 3))
    categories = "".join(f"\n\t\t<category><![CDATA[{c}]]></category>" for c in cats)
    return f"""
	<item>
		<title>{escape(title, quote=False)}</title>
		<link>{link}</link>
		<dc:creator><![CDATA[{rng.choice(_AUTHORS)}]]></dc:creator>
		<pubDate>{when:%a, %d %b %Y %H:%M:%S} +0000</pubDate>{categories}
		<guid isPermaLink="false">{SITE}/?p={100000 + i}</guid>
		<description><![CDATA[{excerpt} [&hellip;]</p>
<p>L’article <a rel="nofollow" href="{link}">{escape(title)}</a> est apparu en premier sur <a rel="nofollow" href="{SITE}">L’Écho du Sahel</a>.</p>
]]></description>
		<content:encoded><![CDATA[{content}]]></content:encoded>
		<media:content url="{upload}-1024x683.jpg" medium="image" type="image/jpeg" width="1024" height="683" />
	</item>"""


def make_feed(n: int, *, seed: int = 20261130) -> bytes:
    """An RSS 2.0 feed of ``n`` WordPress-like French articles (~3 KB of HTML each), the same
    bytes for the same ``n`` and ``seed``: accents, « », ’, a picture with srcset and
    media:content, one to three categories, an excerpt cut at a word count."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 30, 7, 30, tzinfo=timezone.utc)
    parts = [_HEAD]
    for i in range(n):
        parts.append(_item(i, rng, start - timedelta(minutes=7 * i)))
    parts.append("\n</channel>\n</rss>\n")
    return "".join(parts).encode("utf-8")


# -- the benchmark ----------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-12-01T00:00:00+00:00"
PG_URL = os.environ.get("TAMTAM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _job(kind: str, feed: str, items: int, db: str | None, code: str | None) -> dict[str, object]:
    """Runs in the child process; prints what it measured as JSON."""
    if code:
        sys.path.insert(0, code)
    else:
        sys.path.insert(0, str(ROOT))
    if kind == "feedparser":
        import feedparser

        data = Path(feed).read_bytes()
        t0 = time.perf_counter()
        n = len(feedparser.parse(data).entries)
        return {"seconds": time.perf_counter() - t0, "items": n}
    if kind == "fastfeedparser":
        import fastfeedparser

        data = Path(feed).read_bytes()
        t0 = time.perf_counter()
        n = len(fastfeedparser.parse(data).entries)
        return {"seconds": time.perf_counter() - t0, "items": n}
    now = datetime.fromisoformat(NOW)
    if kind == "tamtam-parse":  # parse, normalise, sanitise; no database
        from bot.ingest import parse_feed

        data = Path(feed).read_bytes()
        t0 = time.perf_counter()
        n = len(parse_feed(data, source_id="echo", base_url=feed, now=now))
        return {"seconds": time.perf_counter() - t0, "items": n}
    # The whole path, as `once` runs it: configuration, store (migrated), poll of the file.
    import asyncio

    from bot.app import App
    from bot.config import parse_config

    cfg = parse_config({"site": {"name": "L’Écho du Sahel", "base_url": SITE}, "storage": {"url": db},
                        "sources": [{"id": "echo", "url": feed, "max_bytes": 500_000_000}], "channels": []},
                       base_dir=str(Path(feed).parent))
    app = App(cfg, clock=lambda: now)
    t0 = time.perf_counter()
    result = asyncio.run(app.poll(cfg.sources[0], now))
    seconds = time.perf_counter() - t0
    assert result.ok and result.new == items, result
    app.store.close()
    return {"seconds": seconds, "items": result.new}


def _run(kind: str, feed: Path, items: int, db: str | None, code: str | None) -> dict[str, float]:
    """One job in a fresh process: its wall time, its own peak RSS (wait4 gives the rusage of
    that one child), and the time it measured inside."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--job", kind, "--feed", str(feed), "--items", str(items)]
    if db:
        cmd += ["--db", db]
    if code:
        cmd += ["--code", code]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=str(ROOT))
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{kind} {items} failed:\n{err.read().decode(errors='replace')[-3000:]}")
        measured = json.loads(out.read().decode().strip().splitlines()[-1])
    return {"wall": wall, "seconds": float(measured["seconds"]), "items": float(measured["items"]),
            "rss": usage.ru_maxrss / 1024}


class _Postgres:
    """A fresh schema per run, dropped after."""

    def __init__(self, url: str):
        import psycopg

        self.plain = url.replace("postgresql+psycopg://", "postgresql://")
        self.psycopg = psycopg
        self.schemas: list[str] = []

    def fresh(self) -> str:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with self.psycopg.connect(self.plain, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        self.schemas.append(schema)
        sep = "&" if "?" in self.plain else "?"
        return f"{self.plain}{sep}options=-csearch_path%3D{schema}"

    def drop(self) -> None:
        with self.psycopg.connect(self.plain, autocommit=True) as conn:
            for schema in self.schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        self.schemas.clear()


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--postgres", default=PG_URL, help="PostgreSQL URL for the PostgreSQL rows ('' to skip)")
    ap.add_argument("--baseline", default="", help="a folder holding another bot/ (e.g. `git archive HEAD bot | "
                                                   "tar -x -C DIR`): its whole path is run too, as 'before'")
    ap.add_argument("--only", default="", help="comma-separated job names to run (default: all)")
    ap.add_argument("--make-feed", help=argparse.SUPPRESS)
    ap.add_argument("--job", help=argparse.SUPPRESS)
    ap.add_argument("--feed", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--code", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make_feed:
        Path(args.make_feed).write_bytes(make_feed(args.items[0]))
        return
    if args.job:
        print(json.dumps(_job(args.job, args.feed, args.items[0], args.db, args.code)))
        return

    try:
        import fastfeedparser  # noqa: F401
        peers = ["feedparser", "fastfeedparser"]
    except ImportError:
        print("fastfeedparser is not installed (pip install fastfeedparser): its rows are left out", file=sys.stderr)
        peers = ["feedparser"]
    pg = None
    if args.postgres:
        try:
            pg = _Postgres(args.postgres)
            pg.drop()
        except Exception as exc:  # noqa: BLE001 - no server: the PostgreSQL rows are left out
            print(f"PostgreSQL not reachable ({exc}): its rows are left out", file=sys.stderr)
            pg = None
    jobs = ["tamtam-sqlite"] + (["tamtam-postgresql"] if pg else []) + ["tamtam-parse"] + peers
    if args.baseline:
        jobs.insert(1, "before-sqlite")
    if args.only:
        jobs = [j for j in jobs if j in args.only.split(",")]
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.items:
            feed = Path(tmp) / f"feed-{n}.xml"
            # Written by a child: Linux counts a parent's peak RSS in the peak of every child it
            # starts afterwards (exec keeps the old hiwater mark), so this process stays small.
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "--make-feed", str(feed),
                            "--items", str(n)], check=True)
            for r in range(args.rounds):
                for job in jobs[r % len(jobs):] + jobs[:r % len(jobs)]:  # A, B, C; B, C, A; …
                    db = None
                    code = None
                    kind = job
                    if job.endswith("-sqlite"):
                        db = f"sqlite:///{tmp}/{job}-{n}-{r}.db"
                        kind = "tamtam"
                    elif job == "tamtam-postgresql":
                        assert pg is not None
                        db = pg.fresh()
                        kind = "tamtam"
                    if job.startswith("before"):
                        code = args.baseline
                    results.setdefault((job, n), []).append(_run(kind, feed, n, db, code))
                    print(f"  round {r + 1} {job:18} {n:6}: {results[(job, n)][-1]}", file=sys.stderr)
                if pg:
                    pg.drop()
    _table(results, args, jobs)


_WHAT = {
    "tamtam-sqlite": "Tamtam, whole path → SQLite",
    "before-sqlite": "Tamtam before (baseline), whole path → SQLite",
    "tamtam-postgresql": "Tamtam, whole path → PostgreSQL",
    "tamtam-parse": "Tamtam, parse+normalise+sanitise only",
    "feedparser": "feedparser.parse alone",
    "fastfeedparser": "fastfeedparser.parse alone",
}


def _table(results: dict[tuple[str, int], list[dict[str, float]]], args: argparse.Namespace, jobs: list[str]) -> None:
    print(f"\nIngest, medians of {args.rounds} rounds (interleaved), Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs; each job a fresh process.")
    print("'inside' = items / time measured inside the process (the work itself); 'process' = items / wall time "
          "of the whole process (start, imports, migrations, work); RSS = that process's peak.\n")
    print("| work | items | inside items/s | process items/s | peak RSS MB | inside vs Tamtam |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for n in args.items:
        ours = results.get(("tamtam-sqlite", n))
        ours_rate = n / _median(ours, "seconds") if ours else None
        for job in jobs:
            runs = results.get((job, n))
            if not runs:
                continue
            inside = n / _median(runs, "seconds")
            process = n / _median(runs, "wall")
            ratio = f"{inside / ours_rate:.2f}×" if ours_rate else "—"
            print(f"| {_WHAT[job]} | {n:,} | {inside:,.0f} | {process:,.0f} | {_median(runs, 'rss'):.0f} | {ratio} |")


if __name__ == "__main__":
    main()
