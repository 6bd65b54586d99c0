"""What the sending services' webhook payloads say, as :class:`~.feedback.Feedback`.

Each function takes the service's documented JSON (already authenticated) and returns the
feedback in it, or raises :class:`PayloadError` when it is not shaped as documented.
Events that are not bounces or complaints (deliveries, opens, clicks) yield nothing.

* **Amazon SES** (the ``Message`` of an SNS notification): ``notificationType`` (or, from a
  configuration set's event publishing, ``eventType``) ``Bounce`` or ``Complaint``.
  ``Permanent`` bounces are hard — unless the recipient's own status says full mailbox
  (soft) or policy (ignored), as :mod:`.classify` decides for DSNs; ``Transient`` ones are
  soft, except ``MessageTooLarge``, ``ContentRejected`` and ``AttachmentRejected``, which
  are about our message; ``Undetermined`` is soft. A complaint whose feedback type is
  ``not-spam``, or that SES made up for an address on the account's suppression list, is not one.
* **Mailgun** (webhooks v3 ``event-data``): ``failed`` with ``severity`` ``permanent`` is hard
  (or soft / ignored by its code, as above; ``reason`` ``old`` — given up after hours of
  retries — is soft; ``suppress-unsubscribe``, ``suppress-complaint`` and ``espblock`` are
  Mailgun's own lists and blocks, ignored); ``temporary`` failures are ignored, because
  Mailgun is still retrying and most such messages arrive in the end. ``complained`` is a
  complaint.
* **Postmark** (``RecordType`` ``Bounce`` or ``SpamComplaint``): ``HardBounce`` and
  ``BadEmailAddress`` are hard; ``SoftBounce``, ``Transient``, ``DnsError`` and ``Unknown``
  are soft; ``SpamComplaint`` is a complaint; every other type (auto-responders, blocks,
  DMARC, challenge and virus notifications …) is ignored.
"""

from __future__ import annotations

from email.utils import parseaddr
from typing import Any, Iterable

from .classify import Verdict, classify, find_status, one_line
from .feedback import Feedback, list_channel


class PayloadError(ValueError):
    """The payload is not shaped as the service documents it."""


def _address(value: Any) -> str:
    if not isinstance(value, str) or "@" not in value:
        raise PayloadError(f"expected an email address, got {value!r}")
    return parseaddr(value)[1] or value.strip()


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{what} must be an object, got {type(value).__name__}")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise PayloadError(f"{what} must be a non-empty list")
    return value


def _by_status(status: str | None, diagnostic: str, code: int | None, default_why: str) -> tuple[Verdict, str]:
    """A service called it permanent: hard, unless the code itself says full mailbox or policy."""
    if status or code:
        return classify(status, diagnostic, code)
    return Verdict.HARD, default_why


# -- Amazon SES ------------------------------------------------------------------------------

_SES_NOT_THE_ADDRESS = {"MessageTooLarge", "ContentRejected", "AttachmentRejected"}


def _ses_list_id(mail: dict[str, Any]) -> str | None:
    for header in mail.get("headers") or []:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "list-id":
            return str(header.get("value", ""))
    return None


def ses(message: dict[str, Any], *, fallback_ref: str, channels: Iterable[str] = ()) -> list[Feedback]:
    """An SES notification (``Bounce``, ``Complaint``; anything else yields nothing)."""
    message = _dict(message, "the SES notification")
    kind = message.get("notificationType") or message.get("eventType")
    mail = message.get("mail") or {}
    try:
        if kind == "Bounce":
            bounce = _dict(message["bounce"], "bounce")
            btype, sub = str(bounce["bounceType"]), str(bounce.get("bounceSubType") or "")
            ref = f"ses:{bounce.get('feedbackId') or fallback_ref}"
            out = []
            for r in _list(bounce["bouncedRecipients"], "bounce.bouncedRecipients"):
                r = _dict(r, "a bounced recipient")
                status = find_status(str(r.get("status") or ""))
                diagnostic = one_line(str(r.get("diagnosticCode") or ""))
                if btype == "Permanent":
                    if sub in ("Suppressed", "OnAccountSuppressionList", "NoEmail"):
                        verdict, why = Verdict.HARD, f"SES permanent bounce ({sub})"
                    else:
                        verdict, why = _by_status(status, diagnostic, None, f"SES permanent bounce ({sub})")
                elif btype == "Transient":
                    if sub in _SES_NOT_THE_ADDRESS:
                        verdict, why = Verdict.IGNORE, f"SES transient bounce about our message ({sub})"
                    else:
                        verdict, why = Verdict.SOFT, f"SES transient bounce ({sub})"
                else:
                    verdict, why = Verdict.SOFT, f"SES bounce of type {btype}"
                out.append(Feedback(_address(r.get("emailAddress")), verdict, status,
                                    diagnostic or f"{btype}/{sub}", ref, "ses", why))
            return out
        if kind == "Complaint":
            complaint = _dict(message["complaint"], "complaint")
            ref = f"ses:{complaint.get('feedbackId') or fallback_ref}"
            ftype = str(complaint.get("complaintFeedbackType") or "")
            agent = str(complaint.get("userAgent") or "").split("/")[0] or "the mailbox provider"
            if ftype == "not-spam" or complaint.get("complaintSubType") == "OnAccountSuppressionList":
                verdict, why = Verdict.IGNORE, f"not a complaint ({ftype or complaint.get('complaintSubType')})"
            else:
                verdict, why = Verdict.COMPLAINT, f"marked as {ftype or 'spam'}"
            channel = list_channel(_ses_list_id(_dict(mail, "mail")), channels)
            return [Feedback(_address(_dict(r, "a complained recipient").get("emailAddress")), verdict, None,
                             f"complaint {ftype or '(no type)'} from {agent}", ref, "ses", why, channel)
                    for r in _list(complaint["complainedRecipients"], "complaint.complainedRecipients")]
    except KeyError as exc:
        raise PayloadError(f"SES {kind} notification without {exc.args[0]!r}") from None
    return []


