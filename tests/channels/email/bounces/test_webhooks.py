"""The bounce webhooks (bot.channels.email.bounces.webhooks, .sns) through a Starlette app
that mounts ``EmailKind.routes()`` under /hooks/email, called with httpx.ASGITransport.

SNS messages are signed here as AWS documents it, with a key whose certificate a local
HTTPS server (tests/fakes/https_server.py, certificate from a test CA) serves; the
config allows that host. Mailgun's are signed with the webhook key; Postmark's carry
basic auth."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any, Iterator

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from starlette.applications import Starlette
from starlette.routing import Mount

from bot.channels.email.bounces.sns import canonical, host_allowed
from bot.channels.registry import Channels
from bot.errors import ConfigError
from tests.channels.email.bounces.conftest import NOW, FakeServices, make_config, sample
from tests.fakes.https_server import HttpsServer
from tests.fakes.tls import Issued, TestCA

TOPIC = "arn:aws:sns:eu-west-3:123456789012:tamtam-bounces"
CERT_PATH = "/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem"
MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"


# -- the rig ----------------------------------------------------------------------------------

class Sns:
    """Signs SNS messages with a key whose certificate the local HTTPS server serves."""

    def __init__(self, server: HttpsServer, signer: Issued):
        self.server = server
        self.signer = signer
        self.cert_url = server.serve(CERT_PATH, signer.cert_pem)

    def sign(self, message: dict[str, Any], version: str = "1", key: Any = None) -> dict[str, Any]:
        # The string to sign, written out from AWS's documentation rather than taken from
        # the code under test: name, newline, value, newline, for the type's fields in order.
        names = (["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
                 if message["Type"] != "Notification" else
                 ["Message", "MessageId", *(["Subject"] if "Subject" in message else []), "Timestamp", "TopicArn",
                  "Type"])
        text = "".join(f"{n}\n{message[n]}\n" for n in names).encode("utf-8")
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = (key or self.signer.key).sign(text, padding.PKCS1v15(), digest)
        return {**message, "SignatureVersion": version, "Signature": base64.b64encode(signature).decode(),
                "SigningCertURL": message.get("SigningCertURL", self.cert_url)}

    def notification(self, notification: dict[str, Any] | str, *, at: datetime = NOW, message_id: str = "m-1",
                     **over: Any) -> dict[str, Any]:
        body = notification if isinstance(notification, str) else json.dumps(notification, ensure_ascii=False)
        return {"Type": "Notification", "MessageId": message_id, "TopicArn": TOPIC, "Message": body,
                "Timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.") + "123Z",
                "UnsubscribeURL": self.server.url("/?Action=Unsubscribe"), **over}


@pytest.fixture
def ca(tmp_path) -> TestCA:
    return TestCA(tmp_path)


@pytest.fixture
def https(ca) -> Iterator[HttpsServer]:
    server = HttpsServer(ca.server("cert-host").server_context()).start()
    yield server
    server.stop()


@pytest.fixture
def sns(https, ca) -> Sns:
    return Sns(https, ca.signer(around=NOW))


def ses_table(https: HttpsServer, ca: TestCA, **kw: Any) -> dict[str, Any]:
    return {"ses": {"cert_hosts": [f"127.0.0.1:{https.port}"], "topics": [TOPIC], "ca_file": str(ca.ca_file), **kw}}


@pytest.fixture
def secrets(monkeypatch):
    monkeypatch.setenv("MAILGUN_KEY", MAILGUN_KEY)
    monkeypatch.setenv("POSTMARK_USER", "postmark")
    monkeypatch.setenv("POSTMARK_PASSWORD", "s3cret-Tamtam")


@pytest.fixture
def app(store, tmp_path, https, ca, secrets):
    """A client of the web app with every service configured on the "news" list."""
    def make(bounces: dict[str, Any] | None = None, other: dict[str, Any] | None = None) -> httpx.AsyncClient:
        table = bounces if bounces is not None else {
            **ses_table(https, ca), "mailgun": {"signing_key_env": "MAILGUN_KEY"},
            "postmark": {"username_env": "POSTMARK_USER", "password_env": "POSTMARK_PASSWORD"}}
        services = FakeServices(store, make_config(tmp_path, table, other=other))
        kind = Channels(services.config).kind(services.config.channels[0])
        web = Starlette(routes=[Mount("/hooks/email", routes=kind.routes(services))])
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="https://lettre.echo-sahel.example")
    return make


def subscribe(store, *emails: str, lists: tuple[str, ...] = ("news",)) -> None:
    for channel_id in lists:
        for email in emails:
            store.subscribers.add(channel_id, email, None, now=NOW)


def status(store, email: str, channel_id: str = "news") -> str:
    return store.subscribers.find(channel_id, email).status


def events(store, email: str) -> list:
    return store.subscribers.events(store.subscribers.find("news", email).id)


def load(name: str) -> dict[str, Any]:
    return json.loads(sample(name))


# -- Amazon SES via SNS ----------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["1", "2"])
async def test_ses_permanent_bounce_signed_by_sns_suppresses_the_address(app, store, sns, version):
    subscribe(store, "parti@bamako-mail.example")
    async with app() as client:
        r = await client.post("/hooks/email/ses", content=json.dumps(sns.sign(sns.notification(
            load("ses-bounce-permanent.json")), version)), headers={"x-amz-sns-message-type": "Notification",
                                                                     "content-type": "text/plain; charset=UTF-8"})
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "hard": 1, "suppressed": 1}
    assert status(store, "parti@bamako-mail.example") == "bounced"
    last = events(store, "parti@bamako-mail.example")[-1]
    assert (last.kind, last.source) == ("bounce-hard", "bounce")
    assert last.detail.startswith("550 5.1.1 <parti@bamako-mail.example>: Recipient address rejected: User unknown")


async def test_ses_the_same_notification_twice_counts_one_soft_bounce(app, store, sns):
    subscribe(store, "awa.diallo@orange-fr.example")
    message = sns.sign(sns.notification(load("ses-bounce-transient-mailboxfull.json")))
    async with app() as client:
        first = await client.post("/hooks/email/ses/news", content=json.dumps(message))
        second = await client.post("/hooks/email/ses/news", content=json.dumps(message))
    assert (first.json(), second.json()) == ({"ok": True, "soft": 1}, {"ok": True, "duplicate": 1})
    assert [e.kind for e in events(store, "awa.diallo@orange-fr.example")].count("bounce-soft") == 1
    assert sns.server.requests.count(CERT_PATH) == 1  # the certificate is fetched once, then kept


async def test_ses_complaint_unsubscribes_the_list_its_list_id_names(app, store, sns):
    subscribe(store, "salif.keita@mail-provider.example", lists=("news", "alerts"))
    async with app() as client:
        r = await client.post("/hooks/email/ses", content=json.dumps(sns.sign(sns.notification(
            load("ses-complaint.json")))))
    assert r.json() == {"ok": True, "complaint": 1, "suppressed": 1}
    assert status(store, "salif.keita@mail-provider.example", "alerts") == "complained"
    assert status(store, "salif.keita@mail-provider.example", "news") == "active"


async def test_ses_forged_or_tampered_messages_are_refused(app, store, sns, ca):
    subscribe(store, "parti@bamako-mail.example")
    good = sns.sign(sns.notification(load("ses-bounce-permanent.json")))
    tampered = {**good, "Message": good["Message"].replace("Parti@Bamako-Mail", "Autre@Bamako-Mail")}
    other_key = sns.sign(sns.notification(load("ses-bounce-permanent.json")), key=ca.signer("other").key)
    not_base64 = {**good, "Signature": "pas du base64 !"}
    v1_as_v2 = {**good, "SignatureVersion": "2"}
    unknown_version = {**good, "SignatureVersion": "3"}
    async with app() as client:
        for message in (tampered, other_key, not_base64, v1_as_v2, unknown_version):
            r = await client.post("/hooks/email/ses", content=json.dumps(message))
            assert r.status_code == 403, (r.status_code, r.text)
    assert status(store, "parti@bamako-mail.example") == "active"
    assert events(store, "parti@bamako-mail.example")[-1].kind == "subscribed"


@pytest.mark.parametrize("url", [
    "https://sns.eu-west-3.amazonaws.com.evil.example/cert.pem",  # an allowed name as a prefix
    "http://127.0.0.1:{port}" + CERT_PATH,  # not https
    "https://127.0.0.1:{port}/not-a-certificate.txt",  # not a .pem
    "https://user@127.0.0.1:{port}" + CERT_PATH,
    "https://127.0.0.2:{port}" + CERT_PATH,  # another host
])
async def test_ses_a_certificate_from_anywhere_else_is_never_fetched(app, sns, https, url):
    message = sns.sign(sns.notification(load("ses-bounce-permanent.json"), SigningCertURL=url.format(port=https.port)))
    async with app() as client:
        r = await client.post("/hooks/email/ses", content=json.dumps(message))
    assert r.status_code == 403 and "SigningCertURL" in r.text
    assert https.requests == []


async def test_ses_a_foreign_topic_is_refused_before_any_fetch(app, sns, https):
    message = sns.sign(sns.notification(load("ses-bounce-permanent.json"),
                                        TopicArn="arn:aws:sns:eu-west-3:999999999999:someone-else"))
    async with app() as client:
        r = await client.post("/hooks/email/ses", content=json.dumps(message))
    assert r.status_code == 403 and "topic" in r.text and https.requests == []


async def test_ses_a_replayed_old_message_is_refused(app, store, sns):
    subscribe(store, "parti@bamako-mail.example")
    old = sns.sign(sns.notification(load("ses-bounce-permanent.json"), at=NOW - timedelta(hours=2)))
    future = sns.sign(sns.notification(load("ses-bounce-permanent.json"), at=NOW + timedelta(hours=1)))
    async with app() as client:
        for message in (old, future):
            r = await client.post("/hooks/email/ses", content=json.dumps(message))
            assert r.status_code == 403 and "SNS message" in r.text
    assert status(store, "parti@bamako-mail.example") == "active"


async def test_ses_an_expired_signing_certificate_is_refused(app, ca, https):
    expired = Sns(https, ca.signer("expired", around=NOW - timedelta(days=30), not_after=NOW - timedelta(days=1)))
    async with app() as client:
        r = await client.post("/hooks/email/ses", content=json.dumps(expired.sign(
            expired.notification(load("ses-bounce-permanent.json")))))
    assert r.status_code == 403 and "not valid now" in r.text


async def test_ses_subscription_is_confirmed_by_visiting_the_subscribe_url(app, sns, https):
    subscribe_path = "/?Action=ConfirmSubscription&TopicArn=" + TOPIC + "&Token=2336412f37"
    https.serve("/", b"<ConfirmSubscriptionResponse/>")
    confirmation = sns.sign({"Type": "SubscriptionConfirmation", "MessageId": "c-1", "Token": "2336412f37",
                             "TopicArn": TOPIC, "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
                             "SubscribeURL": https.url(subscribe_path),
                             "Timestamp": NOW.strftime("%Y-%m-%dT%H:%M:%S.000Z")}, "2")
    async with app() as client:
        r = await client.post("/hooks/email/ses", content=json.dumps(confirmation),
                              headers={"x-amz-sns-message-type": "SubscriptionConfirmation"})
    assert r.status_code == 200, r.text
    assert https.requests == [CERT_PATH, subscribe_path]


async def test_ses_a_subscribe_url_elsewhere_is_not_visited(app, sns, https):
    confirmation = sns.sign({"Type": "SubscriptionConfirmation", "MessageId": "c-2", "Token": "t",
                             "TopicArn": TOPIC, "Message": "confirm", "SubscribeURL": "https://127.0.0.3/confirm",
                             "Timestamp": NOW.strftime("%Y-%m-%dT%H:%M:%S.000Z")})
    async with app() as client:
        r = await client.post("/hooks/email/ses", content=json.dumps(confirmation))
    assert r.status_code == 403 and "SubscribeURL" in r.text
    assert https.requests == [CERT_PATH]  # the signature was checked; nothing else was fetched


async def test_ses_malformed_messages_are_400(app, sns):
    async with app() as client:
        for body in (b"{not json", b"[1, 2]", json.dumps({"Type": "Surprise"}).encode(),
                     json.dumps(load("ses-bounce-permanent.json")).encode(),  # raw delivery: no SNS envelope
                     json.dumps(sns.sign(sns.notification("pas du JSON"))).encode(),
                     json.dumps(sns.sign(sns.notification({"notificationType": "Bounce", "bounce": {
                         "bounceType": "Permanent"}}))).encode()):
            r = await client.post("/hooks/email/ses", content=body)
            assert r.status_code == 400, (body[:60], r.status_code, r.text)


async def test_ses_certificate_host_down_is_503_so_sns_retries(app, sns, https):
    https.answers.pop(CERT_PATH)
    async with app() as client:
        r = await client.post("/hooks/email/ses", content=json.dumps(sns.sign(sns.notification(
            load("ses-bounce-permanent.json")))))
    assert r.status_code == 503 and "404" in r.text


def test_canonical_string_follows_the_documented_field_order():
    base = {"Type": "Notification", "MessageId": "id", "TopicArn": "arn", "Message": "m\nsuite",
            "Timestamp": "2024-12-05T09:00:00.000Z", "UnsubscribeURL": "https://x", "Signature": "s"}
    assert canonical(base) == (b"Message\nm\nsuite\nMessageId\nid\nTimestamp\n2024-12-05T09:00:00.000Z\n"
                               b"TopicArn\narn\nType\nNotification\n")
    assert canonical({**base, "Subject": "Objet"}).startswith(b"Message\nm\nsuite\nMessageId\nid\nSubject\nObjet\n")


def test_certificate_host_patterns():
    patterns = ("sns.*.amazonaws.com", "127.0.0.1:8443")
    assert host_allowed("https://sns.eu-west-3.amazonaws.com/SimpleNotificationService-1.pem", patterns) == (True, False)
    assert host_allowed("https://sns.eu-west-3.amazonaws.com:443/x.pem", patterns) == (True, False)
    assert host_allowed("https://127.0.0.1:8443/x.pem", patterns) == (True, True)
    for url in ("https://sns.amazonaws.com/x.pem", "https://sns.a.b.amazonaws.com/x.pem",
                "https://sns.eu-west-3.amazonaws.com:8443/x.pem", "https://127.0.0.1/x.pem",
                "https://sns.eu_west.amazonaws.com/x.pem", "ftp://sns.eu-west-3.amazonaws.com/x.pem", "https://[::1/"):
        assert host_allowed(url, patterns)[0] is False, url


# -- Mailgun ----------------------------------------------------------------------------------------

def mailgun_body(name: str, *, at: datetime = NOW, token: str = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0",
                 key: str = MAILGUN_KEY) -> bytes:
    payload = load(name)
    timestamp = str(int(at.timestamp()))
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    payload["signature"] = {"timestamp": timestamp, "token": token, "signature": signature}
    return json.dumps(payload).encode()


async def mailgun_post(client: httpx.AsyncClient, body: bytes, content_type: str = "application/json") -> httpx.Response:
    return await client.post("/hooks/email/mailgun", content=body, headers={"content-type": content_type})


async def test_mailgun_permanent_failure_suppresses_and_a_replay_counts_nothing(app, store):
    subscribe(store, "moussa@kayes-net.example")
    body = mailgun_body("mailgun-failed-permanent.json")
    async with app() as client:
        first, again = await mailgun_post(client, body), await mailgun_post(client, body)
    assert (first.json(), again.json()) == ({"ok": True, "hard": 1, "suppressed": 1}, {"ok": True, "duplicate": 1})
    assert status(store, "moussa@kayes-net.example") == "bounced"
    assert [e.kind for e in events(store, "moussa@kayes-net.example")] == ["subscribed", "bounce-hard"]


async def test_mailgun_temporary_failures_wait_and_giving_up_counts_one_soft_bounce(app, store):
    subscribe(store, "awa.diallo@orange-fr.example")
    async with app() as client:
        temporary = await mailgun_post(client, mailgun_body("mailgun-failed-temporary.json"))
        old = await mailgun_post(client, mailgun_body("mailgun-failed-old.json", token="t" * 50))
        again = await mailgun_post(client, mailgun_body("mailgun-failed-old.json", token="u" * 50))
    assert [r.json() for r in (temporary, old, again)] == [{"ok": True, "ignored": 1}, {"ok": True, "soft": 1},
                                                           {"ok": True, "duplicate": 1}]


async def test_mailgun_complaint(app, store):
    subscribe(store, "salif.keita@mail-provider.example", lists=("news", "alerts"))
    async with app() as client:
        r = await mailgun_post(client, mailgun_body("mailgun-complained.json"))
    assert r.json() == {"ok": True, "complaint": 1, "suppressed": 2}
    assert status(store, "salif.keita@mail-provider.example", "alerts") == "complained"


async def test_mailgun_bad_missing_or_stale_signatures_are_refused(app, store):
    subscribe(store, "moussa@kayes-net.example")
    unsigned = load("mailgun-failed-permanent.json")
    del unsigned["signature"]
    bodies = [mailgun_body("mailgun-failed-permanent.json", key="key-not-the-right-one"),
              mailgun_body("mailgun-failed-permanent.json", at=NOW - timedelta(minutes=6)),
              mailgun_body("mailgun-failed-permanent.json", at=NOW + timedelta(minutes=6)),
              json.dumps(unsigned).encode()]
    signed = json.loads(mailgun_body("mailgun-failed-permanent.json"))
    signed["event-data"]["recipient"] = "quelqu.un@autre.example"  # the signature does not cover the event…
    signed["signature"]["token"] = "x" * 50  # …but it does cover the token
    bodies.append(json.dumps(signed).encode())
    async with app() as client:
        for body in bodies:
            r = await mailgun_post(client, body)
            assert r.status_code == 403, r.text
    assert status(store, "moussa@kayes-net.example") == "active"


async def test_mailgun_malformed_bodies_are_400(app):
    no_recipient = json.loads(mailgun_body("mailgun-failed-permanent.json"))
    del no_recipient["event-data"]["recipient"]
    no_event = json.loads(mailgun_body("mailgun-failed-permanent.json"))
    del no_event["event-data"]
    async with app() as client:
        assert (await mailgun_post(client, b"{oops")).status_code == 400
        assert (await mailgun_post(client, json.dumps(no_recipient).encode())).status_code == 400
        assert (await mailgun_post(client, json.dumps(no_event).encode())).status_code == 400
        legacy = await mailgun_post(client, b"event=bounced&recipient=a%40example.org",
                                    "application/x-www-form-urlencoded")
        assert legacy.status_code == 400 and "JSON" in legacy.text


# -- Postmark -----------------------------------------------------------------------------------------

def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


GOOD = basic("postmark", "s3cret-Tamtam")


async def test_postmark_without_or_with_wrong_credentials_is_401(app, store):
    subscribe(store, "oumar@timbuktu-mail.example")
    body = sample("postmark-bounce-hard.json")
    async with app() as client:
        for headers in ({}, basic("postmark", "wrong"), basic("someone", "s3cret-Tamtam"),
                        {"authorization": "Bearer s3cret-Tamtam"}, {"authorization": "Basic !!!"}):
            r = await client.post("/hooks/email/postmark", content=body, headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic"), headers
    assert status(store, "oumar@timbuktu-mail.example") == "active"


async def test_postmark_bounces_and_complaints(app, store):
    subscribe(store, "oumar@timbuktu-mail.example", "awa.diallo@orange-fr.example", "salif.keita@mail-provider.example")
    async with app() as client:
        hard = await client.post("/hooks/email/postmark", content=sample("postmark-bounce-hard.json"), headers=GOOD)
        soft = [await client.post("/hooks/email/postmark", content=sample("postmark-bounce-soft.json"), headers=GOOD)
                for _ in range(2)]
        spam = await client.post("/hooks/email/postmark", content=sample("postmark-spam-complaint.json"), headers=GOOD)
        delivery = await client.post("/hooks/email/postmark", headers=GOOD,
                                     content=json.dumps({"RecordType": "Delivery", "Recipient": "a@example.org"}))
    assert hard.json() == {"ok": True, "hard": 1, "suppressed": 1}
    assert [r.json() for r in soft] == [{"ok": True, "soft": 1}, {"ok": True, "duplicate": 1}]
    assert spam.json() == {"ok": True, "complaint": 1, "suppressed": 1}
    assert delivery.json() == {"ok": True}
    assert status(store, "Oumar@Timbuktu-Mail.example") == "bounced"
    assert status(store, "awa.diallo@orange-fr.example") == "active"
    assert status(store, "salif.keita@mail-provider.example") == "complained"
    assert events(store, "oumar@timbuktu-mail.example")[-1].detail == (
        "550 5.1.1 The email account that you tried to reach does not exist. (postmark) [postmark:4323372036854775807]")


async def test_postmark_malformed_bodies_are_400_and_big_ones_413(app):
    async with app() as client:
        assert (await client.post("/hooks/email/postmark", content=b"<xml/>", headers=GOOD)).status_code == 400
        missing = {"RecordType": "Bounce", "Type": "HardBounce", "ID": 7}
        assert (await client.post("/hooks/email/postmark", content=json.dumps(missing), headers=GOOD)).status_code == 400
        big = await client.post("/hooks/email/postmark", content=b" " * (1024 * 1024 + 1), headers=GOOD)
        assert big.status_code == 413


# -- routes --------------------------------------------------------------------------------------------

async def test_each_channel_has_its_own_path_and_the_bare_one_only_when_alone(app, store):
    subscribe(store, "oumar@timbuktu-mail.example")
    postmark = {"postmark": {"username_env": "POSTMARK_USER", "password_env": "POSTMARK_PASSWORD"}}
    async with app(postmark, other=postmark) as client:
        bare = await client.post("/hooks/email/postmark", content=sample("postmark-bounce-hard.json"), headers=GOOD)
        alerts = await client.post("/hooks/email/postmark/alerts", content=sample("postmark-bounce-hard.json"),
                                   headers=GOOD)
        ses = await client.post("/hooks/email/ses", content=b"{}")
    assert bare.status_code == 404 and ses.status_code == 404  # two lists use Postmark; none uses SES
    assert alerts.json() == {"ok": True, "hard": 1, "suppressed": 1}  # an address bounces on every list


def test_a_missing_webhook_secret_stops_the_routes_with_its_name(store, tmp_path, monkeypatch):
    monkeypatch.delenv("MAILGUN_KEY", raising=False)
    services = FakeServices(store, make_config(tmp_path, {"mailgun": {"signing_key_env": "MAILGUN_KEY"}}))
    kind = Channels(services.config).kind(services.config.channels[0])
    with pytest.raises(ConfigError, match="MAILGUN_KEY"):
        kind.routes(services)


def test_no_webhook_configured_means_no_routes(store, tmp_path):
    services = FakeServices(store, make_config(tmp_path))
    assert Channels(services.config).kind(services.config.channels[0]).routes(services) == []
