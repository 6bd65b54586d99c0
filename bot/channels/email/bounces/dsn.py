"""Read a bounce mailbox's messages: delivery status notifications and complaint reports.

* **RFC 3464 DSNs** (``multipart/report; report-type=delivery-status``) and their UTF-8
  form (RFC 6533, ``message/global-delivery-status``): one feedback per recipient whose
  ``Action`` is ``failed``, judged by :func:`~.classify.classify` on its ``Status`` and
  ``Diagnostic-Code``. ``delayed`` (still trying), ``delivered``, ``relayed`` and
  ``expanded`` say nothing against the address. Postfix, Exim 4.9+, Gmail, Outlook /
  Exchange, Orange and most providers send these.
* **RFC 5965 ARF reports** (``report-type=feedback-report``): ``Feedback-Type: abuse`` (and
  ``fraud``) is a complaint about the address in ``Original-Rcpt-To``, or in the ``To`` of
  the returned message when the report leaves it there; the returned message's
  ``List-Id`` names the list.
* **Plain-text bounces** from servers that do not send DSNs (older Exim's "Mail delivery
  failed", qmail's "failure notice", Postfix's human-readable part alone): recognised only
  when the sender is a mailer daemon or the subject says so, and read from the
  structured part of the text, never from the returned copy of our own message.

Everything else (auto-replies, people writing to the bounce address) yields nothing.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr
from typing import Iterable

from .classify import Verdict, classify, find_status, one_line
from .feedback import Feedback, list_channel


@dataclass
class Report:
    """What one message of the bounce mailbox says: its ``kind`` (dsn, arf, plain, or none)
    and the feedback it carries; ``note`` says why a message yields none."""

    kind: str
    feedback: list[Feedback] = field(default_factory=list)
    note: str = ""


def _text(value: object) -> str:
    """A header or field value as text: raw UTF-8 (RFC 6532/6533) or Latin-1/cp1252 bytes
    from an old server, and RFC 2047 encoded words, all decoded."""
    if isinstance(value, bytes):
        raw = value
    else:
        raw = str(value).encode("utf-8", "surrogateescape")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", "replace")
    if "=?" in text:
        try:
            text = str(make_header(decode_header(text)))
        except (ValueError, LookupError, UnicodeError):
            pass
    return text


def _fields(block: Iterable[tuple[str, object]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in block:
        out.setdefault(name.strip().lower(), re.sub(r"\s*\r?\n\s+", " ", _text(value)).strip())
    return out


def _blocks(data: bytes) -> list[dict[str, str]]:
    """``name: value`` blocks separated by blank lines (a status report's body), folded
    lines unfolded."""
    out = []
    for chunk in re.split(rb"\r?\n[ \t]*\r?\n", data):
        pairs: list[tuple[str, bytes]] = []
        for line in re.split(rb"\r?\n", chunk):
            if line[:1] in (b" ", b"\t") and pairs:
                pairs[-1] = (pairs[-1][0], pairs[-1][1] + b" " + line.strip())
            elif b":" in line:
                name, _, value = line.partition(b":")
                pairs.append((name.decode("ascii", "replace"), value.strip()))
        if pairs:
            out.append(_fields(pairs))
    return out


def _report_blocks(part: Message) -> list[dict[str, str]]:
    payload = part.get_payload()
    if isinstance(payload, list):
        # The parser splits message/delivery-status into one Message per block; it reads
        # message/global-delivery-status as one message whose body holds the other blocks.
        out = []
        for sub in payload:
            if isinstance(sub, Message):
                out.append(_fields(sub.raw_items()))
                rest = sub.get_payload(decode=True)  # bytes as they came (get_payload() would mangle 8-bit)
                if isinstance(rest, bytes) and rest.strip():
                    out.extend(_blocks(rest))
        return out
    data = part.get_payload(decode=True)
    return _blocks(data if isinstance(data, bytes) else str(payload).encode("utf-8", "surrogateescape"))


def _address(value: str | None) -> str | None:
    """``rfc822; Bob@Example.org`` / ``utf-8; josé@exemple.fr`` / ``<bob@example.org>`` → the address."""
    if not value:
        return None
    value = value.split(";", 1)[1] if ";" in value else value
    value = re.sub(r"\\x\{([0-9A-Fa-f]{1,6})\}", lambda m: chr(int(m.group(1), 16)), value)  # RFC 6533 escapes
    value = value.strip().strip("<>").strip()
    return value if re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", value) else None


def _ref(msg: Message, raw: bytes, prefix: str) -> str:
    mid = _text(msg.get("Message-ID", "")).strip()
    if mid:
        return f"{prefix}:{mid}"
    return f"{prefix}:sha256:{hashlib.sha256(raw).hexdigest()[:24]}"


def _returned(msg: Message) -> Message | None:
    """The copy (or the headers) of our own message that a report returns."""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global") and part.is_multipart():
            inner = part.get_payload(0)
            if isinstance(inner, Message):
                return inner
        if ctype in ("text/rfc822-headers", "message/global-headers"):
            data = part.get_payload(decode=True) or b""
            return email.message_from_bytes(data, policy=email.policy.compat32)
    return None


def parse(raw: bytes, *, channels: Iterable[str] = ()) -> Report:
    """Read one message of the bounce mailbox. ``channels`` are the email channels' ids,
    for naming the list a complaint is about."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            return _dsn(msg, part, raw)
        if ctype == "message/feedback-report":
            return _arf(msg, part, raw, channels)
    return _plain(msg, raw)


def _dsn(msg: Message, part: Message, raw: bytes) -> Report:
    ref = _ref(msg, raw, "dsn")
    report = Report("dsn")
    blocks = _report_blocks(part)
    reporter = next((b.get("reporting-mta") for b in blocks if b.get("reporting-mta")), None)
    for block in blocks:
        address = _address(block.get("original-recipient")) or _address(block.get("final-recipient"))
        if address is None:
            continue
        action = block.get("action", "").lower().split("(")[0].strip()
        status = find_status(block.get("status", ""))
        diagnostic = one_line(block.get("diagnostic-code", "")) or one_line(block.get("status", ""))
        if action == "failed":
            verdict, why = classify(status, diagnostic)
        else:
            verdict, why = Verdict.IGNORE, f"action {action or 'missing'}: not a failure"
        origin = "dsn" + (f" from {_address(reporter) or one_line(reporter, 80).split(';')[-1].strip()}"
                          if reporter else "")
        report.feedback.append(Feedback(address, verdict, status, diagnostic, ref, origin, why))
    if not report.feedback:
        report.note = "a delivery status report with no recipient"
    return report


def _arf(msg: Message, part: Message, raw: bytes, channels: Iterable[str]) -> Report:
    ref = _ref(msg, raw, "arf")
    fields: dict[str, str] = {}
    for block in _report_blocks(part):
        for k, v in block.items():
            fields.setdefault(k, v)
    kind = fields.get("feedback-type", "").lower()
    original = _returned(msg)
    address = _address(fields.get("original-rcpt-to"))
    if address is None and original is not None:
        tos = [a for _, a in getaddresses([_text(v) for v in original.get_all("To", [])]) if _address(a)]
        address = tos[0] if len(tos) == 1 else None
    if address is None:
        return Report("arf", note=f"a {kind or 'feedback'} report that does not say who complained "
                                   "(the recipient was redacted)")
    channel = list_channel(_text(original.get("List-Id", "")) if original is not None else None, channels)
    agent = fields.get("user-agent", "").split("/")[0].strip() or "ARF"
    if kind in ("abuse", "fraud"):
        verdict, why = Verdict.COMPLAINT, f"marked as {kind}"
    else:
        verdict, why = Verdict.IGNORE, f"feedback type {kind or 'missing'} is not a complaint"
    return Report("arf", [Feedback(address, verdict, None, f"feedback-type {kind}", ref, f"arf from {agent}", why,
                                   channel)])


# -- plain-text bounces ---------------------------------------------------------------------

_DAEMON = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon|mdaemon)@", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered mail|returned mail|mail delivery (failed|failure|subsystem)|delivery (status "
    r"notification|failure|has failed)|failure notice|non remis|non distribuable|échec de (la )?(remise|livraison)"
    r"|impossible de remettre|message not delivered|could not be delivered", re.IGNORECASE)
