"""The words of the readers' pages and of the confirmation email, in French and English.

Templates see them as ``w`` (``{{ w.subscribe_button }}``; ``{{ w.confirm_text.format(...) }}``
for the ones with a blank), so an admin who wants other words overrides a template, and an
English list needs nothing but ``language = "en"``. French typography is written in: a
no-break space before ':' and inside « », a narrow one before ';', '!' and '?'.
"""

from __future__ import annotations

from babel import Locale

LANGUAGES = ("fr", "en")
NBSP = "\u00a0"
NNBSP = "\u202f"

_FR = {
    "language_name": "Français",
    "switch_to": "English version",
    "subscribe_title": "S’abonner à {title}",
    "subscribe_intro": "L’essentiel de l’actualité de {site}, dans votre boîte aux lettres.",
    "email_label": "Adresse électronique",
    "email_hint": "Par exemple" + NBSP + ": aminata@exemple.ml",
    "name_label": "Votre prénom (facultatif)",
    "topics_legend": "Sujets",
    "topics_hint": "Ne cochez rien pour recevoir tous les sujets.",
    "frequency_legend": "Fréquence",
    "freq_instant": "À chaque nouvel article",
    "freq_daily": "Une fois par jour, le résumé",
    "freq_weekly": "Une fois par semaine, le résumé",
    "weekday_label": "Jour de la lettre hebdomadaire",
    "language_legend": "Langue des courriels",
    "subscribe_button": "Je m’abonne",
    "honeypot_label": "Laissez ce champ vide",
    "privacy": "Votre adresse ne sert qu’à vous envoyer cette lettre. Chaque courriel contient un lien "
               "pour vous désabonner en un clic.",
    "check_inbox_title": "Vérifiez votre boîte de réception",
    "check_inbox_text": "Si l’adresse est valide, un courriel de confirmation vient de partir. Ouvrez-le et "
                        "cliquez sur le lien qu’il contient" + NNBSP + "; il reste valable {days} jours.",
    "check_inbox_hint": "Rien reçu dans quelques minutes" + NNBSP + "? Regardez dans les courriers indésirables.",
    "confirm_title": "Confirmez votre abonnement",
    "confirm_text": "Un dernier geste pour recevoir {title} à l’adresse {email}" + NBSP + ":",
    "confirm_button": "Je confirme mon abonnement",
    "confirmed_title": "Abonnement confirmé",
    "confirmed_text": "Merci" + NNBSP + "! Vous recevrez {title} à l’adresse {email}.",
    "already_confirmed": "Cet abonnement est déjà confirmé.",
    "confirm_suppressed": "Cet abonnement a été arrêté depuis. Pour recevoir de nouveau la lettre, "
                          "abonnez-vous une nouvelle fois.",
    "unsubscribe_title": "Se désabonner",
    "unsubscribe_text": "Vous ne recevrez plus {title} à l’adresse {email}.",
    "unsubscribe_button": "Me désabonner",
    "instead_preferences": "Recevoir moins de courriels plutôt" + NNBSP + "? Modifier mes préférences",
    "unsubscribed_title": "Vous êtes désabonné(e)",
    "unsubscribed_text": "{email} ne recevra plus {title}. C’est enregistré" + NBSP + ": aucun autre courriel "
                         "ne partira vers cette adresse.",
    "resubscribe": "Vous avez changé d’avis" + NNBSP + "? Se réabonner",
    "preferences_title": "Vos préférences",
    "preferences_intro": "Abonnement de {email} à {title}.",
    "preferences_inactive": "Cet abonnement n’est pas actif" + NBSP + ": vous ne recevez rien pour l’instant.",
    "save_button": "Enregistrer mes préférences",
    "saved": "Vos préférences sont enregistrées. Elles s’appliquent dès la prochaine lettre.",
    "unsubscribe_link": "Me désabonner",
    "archive_title": "Archives de {title}",
    "archive_empty": "Aucune lettre n’a encore été envoyée.",
    "archive_older": "Lettres plus anciennes",
    "feed_link": "Flux Atom des lettres",
    "edition_title": "Lettre du {date}",
    "edition_back": "Toutes les lettres",
    "subscribe_cta": "Recevoir cette lettre",
    "index_title": "Les lettres de {site}",
    "error_title": "Impossible d’ouvrir ce lien",
    "link_invalid": "Ce lien n’est pas valide. Vérifiez qu’il est complet" + NBSP + ": certaines messageries "
                    "coupent les liens trop longs.",
    "link_expired": "Ce lien de confirmation a expiré. Abonnez-vous de nouveau" + NBSP + ": un nouveau lien "
                    "vous sera envoyé.",
    "form_expired": "Le formulaire a expiré ou n’a pas pu être vérifié. Le voici de nouveau" + NBSP + ": "
                    "envoyez-le une seconde fois.",
    "too_many_title": "Trop de demandes",
    "too_many": "Trop d’inscriptions depuis votre connexion. Réessayez un peu plus tard.",
    "not_found_title": "Page introuvable",
    "not_found": "Cette page n’existe pas.",
    "invalid_email": "Cette adresse ne semble pas valide. Vérifiez-la" + NBSP + ": {why}",
    "back_to_site": "Retour sur {site}",
    "api_ok": "Merci" + NNBSP + "! Si l’adresse est valide, un courriel de confirmation vient de partir.",
    "api_invalid_email": "Cette adresse ne semble pas valide.",
    "api_too_many": "Trop de demandes. Réessayez plus tard.",
    "api_bad_request": "Requête illisible.",
    # the confirmation email
    "confirm_subject": "Confirmez votre abonnement à {title}",
    "confirm_hello": "Bonjour,",
    "confirm_hello_name": "Bonjour {name},",
    "confirm_mail_text": "Pour recevoir {title} à cette adresse, confirmez votre abonnement" + NBSP + ":",
    "confirm_mail_button": "Confirmer mon abonnement",
    "confirm_mail_ttl": "Ce lien reste valable {days} jours.",
    "confirm_mail_ignore": "Vous n’avez rien demandé" + NNBSP + "? Ignorez ce message" + NBSP + ": sans "
                           "confirmation, vous ne recevrez rien.",
}

