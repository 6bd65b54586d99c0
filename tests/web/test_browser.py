"""The reader's whole path in a real browser: Debian's chromium driven by selenium, against
``tamtam serve`` (HTTPS, so the emails announce one-click) and ``tamtam once``, with mail
arriving at a local aiosmtpd server.

sign-up at 375 px → confirmation email → confirm (a POST from its one-button page) → the
next digest, whose "view in browser", preferences and unsubscribe links all work → topics
changed in the browser → the next digest holds only those topics → a one-click POST exactly
as Gmail sends it → the next run sends that address nothing.

Every page is photographed at 375 and 1280 px into ``var/screenshots/`` (and must not
scroll sideways at 375 px). Without chromium this test is skipped with the command that
installs it, except in CI (``CI`` set), where it fails: CI must run it.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime
from html import unescape
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
import pytest

from tests.conftest import ROOT
from tests.fakes.smtp_server import SmtpServer, free_port, make_cert

SHOTS = ROOT / "var" / "screenshots"
DEADLINE = 60
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                "--ignore-certificate-errors",  # the test server's own certificate
                "--lang=fr-FR", "--window-size=1280,900"]

ARTICLES = {  # batch → (title, category)
    1: [("Budget 2027 : l’Assemblée adopte le texte", "Politique"), ("Les Aigles qualifiés pour la CAN", "Sport"),
        ("Le prix du coton remonte", "Économie"), ("Festival sur le Niger : la programmation", "Culture")],
    2: [("Réforme de la décentralisation : le débat s’ouvre", "Politique"),
        ("Stade du 26-Mars : la pelouse refaite", "Sport"), ("La BCEAO maintient son taux", "Économie")],
    3: [("Le Premier ministre à Kayes", "Politique"), ("Djoliba AC en finale de la coupe", "Sport")],
    4: [("Législatives : le calendrier publié", "Politique"), ("Marathon de Bamako : record battu", "Sport")],
}


def chromium() -> tuple[str, str]:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    why = ("Debian's chromium and chromium-driver are not installed; `apt-get install -y chromium chromium-driver` "
           "(make test installs them when apt is available)")
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


def write_feed(path: Path, batches: int) -> None:
    now = datetime.now(timezone.utc)
    items = []
    for batch in range(1, batches + 1):
        for i, (title, category) in enumerate(ARTICLES[batch]):
            slug = f"b{batch}-{i}"
            items.append(f"""<item><title>{escape(title)}</title><link>https://echo.example/{slug}/</link>
<guid isPermaLink="false">https://echo.example/?p={batch}{i:02d}</guid><category>{escape(category)}</category>
<pubDate>{format_datetime(now - timedelta(hours=10 - batch, minutes=i))}</pubDate>
<description>{escape(title)}. Les détails de cette information, par la rédaction de L’Écho du Sahel.</description>
</item>""")
    path.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>L’Écho du Sahel</title><link>https://echo.example</link>
<description>Le quotidien d’information de Bamako</description>{"".join(items)}</channel></rss>""", encoding="utf-8")


class Journey:
    """The project folder, the server, the mailbox and the browser of one reader's path."""

    def __init__(self, folder: Path, smtp: SmtpServer, driver, port: int):
        self.folder, self.smtp, self.driver, self.port = folder, smtp, driver, port
        self.public = f"https://127.0.0.1:{port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TAMTAM_")}

    def tamtam(self, *args: str) -> subprocess.CompletedProcess:
        r = subprocess.run([sys.executable, str(ROOT / "main.py"), "--config", str(self.folder / "config" / "tamtam.toml"),
                            *args], env=self.env, capture_output=True, text=True, timeout=120)
        assert "Traceback" not in r.stderr, r.stderr
        return r

    def once(self) -> str:
        r = self.tamtam("once")
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    def mail_to(self, address: str) -> list[EmailMessage]:
        return [message_from_bytes(m.raw, policy=policy.default) for m in self.smtp.received
                if address in [r.lower() for r in m.rcpt_tos]]

    # -- the browser ---------------------------------------------------------------------
    def width(self, width: int) -> None:
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 600})

    def shoot(self, name: str) -> None:
        """The page at 375 and 1280 px, whole; at 375 px nothing may stick out sideways."""
        for width in (375, 1280):
            self.width(width)
            overflow = self.driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px"
            height = self.driver.execute_script("return document.documentElement.scrollHeight")
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                        {"width": width, "height": height, "deviceScaleFactor": 1,
                                         "mobile": width < 600})
            png = self.driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
            (SHOTS / f"{name}-{width}.png").write_bytes(base64.b64decode(png["data"]))
        self.width(375)

    def open(self, url: str) -> None:
        self.driver.get(url)
        assert self.driver.execute_script("return document.readyState") == "complete"

    def submit(self) -> None:
        """Press the form's button and wait for the page it leads to."""
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        old = self.driver.find_element("tag name", "html")
        self.driver.find_element("css selector", "button[type=submit]").click()
        WebDriverWait(self.driver, DEADLINE).until(expected_conditions.staleness_of(old))
        WebDriverWait(self.driver, DEADLINE).until(
            lambda d: d.execute_script("return document.readyState") == "complete")

    def text(self) -> str:
        return self.driver.find_element("tag name", "body").text

    def labelled(self) -> None:
        """Every visible field has a label (or sits in a labelled group)."""
        unlabelled = self.driver.execute_script("""
            return [...document.querySelectorAll('input:not([type=hidden]), select')]
              .filter(e => e.offsetParent !== null && e.labels.length === 0).map(e => e.name);""")
        assert unlabelled == [], unlabelled


