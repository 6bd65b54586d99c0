"""Subscriber files as admins really have them: Excel's French CSV in Windows-1252 with
``E-mail;Prénom;Nom``, a row with a separator too many, consent or not; the export a
spreadsheet opens safely; everything known about one address."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest

from bot.store import Store
from bot.store.subscribers import Frequency, SubscriberStatus
from bot.subscribers import CsvImportError, describe, export_csv, import_csv

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 't.db'}")
    yield s
    s.close()


def test_excel_french_csv_in_windows_1252_with_first_and_last_names(store, tmp_path):
    path = tmp_path / "abonnés.csv"
    path.write_bytes("E-mail;Prénom;Nom\r\nawa@example.org;Awa;Traoré\r\nseydou@example.org;Séydou;Kéïta\r\n"
                     "mariam@example.org;;Cissé\r\n".encode("cp1252"))
    result = import_csv(store, "news", path, NOW)
    assert (result.added, result.rejected, result.encoding) == (3, [], "cp1252")
    names = {s.email: s.name for s in store.subscribers.iter("news")}
    assert names == {"awa@example.org": "Awa Traoré", "seydou@example.org": "Séydou Kéïta",
                     "mariam@example.org": "Cissé"}


def test_a_row_with_a_separator_too_many_is_kept_and_noted(store, tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("email;name\nawa@example.org;Awa;Diarra\nfatou@example.org;Fatou;\nbad;X;Y;Z\n"
                    "moussa@example.org;Moussa\n", encoding="utf-8")
    result = import_csv(store, "news", path, NOW)
    assert result.added == 3 and len(result.rejected) == 1 and "line 4" in result.rejected[0]
    assert len(result.notes) == 1 and "line 2" in result.notes[0] and "'Awa;Diarra'" in result.notes[0]
    assert store.subscribers.find("news", "awa@example.org").name == "Awa;Diarra"
    assert store.subscribers.find("news", "fatou@example.org").name == "Fatou"  # an empty extra: nothing to say


def test_without_consent_every_address_waits_for_its_own_confirmation(store, tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("email\nawa@example.org\nfatou@example.org\n", encoding="utf-8")
    store.subscribers.add("news", "fatou@example.org", None, now=NOW)  # already active
    store.subscribers.add("news", "gone@example.org", None, now=NOW)
    store.subscribers.remove("news", "gone@example.org", now=NOW)
    path.write_text("email\nawa@example.org\nfatou@example.org\ngone@example.org\n", encoding="utf-8")
    asked = []
    result = import_csv(store, "news", path, NOW, consent=False, on_pending=asked.append)
    assert (result.added, result.pending, result.existing, len(result.rejected)) == (0, 1, 1, 1)
    assert [s.email for s in asked] == ["awa@example.org"]
    assert store.subscribers.find("news", "awa@example.org").status == SubscriberStatus.PENDING
    assert "only a new sign-up" in result.rejected[0]  # the unsubscribed address stays so


def test_a_file_without_an_email_column_is_refused_whole(store, tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("nom;ville\nAwa;Ségou\n", encoding="utf-8")
    with pytest.raises(CsvImportError, match="no 'email' column"):
        import_csv(store, "news", path, NOW)


def test_the_export_is_every_reader_and_no_cell_is_a_formula(store):
    store.subscribers.add("news", "awa@example.org", "=HYPERLINK(\"https://evil.example\")", now=NOW,
                          topics=["Sport", "Culture"])
    store.subscribers.add("news", "fatou@example.org", None, now=NOW, confirmed=False)
    out = io.StringIO()
    assert export_csv(store, "news", out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["email"] for r in rows] == ["awa@example.org", "fatou@example.org"]
    assert rows[0]["name"].startswith("'=") and rows[0]["topics"] == "Sport|Culture"
    assert rows[1]["status"] == "pending"
    active = io.StringIO()
    assert export_csv(store, "news", active, everyone=False) == 1


def test_describe_tells_status_preferences_and_history(store):
    sub = store.subscribers.add("news", "awa@example.org", "Awa", now=NOW, confirmed=False, frequency=Frequency.WEEKLY,
                                weekly_day=2).subscriber
    store.subscribers.confirm(sub.id, now=NOW)
    store.subscribers.bounce("awa@example.org", now=NOW, hard=True, reason="550 5.1.1 user unknown")
    lines = "\n".join(describe(store, ["news", "other"], "AWA@example.org"))
    assert "awa@example.org on news: bounced" in lines and "frequency: weekly (Wednesday)" in lines
    assert "signed-up" in lines and "confirmed" in lines and "550 5.1.1 user unknown" in lines
    assert describe(store, ["news"], "nobody@example.org") == []


def test_the_quick_address_check_says_what_email_validator_says() -> None:
    """valid_address judges a plain local part itself and each domain once (an import of
    100,000 rows in seconds); on every address it must agree with email-validator."""
    import random

    from email_validator import EmailNotValidError, validate_email

    from bot.subscribers import valid_address

    def reference(address: str) -> str:
        try:
            return validate_email(address.strip(), check_deliverability=False).normalized
        except EmailNotValidError:
            return "refused"

    def ours(address: str) -> str:
        try:
            return valid_address(address)
        except ValueError:
            return "refused"

    cases = ["a@example.org", "Awa.Traore@Example.ORG", "x..y@example.org", ".x@example.org", "x.@example.org",
             "a+b@ex.ml", "tr@ex-.com", "a@-ex.com", "a@ex..com", "a@[127.0.0.1]", "josé@exemple.ml",
             "用户@例子.广告", "a@localhost", "a@b.c", "a@пример.рф", '"quoted"@example.org', "a@example.invalid",
             "a@example.local", "a" * 64 + "@example.org", "a" * 65 + "@example.org", "a@" + "b" * 250 + ".org",
             "a@example.org.", " A@EXAMPLE.ORG ", "a@@example.org", "a b@example.org", "a@exa mple.org"]
    rng = random.Random(7)
    alphabet = "ab.+-_!#é@ 1"
    cases += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) + "@" +
              rng.choice(["example.org", "ex-ample.ml", "EXAMPLE.COM", "x.y", "exemple.ml.", "-a.org"])
              for _ in range(3000)]
    assert [(c, ours(c)) for c in cases if ours(c) != reference(c)] == []
