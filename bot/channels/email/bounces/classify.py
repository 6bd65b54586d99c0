"""What a delivery failure says about the address: hard, soft, or nothing at all.

The verdict follows the RFC 3463 status code (``class.subject.detail``), because that is
what every MTA and sending service reports; the diagnostic text only breaks ties. A hard
bounce suppresses the address at once, so it is kept for codes that say *this mailbox will
never accept mail*; a problem with *our* message or *our* reputation must never suppress a
reader, because the same refusal would then suppress every reader of the list.

======================  =======  =====================================================
status                  verdict  why
======================  =======  =====================================================
2.x.x                   ignore   success (a "delivered"/"relayed" DSN)
4.x.x                   soft     temporary; counted, suppressed after N in a window
5.1.x                   hard     bad mailbox, bad domain, moved, null MX (5.1.10) …
5.1.7, 5.1.8            ignore   the *sender's* address is bad: fix the config
5.2.1, 5.2.0            hard     mailbox disabled
5.2.2                   soft     mailbox full: the reader may empty it
5.2.3                   ignore   our message is too big for that mailbox
5.2.4                   soft     a mailing-list expansion problem downstream
5.3.3, 5.3.4            ignore   our message's size or features
5.3.x (other)           soft     the destination system is full or not accepting
5.4.4                   hard     unable to route: the domain has no mail server
5.4.x (other)           soft     network and routing trouble, loops, time-outs
5.5.x                   soft     protocol trouble between servers
5.6.x                   ignore   our message's content or encoding
5.7.x                   ignore   policy: spam filters, reputation, DMARC, block lists
5.0.0 / no code         by text  550/551/553 hard, 552 soft, 554 and policy words ignore
======================  =======  =====================================================

Any permanent (5.x.x) refusal whose diagnostic plainly says the mailbox does not exist
("User unknown", "no such user", "n'existe pas", "destinataire inconnu", Microsoft's
"5.4.1 Recipient address rejected: Access denied" …) is hard whatever its code: servers
misuse 5.7.1 and 5.4.1 for unknown users. A temporary (4.x.x) one never is: a directory
that is down for a minute answers "user unknown" too.
"""

from __future__ import annotations

import enum
import re

#: ``5.1.1`` anywhere in a diagnostic (``550-5.1.1``, ``#5.1.1``, ``(5.1.1)``)
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")
#: a basic SMTP reply code at the start of a diagnostic, after an optional ``smtp;``
_CODE = re.compile(r"^\s*(?:[a-z0-9-]+\s*;\s*)?([245]\d\d)(?=[\s-]|$)", re.IGNORECASE)

_NO_MAILBOX = re.compile(
    r"user (?:unknown|not found|does ?n[o']t exist)|unknown (?:user|recipient|address|mailbox|local ?part)"
    r"|no such (?:user|mailbox|recipient|address|account|person)|(?:mailbox|account|address|user|recipient)"
    r"(?: \S+){0,3} (?:does ?n[o']t exist|not exist|not found|unknown|is disabled|has been disabled|"
    r"deactivated|inactive)|recipient not found|address not found|recipnotfound|recipientnotfound"
    r"|invalid (?:recipient|mailbox|address)|mailbox unavailable: user|account disabled|disabled account"
    r"|recipient address rejected: (?:user unknown|access denied|undeliverable)|not our customer"
    r"|n[’']existe pas|n[’']existe plus|(?:destinataire|utilisateur|adresse|bo[iî]te|compte)\b[^.;]{0,40}?"
    r"\b(?:inconnue?s?|invalides?|introuvables?|d[ée]sactiv[ée]e?s?|inexistante?s?)\b",
    re.IGNORECASE)
_FULL = re.compile(r"mailbox (?:is )?full|over ?quota|quota (?:exceeded|d[ée]pass[ée])|exceeded (?:the )?storage"
                   r"|insufficient (?:system )?storage|bo[iî]te (?:aux lettres )?(?:est )?pleine|espace insuffisant",
                   re.IGNORECASE)
_POLICY = re.compile(r"spam|junk|block|black ?list|deny ?list|listed|reputation|policy|politique|dmarc|\bspf\b|"
                     r"dkim|not authori[sz]ed|authenticat|ind[ée]sirable|rate limit|too many|relay|virus",
                     re.IGNORECASE)
_SENDER = re.compile(r"\bsender\b|exp[ée]diteur|mail from", re.IGNORECASE)


class Verdict(enum.StrEnum):
    HARD = "hard"  # suppress at once
    SOFT = "soft"  # count; suppress after soft_limit within soft_window
    COMPLAINT = "complaint"  # the reader called it spam: unsubscribe
    IGNORE = "ignore"  # says nothing against the address (success, delay, our own message or reputation)


def find_status(text: str) -> str | None:
    """The first RFC 3463 status code in ``text`` (``"550-5.1.1 …"`` → ``"5.1.1"``)."""
    m = _STATUS.search(text or "")
    return ".".join(m.groups()) if m else None


def find_code(text: str) -> int | None:
    """The SMTP reply code a diagnostic starts with (``"smtp; 550 …"`` → 550)."""
    m = _CODE.match(text or "")
    return int(m.group(1)) if m else None


def says_no_mailbox(text: str) -> bool:
    """True when the words say the recipient's mailbox does not exist (never about the
    sender: "Sender address rejected: Domain not found" is our configuration)."""
    return bool(_NO_MAILBOX.search(text or "")) and not _SENDER.search(text or "")


