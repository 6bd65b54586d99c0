"""The words the default templates put around the articles, per language.

Templates see them as ``t`` (``{{ t.read_more }}``, ``{{ t.n("articles", 3) }}``), so an
English channel needs no other templates, and an admin who only wants a different greeting
overrides nothing but a string. French typography is written in here, not left to chance:
a narrow no-break space (U+202F) before ``; ! ?``, a no-break space (U+00A0) before ``:``
and inside « guillemets », so a phone never wraps a lone « : » onto the next line.
"""

from __future__ import annotations

from babel import Locale

NBSP = "\u00a0"  # before ':' and inside « »
NNBSP = "\u202f"  # before ';', '!' and '?'

STRINGS: dict[str, dict[str, object]] = {
    "fr": {
        "hello": "Bonjour,",
        "hello_name": "Bonjour {name},",
        "read_more": "Lire la suite",
        "unsubscribe": "Se désabonner",
        "in_this_issue": "Au sommaire",
        "articles": {"one": "{n} article", "other": "{n} articles"},
        "by": "Par {author}",
        "published": "Publié le {date}",
        "why": "Vous recevez ce courriel car vous êtes abonné(e) à la lettre d’information de {title}.",
        "unsubscribe_hint": "Vous ne souhaitez plus la recevoir{nnbsp}? Répondez simplement à ce courriel.",
        "visit": "Toute l’actualité sur {site}",
        "view_online": "Voir cette lettre dans le navigateur",  # the readers' pages ([web])
        "preferences": "Gérer mes préférences",
        "subject": "{title} — {date}" + NBSP + ": {count}",
        # the default email subject: the lead headline, and how many other articles follow
        "subject_lead": "{title}" + NBSP + ": {headline}",
        "subject_more": " (+{n})",
        "headline": "À la une" + NBSP + ": {title}",
        "continued": "{title} (suite {part}/{parts})",
        "at": "{date} à {time}",
        "quote_open": "«" + NBSP,
        "quote_close": NBSP + "»",
        "colon": NBSP + ":",
    },
    "en": {
        "hello": "Hello,",
        "hello_name": "Hello {name},",
        "read_more": "Read more",
        "unsubscribe": "Unsubscribe",
        "in_this_issue": "In this issue",
        "articles": {"one": "{n} article", "other": "{n} articles"},
        "by": "By {author}",
        "published": "Published on {date}",
        "why": "You are receiving this email because you subscribed to the {title} newsletter.",
        "unsubscribe_hint": "No longer want it{nnbsp}? Simply reply to this email.",
        "visit": "All the news at {site}",
        "view_online": "View this newsletter in your browser",
        "preferences": "Manage my preferences",
        "subject": "{title} — {date}: {count}",
        "subject_lead": "{title}: {headline}",
        "subject_more": " (+{n})",
        "headline": "Top story: {title}",
        "continued": "{title} (continued {part}/{parts})",
        "at": "{date} at {time}",
        "quote_open": "“",
        "quote_close": "”",
        "colon": ":",
    },
}
# English has no space before '?'; French gets a narrow no-break one.
STRINGS["fr"]["unsubscribe_hint"] = str(STRINGS["fr"]["unsubscribe_hint"]).replace("{nnbsp}", NNBSP)
STRINGS["en"]["unsubscribe_hint"] = str(STRINGS["en"]["unsubscribe_hint"]).replace("{nnbsp}", "")


class Strings(dict):
    """One language's strings. A plain dict, so a typo'd ``t.missing`` is undefined and
    StrictUndefined reports it, plus :meth:`n` for plurals by the language's own rule
    (French says « 0 article », English "0 articles")."""

    def __init__(self, language: str):
        if language not in STRINGS:
            raise KeyError(f"no UI strings for language {language!r}; known: {', '.join(sorted(STRINGS))}")
        super().__init__(STRINGS[language])
        self.language = language
        self._locale = Locale.parse(language)

    def n(self, key: str, n: int) -> str:
        forms = self[key]
        if not isinstance(forms, dict):
            raise KeyError(f"string {key!r} has no plural forms")
        form = self._locale.plural_form(n)
        return str(forms.get(form, forms["other"])).format(n=n)

