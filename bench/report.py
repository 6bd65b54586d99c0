"""Tables, the plot and docs/benchmarks.md, from a result dict of bench/run.py (or its JSON).

Everything printed or written here is computed from the runs in that dict: the doc never
holds a number that no run produced.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from statistics import median

MB150_MIB = 150e6 / 2**20  # the "150 MB" in the MiB that the kernel reports

VARIANT_LABEL = {
    "tamtam-sqlite": "Tamtam `once`, SQLite",
    "tamtam-postgresql": "Tamtam `once`, PostgreSQL",
    "smtp-source-1": "postfix `smtp-source` (C), 1 connection",
    "smtp-source-4": "postfix `smtp-source` (C), 4 connections",
    "rss2email": "rss2email",
    "workers-1": "1 `tamtam worker`",
    "workers-2": "2 `tamtam worker` processes",
}
FIELDS = ("wall", "rate", "delivery_rate", "rss", "import_wall", "import_rss", "import_rate", "first_mail_after",
          "delivery_wall")


def summarise(res: dict) -> dict:
    """Medians (and min, max) per variant and list size, over the runs that succeeded."""
    groups: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for r in res.get("runs", []):
        groups[(r["variant"], r["n"])].append(r)
    out: dict[str, dict] = {}
    for (variant, n), runs in sorted(groups.items()):
        ok = [r for r in runs if r.get("ok")]
        row: dict = {"variant": variant, "n": n, "runs": len(runs), "ok": len(ok)}
        for f in FIELDS:
            values = [r[f] for r in ok if r.get(f) is not None]
            if values:
                row[f] = median(values)
                row[f + "_min"] = min(values)
                row[f + "_max"] = max(values)
        out[f"{variant}@{n}"] = row
    return out


def _get(summary: dict, variant: str, n: int) -> dict | None:
    row = summary.get(f"{variant}@{n}")
    return row if row and row.get("ok") else None


def _num(x: float | None, digits: int = 0, unit: str = "") -> str:
    if x is None:
        return "—"
    return f"{x:,.{digits}f}{unit}"


def _secs(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.2f} s" if x < 10 else f"{x:,.1f} s"


def _ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "—"
    r = a / b
    return f"{r:.2f}×" if r < 10 else f"{r:,.0f}×"


def sizes_of(summary: dict, variant: str) -> list[int]:
    return sorted(row["n"] for row in summary.values() if row["variant"] == variant and row.get("ok"))


def fanout_table(res: dict) -> list[str]:
    s = res["summary"]
    cal = res.get("calibration", {})
    ns = sorted({row["n"] for row in s.values() if row["variant"].startswith(("tamtam-", "smtp-source"))})
    if not ns:
        return []
    lines = [
        f"### Fan-out: one 12-article digest ({_num(cal.get('tamtam_bytes'))} bytes a mail) to N subscribers, "
        "SMTP into `smtp-sink` on loopback",
        "",
        "| subscribers | sender | whole run | first mail after | mails/s, whole run | mails/s at the sink | peak RSS "
        "| ratio | runs ok |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for n in ns:
        for variant in ("tamtam-sqlite", "tamtam-postgresql", "smtp-source-1", "smtp-source-4"):
            row = s.get(f"{variant}@{n}")
            if not row:
                continue
            ratio = ""
            versus = {"tamtam-sqlite": ("smtp-source-1", "of smtp-source, 1 conn."),
                      "tamtam-postgresql": ("tamtam-sqlite", "of SQLite"),
                      "smtp-source-4": ("smtp-source-1", "of 1 connection")}.get(variant)
            if versus and _get(s, versus[0], n):
                ratio = f"{_ratio(row.get('rate'), _get(s, versus[0], n).get('rate'))} {versus[1]}"
            rss = "—" if variant.startswith("smtp-source") else _num(row.get("rss"), 0, " MiB")
            lines.append(f"| {n:,} | {VARIANT_LABEL[variant]} | {_secs(row.get('wall'))} | "
                         f"{_secs(row.get('first_mail_after'))} | {_num(row.get('rate'))} | "
                         f"{_num(row.get('delivery_rate'))} | {rss} | {ratio} | {row['ok']}/{row['runs']} |")
    return lines


def import_table(res: dict) -> list[str]:
    s = res["summary"]
    rows = [row for row in s.values() if row["variant"].startswith("tamtam-") and row.get("import_wall")]
    if not rows:
        return []
    lines = ["### `subscribers import --consent` of an N-row CSV (before each fan-out run)", "",
             "| subscribers | storage | wall | rows/s | peak RSS |", "| ---: | --- | ---: | ---: | ---: |"]
    for row in sorted(rows, key=lambda r: (r["n"], r["variant"])):
        storage = "SQLite" if row["variant"] == "tamtam-sqlite" else "PostgreSQL"
        lines.append(f"| {row['n']:,} | {storage} | {_secs(row['import_wall'])} | {_num(row.get('import_rate'))} | "
                     f"{_num(row.get('import_rss'), 0, ' MiB')} |")
    return lines


def rss2email_table(res: dict) -> list[str]:
    s = res["summary"]
    n = res.get("settings", {}).get("rss_items", 1000)
    r2e = s.get(f"rss2email@{n}")
    if not r2e:
        return []
    tam = _get(s, "tamtam-sqlite", n)
    cal = res.get("calibration", {})
    lines = [
        f"### {n:,} mails out: rss2email vs Tamtam",
        "",
        "| sender | the work | whole run | mails/s | peak RSS | runs ok |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
        f"| rss2email {res.get('machine', {}).get('peers', {}).get('rss2email') or ''} | {n:,} feed items → {n:,} mails "
        f"(text + HTML) to one address, one SMTP connection per mail | {_secs(r2e.get('wall'))} | "
        f"{_num(r2e.get('rate'))} | {_num(r2e.get('rss'), 0, ' MiB')} | {r2e['ok']}/{r2e['runs']} |",
    ]
    if tam:
        lines.append(f"| Tamtam (SQLite) | one 12-article digest → {n:,} subscribers, {_num(cal.get('tamtam_bytes'))} "
                     f"bytes a mail, four kept SMTP connections (the default) | {_secs(tam.get('wall'))} | {_num(tam.get('rate'))} | "
                     f"{_num(tam.get('rss'), 0, ' MiB')} | {tam['ok']}/{tam['runs']} |")
        lines += ["", f"Tamtam ÷ rss2email: {_ratio(tam.get('rate'), r2e.get('rate'))} the mails per second, "
                      f"{_ratio(tam.get('rss'), r2e.get('rss'))} the peak memory. Both are whole processes "
                      "(start, read the feed, render, send, exit) counted at the same sink."]
    lines += ["", f"rss2email reads {res.get('rss2email_feed', 'the same feed')}: every item becomes its own mail "
                  "(rss2email's design), while Tamtam renders one digest and personalises it per reader. The work "
                  "per mail differs — rss2email parses and converts one article per mail, Tamtam builds one "
                  "multi-article letter per reader and records every delivery durably — but both answer the same "
                  f"question an operator asks: how long until {n:,} mails have left a feed tool on this machine."]
    if cal.get("rss2email_bytes_demo"):
        lines.append(f"(rss2email's mail of a demo-feed article: {cal['rss2email_bytes_demo']:,} bytes.)")
    return lines


def workers_table(res: dict) -> list[str]:
    s = res["summary"]
    rows = [row for row in s.values() if row["variant"].startswith("workers-")]
    lines = ["### 1 vs 2 workers on PostgreSQL", ""]
    skipped = [m for m in res.get("skipped", []) if "workers" in m]
    if not rows:
        lines.append("Not measured: " + ("; ".join(skipped) if skipped else "section not run") + ".")
        return lines
    lines += ["| subscribers | workers | delivery wall | mails/s | peak RSS (one worker) | ratio | runs ok |",
              "| ---: | --- | ---: | ---: | ---: | --- | ---: |"]
    for row in sorted(rows, key=lambda r: (r["n"], r["variant"])):
        ratio = ""
        if row["variant"] == "workers-2":
            ratio = f"{_ratio(row.get('rate'), (_get(s, 'workers-1', row['n']) or {}).get('rate'))} 1 worker"
        lines.append(f"| {row['n']:,} | {VARIANT_LABEL[row['variant']]} | {_secs(row.get('wall'))} | "
                     f"{_num(row.get('rate'))} | {_num(row.get('rss'), 0, ' MiB')} | {ratio} | {row['ok']}/{row['runs']} |")
    return lines


def startup_table(res: dict) -> list[str]:
    st = res.get("startup")
    if not st:
        return []
    goals = {"--help": 0.15, "check": 0.4}
    lines = [f"### Start-up ({st['tool']}, {st['runs']} runs after 2 warm-ups)", "",
             "| command | median | min – max | peak RSS | goal |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, c in st["commands"].items():
        goal = goals.get(name)
        lines.append(f"| `tamtam {c['cmd'].replace('main.py ', '')}` | {c['median']:.3f} s | {c['min']:.3f} – "
                     f"{c['max']:.3f} s | {c['rss']:.0f} MiB | {'< ' + str(goal) + ' s' if goal else ''} |")
    return lines


def external_block(res: dict, key: str, title: str) -> list[str]:
    ext = res.get(key)
    if not ext:
        skipped = [m for m in res.get("skipped", []) if m.startswith(key)]
        return [f"### {title}", "", skipped[0] + "." if skipped else "Not run."] if skipped else []
    out = ext["output"].splitlines()
    if not out:
        out = [f"(printed nothing; exit {ext['returncode']})"]
    lines = [f"### {title}", "", f"`{ext['cmd']}` ({ext['wall']:.0f} s"
             + (f", exit {ext['returncode']}" if ext["returncode"] else "") + "):", ""]
    table = [ln for ln in out if ln.lstrip().startswith("|")]
    if table and len(table) >= 3:  # the script printed a markdown table: keep it as a table
        lines += out
    else:
        lines += ["```text", *out, "```"]
    return lines


def goals_table(res: dict) -> list[str]:
    s = res["summary"]
    lines = ["### Issue #8's goals, as this run measured them", "",
             "| goal | measured | verdict |", "| --- | --- | --- |"]
    sq = sizes_of(s, "tamtam-sqlite")
    big = max(sq) if sq else None
    if big:
        row = s[f"tamtam-sqlite@{big}"]
        verdict = ("met" if row["rate"] >= 1500 else "not met") + ("" if big >= 100000 else f" (at {big:,}, not 100,000)")
        lines.append(f"| fan-out ≥ 1,500 mails/s to 100,000 (whole `once`, SQLite) | {row['rate']:,.0f} mails/s at "
                     f"{big:,} (at the sink: {_num(row.get('delivery_rate'))}/s) | {verdict} |")
        peaks = ", ".join(f"{n:,}: {s[f'tamtam-sqlite@{n}']['rss']:.0f} MiB" for n in sq)
        top = s[f"tamtam-sqlite@{big}"]["rss"]
        base = s.get("tamtam-sqlite@10000", {}).get("rss")
        flat = f"; 10,000 → {big:,}: {_ratio(top, base)}" if base and big > 10000 else ""
        verdict = "met" if top <= MB150_MIB and (not base or top <= base * 1.1) else "not met"
        lines.append(f"| peak RSS ≤ 150 MB (143 MiB) and flat from 10,000 to 100,000 | {peaks}{flat} | "
                     f"{verdict}{'' if big >= 100000 else ' (so far)'} |")
    both = sorted(set(sq) & set(sizes_of(s, "tamtam-postgresql")))
    if both:
        n = both[-1]
        r = s[f"tamtam-postgresql@{n}"]["rate"] / s[f"tamtam-sqlite@{n}"]["rate"]
        lines.append(f"| PostgreSQL within 80 % of SQLite | {r:.0%} at {n:,} | {'met' if r >= 0.8 else 'not met'} |")
    imports = [row for row in s.values() if row["variant"] == "tamtam-sqlite" and row.get("import_wall")]
    if imports:
        row = max(imports, key=lambda r: r["n"])
        verdict = ("met" if row["import_wall"] < 10 else "not met") if row["n"] >= 100000 else \
            f"at {row['n']:,}: {row['import_rate']:,.0f} rows/s ({100000 / row['import_rate']:,.0f} s for 100,000 at that rate)"
        lines.append(f"| `subscribers import` of 100,000 rows < 10 s | {_secs(row['import_wall'])} for {row['n']:,} | "
                     f"{verdict} |")
    st = res.get("startup", {}).get("commands", {})
    for name, goal in (("--help", 0.15), ("check", 0.4)):
        if name in st:
            m = st[name]["median"]
            lines.append(f"| `{name}` < {goal} s | {m:.3f} s | {'met' if m < goal else 'not met'} |")
    if "ingest" in res:
        lines.append("| ingest ≥ 10,000 items/s at 10,000 items, ≤ 150 MB | see the ingest table | — |")
    w = [row for row in s.values() if row["variant"].startswith("workers-")]
    lines.append(f"| several workers on PostgreSQL | {'see the workers table' if w else 'not measured'} | — |")
    return lines


def machine_table(res: dict) -> list[str]:
    m = res.get("machine", {})
    peers = m.get("peers", {})
    rows = [("CPU", m.get("cpu")), ("cores", f"{m.get('cores')}" + (f" ({m['cores_usable']} usable)" if m.get("cores_usable") else "")),
            ("RAM", m.get("ram")), ("kernel", m.get("kernel")), ("OS", m.get("os")), ("Python", m.get("python")),
            ("SQLite", m.get("sqlite")), ("PostgreSQL", m.get("postgresql") or "not reachable"),
            ("postfix (smtp-sink, smtp-source)", m.get("postfix")),
            ("peers", ", ".join(f"{k} {v}" for k, v in peers.items() if v) or "—"),
            ("load average at the start", m.get("load_average_at_start")), ("Tamtam", m.get("commit"))]
    return ["| | |", "| --- | --- |", *[f"| {k} | {v if v is not None else '—'} |" for k, v in rows]]


def durations_table(res: dict) -> list[str]:
    d = res.get("durations", {})
    if not d:
        return []
    lines = ["| part | time |", "| --- | ---: |"]
    for k, v in d.items():
        lines.append(f"| {k} | {v:,.0f} s |")
    return lines


def notes(res: dict) -> list[str]:
    lines = []
    problems = [f"- {name}: {st['note']}" for name, st in res.get("install", {}).items() if not st.get("ok")]
    if problems:
        lines += ["**Not installed:**", "", *problems, ""]
    if res.get("skipped"):
        lines += ["**Skipped:**", "", *[f"- {m}" for m in res["skipped"]], ""]
    failed = [r for r in res.get("runs", []) if not r.get("ok")]
    if failed:
        lines += ["**Failed runs** (left out of the medians):", "",
                  *[f"- {r['variant']} at {r['n']:,}, round {r['round']}: {r.get('note')}" for r in failed], ""]
    if res.get("interrupted"):
        lines += ["**This run was interrupted**; the tables hold what was measured before.", ""]
    return lines


def markdown(res: dict, for_terminal: bool = False) -> str:
    if "summary" not in res:
        res["summary"] = summarise(res)
    parts: list[list[str]] = []
    for block in (fanout_table(res), import_table(res), rss2email_table(res), workers_table(res),
                  startup_table(res), external_block(res, "ingest", "Ingest (bench/ingest.py)"),
                  external_block(res, "unsubscribe", "One-click unsubscribes under load (bench/unsubscribe.py)"),
                  goals_table(res)):
        if block:
            parts.append(block)
    n = notes(res)
    if n:
        parts.append(n)
    if for_terminal:
        parts.append(["time per part:", *durations_table(res)])
    return "\n\n".join("\n".join(p) for p in parts)


def plot(res: dict, path: Path) -> bool:
    """Whole-run time, mails/s and peak RSS against the list size; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    s = res["summary"]
    styles = {"tamtam-sqlite": ("Tamtam, SQLite", "o-", "C0"), "tamtam-postgresql": ("Tamtam, PostgreSQL", "s-", "C1"),
              "smtp-source-1": ("smtp-source, 1 conn.", "^--", "C2"), "smtp-source-4": ("smtp-source, 4 conn.", "v--", "C3")}
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    for variant, (label, style, color) in styles.items():
        ns = sizes_of(s, variant)
        if not ns:
            continue
        rows = [s[f"{variant}@{n}"] for n in ns]
        for ax, key in zip(axes, ("wall", "rate", "rss")):
            if key == "rss" and variant.startswith("smtp-source"):
                continue
            y = [r[key] for r in rows]
            err = [[r[key] - r[key + "_min"] for r in rows], [r[key + "_max"] - r[key] for r in rows]]
            ax.errorbar(ns, y, yerr=err, fmt=style, color=color, label=label, capsize=3)
    axes[0].set(title="whole run (s)", xscale="log", yscale="log")
    axes[1].set(title="mails per second, whole run", xscale="log", yscale="log")
    axes[1].axhline(1500, color="grey", ls=":", lw=1)
    axes[1].annotate("goal 1,500/s", (0.02, 1500), xycoords=("axes fraction", "data"), va="bottom", fontsize=8, color="grey")
    axes[2].set(title="peak RSS (MiB)", xscale="log")
    axes[2].axhline(MB150_MIB, color="grey", ls=":", lw=1)
    axes[2].annotate("goal 150 MB", (0.02, MB150_MIB), xycoords=("axes fraction", "data"), va="bottom", fontsize=8, color="grey")
    axes[2].set_ylim(bottom=0)
    axes[2].set_ylim(top=max(MB150_MIB * 1.15, *(s[k]["rss_max"] * 1.05 for k in s if s[k].get("rss_max")
                                                    and k.startswith("tamtam-"))))
    from matplotlib.ticker import FuncFormatter, NullFormatter

    for ax in axes:
        ax.set_xlabel("subscribers")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(sorted({row["n"] for row in s.values() if row.get("ok")}))
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    m = res.get("machine", {})
    fig.suptitle(f"One 12-article digest to N subscribers into smtp-sink — medians of {res['settings']['rounds']} rounds, "
                 f"{m.get('cores')} cores, {res.get('started', '')[:10]}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_docs(res: dict, root: Path) -> list[Path]:
    if "summary" not in res:
        res["summary"] = summarise(res)
    docs = root / "docs"
    png = docs / "benchmarks-fanout.png"
    has_plot = plot(res, png)
    settings = res.get("settings", {})
    cmd = " ".join(res.get("argv", ["bench/run.py"]))
    text = [
        "<!-- Written by bench/run.py --write-docs from one run; edit bench/report.py, not this file. -->",
        "# Benchmarks",
        "",
        "Tamtam side by side with its peers and with the wire, in one run on one machine: every figure is the "
        f"median of {settings.get('rounds')} rounds run A, B, A, B … (so a busy moment of the shared machine hits "
        "every contender alike), peak RSS is the kernel's for that one process, and every mail is counted at "
        "postfix's `smtp-sink` on loopback (a run whose count differs from the list size is a failure, not a figure).",
        "",
        "Re-run: `make bench` (sizes that finish in minutes today), `make bench BENCH_ARGS=--full` (1,000 / 10,000 / "
        "100,000 subscribers on SQLite and PostgreSQL), or `.venv/bin/python bench/run.py --help` for each option. "
        "`make bench` installs what it needs (postfix's smtp-sink and smtp-source, hyperfine, and `.venv-bench` "
        "with rss2email, fastfeedparser and matplotlib — none of them a dependency of Tamtam) and rewrites this page.",
        "",
        f"## Latest run — {res.get('started', '?')}",
        "",
        f"`{cmd}`; list sizes {', '.join(f'{n:,}' for n in settings.get('sizes', []))} on SQLite, "
        f"{', '.join(f'{n:,}' for n in settings.get('pg_sizes', [])) or 'none'} on PostgreSQL.",
        "",
        *machine_table(res),
        "",
    ]
    body = markdown(res)
    text.append(body)
    if has_plot:
        text += ["", "### Time and memory against the list size", "",
                 "![whole-run time, mails per second and peak RSS against the number of subscribers]"
                 "(benchmarks-fanout.png)", "",
                 "Points are medians, bars the fastest and slowest round. `smtp-source` sends fixed messages of the "
                 "same size and renders nothing: it is the ceiling of this machine's loopback SMTP, not a peer."]
    text += ["", "### How each figure is taken", "",
             "- **whole run**: `tamtam once` (poll the demo feed, publish one edition, deliver every mail, exit) "
             "from fork to exit; mails/s = mails counted at the sink ÷ that time. The import of the list is a "
             "separate command, timed on its own.",
             "- **first mail after**: from the start of `once` to the first mail at the sink: start-up, poll and "
             "publish (the edition's outbox rows written).",
             "- **mails/s at the sink**: the delivery phase alone, from the first to the last mail smtp-sink "
             "accepted (its `-c` counters, read as they change).",
             "- **storage**: a fresh SQLite file, or a fresh PostgreSQL schema, per run.",
             "- **transport**: the SMTP transport, `security = \"none\"` to 127.0.0.1, `rate_per_minute` lifted.",
             "- **smtp-source**: `smtp-source -d -s 1|4 -m N -l L`, with L chosen so that its messages are as "
             "large as Tamtam's digest (measured from a dump at the start of the run).",
             "", "### Time per part of this run", "", *durations_table(res), ""]
    out = docs / "benchmarks.md"
    out.write_text("\n".join(text), encoding="utf-8")
    return [out, png] if has_plot else [out]