def links_of(msg: EmailMessage) -> dict[str, str]:
    html = msg.get_body(("html",)).get_content()
    unsubscribe = re.search(r"<(https://[^>]+/unsubscribe/[^>]+)>", str(msg["List-Unsubscribe"])).group(1)
    return {
        "archive": re.search(r'href="(https://[^"]+/lettre/archive/\d+)"', html).group(1),
        "preferences": re.search(r'href="(https://[^"]+/lettre/preferences/[^"]+)"', html).group(1),
        "unsubscribe": unsubscribe,
    }


def titles_in(msg: EmailMessage) -> set[str]:
    """The articles a digest holds (French typography puts no-break spaces in titles)."""
    text = unescape(msg.get_body(("plain",)).get_content()).replace("\u00a0", " ").replace("\u202f", " ")
    return {title for batch in ARTICLES.values() for title, _ in batch if title in text}


CONFIG = """
[site]
name = "L’Écho du Sahel"
base_url = "https://echo.example"

[storage]
url = "sqlite:///var/tamtam.db"

[web]
public_url = "https://127.0.0.1:{port}"
port = {port}
secret_file = "var/web-secret"
tls_cert = "{cert}"
tls_key = "{key}"
signup_limit = 50

[[sources]]
id = "echo"
url = "feed.xml"

[[channels]]
id = "lettre"
type = "email"
title = "La lettre de l’Écho"
schedule = {{ cron = "0 7 * * *" }}
lookback = "3650d"
transport = {{ type = "smtp", host = "127.0.0.1", port = {smtp}, security = "none", from = "L’Écho du Sahel <lettre@echo.example>" }}
"""


def start_server(folder: Path, smtp: SmtpServer, cert, env: dict) -> tuple[subprocess.Popen, int]:
    """``tamtam serve`` on a free port; another port if something took this one meanwhile
    (other test runs share the machine)."""
    for _ in range(3):
        port = free_port()
        (folder / "config" / "tamtam.toml").write_text(
            CONFIG.format(port=port, cert=cert.cert, key=cert.key, smtp=smtp.port), encoding="utf-8")
        server = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--config",
                                   str(folder / "config" / "tamtam.toml"), "serve"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + DEADLINE
        while server.poll() is None and time.monotonic() < deadline:
            try:
                httpx.get(f"https://127.0.0.1:{port}/healthz", verify=False, timeout=5)
                return server, port
            except httpx.TransportError:
                time.sleep(0.1)
        server.kill()
        err = server.communicate(timeout=DEADLINE)[1]
        if "cannot listen" not in err:
            pytest.fail(f"tamtam serve did not start: {err}")
    pytest.fail("no free port for tamtam serve after 3 tries")


