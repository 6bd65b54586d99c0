"""What the comparison benchmark needs, installed idempotently (``bench/run.py`` calls this
first; ``python3 bench/install.py`` alone does only this).

* Debian's ``postfix`` for ``/usr/sbin/smtp-sink`` and ``/usr/sbin/smtp-source``, preseeded
  "No configuration": no ``main.cf`` is written, so no mail server can start. While apt
  runs, a ``policy-rc.d`` that refuses every service start is put in place if the machine
  has none (and removed afterwards), so nothing listens on port 25 after the install.
* Debian's ``hyperfine`` for start-up times (optional: repeated timings otherwise).
* ``.venv-bench``: a virtualenv of its own for the peers (rss2email, fastfeedparser) and
  matplotlib, so none of them becomes a project dependency or lands in ``.venv``. It is
  made from ``.venv``'s interpreter and *sees* ``.venv``'s packages through a ``.pth``
  file (appended after its own site-packages, so a bench package wins a clash): bench
  scripts can import ``bot`` and the peers side by side, and Tamtam's own dependencies are
  never installed twice. It holds a ``.gitignore`` of ``*`` so git never lists it.

Each step reports what it could not do and the rest goes on: a peer that cannot be
installed is skipped by the benchmark, with a line saying so.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT_VENV = ROOT / ".venv"
BENCH_VENV = ROOT / ".venv-bench"
REQUIREMENTS = ROOT / "bench" / "requirements.txt"
SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SOURCE = "/usr/sbin/smtp-source"
POLICY_RC = Path("/usr/sbin/policy-rc.d")
PRESEED = "postfix postfix/main_mailer_type select No configuration\n"


def say(msg: str) -> None:
    print(f"[install] {msg}", flush=True)


def bin_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def project_python() -> Path:
    """The interpreter Tamtam runs on: the project's .venv (``make setup``), else this one."""
    py = bin_python(PROJECT_VENV)
    return py if py.exists() else Path(sys.executable)


# -- Debian packages ----------------------------------------------------------------------

def _apt_install(packages: list[str]) -> tuple[bool, str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    for attempt in (1, 2):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode == 0:
            return True, ""
        if attempt == 1:  # an empty or stale package list: refresh once and retry
            say("apt-get install failed; running apt-get update once and retrying")
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True)
    tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
    return False, " / ".join(tail)


def _port_25_listeners() -> bool:
    """True when something listens on TCP port 25 (IPv4 or IPv6), read from /proc."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[1].rsplit(":", 1)[1] == "0019" and fields[3] == "0A":
                return True
    return False


def ensure_postfix() -> tuple[bool, str]:
    if Path(SMTP_SINK).exists() and Path(SMTP_SOURCE).exists():
        return True, "present"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False, "smtp-sink/smtp-source missing and apt-get is not usable here (needs root on Debian)"
    listening_before = _port_25_listeners()
    say("installing Debian's postfix (No configuration) for smtp-sink and smtp-source")
    subprocess.run(["debconf-set-selections"], input=PRESEED, text=True, check=False)
    made_policy = False
    if not POLICY_RC.exists():  # refuse service starts while apt runs; ours, so removed after
        POLICY_RC.write_text("#!/bin/sh\n# written by tamtam bench/install.py while apt runs\nexit 101\n")
        POLICY_RC.chmod(0o755)
        made_policy = True
    try:
        ok, why = _apt_install(["postfix"])
    finally:
        if made_policy:
            POLICY_RC.unlink(missing_ok=True)
    if not ok:
        return False, f"apt-get install postfix failed: {why}"
    if _port_25_listeners() and not listening_before:
        say("WARNING: something now listens on port 25 after installing postfix; "
            "check `ss -ltnp` (the preseed should have prevented this)")
    if not (Path(SMTP_SINK).exists() and Path(SMTP_SOURCE).exists()):
        return False, "postfix installed but /usr/sbin/smtp-sink or smtp-source is missing"
    return True, "installed"


def ensure_hyperfine() -> tuple[bool, str]:
    if shutil.which("hyperfine"):
        return True, "present"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False, "not installed (start-up times fall back to repeated timings)"
    say("installing Debian's hyperfine")
    ok, why = _apt_install(["hyperfine"])
    return (True, "installed") if ok and shutil.which("hyperfine") else (False, f"apt-get failed: {why}")


# -- the bench virtualenv -----------------------------------------------------------------

def _requirements() -> list[str]:
    lines = []
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def _stamp_text() -> str:
    h = hashlib.sha256(REQUIREMENTS.read_bytes())
    h.update(str(project_python().resolve()).encode())
    return h.hexdigest()


def ensure_bench_venv() -> dict[str, tuple[bool, str]]:
    """Create .venv-bench and install bench/requirements.txt into it, one package at a time
    (a peer that fails does not stop the others). Returns {requirement: (ok, note)}."""
    stamp = BENCH_VENV / ".bench-installed"
    reqs = _requirements()
    if stamp.exists() and stamp.read_text().strip() == _stamp_text() and bin_python(BENCH_VENV).exists():
        return {r: (True, "present") for r in reqs}
    base = project_python()
    if not bin_python(BENCH_VENV).exists():
        say(f"creating {BENCH_VENV.name} from {base}")
        r = subprocess.run([str(base), "-m", "venv", str(BENCH_VENV)], capture_output=True, text=True)
        if r.returncode:
            return {q: (False, f"venv creation failed: {r.stderr.strip()[-200:]}") for q in reqs}
    (BENCH_VENV / ".gitignore").write_text("# made by bench/install.py\n*\n")
    bench_py = bin_python(BENCH_VENV)
    # Tamtam's own packages (.venv) are visible from the bench venv, after its own.
    if PROJECT_VENV.exists():
        project_site = subprocess.run([str(base), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                      capture_output=True, text=True, check=True).stdout.strip()
        bench_site = subprocess.run([str(bench_py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                    capture_output=True, text=True, check=True).stdout.strip()
        Path(bench_site, "zz_tamtam_project_venv.pth").write_text(
            f"import site; site.addsitedir({project_site!r})\n")
    results: dict[str, tuple[bool, str]] = {}
    for req in reqs:
        say(f"pip install {req} into {BENCH_VENV.name}")
        r = subprocess.run([str(bench_py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", req],
                           capture_output=True, text=True)
        if r.returncode == 0:
            results[req] = (True, "installed")
        else:
            tail = [ln for ln in (r.stderr or r.stdout).strip().splitlines() if not ln.startswith("WARNING")][-2:]
            results[req] = (False, "pip failed: " + " / ".join(tail))
    if all(ok for ok, _ in results.values()):
        stamp.write_text(_stamp_text() + "\n")
    return results


def ensure_all() -> dict[str, dict]:
    """Install everything; return a status per item: {"ok": bool, "note": str}."""
    status: dict[str, dict] = {}
    for name, fn in (("postfix (smtp-sink, smtp-source)", ensure_postfix), ("hyperfine", ensure_hyperfine)):
        ok, note = fn()
        status[name] = {"ok": ok, "note": note}
    for req, (ok, note) in ensure_bench_venv().items():
        status[req] = {"ok": ok, "note": note}
    for name, st in status.items():
        mark = "ok " if st["ok"] else "MISSING"
        say(f"{mark:<7} {name}: {st['note']}")
    return status


if __name__ == "__main__":
    print(json.dumps(ensure_all(), indent=2))