# -- Mailgun ----------------------------------------------------------------------------------

def mailgun(event: dict[str, Any]) -> list[Feedback]:
    """A Mailgun ``event-data`` object (``failed``, ``complained``; others yield nothing)."""
    event = _dict(event, "event-data")
    name = event.get("event")
    if name not in ("failed", "complained"):
        return []
    try:
        recipient = _address(event["recipient"])
        ref = f"mailgun:{event['id']}"
    except KeyError as exc:
        raise PayloadError(f"Mailgun {name} event without {exc.args[0]!r}") from None
    if name == "complained":
        return [Feedback(recipient, Verdict.COMPLAINT, None, "complaint", ref, "mailgun", "marked as spam")]
    status_block = event.get("delivery-status") or {}
    status_block = _dict(status_block, "delivery-status")
    code = status_block.get("code")
    code = code if isinstance(code, int) else None
    words = str(status_block.get("message") or status_block.get("description") or "")
    diagnostic = one_line(f"{code} {words}" if code and not words.startswith(str(code)) else words)
    status = find_status(str(status_block.get("enhanced-code") or "")) or find_status(diagnostic)
    severity, reason = event.get("severity"), str(event.get("reason") or "")
    if severity == "temporary":
        verdict, why = Verdict.IGNORE, "temporary failure: Mailgun is still retrying"
    elif severity != "permanent":
        raise PayloadError(f"Mailgun failed event with severity {severity!r}")
    elif reason == "suppress-bounce":
        verdict, why = Verdict.HARD, "on Mailgun's bounce list"
    elif reason in ("suppress-unsubscribe", "suppress-complaint", "espblock"):
        verdict, why = Verdict.IGNORE, f"Mailgun did not send ({reason})"
    elif reason == "old":
        verdict, why = Verdict.SOFT, "Mailgun gave up after retrying"
    else:
        verdict, why = _by_status(status, diagnostic, code, f"Mailgun permanent failure ({reason or 'bounce'})")
    return [Feedback(recipient, verdict, status, diagnostic or reason or "failed", ref, "mailgun", why)]


# -- Postmark --------------------------------------------------------------------------------

_POSTMARK = {
    "HardBounce": Verdict.HARD, "BadEmailAddress": Verdict.HARD,
    "SoftBounce": Verdict.SOFT, "Transient": Verdict.SOFT, "DnsError": Verdict.SOFT, "Unknown": Verdict.SOFT,
    "SpamComplaint": Verdict.COMPLAINT,
}


def postmark(payload: dict[str, Any]) -> list[Feedback]:
    """A Postmark Bounce or SpamComplaint webhook (other record types yield nothing)."""
    payload = _dict(payload, "the Postmark payload")
    record = payload.get("RecordType")
    if record not in ("Bounce", "SpamComplaint"):
        return []
    try:
        btype, ident, address = str(payload["Type"]), payload["ID"], _address(payload["Email"])
    except KeyError as exc:
        raise PayloadError(f"Postmark {record} without {exc.args[0]!r}") from None
    if record == "SpamComplaint":
        btype = "SpamComplaint"
    verdict = _POSTMARK.get(btype, Verdict.IGNORE)
    details = one_line(str(payload.get("Details") or payload.get("Description") or ""))
    why = f"Postmark {btype}" + ("" if verdict is not Verdict.IGNORE else ": not about the address")
    return [Feedback(address, verdict, find_status(details), details or btype, f"postmark:{ident}", "postmark", why)]