_DELAY_SUBJECT = re.compile(r"delayed|delay\)|warning:|retard|différé", re.IGNORECASE)
_COPY = re.compile(r"^[ \t-]*(?:this is a copy of the message|below this line is a copy|original message "
                   r"(?:follows|headers)|-+ ?original message|-+ ?le message d.origine|--- the header of the original)",
                   re.IGNORECASE | re.MULTILINE)


def _body_text(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename():
            data = part.get_payload(decode=True) or b""
            charset = part.get_content_charset() or "utf-8"
            try:
                return data.decode(charset)
            except (LookupError, UnicodeDecodeError):
                return _text(data)
        if part.get_content_type() in ("message/rfc822", "message/global"):
            break  # the returned copy of our message: never read addresses from it
    return ""


def _plain(msg: Message, raw: bytes) -> Report:
    sender = parseaddr(_text(msg.get("From", "")))[1]
    subject = _text(msg.get("Subject", ""))
    if not (_DAEMON.match(sender) or _BOUNCE_SUBJECT.search(subject)):
        # bounces are auto-replies too (RFC 3834), so this only names what else it is
        auto = _text(msg.get("Auto-Submitted", "")).lower().startswith("auto-replied")
        return Report("none", note="an auto-reply" if auto else "not a bounce")
    text = _body_text(msg)
    text = text[: m.start()] if (m := _COPY.search(text)) else text
    ref = _ref(msg, raw, "bounce")
    found: dict[str, str] = {}
    # Exim: "The following address(es) failed:", then each address with its reasons indented below
    m = re.search(r"following address(?:\(es\))? failed:\s*\n(.*)", text, re.IGNORECASE | re.DOTALL)
    if m:
        for block in re.finditer(r"^[ \t]{1,4}(\S+@\S+)[ \t]*\n((?:[ \t]{4,}.*\n?)*)", m.group(1), re.MULTILINE):
            address = _address(block.group(1).rstrip(":"))
            if address:
                found.setdefault(address, block.group(2))
    # qmail and Postfix's human-readable part: "<address>:" then the reason until a blank line
    for block in re.finditer(r"^<([^<>\s]+@[^<>\s]+)>:?[ \t]*\n?((?:.+\n?)*)", text, re.MULTILINE):
        address = _address(block.group(1))
        if address:
            found.setdefault(address, block.group(2))
    for header in msg.get_all("X-Failed-Recipients", []):
        for _, address in getaddresses([_text(header)]):
            if _address(address):
                found.setdefault(address, "")
    if not found:
        return Report("plain", note="a bounce whose failed address could not be found")
    delayed = bool(_DELAY_SUBJECT.search(subject)) or re.search(r"has been delayed|not yet been delivered|"
                                                               r"will (?:keep|continue) trying", text, re.I)
    permanent_hint = re.search(r"permanent (?:error|failure)|given up|could not be delivered", text, re.I)
    report = Report("plain")
    for address, words in found.items():
        diagnostic = one_line(words) or one_line(text[:300])
        status = find_status(diagnostic)
        if delayed:
            verdict, why = Verdict.IGNORE, "delayed: the server is still trying"
        else:
            verdict, why = classify(status, diagnostic)
            if status is None and permanent_hint and verdict is Verdict.SOFT and "no status" in why:
                why = "a permanent failure with no status code"
        report.feedback.append(Feedback(address, verdict, status, diagnostic, ref, "plain bounce", why))
    return report
