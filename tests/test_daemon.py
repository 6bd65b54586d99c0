"""``python main.py run``: the scheduler fires polls and editions from the config, delivery
follows, and SIGTERM stops it cleanly with nothing left half-sent."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

from sqlalchemy import create_engine, select, text

from bot.store import tables as t
from tests.conftest import ROOT


def test_run_delivers_on_schedule_and_stops_cleanly_on_sigterm(tmp_path):
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config" / "demo" / "feed.xml", tmp_path / "config" / "feed.xml")
    config = tmp_path / "config" / "tamtam.toml"
    config.write_text('''
[site]
name = "L’Écho du Sahel"
base_url = "https://echo.example"

[storage]
url = "sqlite:///var/tamtam.db"

[[sources]]
id = "echo"
url = "config/feed.xml"
poll = { every = "1s" }

[[channels]]
id = "x"
type = "x"
mode = "article"
schedule = { every = "2s" }
lookback = "3650d"
transport = { type = "file", dir = "var/out" }
''', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAMTAM_")}
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--config", str(config), "run"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = tmp_path / "var" / "out" / "x"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if out.is_dir() and len(list(out.glob("*.txt"))) >= 12:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        assert len(list(out.glob("*.txt"))) == 12
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "stopping" in stderr and "stopped" in stderr and "Traceback" not in stderr
    engine = create_engine(f"sqlite:///{tmp_path / 'var' / 'tamtam.db'}")
    with engine.connect() as conn:
        statuses = [r.status for r in conn.execute(select(t.outbox.c.status))]
        jobs = {r.id for r in conn.execute(text("SELECT id FROM apscheduler_jobs"))}
    engine.dispose()
    assert statuses and set(statuses) == {"sent"}
    assert jobs == {"poll:echo", "edition:x"}  # kept in our database for the next start