@pytest.fixture
def journey(tmp_path):
    browser, driver_path = chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    SHOTS.mkdir(parents=True, exist_ok=True)
    cert = make_cert(tmp_path)
    (tmp_path / "config").mkdir()
    write_feed(tmp_path / "feed.xml", 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAMTAM_")}
    with SmtpServer() as smtp:
        server, port = start_server(tmp_path, smtp, cert, env)
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for flag in CHROME_FLAGS + [f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
            options.add_argument(flag)
        options.add_experimental_option("prefs", {"intl.accept_languages": "fr-FR,fr"})
        try:
            driver = webdriver.Chrome(options=options, service=Service(driver_path))
            try:
                driver.set_page_load_timeout(DEADLINE)
                yield Journey(tmp_path, smtp, driver, port)
            finally:
                driver.quit()
        finally:
            server.send_signal(signal.SIGTERM)
            server.communicate(timeout=DEADLINE)


def test_a_reader_s_whole_path_in_a_real_browser(journey):
    j = journey
    # Another reader, subscribed by the admin: the runs below do send, only not to Awa at the end.
    assert j.tamtam("subscribers", "add", "lettre", "moussa@example.org", "--confirmed").returncode == 0
    j.once()  # batch 1 goes to Moussa; its categories become the topics of the form

    # -- sign-up at 375 px ----------------------------------------------------------------
    j.width(375)
    j.open(f"{j.public}/lettre/subscribe")
    assert "S’abonner à La lettre de l’Écho" in j.text()
    j.labelled()
    j.shoot("1-subscribe")
    j.driver.find_element("id", "email").send_keys("awa@example.org")
    j.driver.find_element("id", "name").send_keys("Awa")
    j.submit()
    assert "Vérifiez votre boîte de réception" in j.text()
    j.shoot("2-check-your-inbox")

    # -- the confirmation email, its link, the one-button page ----------------------------
    j.once()
    [confirmation] = j.mail_to("awa@example.org")
    assert "Confirmez votre abonnement" in str(confirmation["Subject"])
    confirm = re.search(r"https://\S+/lettre/confirm/\S+", confirmation.get_body(("plain",)).get_content()).group(0)
    j.open(confirm)
    assert "Je confirme mon abonnement" in j.text()
    assert "pending" in j.tamtam("subscribers", "show", "awa@example.org").stdout  # opening confirmed nothing
    j.shoot("3-confirm")
    j.submit()
    assert "Abonnement confirmé" in j.text()
    j.shoot("4-confirmed")
    assert "active" in j.tamtam("subscribers", "show", "awa@example.org").stdout

    # -- the next digest, and every link in it --------------------------------------------
    write_feed(j.folder / "feed.xml", 2)
    j.once()
    digest = j.mail_to("awa@example.org")[-1]
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert titles_in(digest) == {t for t, _ in ARTICLES[2]}  # every topic
    links = links_of(digest)
    (j.folder / "digest.html").write_text(digest.get_body(("html",)).get_content(), encoding="utf-8")
    j.open((j.folder / "digest.html").as_uri())
    j.shoot("5-digest-email")
    j.open(links["archive"])  # view in browser
    assert "La BCEAO maintient son taux" in j.text() and "Bonjour Awa" not in j.text()
    j.shoot("6-view-in-browser")
    j.open(f"{j.public}/lettre/archive")
    j.shoot("7-archive")
    j.open(links["unsubscribe"])  # the page asks; it does not unsubscribe on a GET
    assert "Me désabonner" in j.text() and "Modifier mes préférences" in j.text()
    j.shoot("8-unsubscribe")
    assert "active" in j.tamtam("subscribers", "show", "awa@example.org").stdout

    # -- preferences: only Sport from now on ----------------------------------------------
    j.open(links["preferences"])
    assert "Vos préférences" in j.text()
    j.labelled()
    j.shoot("9-preferences")
    for box in j.driver.find_elements("css selector", "input[name=topics]"):
        if (box.get_attribute("value") == "Sport") != box.is_selected():
            box.click()
    j.submit()
    assert "Vos préférences sont enregistrées" in j.text()
    j.shoot("10-preferences-saved")
    assert "topics: Sport" in j.tamtam("subscribers", "show", "awa@example.org").stdout

    write_feed(j.folder / "feed.xml", 3)
    j.once()
    sport_only = j.mail_to("awa@example.org")[-1]
    assert sport_only is not digest
    assert titles_in(j.mail_to("moussa@example.org")[-1]) == {t for t, _ in ARTICLES[3]}
    assert titles_in(sport_only) == {t for t, c in ARTICLES[3] if c == "Sport"}, (
        "the digest after choosing Sport holds other topics: topic filtering on the delivery side")

    # -- one click, exactly as Gmail sends it; then nothing more ---------------------------
    one_click = links_of(sport_only)["unsubscribe"]
    r = httpx.post(one_click, content=b"List-Unsubscribe=One-Click", verify=False,
                   headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "Google-Unsubscribe"})
    assert r.status_code == 200
    shown = j.tamtam("subscribers", "show", "awa@example.org").stdout
    assert "unsubscribed" in shown and "one-click" in shown
    j.open(links["unsubscribe"])
    assert "Vous êtes désabonné(e)" in j.text()
    j.shoot("11-unsubscribed")

    before = len(j.mail_to("awa@example.org"))
    moussa = len(j.mail_to("moussa@example.org"))
    write_feed(j.folder / "feed.xml", 4)
    j.once()
    assert len(j.mail_to("moussa@example.org")) == moussa + 1  # the run did send …
    assert len(j.mail_to("awa@example.org")) == before  # … but not to Awa