_EN = {
    "language_name": "English",
    "switch_to": "Version française",
    "subscribe_title": "Subscribe to {title}",
    "subscribe_intro": "The news that matters from {site}, in your inbox.",
    "email_label": "Email address",
    "email_hint": "For example: aminata@example.org",
    "name_label": "Your first name (optional)",
    "topics_legend": "Topics",
    "topics_hint": "Tick nothing to get every topic.",
    "frequency_legend": "How often",
    "freq_instant": "Each new article",
    "freq_daily": "Once a day, the digest",
    "freq_weekly": "Once a week, the digest",
    "weekday_label": "Day of the weekly digest",
    "language_legend": "Language of the emails",
    "subscribe_button": "Subscribe",
    "honeypot_label": "Leave this field empty",
    "privacy": "Your address is only used to send you this newsletter. Every email has a one-click "
               "unsubscribe link.",
    "check_inbox_title": "Check your inbox",
    "check_inbox_text": "If the address is valid, a confirmation email is on its way. Open it and follow its "
                        "link; it works for {days} days.",
    "check_inbox_hint": "Nothing after a few minutes? Look in your spam folder.",
    "confirm_title": "Confirm your subscription",
    "confirm_text": "One last step to receive {title} at {email}:",
    "confirm_button": "Confirm my subscription",
    "confirmed_title": "Subscription confirmed",
    "confirmed_text": "Thank you! You will receive {title} at {email}.",
    "already_confirmed": "This subscription is already confirmed.",
    "confirm_suppressed": "This subscription has been stopped since. To receive the newsletter again, "
                          "subscribe once more.",
    "unsubscribe_title": "Unsubscribe",
    "unsubscribe_text": "You will no longer receive {title} at {email}.",
    "unsubscribe_button": "Unsubscribe me",
    "instead_preferences": "Rather get fewer emails? Change my preferences",
    "unsubscribed_title": "You are unsubscribed",
    "unsubscribed_text": "{email} will no longer receive {title}. It is recorded: no other email will be sent "
                         "to this address.",
    "resubscribe": "Changed your mind? Subscribe again",
    "preferences_title": "Your preferences",
    "preferences_intro": "Subscription of {email} to {title}.",
    "preferences_inactive": "This subscription is not active: you receive nothing for now.",
    "save_button": "Save my preferences",
    "saved": "Your preferences are saved. They apply from the next newsletter.",
    "unsubscribe_link": "Unsubscribe",
    "archive_title": "{title}: archive",
    "archive_empty": "No newsletter has been sent yet.",
    "archive_older": "Older newsletters",
    "feed_link": "Atom feed of the newsletters",
    "edition_title": "Newsletter of {date}",
    "edition_back": "All newsletters",
    "subscribe_cta": "Get this newsletter",
    "index_title": "{site} newsletters",
    "error_title": "This link cannot be opened",
    "link_invalid": "This link is not valid. Check it is complete: some mail programs cut long links.",
    "link_expired": "This confirmation link has expired. Subscribe again: a new link will be sent to you.",
    "form_expired": "The form expired or could not be verified. Here it is again: please send it once more.",
    "too_many_title": "Too many requests",
    "too_many": "Too many sign-ups from your connection. Please try again later.",
    "not_found_title": "Page not found",
    "not_found": "This page does not exist.",
    "invalid_email": "This address does not look valid. Please check it: {why}",
    "back_to_site": "Back to {site}",
    "api_ok": "Thank you! If the address is valid, a confirmation email is on its way.",
    "api_invalid_email": "This address does not look valid.",
    "api_too_many": "Too many requests. Please try again later.",
    "api_bad_request": "Unreadable request.",
    "confirm_subject": "Confirm your subscription to {title}",
    "confirm_hello": "Hello,",
    "confirm_hello_name": "Hello {name},",
    "confirm_mail_text": "To receive {title} at this address, please confirm your subscription:",
    "confirm_mail_button": "Confirm my subscription",
    "confirm_mail_ttl": "This link works for {days} days.",
    "confirm_mail_ignore": "Did not ask for it? Ignore this message: without confirmation you will receive nothing.",
}

STRINGS = {"fr": _FR, "en": _EN}


class WebStrings(dict):
    """One language's words; a typo'd key is undefined, which StrictUndefined reports."""

    def __init__(self, language: str):
        if language not in STRINGS:
            raise KeyError(f"no reader strings for {language!r}; known: {', '.join(LANGUAGES)}")
        super().__init__(STRINGS[language])
        self.language = language
        days = Locale.parse(language).days["format"]["wide"]
        #: Monday first (0 = Monday, as Subscriber.weekly_day counts)
        self.weekdays = [days[i] for i in range(7)]


_CACHE: dict[str, WebStrings] = {}


def web_strings(language: str) -> WebStrings:
    if language not in _CACHE:
        _CACHE[language] = WebStrings(language)
    return _CACHE[language]


def accepted_language(header: str | None) -> str | None:
    """The first language of ``Accept-Language`` Tamtam speaks, by the reader's weights."""
    if not header:
        return None
    ranked = []
    for i, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        ranked.append((-weight, i, tag.strip().split("-")[0].lower()))
    for weight, _, lang in sorted(ranked):
        if weight < 0 and lang in LANGUAGES:
            return lang
    return None
