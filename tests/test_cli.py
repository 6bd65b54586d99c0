"""The commands as an admin runs them: real processes, real files, plain messages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.conftest import ROOT


def tamtam(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("TAMTAM_", "X_", "TELEGRAM_", "SMTP_"))}
    full_env.update(env or {})
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=cwd or ROOT, env=full_env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def demo(tmp_path) -> Path:
    """A copy of the demo config in a scratch project folder, so tests never touch var/."""
    (tmp_path / "config" / "demo").mkdir(parents=True)
    shutil.copy(ROOT / "config" / "demo.toml", tmp_path / "config" / "demo.toml")
    for f in ("feed.xml", "subscribers.csv"):
        shutil.copy(ROOT / "config" / "demo" / f, tmp_path / "config" / "demo" / f)
    return tmp_path / "config" / "demo.toml"


def test_demo_twice_sends_everything_once(demo):
    folder = demo.parent.parent
    r = tamtam("--config", str(demo), "subscribers", "import", "--consent", "newsletter",
               str(folder / "config/demo/subscribers.csv"))
    assert r.returncode == 0, r.stderr
    assert "3 added" in r.stdout
    first = tamtam("--config", str(demo), "once")
    assert first.returncode == 0, first.stdout + first.stderr
    out = folder / "var" / "out"
    emls = sorted((out / "newsletter").glob("*.eml"))
    assert len(emls) == 3 and len(list((out / "newsletter").glob("*.html"))) == 3
    msg = message_from_bytes(emls[0].read_bytes(), policy=policy.default)
    assert "L’Écho du Sahel" in str(msg["Subject"]) + str(msg["From"])
    html = msg.get_body(("html",)).get_content()
    assert "«" in html and "’" in html and "é" in html
    assert list((out / "telegram-soir").glob("*.json")) and list((out / "telegram-fil").glob("*.json"))
    assert list((out / "x").glob("*.txt"))
    assert "Files written" in first.stdout and ".eml" in first.stdout
    before = sorted(p.name for p in out.rglob("*") if p.is_file())

    second = tamtam("--config", str(demo), "once")
    assert second.returncode == 0, second.stderr
    assert "nothing was sent" in second.stdout
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == before

    # Retention forgets what went out (edition counts kept) and that sends nothing again.
    time.sleep(1.1)
    dry = tamtam("--config", str(demo), "outbox", "prune", "--older-than", "1s", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would delete 27 settled message(s)" in dry.stdout and "4 edition(s)" in dry.stdout
    pruned = tamtam("--config", str(demo), "outbox", "prune", "--older-than", "1s")
    assert "deleted 27 settled message(s)" in pruned.stdout, pruned.stdout + pruned.stderr
    refused = tamtam("--config", str(demo), "outbox", "release", "1")
    assert refused.returncode != 0 and "deleted by retention" in refused.stderr
    third = tamtam("--config", str(demo), "once")
    assert "nothing was sent" in third.stdout, third.stdout + third.stderr
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == before
    bad = tamtam("--config", str(demo), "outbox", "prune", "--older-than", "1 mois")
    assert bad.returncode == 2 and "--older-than" in bad.stderr and "Traceback" not in bad.stderr


def test_check_accepts_the_demo(demo):
    r = tamtam("--config", str(demo), "check")
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout


def test_check_loads_only_what_it_needs(demo):
    """check on SQLite opens the file with sqlite3 alone: no SQLAlchemy, no Alembic, no
    store, no daemon; twitter-text loads for the X channel's lengths, without pkg_resources."""
    code = ("import sys; from bot.cli import main; "
            f"rc = main(['--config', {str(demo)!r}, 'check']); "
            "print(rc, sorted(m for m in ('sqlalchemy', 'alembic', 'pkg_resources', 'bot.store', 'bot.app', "
            "'bot.daemon', 'bot.ingest', 'twitter_text') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "0 ['twitter_text']"


def test_check_rejects_a_broken_config_in_plain_words(tmp_path):
    bad = tmp_path / "tamtam.toml"
    bad.write_text('[site]\nname = "x"\nbase_url = "https://x.example"\ntimezone = "Bamako"\n'
                   '[[channels]]\nid = "news"\ntype = "email"\nmode = "weekly"\nschedule = { cron = "7h" }\n'
                   'transport = { type = "smtp", host = "h", from = "a@x.example", port = "587a" }\n',
                   encoding="utf-8")
    r = tamtam("--config", str(bad), "check")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    for expected in ("site.timezone", "unknown timezone 'Bamako'", 'channels[0] (id "news").mode', "'weekly'",
                     "schedule", "transport.port"):
        assert expected in r.stderr, r.stderr


def test_check_reports_missing_secrets(tmp_path):
    r = tamtam("--config", str(ROOT / "config" / "example.toml"), "check")
    assert r.returncode == 2
    assert "SMTP_PASSWORD is not set" in r.stderr and "TELEGRAM_BOT_TOKEN is not set" in r.stderr


def test_check_rejects_a_broken_template(demo):
    folder = demo.parent.parent
    (folder / "tpl" / "email").mkdir(parents=True)
    (folder / "tpl" / "email" / "digest.html").write_text("<p>{% for a in edition.articles %}{{ a.title }</p>\n",
                                                         encoding="utf-8")
    demo.write_text(demo.read_text(encoding="utf-8").replace("[storage]", '[templates]\nfolder = "tpl"\n\n[storage]'),
                    encoding="utf-8")
    r = tamtam("--config", str(demo), "check")
    assert r.returncode == 2
    assert "email/digest.html" in r.stderr and "line 1" in r.stderr and "Traceback" not in r.stderr


def test_preview_writes_files_and_records_nothing(demo):
    folder = demo.parent.parent
    tamtam("--config", str(demo), "subscribers", "add", "newsletter", "fatou@example.org", "--name", "Fatou",
           "--confirmed")
    r = tamtam("--config", str(demo), "preview", "newsletter")
    # nothing polled yet: the sample articles stand in
    assert r.returncode == 0, r.stderr
    assert "sample articles" in r.stdout
    html = (folder / "var" / "preview" / "newsletter.html").read_text(encoding="utf-8")
    assert "Fatou" in html and "<html" in html.lower()
    once = tamtam("--config", str(demo), "once")
    assert "channel telegram-soir: edition" in once.stdout  # the preview consumed nothing
    tamtam("--config", str(demo), "once")
    r = tamtam("--config", str(demo), "preview", "telegram-soir")
    assert r.returncode == 0 and "sample articles" in r.stdout


def test_subscribers_import_keeps_good_rows_and_reports_bad(demo, tmp_path):
    csv = tmp_path / "abonnes.csv"
    csv.write_text("Email;Name\nawa@example.org;Awa Diarra\npas-une-adresse;X\n\nibrahim@@example.org;I\n"
                   "seydou@example.org;\n", encoding="utf-8")
    r = tamtam("--config", str(demo), "subscribers", "import", "--consent", "newsletter", str(csv))
    assert r.returncode == 1
    assert "2 added" in r.stdout and "2 rejected" in r.stdout
    assert "line 3" in r.stderr and "pas-une-adresse" in r.stderr and "ibrahim@@example.org" in r.stderr
    listed = tamtam("--config", str(demo), "subscribers", "list", "newsletter")
    assert "awa@example.org\tAwa Diarra" in listed.stdout and "seydou@example.org" in listed.stdout


def test_subscribers_add_validates_and_remove(demo):
    bad = tamtam("--config", str(demo), "subscribers", "add", "newsletter", "awa.example.org")
    assert bad.returncode == 2 and "invalid address" in bad.stderr
    assert tamtam("--config", str(demo), "subscribers", "add", "newsletter", "awa@example.org").returncode == 0
    assert tamtam("--config", str(demo), "subscribers", "remove", "newsletter", "awa@example.org").returncode == 0
    listed = tamtam("--config", str(demo), "subscribers", "list", "newsletter")
    assert "awa@example.org" not in listed.stdout
    wrong = tamtam("--config", str(demo), "subscribers", "add", "x", "awa@example.org")
    assert wrong.returncode == 2 and "subscribers belong to email channels" in wrong.stderr


def test_schedules_lists_every_job(demo):
    r = tamtam("--config", str(demo), "schedules")
    assert r.returncode == 0, r.stderr
    for job in ("poll:echo", "edition:newsletter", "edition:telegram-soir", "edition:x"):
        assert job in r.stdout
    assert "Africa/Bamako" in r.stdout


def test_unknown_config_file_is_a_plain_error(tmp_path):
    r = tamtam("--config", str(tmp_path / "missing.toml"), "once")
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr


def test_once_refuses_beside_a_running_daemon(demo):
    from bot.config import load_config
    from bot.store import Store

    store = Store(load_config(demo).database_url)
    try:
        with store.runner_lock() as mine:
            assert mine
            r = tamtam("--config", str(demo), "once")
        assert r.returncode == 2 and "is working on this database" in r.stderr
        assert tamtam("--config", str(demo), "once").returncode == 0  # lock released
    finally:
        store.close()


def test_import_reads_french_headers_and_survives_a_monster_field(demo, tmp_path):
    csv = tmp_path / "abonnes.csv"
    csv.write_text("Courriel,Nom\nawa@example.org,Awa Diarra\nbad@example.org," + "x" * 200_000 + "\n",
                   encoding="utf-8")
    r = tamtam("--config", str(demo), "subscribers", "import", "--consent", "newsletter", str(csv))
    assert "Traceback" not in r.stderr and r.returncode == 1
    assert "1 added" in r.stdout and "unreadable" in r.stderr
    assert "awa@example.org\tAwa Diarra" in tamtam("--config", str(demo), "subscribers", "list", "newsletter").stdout


def test_check_reports_storage_that_cannot_be_opened(demo):
    demo.write_text(demo.read_text(encoding="utf-8").replace(
        'url = "sqlite:///var/demo.db"', 'url = "postgresql://nobody@127.0.0.1:1/nothing"'), encoding="utf-8")
    r = tamtam("--config", str(demo), "check")
    assert r.returncode == 2 and "storage.url: cannot open" in r.stderr and "Traceback" not in r.stderr
    r = tamtam("--config", str(demo), "once")
    assert r.returncode == 1 and "Storage error" in r.stderr and "Traceback" not in r.stderr


def test_an_unreadable_template_is_a_plain_error(demo):
    """The defect: check printed a traceback when a template could not be read."""
    folder = demo.parent.parent
    (folder / "tpl" / "telegram").mkdir(parents=True)
    (folder / "tpl" / "telegram" / "article.html").write_bytes(b"<b>\xe9t\xe9</b> saved as Latin-1\n")  # not UTF-8
    demo.write_text(demo.read_text(encoding="utf-8").replace("[storage]", '[templates]\nfolder = "tpl"\n\n[storage]'),
                    encoding="utf-8")
    r = tamtam("--config", str(demo), "check")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "telegram/article.html" in r.stderr and "cannot be read" in r.stderr


def test_a_storage_folder_that_cannot_be_created_is_a_plain_error(demo):
    """The defect: once printed a traceback when the SQLite folder could not be created."""
    folder = demo.parent.parent
    (folder / "blocked").write_text("a file where the folder should be", encoding="utf-8")
    demo.write_text(demo.read_text(encoding="utf-8").replace('url = "sqlite:///var/demo.db"',
                                                             'url = "sqlite:///blocked/demo.db"'), encoding="utf-8")
    r = tamtam("--config", str(demo), "once")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "storage.url: cannot create" in r.stderr and "blocked" in r.stderr


def test_the_database_and_outputs_are_private(demo):
    folder = demo.parent.parent
    assert tamtam("--config", str(demo), "subscribers", "add", "newsletter", "awa@example.org",
                  "--confirmed").returncode == 0
    assert tamtam("--config", str(demo), "once").returncode == 0
    db = folder / "var" / "demo.db"
    assert db.stat().st_mode & 0o077 == 0 and (folder / "var").stat().st_mode & 0o077 == 0
    outputs = list((folder / "var" / "out").rglob("*"))
    assert outputs and all(p.stat().st_mode & 0o077 == 0 for p in outputs)  # addresses are in there


def test_once_exits_non_zero_while_a_message_needs_an_admin(demo):
    """The defect: after the run that flagged them, failed and unknown rows no longer
    affected the exit code. Until the admin settles them, every once says so."""
    from bot.config import load_config
    from bot.store import NewMessage, Store

    store = Store(load_config(demo).database_url)
    with store.begin() as conn:
        store.outbox.enqueue(conn, [NewMessage("x:e9:p1", "x", "x", "x", {"text": "perdu"})],
                             now=datetime.now(timezone.utc))
    row = next(iter(store.outbox.list()))
    store.outbox.claim(row.id, datetime.now(timezone.utc))
    store.outbox.failed(row.id, datetime.now(timezone.utc), reason="X refused the post (403)")
    store.close()
    for _ in range(2):
        r = tamtam("--config", str(demo), "once")
        assert r.returncode == 1 and "1 failed message(s) need an admin" in r.stdout
    listed = tamtam("--config", str(demo), "outbox", "list", "--status", "failed", "--channel", "x")
    assert f"{row.id}\tfailed\tx" in listed.stdout
    assert tamtam("--config", str(demo), "outbox", "dismiss", "--channel", "x").returncode == 0
    assert tamtam("--config", str(demo), "once").returncode == 0


def test_outbox_retry_takes_a_channel_a_status_and_a_time_range(demo):
    from bot.config import load_config
    from bot.store import NewMessage, Status, Store

    store = Store(load_config(demo).database_url)
    now = datetime.now(timezone.utc)
    with store.begin() as conn:
        store.outbox.enqueue(conn, [NewMessage(f"{ch}:e9:p{i}", ch, "x", "x", {"text": f"n° {i}"})
                                    for ch in ("x", "telegram-fil") for i in range(3)], now=now)
    for row in store.outbox.list():
        store.outbox.claim(row.id, now)
        store.outbox.failed(row.id, now, reason="gave up after 8 attempts: cannot connect")
    store.close()
    nothing = tamtam("--config", str(demo), "outbox", "retry")
    assert nothing.returncode == 2 and "say which messages" in nothing.stderr
    r = tamtam("--config", str(demo), "outbox", "retry", "--channel", "x", "--status", "failed", "--since", "1h")
    assert r.returncode == 0 and "3 message(s) will be sent" in r.stdout
    store = Store(load_config(demo).database_url)
    by_status = {(r.channel_id, r.status) for r in store.outbox.list(None)}
    store.close()
    assert by_status == {("x", Status.PENDING), ("telegram-fil", Status.FAILED)}
    future = tamtam("--config", str(demo), "outbox", "retry", "--until", "2020-01-01")
    assert future.returncode == 1 and "0 message(s)" in future.stdout


def test_add_without_consent_is_pending_and_queues_a_confirmation(demo):
    from bot.config import load_config
    from bot.store import Store

    r = tamtam("--config", str(demo), "subscribers", "add", "newsletter", "Awa@Example.org", "--name", "Awa",
               "--frequency", "weekly", "--weekday", "4", "--topics", "Sport, Culture")
    assert r.returncode == 0 and "pending" in r.stdout and "confirmation email is queued" in r.stdout, r.stderr
    store = Store(load_config(demo).database_url)
    try:
        [row] = store.outbox.list(None)
        assert row.edition_id is None and "/newsletter/confirm/" in row.payload["body"]["text"]
        sub = store.subscribers.find("newsletter", "awa@example.org")
        assert (sub.status, sub.frequency, sub.weekly_day, sub.topics) == ("pending", "weekly", 4, ("Sport", "Culture"))
    finally:
        store.close()
    shown = tamtam("--config", str(demo), "subscribers", "show", "awa@example.org")
    assert shown.returncode == 0 and "pending" in shown.stdout and "topics: Sport, Culture" in shown.stdout
    assert "signed-up (admin)" in shown.stdout
    assert tamtam("--config", str(demo), "subscribers", "show", "nobody@example.org").returncode == 1


def test_add_without_consent_needs_the_web_table(demo):
    text = demo.read_text(encoding="utf-8")
    demo.write_text(text[:text.index("[web]")] + text[text.index("[[sources]]"):], encoding="utf-8")
    r = tamtam("--config", str(demo), "subscribers", "add", "newsletter", "awa@example.org")
    assert r.returncode == 2 and "[web]" in r.stderr and "--confirmed" in r.stderr
    assert "awa@example.org" not in tamtam("--config", str(demo), "subscribers", "list", "newsletter", "--all").stdout


def test_import_excel_csv_with_consent_then_export(demo, tmp_path):
    csv_file = tmp_path / "export-excel.csv"
    csv_file.write_bytes("E-mail;Prénom;Nom\r\nawa@example.org;Awa;Traoré\r\nfatou@example.org;Fatou;Diallo;Bâ\r\n"
                         "pas-une-adresse;X;Y\r\n".encode("cp1252"))
    r = tamtam("--config", str(demo), "subscribers", "import", "--consent", "newsletter", str(csv_file))
    assert r.returncode == 1 and "2 added" in r.stdout and "1 rejected" in r.stdout, r.stdout + r.stderr
    assert "Windows-1252" in r.stderr and "line 3" in r.stderr and "line 4" in r.stderr
    out = tmp_path / "out.csv"
    e = tamtam("--config", str(demo), "subscribers", "export", "newsletter", "--out", str(out))
    assert e.returncode == 0 and "2 subscriber(s) exported" in e.stderr
    exported = out.read_text(encoding="utf-8")
    assert "awa@example.org,Awa Traoré,active" in exported and "Fatou Diallo;Bâ" in exported
    assert out.stat().st_mode & 0o077 == 0
    assert "awa@example.org" in tamtam("--config", str(demo), "subscribers", "export", "newsletter").stdout


def test_import_without_consent_sends_each_a_confirmation(demo, tmp_path):
    csv_file = tmp_path / "a.csv"
    csv_file.write_text("email\nawa@example.org\nfatou@example.org\n", encoding="utf-8")
    r = tamtam("--config", str(demo), "subscribers", "import", "newsletter", str(csv_file))
    assert r.returncode == 0 and "0 added, 2 pending" in r.stdout, r.stdout + r.stderr
    once = tamtam("--config", str(demo), "once")
    assert once.returncode == 0, once.stdout + once.stderr
    emls = sorted((demo.parent.parent / "var" / "out" / "newsletter").glob("*.eml"))
    assert len(emls) == 2  # the two confirmations, and no digest: nobody is active yet
    msg = message_from_bytes(emls[0].read_bytes(), policy=policy.default)
    assert "Confirmez votre abonnement" in str(msg["Subject"])


def test_test_send_delivers_the_next_edition_and_records_nothing(demo):
    from bot.config import load_config
    from bot.store import Store

    r = tamtam("--config", str(demo), "test-send", "newsletter", "editeur@example.org")
    assert r.returncode == 0 and "sent to editeur@example.org" in r.stdout and "nothing recorded" in r.stdout, r.stderr
    [eml] = (demo.parent.parent / "var" / "out" / "newsletter").glob("*.eml")
    assert message_from_bytes(eml.read_bytes(), policy=policy.default)["To"] == "editeur@example.org"
    store = Store(load_config(demo).database_url)
    try:
        assert list(store.outbox.list(None)) == [] and store.subscribers.counts("newsletter") == {}
    finally:
        store.close()
    once = tamtam("--config", str(demo), "once")  # the articles are still waiting for the real edition
    assert "channel newsletter: edition" in once.stdout