def classify(status: str | None, diagnostic: str = "", code: int | None = None) -> tuple[Verdict, str]:
    """The verdict on the address for one failed delivery, and a few words saying why.

    ``status`` is the RFC 3463 code when the report gives one (else it is looked for in the
    diagnostic), ``code`` the SMTP reply code (else read from the diagnostic's start)."""
    diagnostic = diagnostic or ""
    status = (status or "").strip() or find_status(diagnostic)
    code = code or find_code(diagnostic)
    if status and not re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", status):
        status = find_status(status)
    if status is None and code is None:
        if says_no_mailbox(diagnostic):
            return Verdict.HARD, "the diagnostic says the mailbox does not exist"
        if _FULL.search(diagnostic):
            return Verdict.SOFT, "mailbox full"
        return Verdict.SOFT, "a failure with no status code"
    if status is None or status == "5.0.0":
        return _by_code(code or (500 if status else 0), diagnostic)
    klass, subject, detail = (int(x) for x in status.split("."))
    if klass == 2:
        return Verdict.IGNORE, "delivered"
    if klass == 4:
        return Verdict.SOFT, "temporary failure"
    verdict, why = _permanent(subject, detail)
    if verdict is not Verdict.HARD and says_no_mailbox(diagnostic):
        return Verdict.HARD, f"{why}, but the diagnostic says the mailbox does not exist"
    return verdict, why


def _permanent(subject: int, detail: int) -> tuple[Verdict, str]:
    if subject == 1:
        if detail in (7, 8):
            return Verdict.IGNORE, "the sender's address was refused (a configuration problem, not the reader's)"
        return Verdict.HARD, "bad destination address"
    if subject == 2:
        if detail == 2:
            return Verdict.SOFT, "mailbox full"
        if detail == 3:
            return Verdict.IGNORE, "our message is too long for that mailbox"
        if detail == 4:
            return Verdict.SOFT, "mailing list expansion problem"
        return Verdict.HARD, "mailbox disabled"
    if subject == 3:
        if detail in (3, 4):
            return Verdict.IGNORE, "our message's size or features were refused"
        return Verdict.SOFT, "the destination mail system is not accepting mail"
    if subject == 4:
        if detail == 4:
            return Verdict.HARD, "the domain has no mail server"
        return Verdict.SOFT, "network or routing problem"
    if subject == 5:
        return Verdict.SOFT, "protocol problem between servers"
    if subject == 6:
        return Verdict.IGNORE, "our message's content was refused"
    if subject == 7:
        return Verdict.IGNORE, "refused by policy (spam filter, reputation, authentication): not the address's fault"
    return Verdict.SOFT, "an unknown permanent status"


def _by_code(code: int, diagnostic: str) -> tuple[Verdict, str]:
    """No useful enhanced status: the basic reply code (RFC 5321 §4.2.3) and the words."""
    if 400 <= code < 500:
        return Verdict.SOFT, "temporary failure"
    if 200 <= code < 300:
        return Verdict.IGNORE, "delivered"
    if says_no_mailbox(diagnostic):
        return Verdict.HARD, "the diagnostic says the mailbox does not exist"
    if code == 552 or _FULL.search(diagnostic):
        return Verdict.SOFT, "mailbox full"
    if _POLICY.search(diagnostic):
        return Verdict.IGNORE, "refused by policy: not the address's fault"
    if code in (550, 551, 553):
        return Verdict.HARD, f"mailbox unavailable ({code})"
    if code == 554:
        return Verdict.IGNORE, "transaction refused (554) without saying why"
    return Verdict.SOFT, "a permanent failure that does not name the mailbox"


def one_line(text: str, limit: int = 300) -> str:
    """A diagnostic fit for an event's detail: one line, continuation codes folded
    (``550-5.1.1 The email account … 550-5.1.1 double-checking`` reads as one sentence)."""
    text = re.sub(r"\s+", " ", text or "").strip()
    text = re.sub(r"^(?:smtp|x-[a-z0-9-]+)\s*;\s*", "", text, flags=re.IGNORECASE)
    lead = re.match(r"([245]\d\d)[ -]((?:[245]\.\d{1,3}\.\d{1,3} )?)", text)
    if lead:  # a multi-line reply repeats its code on every line
        text = lead.group(0) + re.sub(rf" {lead.group(1)}[ -]{re.escape(lead.group(2))}", " ", text[lead.end():])
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def refusal(reply: str, code: int, *, at_data: bool = False) -> Verdict | None:
    """What a permanent SMTP refusal at send time says about the recipient: HARD, SOFT (a
    full mailbox) or None (nothing: policy, our sender, our message, a server that refuses
    everyone). Stricter than :func:`classify`, because a misconfigured relay refuses every
    recipient alike and must not suppress the whole list: only a refusal that names the
    mailbox counts. After DATA the reply is about the message unless its status is 5.1.x
    or 5.2.x."""
    status = find_status(reply)
    if at_data and not (status and status.split(".")[1] in ("1", "2")):
        return None
    verdict, _ = classify(status, reply, code)
    if verdict is Verdict.HARD:
        return verdict
    if verdict is Verdict.SOFT and (status == "5.2.2" or code == 552 or _FULL.search(reply)):
        return verdict
    return None
