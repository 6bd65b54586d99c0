"""Bounces and complaints for the email channel.

::

    bounce mailbox (IMAP, maildir) ──► dsn.parse ─────────┐
    SES via SNS ──► sns (signature) ──► payloads.ses ─────┤
    Mailgun (HMAC) ──────────────────► payloads.mailgun ──┼──► Feedback ──► feedback.apply ──► store.subscribers
    Postmark (basic auth) ───────────► payloads.postmark ─┘    (address,      (deduplicated     bounce / complaint
                                                                verdict …)     by ref)
    SMTP refusal at send time ──► RecipientRefused ──► the dispatcher ───────────────────────► bounce

* :mod:`.classify` — RFC 3463 status → hard / soft / ignored (the policy, documented there)
* :mod:`.dsn` — DSNs (RFC 3464, 6533), ARF complaints (RFC 5965) and plain-text bounces
* :mod:`.mailbox` — the ``bounces`` job reading an IMAP account or a maildir
* :mod:`.payloads`, :mod:`.sns`, :mod:`.webhooks` — the sending services' webhooks
* :mod:`.settings` — ``[channels.bounces]``

Nothing heavy is imported here: the channel settings import :mod:`.settings` on every start.
"""
